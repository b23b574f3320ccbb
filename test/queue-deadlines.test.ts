/**
 * The queue's deadlines: a request that waits for a worker longer than its
 * `queueTimeout` fails with `QueueTimeout`, at its deadline, while the
 * workers stay busy (nothing else has to happen in the pool for it to fire).
 * In virtual time: each deadline is reached with `TestClock.adjust`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Schedule, Scope } from "effect"
import { TestClock } from "effect/testing"
import { PoolBusy, QueueTimeout, Worker, WorkerPool } from "effect-worker-pool"
import * as T from "./support.ts"

/**
 * A pool of one worker whose first request holds it until `gate` opens. One
 * slot, pinned: the queue's deadlines are seen through requests that wait for
 * it, and an adaptive limit (the in-process default) grows as answers return.
 */
const busyPool = (options: Partial<WorkerPool.Options<T.Behaviour, number, any, any, never>> = {}) =>
  Effect.gen(function* () {
    const pool = yield* WorkerPool.make({
      size: 1,
      worker: (id) => Worker.make(id, T.handler, { restart: Schedule.spaced("1 second"), maxInFlight: 1 }),
      ...options
    })
    const gate = yield* Deferred.make<number>()
    const running = yield* Effect.forkChild(pool.dispatch(T.wait(gate)))
    yield* Effect.yieldNow
    return { pool, gate, running }
  })

/** Forks a dispatch and lets it reach the queue. */
const queue = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const fiber = yield* Effect.forkChild(effect)
    yield* Effect.yieldNow
    return fiber
  })

const timedOut = (queueTimeoutMillis: number, waitedMillis: number) =>
  Exit.fail(new QueueTimeout({ queueTimeoutMillis, waitedMillis }))

describe("the queue's deadlines", () => {
  it.effect("a request that waits past its queue timeout fails with QueueTimeout, at its deadline, not before", () =>
    Effect.gen(function* () {
      const { gate, pool, running } = yield* busyPool({ queueTimeout: "1 second" })
      const waiting = yield* queue(pool.dispatch(T.ok(1)))
      assert.strictEqual(yield* pool.queued, 1)

      yield* TestClock.adjust("999 millis")
      assert.isUndefined(waiting.pollUnsafe())
      assert.strictEqual(yield* pool.queued, 1)

      yield* TestClock.adjust("1 millis")
      assert.deepStrictEqual(yield* Fiber.await(waiting), timedOut(1000, 1000))
      assert.strictEqual(yield* pool.queued, 0)

      // The running request is not touched, and the worker serves on.
      yield* Deferred.succeed(gate, 3)
      assert.strictEqual(yield* Fiber.join(running), 3)
      assert.strictEqual(yield* pool.dispatch(T.ok(4)), 4)
      const [[, health]] = yield* pool.health
      assert.deepStrictEqual([health.completed, health.inFlight, health.state], [2, 0, "Healthy"])
    })
  )

  it.effect("a dispatch's queueTimeout overrides the pool's, and an earlier deadline queued later fires first", () =>
    Effect.gen(function* () {
      const { gate, pool, running } = yield* busyPool({ queueTimeout: "10 seconds" })
      const patient = yield* queue(pool.dispatch(T.ok(1)))
      const hasty = yield* queue(pool.dispatch(T.ok(2), { queueTimeout: "1 second" }))

      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(yield* Fiber.await(hasty), timedOut(1000, 1000))
      assert.isUndefined(patient.pollUnsafe())

      yield* TestClock.adjust("8999 millis")
      assert.isUndefined(patient.pollUnsafe())
      yield* TestClock.adjust("1 millis")
      assert.deepStrictEqual(yield* Fiber.await(patient), timedOut(10_000, 10_000))
      yield* Deferred.succeed(gate, 0)
      yield* Fiber.join(running)
    })
  )

  it.effect("deadlines one after another: each fires at its own time, the timer set again after each", () =>
    Effect.gen(function* () {
      const { gate, pool, running } = yield* busyPool({ queueTimeout: "1 second" })
      const first = yield* queue(pool.dispatch(T.ok(1)))
      yield* TestClock.adjust("400 millis")
      const second = yield* queue(pool.dispatch(T.ok(2)))
      yield* TestClock.adjust("400 millis")
      const third = yield* queue(pool.dispatch(T.ok(3)))

      yield* TestClock.adjust("200 millis")
      assert.deepStrictEqual(yield* Fiber.await(first), timedOut(1000, 1000))
      assert.isUndefined(second.pollUnsafe())
      assert.isUndefined(third.pollUnsafe())

      yield* TestClock.adjust("400 millis")
      assert.deepStrictEqual(yield* Fiber.await(second), timedOut(1000, 1000))
      assert.isUndefined(third.pollUnsafe())

      yield* TestClock.adjust("400 millis")
      assert.deepStrictEqual(yield* Fiber.await(third), timedOut(1000, 1000))
      assert.strictEqual(yield* pool.queued, 0)
      yield* Deferred.succeed(gate, 0)
      yield* Fiber.join(running)
    })
  )

  it.effect("a request served before its deadline runs to its end; the deadline passing later changes nothing", () =>
    Effect.gen(function* () {
      const { gate, pool, running } = yield* busyPool({ queueTimeout: "1 second" })
      const second = yield* Deferred.make<number>()
      const served = yield* queue(pool.dispatch(T.wait(second)))
      const behind = yield* queue(pool.dispatch(T.ok(5), { queueTimeout: "3 seconds" }))

      yield* TestClock.adjust("500 millis")
      yield* Deferred.succeed(gate, 1)
      assert.strictEqual(yield* Fiber.join(running), 1)
      // `served` holds the worker now; its deadline passes while it runs.
      yield* TestClock.adjust("2 seconds")
      assert.isUndefined(served.pollUnsafe())
      assert.isUndefined(behind.pollUnsafe())
      yield* Deferred.succeed(second, 2)
      assert.strictEqual(yield* Fiber.join(served), 2)
      assert.strictEqual(yield* Fiber.join(behind), 5)
    })
  )

  it.effect("a request that leaves the queue takes its deadline with it; the next deadline still fires", () =>
    Effect.gen(function* () {
      const { gate, pool, running } = yield* busyPool({ queueTimeout: "1 second" })
      const leaving = yield* queue(pool.dispatch(T.ok(1)))
      yield* TestClock.adjust("500 millis")
      const staying = yield* queue(pool.dispatch(T.ok(2)))
      yield* Fiber.interrupt(leaving)
      assert.strictEqual(yield* pool.queued, 1)

      yield* TestClock.adjust("500 millis")
      assert.isUndefined(staying.pollUnsafe())
      yield* TestClock.adjust("500 millis")
      assert.deepStrictEqual(yield* Fiber.await(staying), timedOut(1000, 1000))
      yield* Deferred.succeed(gate, 0)
      yield* Fiber.join(running)
    })
  )

  it.effect("queueTimeout Infinity: a request waits for as long as it takes", () =>
    Effect.gen(function* () {
      const { gate, pool, running } = yield* busyPool({ queueTimeout: Infinity })
      const waiting = yield* queue(pool.dispatch(T.ok(7)))
      yield* TestClock.adjust("1 hour")
      assert.isUndefined(waiting.pollUnsafe())
      yield* Deferred.succeed(gate, 0)
      yield* Fiber.join(running)
      assert.strictEqual(yield* Fiber.join(waiting), 7)
    })
  )

  it.effect("a request that timed out in the queue is counted once, as a queue timeout, in the pool's metrics", () =>
    Effect.gen(function* () {
      const { gate, pool, running } = yield* busyPool({ queueTimeout: "1 second" })
      const waiting = yield* queue(pool.dispatch(T.ok(1)))
      yield* TestClock.adjust("1 second")
      yield* Fiber.await(waiting)
      yield* Deferred.succeed(gate, 0)
      yield* Fiber.join(running)
      const [[, health]] = yield* pool.health
      // It never reached the worker.
      assert.deepStrictEqual([health.completed, health.errored, health.interrupted], [1, 0, 0])
    })
  )

  it.effect("past the drain, a queued request fails with PoolShutdown, not QueueTimeout; close returns", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const pool = yield* WorkerPool.make({
        size: 1,
        drain: "1 second",
        queueTimeout: "5 seconds",
        // One slot, pinned, so that the second request waits in the queue.
        worker: (id) => Worker.make(id, T.handler, { maxInFlight: 1 })
      }).pipe(Scope.provide(scope))
      const gate = yield* Deferred.make<number>()
      const running = yield* queue(pool.dispatch(T.wait(gate)))
      const waiting = yield* queue(pool.dispatch(T.ok(1)))
      const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
      yield* Effect.yieldNow
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(closing)
      const exit = yield* Fiber.await(waiting)
      assert.strictEqual(T.errorOf(exit)?._tag, "PoolShutdown")
      assert.isTrue(Exit.isFailure(yield* Fiber.await(running)))
      // The stopped timer fires nothing later.
      yield* TestClock.adjust("10 seconds")
    })
  )
})

describe("a full queue", () => {
  it.effect("'dropOldest' with no room at all (capacity 0) refuses the newcomer: there is nothing older to drop", () =>
    Effect.gen(function* () {
      const { gate, pool, running } = yield* busyPool({ queueCapacity: 0, queueStrategy: "dropOldest" })
      const refused = yield* Effect.flip(pool.dispatch(T.ok(1)))
      assert.deepStrictEqual(refused, new PoolBusy({ reason: "the admission queue is full (0 waiting)" }))
      yield* Deferred.succeed(gate, 2)
      assert.strictEqual(yield* Fiber.join(running), 2)
    })
  )
})
