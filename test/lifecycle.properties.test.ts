/**
 * Property tests of the lifecycle over random schedules of crashes, hangs,
 * domain errors, interruptions, load and time, ending with a shutdown.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Schedule, Schema, Scope } from "effect"
import { TestClock } from "effect/testing"
import {
  DomainError,
  PoolBusy,
  PoolShutdown,
  RequestTimeout,
  Worker,
  WorkerCrash,
  type WorkerId,
  type WorkerKind,
  WorkerPool
} from "effect-worker-pool"

const Index = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 15 }))
const Kind = Schema.Literals(["ok", "slow", "domain", "crash", "die", "hang", "wait"])
const Command = Schema.Union([
  Schema.TaggedStruct("Dispatch", { kind: Kind, idempotent: Schema.Boolean }),
  Schema.TaggedStruct("Release", { index: Index }),
  Schema.TaggedStruct("Interrupt", { index: Index }),
  Schema.TaggedStruct("Advance", { millis: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 1500 })) })
])
const Scenario = Schema.Struct({
  workers: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 4 })),
  maxInFlight: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 2 })),
  queueCapacity: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 4 })),
  queueStrategy: Schema.Literals(["suspend", "fail", "dropOldest"]),
  commands: Schema.Array(Command).check(Schema.isMaxLength(80))
})
type Scenario = typeof Scenario.Type

const MAX_RESTARTS = 2
const WINDOW = 2_000
const TIMEOUT = 500
const DRAIN = 1_000
const MAX_RETRIES = 1

interface Request {
  readonly id: number
  readonly kind: typeof Kind.Type
  readonly gate: Deferred.Deferred<void>
}

const run = (scenario: Scenario) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    /** Per worker, the instants at which it was started again. */
    const restartTimes = new Map<number, Array<number>>()
    /** How many times each request reached a handler. */
    const handled = new Map<number, number>()

    const kindFor = (id: WorkerId): WorkerKind.WorkerKind<Request, number, DomainError> => ({
      name: "recorded",
      spawn: Effect.clockWith((clock) =>
        Effect.sync(() => {
          const times = restartTimes.get(id)
          if (times === undefined) restartTimes.set(id, [])
          else times.push(clock.currentTimeMillisUnsafe())
          return {
            exited: Effect.never,
            run: (request: Request) =>
              Effect.suspend((): Effect.Effect<number, DomainError | WorkerCrash> => {
                handled.set(request.id, (handled.get(request.id) ?? 0) + 1)
                switch (request.kind) {
                  case "ok":
                    return Effect.succeed(request.id)
                  case "slow":
                    return Effect.as(Effect.sleep(200), request.id)
                  case "domain":
                    return Effect.fail(new DomainError({ reason: "bad" }))
                  case "crash":
                    return Effect.fail(WorkerCrash.report("crash"))
                  case "die":
                    return Effect.die("defect")
                  case "hang":
                    return Effect.never
                  case "wait":
                    return Effect.as(Deferred.await(request.gate), request.id)
                }
              })
          }
        })
      )
    })

    const pool = yield* WorkerPool.make({
      size: scenario.workers,
      timeout: TIMEOUT,
      queueCapacity: scenario.queueCapacity,
      queueStrategy: scenario.queueStrategy,
      drain: DRAIN,
      retry: { maxRetries: MAX_RETRIES },
      ejection: { consecutiveFailures: 2, baseDuration: "1 second", maxEjectedShare: 0.5 },
      worker: (id) =>
        Worker.fromKind(id, kindFor(id), {
          restart: Schedule.spaced("300 millis"),
          maxRestarts: MAX_RESTARTS,
          restartWindow: WINDOW,
          maxInFlight: scenario.maxInFlight
        })
    }).pipe(Scope.provide(scope))

    const requests: Array<{
      readonly request: Request
      readonly idempotent: boolean
      readonly fiber: Fiber.Fiber<number, WorkerPool.DispatchError<DomainError>>
    }> = []
    for (const command of scenario.commands) {
      switch (command._tag) {
        case "Dispatch": {
          const request: Request = { id: requests.length, kind: command.kind, gate: yield* Deferred.make<void>() }
          const fiber = yield* Effect.forkChild(pool.dispatch(request, { idempotent: command.idempotent }))
          requests.push({ request, idempotent: command.idempotent, fiber })
          yield* Effect.yieldNow
          break
        }
        case "Release":
          if (requests.length > 0)
            yield* Deferred.succeed(requests[command.index % requests.length]!.request.gate, undefined)
          break
        case "Interrupt":
          if (requests.length > 0) yield* Fiber.interrupt(requests[command.index % requests.length]!.fiber)
          break
        case "Advance":
          yield* TestClock.adjust(command.millis)
          break
      }
      assert.isAtMost(yield* pool.queued, scenario.queueCapacity, "the queue outgrew its capacity")
    }

    // Shut down with requests possibly still queued, running or hung.
    const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
    yield* TestClock.adjust(DRAIN + TIMEOUT)
    yield* Fiber.join(closing)

    for (const { request, idempotent, fiber } of requests) {
      const exit = fiber.pollUnsafe()
      assert.isDefined(exit, `request ${request.id} (${request.kind}) has no outcome after shutdown`)
      const times = handled.get(request.id) ?? 0
      assert.isAtMost(times, idempotent ? 1 + MAX_RETRIES : 1, `request ${request.id} was run ${times} times`)
      if (Exit.isSuccess(exit!)) {
        assert.strictEqual(exit.value, request.id, "a request got another request's answer")
        assert.include(["ok", "slow", "wait"], request.kind)
      } else {
        const error = Exit.findErrorOption(exit!)
        if (error._tag === "Some") {
          const e = error.value
          assert.isTrue(
            e instanceof DomainError ||
              e instanceof WorkerCrash ||
              e instanceof RequestTimeout ||
              e instanceof PoolBusy ||
              e instanceof PoolShutdown,
            `untyped outcome ${String(e)}`
          )
          if (e instanceof DomainError) assert.strictEqual(request.kind, "domain")
        } else {
          assert.isTrue(
            Exit.hasInterrupts(exit!),
            "an outcome that is neither a value, a typed error nor an interruption"
          )
        }
      }
    }

    for (const [id, times] of restartTimes) {
      for (const start of times) {
        const inWindow = times.filter((t) => t >= start && t < start + WINDOW).length
        assert.isAtMost(inWindow, MAX_RESTARTS, `worker ${id} restarted ${inWindow} times within ${WINDOW} ms`)
      }
    }
    for (const [, health] of yield* pool.health) {
      assert.strictEqual(health.state, "Stopped")
      assert.strictEqual(health.inFlight, 0)
    }
  })

describe("lifecycle properties", () => {
  it.effect.prop(
    "restarts stay within the budget, the queue within its capacity, and every request has exactly one outcome after shutdown",
    [Scenario],
    ([scenario]) => run(scenario),
    { timeout: 120_000, arbitrary: { runs: 300, size: 80 } }
  )
})
