import { assert, describe, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Exit, Fiber, Schedule, Scope } from "effect"
import { TestClock } from "effect/testing"
import { Defect, DomainError, Reported, Stopped, Worker, WorkerCrash, WorkerId } from "effect-worker-pool"
import * as T from "./support.ts"

const restartAfterOneSecond = { restart: Schedule.spaced("1 second") }
const makeWorker = (id = 0) => Worker.make(WorkerId.make(id), T.handler, restartAfterOneSecond)

describe("Worker counters", () => {
  it.effect("stay exact under success, domain error, crash, defect, thrown exception and interruption", () =>
    Effect.gen(function* () {
      const worker = yield* makeWorker()
      assert.strictEqual(yield* worker.dispatch(T.ok(3)), 3)
      assert.instanceOf(yield* Effect.flip(worker.dispatch(T.domain)), DomainError)

      const crash = yield* Effect.flip(worker.dispatch(T.crash))
      assert.instanceOf(crash, WorkerCrash)
      assert.deepStrictEqual(crash.reason, new Reported({ message: "engine failed" }))
      assert.strictEqual(crash.workerId, 0)
      yield* TestClock.adjust("1 second")

      const defect = yield* Effect.flip(worker.dispatch(T.die))
      assert.instanceOf(defect, WorkerCrash)
      assert.deepStrictEqual(defect.reason, new Defect({ message: "defect: Error: boom" }))
      yield* TestClock.adjust("1 second")

      const thrown = yield* Effect.flip(worker.dispatch(T.thrown))
      assert.strictEqual(T.reasonOf(thrown), "defect: TypeError: thrown in handler")
      yield* TestClock.adjust("1 second")

      const gate = yield* Deferred.make<number>()
      const waiting = yield* Effect.forkChild(worker.dispatch(T.wait(gate)))
      yield* Effect.yieldNow
      assert.strictEqual((yield* worker.health).inFlight, 1)
      yield* Fiber.interrupt(waiting)

      const health = yield* worker.health
      assert.deepStrictEqual(
        { ...health, lastCrash: undefined },
        {
          state: "Healthy",
          inFlight: 0,
          // Adaptive (the in-process default): a direct dispatch teaches it nothing, so it stays at 1.
          maxInFlight: 1,
          completed: 6,
          errored: 4,
          timeouts: 0,
          interrupted: 1,
          rejected: 0,
          crashes: 3,
          restarts: 3,
          // Three crashes in a row: nothing was answered between them.
          attempt: 3,
          failedStarts: 0,
          consecutiveFailures: 3,
          ejections: 0,
          lastCrash: undefined
        }
      )
      assert.strictEqual(health.lastCrash?.reason, "defect: TypeError: thrown in handler")
    })
  )

  it.effect("a domain error leaves the worker healthy and serving", () =>
    Effect.gen(function* () {
      const worker = yield* makeWorker()
      const error = yield* Effect.flip(worker.dispatch(T.domain))
      assert.deepStrictEqual(error, new DomainError({ reason: "bad request" }))
      assert.strictEqual((yield* worker.health).state, "Healthy")
      assert.strictEqual(yield* worker.dispatch(T.ok(1)), 1)
    })
  )

  it.effect("interrupting the caller interrupts the handler's work", () =>
    Effect.gen(function* () {
      const started = yield* Deferred.make<void>()
      const interrupted = yield* Deferred.make<void>()
      const worker = yield* Worker.make(WorkerId.make(0), (_: undefined) =>
        Deferred.succeed(started, undefined).pipe(
          Effect.andThen(Effect.never),
          Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined))
        )
      )
      const caller = yield* Effect.forkChild(worker.dispatch(undefined))
      yield* Deferred.await(started)
      const exit = yield* Fiber.interrupt(caller).pipe(Effect.andThen(Fiber.await(caller)))
      assert.isTrue(Exit.hasInterrupts(exit))
      yield* Deferred.await(interrupted)
      const health = yield* worker.health
      assert.strictEqual(health.inFlight, 0)
      assert.strictEqual(health.interrupted, 1)
      assert.strictEqual(health.state, "Healthy")
    })
  )
})

describe("Worker crashes", () => {
  it.effect("fail every request in flight on the crashed incarnation, with the crash reason", () =>
    Effect.gen(function* () {
      const worker = yield* makeWorker()
      const gate = yield* Deferred.make<number>()
      const waiting = yield* Effect.forEach([1, 2, 3], () => Effect.forkChild(worker.dispatch(T.wait(gate))))
      yield* Effect.yieldNow
      assert.strictEqual((yield* worker.health).inFlight, 3)

      yield* Effect.flip(worker.dispatch(T.crash))
      for (const fiber of waiting) {
        const exit = yield* Fiber.await(fiber)
        assert.deepStrictEqual(
          exit,
          Exit.fail(new WorkerCrash({ reason: new Reported({ message: "engine failed" }), workerId: WorkerId.make(0) }))
        )
      }
      const health = yield* worker.health
      assert.strictEqual(health.inFlight, 0)
      assert.strictEqual(health.crashes, 1)
      assert.strictEqual(health.errored, 4)
      assert.strictEqual(health.completed, 4)
    })
  )

  it.effect("take the worker out of service at once; it is back after the restart delay", () =>
    Effect.gen(function* () {
      const worker = yield* makeWorker()
      yield* Effect.flip(worker.dispatch(T.crash))
      const health = yield* worker.health
      assert.strictEqual(health.state, "Restarting")
      assert.deepStrictEqual(health.lastCrash, { reason: "engine failed", at: 0 })

      const refused = yield* Effect.flip(worker.dispatch(T.ok(1)))
      assert.strictEqual(T.reasonOf(refused), "worker 0 is not available (Restarting)")
      assert.strictEqual((yield* worker.health).completed, 1, "a refused request never reached the worker")

      yield* TestClock.adjust("999 millis")
      assert.strictEqual((yield* worker.health).state, "Restarting")
      yield* TestClock.adjust("1 milli")
      assert.strictEqual((yield* worker.health).state, "Healthy")
      assert.strictEqual((yield* worker.health).restarts, 1)
      assert.strictEqual(yield* worker.dispatch(T.ok(2)), 2)
    })
  )

  it.effect("a failing initialiser is a crash, retried on the schedule", () =>
    Effect.gen(function* () {
      let attempts = 0
      const worker = yield* Worker.makeScoped(
        WorkerId.make(4),
        Effect.suspend(() =>
          ++attempts < 3 ? Effect.fail(`not ready (${attempts})`) : Effect.succeed((n: number) => Effect.succeed(n + 1))
        ),
        restartAfterOneSecond
      )
      let health = yield* worker.health
      assert.strictEqual(health.state, "Restarting")
      assert.strictEqual(health.lastCrash?.reason, "start failed: not ready (1)")
      yield* TestClock.adjust("1 second")
      health = yield* worker.health
      assert.strictEqual(health.crashes, 2)
      yield* TestClock.adjust("1 second")
      health = yield* worker.health
      assert.deepStrictEqual([health.state, health.crashes, health.restarts], ["Healthy", 2, 2])
      assert.strictEqual(yield* worker.dispatch(1), 2)
    })
  )

  it.effect("an initialiser that dies is a crash too", () =>
    Effect.gen(function* () {
      const worker = yield* Worker.makeScoped(WorkerId.make(0), Effect.die(new Error("no GPU")), restartAfterOneSecond)
      assert.strictEqual((yield* worker.health).lastCrash?.reason, "start died: Error: no GPU")
    })
  )

  it.effect("the worker is retired when its restart schedule ends", () =>
    Effect.gen(function* () {
      const worker = yield* Worker.make(WorkerId.make(0), T.handler, {
        restart: Schedule.spaced("1 second").pipe(Schedule.upTo({ times: 2 }))
      })
      for (let i = 0; i < 2; i++) {
        yield* Effect.flip(worker.dispatch(T.crash))
        yield* TestClock.adjust("1 second")
        assert.strictEqual((yield* worker.health).state, "Healthy")
      }
      yield* Effect.flip(worker.dispatch(T.crash))
      yield* TestClock.adjust("1 hour")
      const health = yield* worker.health
      assert.deepStrictEqual([health.state, health.crashes, health.restarts], ["Retired", 3, 2])
      const refused = yield* Effect.flip(worker.dispatch(T.ok(1)))
      assert.strictEqual(T.reasonOf(refused), "worker 0 is not available (Retired)")
    })
  )

  it.effect("the restart schedule sees each crash as its input", () =>
    Effect.gen(function* () {
      const seen: Array<string> = []
      const worker = yield* Worker.make(WorkerId.make(0), T.handler, {
        restart: Schedule.spaced("1 second").pipe(
          Schedule.setInputType<WorkerCrash>(),
          Schedule.tap(({ input }) => Effect.sync(() => seen.push(input.reason.message)))
        )
      })
      yield* Effect.flip(worker.dispatch(T.crash))
      yield* TestClock.adjust("1 second")
      yield* Effect.flip(worker.dispatch(T.die))
      assert.deepStrictEqual(seen, ["engine failed", "defect: Error: boom"])
    })
  )
})

describe("Worker.defaultRestartSchedule", () => {
  it.effect("is exponential from 100 ms, doubling, capped at 10 s, jittered by ±20 %", () =>
    Effect.gen(function* () {
      const step = yield* Schedule.toStep(Worker.defaultRestartSchedule)
      const delays: Array<number> = []
      for (let i = 0; i < 12; i++) {
        const [, delay] = yield* step(0, undefined)
        delays.push(Duration.toMillis(delay))
      }
      const nominal = [100, 200, 400, 800, 1600, 3200, 6400, 10000, 10000, 10000, 10000, 10000]
      delays.forEach((delay, i) => {
        assert.isAtLeast(delay, nominal[i]! * 0.8)
        assert.isAtMost(delay, nominal[i]! * 1.2)
      })
    })
  )

  it.effect("restarts a crashed worker by default within 120 ms", () =>
    Effect.gen(function* () {
      const worker = yield* Worker.make(WorkerId.make(0), T.handler)
      yield* Effect.flip(worker.dispatch(T.crash))
      yield* TestClock.adjust("79 millis")
      assert.strictEqual((yield* worker.health).state, "Restarting")
      yield* TestClock.adjust("41 millis")
      assert.strictEqual((yield* worker.health).state, "Healthy")
    })
  )
})

describe("Worker scope", () => {
  it.effect("closing it stops the worker, fails its in-flight requests and leaves no fiber running", () =>
    Effect.gen(function* () {
      const fibers = yield* T.countFibers
      const gate = yield* Deferred.make<number>()
      const scope = yield* Scope.make()
      const { worker, waiting } = yield* fibers.track(
        Effect.gen(function* () {
          const worker = yield* makeWorker(3).pipe(Scope.provide(scope))
          const waiting = yield* Effect.forkChild(worker.dispatch(T.wait(gate)))
          yield* Effect.yieldNow
          return { worker, waiting }
        })
      )
      assert.isAbove(fibers.active(), 0)
      yield* Scope.close(scope, Exit.void)
      const exit = yield* Fiber.await(waiting)
      assert.deepStrictEqual(
        exit,
        Exit.fail(
          new WorkerCrash({
            reason: new Stopped({ message: "worker 3 stopped: its scope was closed" }),
            workerId: WorkerId.make(3)
          })
        )
      )
      assert.strictEqual(fibers.active(), 0)
      const health = yield* worker.health
      assert.deepStrictEqual([health.state, health.inFlight, health.errored], ["Stopped", 0, 1])
      assert.strictEqual(
        T.reasonOf(yield* Effect.flip(worker.dispatch(T.ok(1)))),
        "worker 3 is not available (Stopped)"
      )
    })
  )
})

describe("Worker teardown", () => {
  it.effect(
    "a caller interrupted while the worker it crashed is torn down sees its interruption; the worker counts the request as errored",
    () =>
      Effect.gen(function* () {
        const releasing = yield* Deferred.make<void>()
        const mayRelease = yield* Deferred.make<void>()
        const worker = yield* Worker.makeScoped(
          WorkerId.make(0),
          Effect.as(
            Effect.addFinalizer(() =>
              Deferred.succeed(releasing, undefined).pipe(Effect.andThen(Deferred.await(mayRelease)))
            ),
            T.handler
          ),
          restartAfterOneSecond
        )
        const caller = yield* Effect.forkChild(worker.dispatch(T.crash))
        yield* Deferred.await(releasing)
        // The crash is reported once the incarnation is gone; the caller gives up first.
        yield* Fiber.interrupt(caller)
        assert.isTrue(Exit.hasInterrupts(yield* Fiber.await(caller)))
        yield* Deferred.succeed(mayRelease, undefined)
        const h = yield* worker.health
        assert.deepStrictEqual([h.completed, h.errored, h.interrupted, h.crashes, h.inFlight], [1, 1, 0, 1, 0])
      })
  )
})
