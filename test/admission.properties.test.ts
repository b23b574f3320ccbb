/**
 * Property tests of the admission rule, over random command sequences where
 * workers crash, fail to start (and recover), are retired by a budget, join
 * and leave: a request is refused for lack of workers only when no worker can
 * serve it or come back; otherwise it waits and is served, or fails with a
 * typed outcome of its own. Every request, waiting or not, has exactly one
 * outcome once the pool has shut down.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Schedule, Schema, Scope } from "effect"
import { TestClock } from "effect/testing"
import {
  DomainError,
  PoolShutdown,
  QueueTimeout,
  Worker,
  WorkerCrash,
  type WorkerHealth,
  WorkerId,
  WorkerPool
} from "effect-worker-pool"
import * as T from "./support.ts"

const Index = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 7 }))
const Command = Schema.Union([
  Schema.TaggedStruct("Add", { budget: Schema.Boolean }),
  Schema.TaggedStruct("Remove", { index: Index }),
  Schema.TaggedStruct("Dispatch", { behaviour: Schema.Literals(["ok", "crash", "wait"]) }),
  Schema.TaggedStruct("Release", { index: Index }),
  Schema.TaggedStruct("Interrupt", { index: Index }),
  Schema.TaggedStruct("BreakStarts", { index: Index }),
  Schema.TaggedStruct("FixStarts", { index: Index }),
  Schema.TaggedStruct("Advance", { millis: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 400 })) })
])
const Commands = Schema.Array(Command).check(Schema.isMaxLength(60))
type Command = typeof Command.Type

/** Whether a worker with this health can serve now or is coming back. */
const canComeBack = (h: WorkerHealth) =>
  h.state === "Healthy" ||
  h.state === "Ejected" ||
  ((h.state === "Starting" || h.state === "Restarting") && h.failedStarts === 0)

const isRefusal = (error: unknown): error is WorkerCrash => error instanceof WorkerCrash && error.workerId === undefined

const run = (commands: ReadonlyArray<Command>) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const pool = yield* WorkerPool.make<T.Behaviour, number>({ ejection: false, drain: "1 second" }).pipe(
      Scope.provide(scope)
    )
    const broken: Array<boolean> = []
    const members: Array<WorkerId> = []
    const gates: Array<Deferred.Deferred<number>> = []
    const dispatched: Array<Fiber.Fiber<number, WorkerPool.DispatchError<DomainError>>> = []
    /** Refusals, each with the health of the pool's workers when it was made. */
    const refusals: Array<ReadonlyArray<readonly [WorkerId, WorkerHealth]>> = []
    let nextId = 0

    const add = (budget: boolean) =>
      Effect.gen(function* () {
        const id = nextId++
        broken[id] = false
        const worker = yield* Worker.makeScoped(
          WorkerId.make(id),
          Effect.suspend(() => (broken[id] ? Effect.fail("cannot start") : Effect.succeed(T.handler))),
          {
            restart: Schedule.spaced("100 millis"),
            ...(budget ? { maxRestarts: 2, restartWindow: "1 second" } : {})
          }
        ).pipe(Scope.provide(scope))
        members.push(worker.id)
        yield* pool.add(worker)
      })

    yield* add(false)
    yield* add(true)

    for (const command of commands) {
      switch (command._tag) {
        case "Add":
          if (members.length < 6) yield* add(command.budget)
          break
        case "Remove":
          if (members.length > 0) yield* pool.remove(members.splice(command.index % members.length, 1)[0]!)
          break
        case "Dispatch": {
          const gate = yield* Deferred.make<number>()
          const request = command.behaviour === "ok" ? T.ok(1) : command.behaviour === "crash" ? T.crash : T.wait(gate)
          if (command.behaviour === "wait") gates.push(gate)
          const dispatch = pool
            .dispatch(request)
            .pipe(
              Effect.tapError((error) =>
                isRefusal(error) ? Effect.map(pool.health, (health) => refusals.push(health)) : Effect.void
              )
            )
          dispatched.push(yield* Effect.forkChild(dispatch))
          yield* Effect.yieldNow
          break
        }
        case "Release":
          if (gates.length > 0) yield* Deferred.succeed(gates.splice(command.index % gates.length, 1)[0]!, 0)
          break
        case "Interrupt":
          if (dispatched.length > 0) yield* Fiber.interrupt(dispatched[command.index % dispatched.length]!)
          break
        case "BreakStarts":
          if (nextId > 0) broken[command.index % nextId] = true
          break
        case "FixStarts":
          if (nextId > 0) broken[command.index % nextId] = false
          break
        case "Advance":
          yield* TestClock.adjust(command.millis)
          break
      }
    }

    // Shut down with requests still waiting and running: each gets its outcome.
    const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
    yield* TestClock.adjust("2 seconds")
    yield* Fiber.join(closing)
    for (const gate of gates) yield* Deferred.succeed(gate, 0)

    for (const health of refusals) {
      assert.isTrue(
        health.every(([, h]) => !canComeBack(h)),
        `refused while a worker could come back: ${JSON.stringify(health.map(([id, h]) => [id, h.state, h.failedStarts]))}`
      )
    }
    for (const fiber of dispatched) {
      const exit = yield* Fiber.await(fiber)
      if (Exit.isSuccess(exit)) continue
      const error = T.errorOf(exit)
      if (error === undefined) {
        assert.isTrue(Exit.hasInterrupts(exit), "an outcome is a value, a typed error or an interruption")
        continue
      }
      assert.isTrue(
        error instanceof WorkerCrash ||
          error instanceof PoolShutdown ||
          error instanceof QueueTimeout ||
          error instanceof DomainError,
        `unexpected outcome ${error._tag}`
      )
    }
  })

describe("admission properties", () => {
  it.effect.prop(
    "no refusal while a worker can come back; every request, waiting or running, has one outcome at shutdown",
    [Commands],
    ([commands]) => run(commands),
    { timeout: 60_000, arbitrary: { runs: 300, size: 60 } }
  )
})
