/**
 * Shutdown: the pool stops admitting, drains within its deadline, cuts what
 * is left with a typed outcome, and leaves no fiber running. Also the stream
 * of health changes.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Schedule, Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import { DispatchPolicy, PoolShutdown, Worker, WorkerId, WorkerPool } from "effect-worker-pool"
import * as T from "./support.ts"

describe("shutdown", () => {
  it.effect("lets admitted requests finish within the drain deadline and refuses new ones", () =>
    Effect.gen(function* () {
      const fibers = yield* T.countFibers
      const scope = yield* Scope.make()
      const gate = yield* Deferred.make<number>()
      const { pool, admitted } = yield* fibers.track(
        Effect.gen(function* () {
          const pool = yield* WorkerPool.make({
            size: 2,
            drain: "5 seconds",
            worker: (id) => Worker.make(id, T.handler)
          }).pipe(Scope.provide(scope))
          const admitted = yield* Effect.forEach([1, 2, 3], () => Effect.forkChild(pool.dispatch(T.wait(gate))))
          yield* Effect.yieldNow
          return { pool, admitted }
        })
      )
      assert.strictEqual(yield* pool.queued, 1)
      const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
      yield* Effect.yieldNow
      assert.deepStrictEqual(
        yield* Effect.flip(pool.dispatch(T.ok(1))),
        new PoolShutdown({ reason: "the pool is shutting down: it admits no new request" })
      )
      yield* TestClock.adjust("4 seconds")
      assert.isUndefined(closing.pollUnsafe(), "still draining")
      yield* Deferred.succeed(gate, 8)
      yield* Fiber.join(closing)
      assert.deepStrictEqual(yield* Effect.forEach(admitted, Fiber.join), [8, 8, 8])
      assert.strictEqual(fibers.active(), 0)
      assert.deepStrictEqual(
        (yield* pool.health).map(([, h]) => h.state),
        ["Stopped", "Stopped"]
      )
    })
  )

  it.effect("after the deadline, queued and running requests fail with PoolShutdown and no fiber is left", () =>
    Effect.gen(function* () {
      const fibers = yield* T.countFibers
      const released: Array<number> = []
      const scope = yield* Scope.make()
      const gate = yield* Deferred.make<number>()
      const { pool, admitted } = yield* fibers.track(
        Effect.gen(function* () {
          const pool = yield* WorkerPool.make({
            policy: DispatchPolicy.RoundRobin,
            size: 2,
            drain: "5 seconds",
            worker: (id) =>
              Worker.makeScoped(
                id,
                Effect.as(
                  Effect.addFinalizer(() => Effect.sync(() => released.push(id))),
                  T.handler
                ),
                { restart: Schedule.spaced("1 second") }
              )
          }).pipe(Scope.provide(scope))
          // Worker 1 is added by hand: the pool owns it too.
          yield* pool.add(yield* Worker.make(WorkerId.make(9), T.handler))
          const admitted = yield* Effect.forEach([1, 2, 3, 4], () => Effect.forkChild(pool.dispatch(T.wait(gate))))
          yield* Effect.yieldNow
          return { pool, admitted }
        })
      )
      assert.strictEqual(yield* pool.queued, 1)
      const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
      yield* TestClock.adjust("5 seconds")
      yield* Fiber.join(closing)
      const outcomes = yield* Effect.forEach(admitted, (fiber) => Effect.map(Fiber.await(fiber), T.errorOf))
      assert.deepStrictEqual(outcomes, [
        new PoolShutdown({ reason: "the pool shut down before the request finished" }),
        new PoolShutdown({ reason: "the pool shut down before the request finished" }),
        new PoolShutdown({ reason: "the pool shut down before the request finished" }),
        new PoolShutdown({ reason: "the pool shut down before the request started" })
      ])
      assert.strictEqual(fibers.active(), 0)
      assert.deepStrictEqual(
        released.toSorted((a, b) => a - b),
        [0, 1]
      )
      const health = yield* pool.health
      assert.deepStrictEqual(
        health.map(([id, h]) => [id, h.state, h.inFlight, h.interrupted]),
        [
          [0, "Stopped", 0, 0],
          [1, "Stopped", 0, 0],
          [9, "Stopped", 0, 0]
        ]
      )
      assert.strictEqual(
        health.reduce((n, [, h]) => n + h.errored, 0),
        3
      )
    })
  )

  it.effect("an idle pool closes at once", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      yield* WorkerPool.make({ size: 3, worker: (id) => Worker.make(id, T.handler) }).pipe(Scope.provide(scope))
      yield* Scope.close(scope, Exit.void)
    })
  )
})

describe("health changes", () => {
  it.effect("a stream follows every change of state: crash, restart attempt, start, stop", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const pool = yield* WorkerPool.make({
        size: 1,
        worker: (id) => Worker.make(id, T.handler, { restart: Schedule.spaced("1 second") })
      }).pipe(Scope.provide(scope))
      const collected = yield* Effect.forkChild(Stream.runCollect(pool.changes))
      yield* Effect.yieldNow
      yield* Effect.flip(pool.dispatch(T.crash))
      yield* TestClock.adjust("1 second")
      yield* Scope.close(scope, Exit.void)
      const events = yield* Fiber.join(collected)
      assert.deepStrictEqual(
        events.map(([id, h]) => `${id}:${h.state}:${h.attempt}`),
        ["0:Restarting:0", "0:Restarting:1", "0:Starting:1", "0:Healthy:1", "0:Stopped:1"]
      )
      assert.strictEqual(events[0]![1].lastCrash?.reason, "engine failed")
    })
  )
})
