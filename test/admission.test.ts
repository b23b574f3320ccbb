/**
 * The admission queue, per-worker concurrency, cancellation and retries.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Schedule } from "effect"
import { TestClock } from "effect/testing"
import { DispatchPolicy, PoolBusy, Reported, Worker, WorkerCrash, WorkerId, WorkerPool } from "effect-worker-pool"
import * as T from "./support.ts"

const makePool = (size: number, options: Partial<WorkerPool.Options<T.Behaviour, number, any, any, never>> = {}) =>
  WorkerPool.make({
    policy: DispatchPolicy.RoundRobin,
    size,
    // One slot per worker, pinned: these tests count slots and queue places, and an adaptive
    // limit (the in-process default) grows as answers return (see test/adaptive.test.ts).
    worker: (id) => Worker.make(id, T.handler, { restart: Schedule.spaced("1 second"), maxInFlight: 1 }),
    ...options
  })

/** Forks `n` dispatches of requests that wait on `gate`, and lets them reach the pool. */
const forkWaiting = (pool: WorkerPool.WorkerPool<T.Behaviour, number>, gate: Deferred.Deferred<number>, n: number) =>
  Effect.gen(function* () {
    const fibers = []
    for (let i = 0; i < n; i++) {
      fibers.push(yield* Effect.forkChild(pool.dispatch(T.wait(gate))))
      yield* Effect.yieldNow
    }
    return fibers
  })

const inFlight = (pool: WorkerPool.WorkerPool<T.Behaviour, number>) =>
  Effect.map(pool.health, (all) => all.map(([, h]) => h.inFlight))

describe("per-worker concurrency", () => {
  it.effect("one request per worker (maxInFlight: 1); the others wait in the queue, first come first served", () =>
    Effect.gen(function* () {
      const pool = yield* makePool(2)
      const gate1 = yield* Deferred.make<number>()
      const gate2 = yield* Deferred.make<number>()
      const running = yield* forkWaiting(pool, gate1, 2)
      const queued = yield* forkWaiting(pool, gate2, 3)
      assert.deepStrictEqual(yield* inFlight(pool), [1, 1])
      assert.strictEqual(yield* pool.queued, 3)

      yield* Deferred.succeed(gate1, 1)
      yield* Fiber.joinAll(running)
      // Two slots freed: the two oldest queued requests took them.
      assert.deepStrictEqual(yield* inFlight(pool), [1, 1])
      assert.strictEqual(yield* pool.queued, 1)
      yield* Deferred.succeed(gate2, 2)
      assert.deepStrictEqual(yield* Effect.forEach(queued, Fiber.join), [2, 2, 2])
      assert.strictEqual(yield* pool.queued, 0)
    })
  )

  it.effect("a worker's maxInFlight lets it hold that many requests", () =>
    Effect.gen(function* () {
      const pool = yield* WorkerPool.make({
        policy: DispatchPolicy.LeastLoaded,
        size: 2,
        worker: (id) => Worker.make(id, T.handler, { maxInFlight: 3 })
      })
      const gate = yield* Deferred.make<number>()
      const fibers = yield* forkWaiting(pool, gate, 7)
      assert.deepStrictEqual(yield* inFlight(pool), [3, 3])
      assert.strictEqual(yield* pool.queued, 1)
      yield* Deferred.succeed(gate, 0)
      yield* Fiber.joinAll(fibers)
    })
  )
})

describe("the admission queue", () => {
  it.effect("'fail' refuses a request at once when the queue is full", () =>
    Effect.gen(function* () {
      const pool = yield* makePool(1, { queueCapacity: 2, queueStrategy: "fail" })
      const gate = yield* Deferred.make<number>()
      const admitted = yield* forkWaiting(pool, gate, 3)
      const refused = yield* Effect.flip(pool.dispatch(T.ok(1)))
      assert.deepStrictEqual(refused, new PoolBusy({ reason: "the admission queue is full (2 waiting)" }))
      assert.strictEqual(yield* pool.queued, 2)
      yield* Deferred.succeed(gate, 5)
      assert.deepStrictEqual(yield* Effect.forEach(admitted, Fiber.join), [5, 5, 5])
    })
  )

  it.effect("'dropOldest' fails the oldest waiting request to make room", () =>
    Effect.gen(function* () {
      const pool = yield* makePool(1, { queueCapacity: 2, queueStrategy: "dropOldest" })
      const gate = yield* Deferred.make<number>()
      const [running, oldest, second] = yield* forkWaiting(pool, gate, 3)
      const newest = yield* Effect.forkChild(pool.dispatch(T.ok(9)))
      yield* Effect.yieldNow
      assert.deepStrictEqual(
        yield* Fiber.await(oldest!),
        Exit.fail(new PoolBusy({ reason: "dropped: the admission queue was full and a newer request arrived" }))
      )
      assert.strictEqual(yield* pool.queued, 2)
      yield* Deferred.succeed(gate, 1)
      assert.deepStrictEqual(
        [yield* Fiber.join(running!), yield* Fiber.join(second!), yield* Fiber.join(newest)],
        [1, 1, 9]
      )
    })
  )

  it.effect(
    "'suspend' (the default) holds the caller until there is room, and the queue never exceeds its capacity",
    () =>
      Effect.gen(function* () {
        const pool = yield* makePool(1, { queueCapacity: 2 })
        const gate = yield* Deferred.make<number>()
        const fibers = yield* forkWaiting(pool, gate, 6)
        assert.strictEqual(yield* pool.queued, 2)
        for (const fiber of fibers) assert.isUndefined(fiber.pollUnsafe())
        yield* Deferred.succeed(gate, 3)
        assert.deepStrictEqual(yield* Effect.forEach(fibers, Fiber.join), [3, 3, 3, 3, 3, 3])
      })
  )

  it.effect("a request that arrives while others wait queues behind them, even when a worker is free", () =>
    Effect.gen(function* () {
      // A policy that lets a request of value 1 wait the first time it is asked about it.
      let asked = 0
      const patient = DispatchPolicy.make<undefined, T.Behaviour>({
        name: "Patient",
        initial: () => undefined,
        select: ({ request, state, view }) => {
          if (request?._tag === "Ok" && request.value === 1 && asked++ < 1) return { worker: undefined, state }
          return { worker: view.at(0).id, state }
        }
      })
      const pool = yield* makePool(2, { policy: patient })
      const first = yield* Effect.forkChild(pool.dispatch(T.ok(1)))
      yield* Effect.yieldNow
      const second = yield* Effect.forkChild(pool.dispatch(T.ok(2)))
      yield* Effect.yieldNow
      // Both wait, in order, though both workers are free: the second did not pass the first.
      assert.strictEqual(yield* pool.queued, 2)
      assert.deepStrictEqual(yield* inFlight(pool), [0, 0])
      // A worker's change of state makes the pool ask again: the first, then the second, are served.
      yield* pool.add(yield* Worker.make(WorkerId.make(9), T.handler))
      assert.deepStrictEqual([yield* Fiber.join(first), yield* Fiber.join(second)], [1, 2])
    })
  )

  it.effect("'suspend' with capacity 0: callers wait for a slot itself, and are served in order as slots free", () =>
    Effect.gen(function* () {
      const pool = yield* makePool(1, { queueCapacity: 0 })
      const gate = yield* Deferred.make<number>()
      const [running] = yield* forkWaiting(pool, gate, 1)
      const second = yield* Deferred.make<number>()
      const waiting = yield* forkWaiting(pool, second, 1)
      const last = yield* Effect.forkChild(pool.dispatch(T.ok(3)))
      yield* Effect.yieldNow
      // No queue: nothing is counted as queued, and the callers are suspended.
      assert.strictEqual(yield* pool.queued, 0)
      yield* Deferred.succeed(gate, 1)
      assert.strictEqual(yield* Fiber.join(running!), 1)
      yield* Deferred.succeed(second, 2)
      assert.deepStrictEqual([yield* Fiber.join(waiting[0]!), yield* Fiber.join(last)], [2, 3])
    })
  )

  it.effect("a request interrupted while queued leaves the queue and never reaches a worker", () =>
    Effect.gen(function* () {
      const pool = yield* makePool(1)
      const gate = yield* Deferred.make<number>()
      const [running, queued] = yield* forkWaiting(pool, gate, 2)
      assert.strictEqual(yield* pool.queued, 1)
      yield* Fiber.interrupt(queued!)
      assert.strictEqual(yield* pool.queued, 0)
      yield* Deferred.succeed(gate, 1)
      yield* Fiber.join(running!)
      const [[, h]] = yield* pool.health
      assert.deepStrictEqual([h.completed, h.interrupted, h.inFlight], [1, 0, 0])
    })
  )

  it.effect("queued requests are not lost when a worker crashes: the others take them", () =>
    Effect.gen(function* () {
      const pool = yield* makePool(2)
      const gate = yield* Deferred.make<number>()
      const crashGate = yield* Deferred.make<number>()
      // Worker 0 holds a request that will crash it, worker 1 a waiting one.
      const crashing = yield* Effect.forkChild(pool.dispatch(T.wait(crashGate)))
      yield* Effect.yieldNow
      const [onWorker1, ...queued] = yield* forkWaiting(pool, gate, 4)
      assert.strictEqual(yield* pool.queued, 3)
      yield* Deferred.fail(crashGate, WorkerCrash.report("lost the engine") as never)
      const crashed = yield* Fiber.await(crashing)
      assert.isTrue(Exit.isFailure(crashed))
      // Worker 0 restarts after 1 s and takes queued requests again.
      yield* TestClock.adjust("1 second")
      yield* Deferred.succeed(gate, 7)
      assert.deepStrictEqual(yield* Effect.forEach([onWorker1!, ...queued], Fiber.join), [7, 7, 7, 7])
    })
  )

  it.effect("queued requests fail at once when the last live worker is gone, rather than wait for nothing", () =>
    Effect.gen(function* () {
      const pool = yield* WorkerPool.make({ size: 1, worker: (id) => Worker.make(id, T.handler, { maxRestarts: 0 }) })
      const crashGate = yield* Deferred.make<number>()
      const crashing = yield* Effect.forkChild(pool.dispatch(T.wait(crashGate)))
      yield* Effect.yieldNow
      const queued = yield* Effect.forkChild(pool.dispatch(T.ok(1)))
      yield* Effect.yieldNow
      yield* Deferred.fail(crashGate, WorkerCrash.report("lost the engine") as never)
      yield* Fiber.await(crashing)
      const exit = yield* Fiber.await(queued)
      const error = T.errorOf(exit)
      assert.instanceOf(error, WorkerCrash)
      assert.match(T.reasonOf(error!), /^no worker available/)
    })
  )
})

describe("cancellation", () => {
  it.effect("interrupting the caller interrupts the running request and frees the slot for the queue", () =>
    Effect.gen(function* () {
      const interrupted = yield* Deferred.make<void>()
      const pool = yield* WorkerPool.make({
        size: 1,
        worker: (id) =>
          Worker.make(id, (request: T.Behaviour) =>
            T.handler(request).pipe(Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined)))
          )
      })
      const gate = yield* Deferred.make<number>()
      const [running, queued] = yield* forkWaiting(pool, gate, 2)
      yield* Fiber.interrupt(running!)
      yield* Deferred.await(interrupted)
      yield* Deferred.succeed(gate, 4)
      assert.strictEqual(yield* Fiber.join(queued!), 4)
      const [[, h]] = yield* pool.health
      assert.deepStrictEqual([h.completed, h.interrupted, h.errored, h.inFlight], [2, 1, 0, 0])
    })
  )
})

describe("retries", () => {
  it.effect("an idempotent request that met a crash is tried again on another worker", () =>
    Effect.gen(function* () {
      let calls = 0
      const pool = yield* WorkerPool.make({
        policy: DispatchPolicy.RoundRobin,
        size: 2,
        worker: (id) =>
          Worker.make(id, (n: number) =>
            Effect.suspend(() => {
              calls++
              return id === 0 ? Effect.fail(WorkerCrash.report("flaky")) : Effect.succeed(n)
            })
          )
      })
      assert.strictEqual(yield* pool.dispatch(5, { idempotent: true }), 5)
      assert.strictEqual(calls, 2)
      const health = yield* pool.health
      assert.deepStrictEqual(
        health.map(([, h]) => [h.crashes, h.completed]),
        [
          [1, 1],
          [0, 1]
        ]
      )
    })
  )

  it.effect("a request that is not idempotent is not retried", () =>
    Effect.gen(function* () {
      const pool = yield* makePool(2)
      const error = yield* Effect.flip(pool.dispatch(T.crash))
      assert.deepStrictEqual(
        error,
        new WorkerCrash({ reason: new Reported({ message: "engine failed" }), workerId: WorkerId.make(0) })
      )
    })
  )

  it.effect("retries stay within the budget", () =>
    Effect.gen(function* () {
      // No floor, 50 % of traffic: of 4 crashing requests, 2 may be retried.
      const pool = yield* makePool(8, { retry: { minPerWindow: 0, share: 0.5, maxRetries: 5 } })
      let retried = 0
      for (let i = 0; i < 4; i++) {
        const before = (yield* pool.health).reduce((n, [, h]) => n + h.completed, 0)
        yield* Effect.flip(pool.dispatch(T.crash, { idempotent: true }))
        const after = (yield* pool.health).reduce((n, [, h]) => n + h.completed, 0)
        retried += after - before - 1
      }
      assert.strictEqual(retried, 2)
    })
  )
})
