/**
 * Adaptive per-worker concurrency in a pool (the in-process default), in
 * virtual time: the limit starts at 1, grows while answers keep their
 * latency, is what the health, the metrics and a policy see, and halves on a
 * crash; its requests run on their callers' fibers, as on a worker of one
 * slot.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Metric, Schedule } from "effect"
import { TestClock } from "effect/testing"
import { DispatchPolicy, PoolMetrics, Worker, WorkerCrash, WorkerPool } from "effect-worker-pool"

/** A handler that waits 100 ms (a call to another service), or crashes its worker on a negative request. */
const io = (n: number) => (n < 0 ? Effect.fail(WorkerCrash.report("boom")) : Effect.as(Effect.sleep("100 millis"), n))

const limits = (pool: WorkerPool.WorkerPool<number, number, never>) =>
  Effect.map(pool.health, (all) => all.map(([, h]) => h.maxInFlight!))

describe("adaptive concurrency in a pool", () => {
  it.effect("starts at 1 per worker, grows while latency holds, and is what health, metrics and policies see", () =>
    Effect.gen(function* () {
      const offered: Array<number> = []
      // LeastLoaded, recording the limits it is offered.
      const policy = DispatchPolicy.make({
        name: "Recording",
        initial: () => undefined,
        select: (input) => {
          for (let i = 0; i < input.view.size; i++) offered.push(input.view.at(i).maxInFlight)
          return DispatchPolicy.LeastLoaded.select(input)
        }
      })
      const pool = yield* WorkerPool.make({
        size: 2,
        policy,
        worker: (id) => Worker.make(id, io, { restart: Schedule.spaced("1 second") })
      })
      assert.deepStrictEqual(yield* limits(pool), [1, 1])

      // 20 at once: one per worker until answers return.
      const first = yield* Effect.forkChild(
        Effect.forEach(
          Array.from({ length: 20 }, (_, i) => i),
          (n) => pool.dispatch(n),
          { concurrency: "unbounded" }
        )
      )
      yield* Effect.yieldNow
      assert.deepStrictEqual(yield* Effect.map(pool.health, (all) => all.map(([, h]) => h.inFlight)), [1, 1])
      assert.strictEqual(yield* pool.queued, 18)
      // Every answer takes 100 ms whatever the load: slow start doubles the limits each round trip.
      for (let i = 0; i < 10; i++) yield* TestClock.adjust("100 millis")
      assert.strictEqual((yield* Fiber.join(first)).length, 20)
      const grown = yield* limits(pool)
      assert.isTrue(
        grown.every((l) => l > 1),
        `limits ${grown}`
      )
      assert.isTrue(
        offered.some((l) => l > 1),
        "the policy was offered the grown limits"
      )

      const metrics = yield* Metric.snapshot
      const gauge = metrics.find((m) => m.id === PoolMetrics.maxInFlight.id)
      assert.isDefined(gauge, "the max_in_flight gauge is reported")
    }).pipe(Effect.scoped)
  )

  it.effect("a crash halves the limit of the worker it crashed", () =>
    Effect.gen(function* () {
      const pool = yield* WorkerPool.make({
        size: 1,
        worker: (id) => Worker.make(id, io, { restart: Schedule.spaced("10 millis") })
      })
      const load = Effect.forEach(
        Array.from({ length: 16 }, (_, i) => i),
        (n) => pool.dispatch(n),
        {
          concurrency: "unbounded"
        }
      )
      for (let round = 0; round < 3; round++) {
        const running = yield* Effect.forkChild(load)
        for (let i = 0; i < 16; i++) yield* TestClock.adjust("100 millis")
        yield* Fiber.join(running)
      }
      const [before] = yield* limits(pool)
      assert.isAbove(before!, 2)
      yield* Effect.exit(pool.dispatch(-1))
      const [after] = yield* limits(pool)
      assert.strictEqual(after, Math.max(1, Math.floor(before! / 2)))
    }).pipe(Effect.scoped)
  )

  it.effect(
    "a request runs on its caller's fiber whatever the worker's limit; with a timeout, on a fiber of the worker",
    () =>
      Effect.gen(function* () {
        const handler = (_: number) => Effect.map(Effect.fiberId, (fiber) => fiber)
        const adaptive = yield* WorkerPool.make({ size: 1, worker: (id) => Worker.make(id, handler) })
        const several = yield* WorkerPool.make({
          size: 1,
          worker: (id) => Worker.make(id, handler, { maxInFlight: 4 })
        })
        const fixed = yield* WorkerPool.make({ size: 1, worker: (id) => Worker.make(id, handler, { maxInFlight: 1 }) })
        const caller = yield* Effect.fiberId
        // A crash of a request beside it tears it down inside the request (test/caller-fiber.test.ts).
        assert.strictEqual(yield* adaptive.dispatch(1), caller)
        assert.strictEqual(yield* several.dispatch(1), caller)
        assert.strictEqual(yield* fixed.dispatch(1), caller)
        assert.notStrictEqual(yield* adaptive.dispatch(1, { timeout: "1 hour" }), caller)
      }).pipe(Effect.scoped)
  )
})
