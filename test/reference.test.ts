/**
 * The six tests of the reference module, ported and named after the originals.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Option } from "effect"
import { DispatchPolicy, DomainError, Worker, WorkerCrash, WorkerId, WorkerPool } from "effect-worker-pool"

const makeWorker = (id: number) => Worker.make(WorkerId.make(id), (x: number) => Effect.succeed(x * 2))

describe("reference", () => {
  it.effect("in_process_worker_handles_dispatch", () =>
    Effect.gen(function* () {
      const w = yield* makeWorker(7)
      assert.strictEqual(yield* w.dispatch(5), 10)
      const h = yield* w.health
      assert.strictEqual(h.completed, 1)
      assert.strictEqual(h.errored, 0)
      assert.strictEqual(h.inFlight, 0)
    })
  )

  it.effect("errors_increment_errored_count", () =>
    Effect.gen(function* () {
      const w = yield* Worker.make(WorkerId.make(1), (_x: number) => Effect.fail(new DomainError({ reason: "bad" })))
      const error = yield* Effect.flip(w.dispatch(1))
      assert.instanceOf(error, DomainError)
      const h = yield* w.health
      assert.strictEqual(h.errored, 1)
      assert.strictEqual(h.completed, 1)
      assert.strictEqual(h.state, "Healthy")
    })
  )

  it.effect("round_robin_visits_each_worker", () =>
    Effect.gen(function* () {
      const pool = yield* WorkerPool.make<number, number, never>({ policy: DispatchPolicy.RoundRobin })
      for (let i = 0; i < 3; i++) yield* pool.add(yield* makeWorker(i))
      const ids: Array<number> = []
      for (let i = 0; i < 6; i++) {
        const w = yield* pool.select
        ids.push(Option.getOrThrow(w).id)
      }
      // 6 picks across 3 workers RR: each worker hit twice in a deterministic 0,1,2,0,1,2 sequence.
      assert.deepStrictEqual(ids, [0, 1, 2, 0, 1, 2])
    })
  )

  it.effect("least_loaded_picks_quietest", () =>
    Effect.gen(function* () {
      // Three workers whose requests wait on a gate; put 5 in flight on w0 and 3 on w1,
      // so that w2 is the obvious least-loaded pick.
      const gate = yield* Deferred.make<void>()
      const blocking = (id: number) =>
        Worker.make(WorkerId.make(id), (x: number) => Deferred.await(gate).pipe(Effect.as(x)))
      const w0 = yield* blocking(0)
      const w1 = yield* blocking(1)
      const w2 = yield* blocking(2)
      const fibers = [
        ...Array.from({ length: 5 }, () => w0.dispatch(0)),
        ...Array.from({ length: 3 }, () => w1.dispatch(1))
      ]
      const running = yield* Effect.forEach(fibers, (e) => Effect.forkChild(e))
      yield* Effect.yieldNow
      assert.strictEqual((yield* w0.health).inFlight, 5)
      assert.strictEqual((yield* w1.health).inFlight, 3)

      const pool = yield* WorkerPool.make<number, number, never>({ policy: DispatchPolicy.LeastLoaded })
      yield* pool.add(w0)
      yield* pool.add(w1)
      yield* pool.add(w2)
      const pick = yield* pool.select
      assert.strictEqual(Option.getOrThrow(pick).id, 2, "least-loaded should pick the worker with 0 in-flight")

      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.joinAll(running)
      assert.strictEqual((yield* w0.health).inFlight, 0)
    })
  )

  it.effect("empty_pool_dispatch_errors", () =>
    Effect.gen(function* () {
      const pool = yield* WorkerPool.make<number, number, never>({ policy: DispatchPolicy.RoundRobin })
      const error = yield* Effect.flip(pool.dispatch(1))
      assert.instanceOf(error, WorkerCrash)
      assert.strictEqual(error.reason._tag, "NoWorker")
      assert.include(error.message, "no worker available")
    })
  )

  it.effect("health_snapshot_includes_every_worker", () =>
    Effect.gen(function* () {
      const pool = yield* WorkerPool.make<number, number, never>({ policy: DispatchPolicy.RoundRobin })
      for (let i = 0; i < 3; i++) yield* pool.add(yield* makeWorker(i))
      yield* pool.dispatch(1)
      yield* pool.dispatch(2)
      const h = yield* pool.health
      assert.strictEqual(h.length, 3)
      assert.deepStrictEqual(
        h.map(([id]) => id),
        [0, 1, 2]
      )
      const totalCompleted = h.reduce((sum, [, hh]) => sum + hh.completed, 0)
      assert.strictEqual(totalCompleted, 2)
    })
  )
})
