/**
 * Elastic size: a pool with `size: { min, max }` starts `min` workers, starts
 * more up to `max` while requests wait, and retires the ones above `min` that
 * stayed idle for `idleTimeout`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Metric, Schema, Stream } from "effect"
import { TestClock } from "effect/testing"
import { PoolMetrics, Worker, WorkerId, type WorkerKind, WorkerPool } from "effect-worker-pool"
import * as S from "./fixtures/support.ts"

/** An in-process kind whose start takes a second; a request given a gate waits for it. */
const slow: WorkerKind.WorkerKind<Deferred.Deferred<void> | undefined, number, never> = {
  name: "slow",
  spawn: Effect.as(Effect.sleep("1 second"), {
    run: (gate: Deferred.Deferred<void> | undefined) =>
      gate === undefined ? Effect.as(Effect.yieldNow, 1) : Effect.as(Deferred.await(gate), 1),
    exited: Effect.never
  })
}

/** Lets the fibers woken by the test clock run, until `done` holds (at most `turns` turns). */
const settle = (done: () => boolean, turns = 1_000) =>
  Effect.gen(function* () {
    for (let i = 0; i < turns && !done(); i++) yield* Effect.yieldNow
  })

describe("elastic size", () => {
  it.effect("a burst that fills the queue brings the pool to max within one start time; idle, it falls to min", () =>
    Effect.gen(function* () {
      const making = yield* Effect.forkChild(
        WorkerPool.make({
          size: { min: 1, max: 4 },
          idleTimeout: "1 minute",
          worker: (id) => Worker.fromKind(id, slow)
        })
      )
      yield* TestClock.adjust("1 second")
      const pool = yield* Fiber.join(making)
      assert.strictEqual(yield* pool.size, 1)
      const changes: Array<readonly [number, string]> = []
      yield* Effect.forkChild(
        Stream.runForEach(pool.changes, ([id, h]) => Effect.sync(() => changes.push([id, h.state])))
      )

      const gate = yield* Deferred.make<void>()
      const burst = yield* Effect.forkChild(
        Effect.forEach(
          Array.from({ length: 20 }, () => gate),
          (g) => pool.dispatch(g),
          { concurrency: "unbounded" }
        )
      )
      // One request runs, the others wait: the pool starts 3 workers at once.
      for (let i = 0; i < 1_000 && (yield* pool.queued) < 19; i++) yield* Effect.yieldNow
      assert.strictEqual(yield* pool.queued, 19)
      // One start time later, the pool is at max.
      yield* TestClock.adjust("1 second")
      let size = 0
      for (let i = 0; i < 1_000 && size < 4; i++) {
        yield* Effect.yieldNow
        size = yield* pool.size
      }
      assert.strictEqual(size, 4)
      const health = yield* pool.health
      assert.deepStrictEqual(
        health.map(([id, h]) => [id, h.state]),
        [
          [0, "Healthy"],
          [1, "Healthy"],
          [2, "Healthy"],
          [3, "Healthy"]
        ]
      )
      yield* Deferred.succeed(gate, undefined)
      assert.strictEqual((yield* Fiber.join(burst)).length, 20)

      // Idle for less than idleTimeout: it keeps them.
      yield* TestClock.adjust("30 seconds")
      assert.strictEqual(yield* pool.size, 4)
      // Idle for idleTimeout (checked every half of it): back to min.
      yield* TestClock.adjust("1 minute")
      for (let i = 0; i < 1_000 && (yield* pool.size) > 1; i++) yield* Effect.yieldNow
      assert.strictEqual(yield* pool.size, 1)
      yield* settle(() => changes.filter(([, state]) => state === "Stopped").length === 3)
      assert.deepStrictEqual(
        changes.filter(([, state]) => state === "Stopped").map(([id]) => id),
        [3, 2, 1],
        "the retired workers, in changes"
      )
      // A new burst reuses the ids within [0, max).
      const again = yield* Effect.forkChild(
        Effect.forEach(
          Array.from({ length: 8 }, () => undefined),
          (g) => pool.dispatch(g),
          { concurrency: "unbounded" }
        )
      )
      yield* Effect.yieldNow
      yield* TestClock.adjust("1 second")
      assert.strictEqual((yield* Fiber.join(again)).length, 8)
      const ids = (yield* pool.health).map(([id]) => id)
      assert.isTrue(
        ids.every((id) => id >= 0 && id < 4),
        JSON.stringify(ids)
      )
    }).pipe(Effect.scoped, Effect.provideService(Metric.MetricRegistry, new Map()))
  )

  /** A pool `{ min: 1, max: 4 }` of workers with 4 slots each, holding `held` requests on `gate`; its size after each window. */
  const growth = (targetUtilization: number, held: number) =>
    Effect.gen(function* () {
      const pool = yield* WorkerPool.make({
        name: "utilization",
        size: { min: 1, max: 4 },
        idleTimeout: "10 seconds",
        targetUtilization,
        utilizationWindow: "1 second",
        worker: (id) => Worker.make(id, (gate: Deferred.Deferred<void>) => Deferred.await(gate), { maxInFlight: 4 })
      })
      const gate = yield* Deferred.make<void>()
      const requests = yield* Effect.forkChild(
        Effect.forEach(
          Array.from({ length: held }, () => gate),
          (g) => pool.dispatch(g),
          { concurrency: "unbounded" }
        )
      )
      yield* settle(() => false, 100)
      const running = (yield* pool.health).reduce((n, [, h]) => n + h.inFlight, 0)
      assert.strictEqual(running, held, "every request holds a slot")
      const sizes: Array<number> = []
      for (let window = 0; window < 5; window++) {
        yield* TestClock.adjust("1 second")
        yield* settle(() => false, 100)
        // No request waits: the pool grows for its utilization alone.
        assert.strictEqual(yield* pool.queued, 0)
        sizes.push(yield* pool.size)
      }
      yield* Deferred.succeed(gate, undefined)
      assert.strictEqual((yield* Fiber.join(requests)).length, held)
      return { pool, sizes }
    })

  it.effect("a utilization at or above the target grows the pool by one worker per window, up to max", () =>
    Effect.gen(function* () {
      // 2 requests held: 2 of 4 slots (0.5), 2 of 8 (0.25), 2 of 12 (0.17), 2 of 16 (0.125): all at least 0.1.
      const { pool, sizes } = yield* growth(0.1, 2)
      assert.deepStrictEqual(sizes, [2, 3, 4, 4, 4])
      const snapshot = yield* Metric.snapshot
      const ups = snapshot
        .filter((s) => s.id === PoolMetrics.scaling.id && s.attributes?.direction === "up")
        .reduce((n, s) => n + (s.type === "Counter" ? Number(s.state.count) : 0), 0)
      assert.strictEqual(ups, 3, "the scaling metric counts each worker started")
      // Idle for idleTimeout (checked every half of it): back to min.
      yield* TestClock.adjust("15 seconds")
      yield* settle(() => false, 100)
      assert.strictEqual(yield* pool.size, 1)
    }).pipe(Effect.scoped, Effect.provideService(Metric.MetricRegistry, new Map()))
  )

  it.effect("a utilization below the target does not grow the pool", () =>
    Effect.gen(function* () {
      // 0.5, then 0.25, then 0.17: below 0.2, the pool stays at 3 workers.
      assert.deepStrictEqual((yield* growth(0.2, 2)).sizes, [2, 3, 3, 3, 3])
      // 1 request on 4 slots: 0.25, below 0.3: it never grows.
      assert.deepStrictEqual((yield* growth(0.3, 1)).sizes, [1, 1, 1, 1, 1])
    }).pipe(Effect.scoped, Effect.provideService(Metric.MetricRegistry, new Map()))
  )

  it.effect.prop(
    "a steady utilization grows the pool one worker per window exactly while it is at or above the target, within max",
    [
      Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 3 })),
      Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 3 })),
      Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 20 })),
      Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 12 }))
    ],
    ([min, extra, target20, heldWanted]) =>
      Effect.gen(function* () {
        const max = min + extra
        const targetUtilization = target20 / 20
        // At most the slots of min workers (4 each): no request waits, so only utilization grows the pool.
        const held = Math.min(heldWanted, 4 * min)
        const pool = yield* WorkerPool.make({
          size: { min, max },
          idleTimeout: "1 hour",
          targetUtilization,
          utilizationWindow: "1 second",
          worker: (id) => Worker.make(id, (gate: Deferred.Deferred<void>) => Deferred.await(gate), { maxInFlight: 4 })
        })
        const gate = yield* Deferred.make<void>()
        yield* Effect.forkChild(
          Effect.forEach(
            Array.from({ length: held }, () => gate),
            (g) => pool.dispatch(g),
            { concurrency: "unbounded" }
          )
        )
        yield* settle(() => false, 50)
        // The model: after each window, one worker more while held / (4 × workers) is at least the target.
        let expected = min
        for (let window = 0; window < extra + 2; window++) {
          if (expected < max && held / (4 * expected) >= targetUtilization - 1e-9) expected++
          yield* TestClock.adjust("1 second")
          yield* settle(() => false, 50)
          assert.strictEqual(yield* pool.size, expected, `window ${window}: ${held} held, target ${targetUtilization}`)
          assert.strictEqual(yield* pool.queued, 0)
        }
        yield* Deferred.succeed(gate, undefined)
      }).pipe(Effect.scoped),
    { arbitrary: { runs: 40 } }
  )

  it.effect("a worker added by hand is not retired, and the pool keeps min workers of its own beside it", () =>
    Effect.gen(function* () {
      const pool = yield* WorkerPool.make({
        size: { min: 1, max: 3 },
        idleTimeout: "1 second",
        worker: (id) => Worker.make(id, (n: number) => Effect.succeed(n))
      })
      yield* pool.add(yield* Worker.make(WorkerId.make(7), (n: number) => Effect.succeed(n)))
      // Ten idleTimeouts, half of one at a time (the scaler's period).
      for (let i = 0; i < 20; i++) {
        yield* TestClock.adjust("500 millis")
        yield* settle(() => false, 100)
      }
      assert.deepStrictEqual(
        (yield* pool.health).map(([id, h]) => [id, h.state]),
        [
          [0, "Healthy"],
          [7, "Healthy"]
        ]
      )
      assert.strictEqual(yield* pool.dispatch(5), 5)
    }).pipe(Effect.scoped)
  )

  it.live(
    "a sawtooth load of 10,000 requests loses none, and the pool never has more than max workers",
    () =>
      Effect.gen(function* () {
        const pool = yield* WorkerPool.make({
          name: "sawtooth",
          size: { min: 1, max: 3 },
          idleTimeout: "20 millis",
          worker: (id) => Worker.make(id, (n: number) => Effect.as(Effect.yieldNow, n))
        })
        let most = 0
        yield* Effect.forkChild(
          Stream.runForEach(pool.changes, () =>
            Effect.map(pool.size, (n) => {
              most = Math.max(most, n)
            })
          )
        )
        let failed = 0
        for (let round = 0; round < 10; round++) {
          const exits = yield* Effect.forEach(
            Array.from({ length: 1_000 }, (_, i) => i),
            (i) => Effect.exit(pool.dispatch(i)),
            { concurrency: 100 }
          )
          failed += exits.filter((exit) => exit._tag === "Failure").length
          most = Math.max(most, yield* pool.size)
          // The trough: idle, the pool falls back to min.
          yield* S.eventuallyEffect(
            "the pool fell to min",
            Effect.map(pool.size, (n) => n === 1)
          )
        }
        assert.strictEqual(failed, 0)
        assert.isAtMost(most, 3)
        const snapshot = yield* Metric.snapshot
        const count = (metric: Metric.Metric<any, any>, attributes: Record<string, string>) =>
          snapshot
            .filter((s) => s.id === metric.id && Object.entries(attributes).every(([k, v]) => s.attributes?.[k] === v))
            .reduce((n, s) => n + (s.type === "Counter" ? Number(s.state.count) : 0), 0)
        assert.strictEqual(count(PoolMetrics.requests, { pool: "sawtooth", outcome: "Success" }), 10_000)
        const ups = count(PoolMetrics.scaling, { pool: "sawtooth", direction: "up" })
        const downs = count(PoolMetrics.scaling, { pool: "sawtooth", direction: "down" })
        // It grew and shrank in each round (the first round may start from one worker more or less).
        assert.isAtLeast(ups, 10)
        assert.strictEqual(ups, downs)
      }).pipe(Effect.scoped, Effect.provideService(Metric.MetricRegistry, new Map())),
    60_000
  )

  it.effect("invalid elastic options are refused with InvalidOptions", () =>
    Effect.gen(function* () {
      const reasonOf = (options: object) =>
        Effect.map(
          Effect.flip(
            WorkerPool.make({
              worker: (id: WorkerId) => Worker.make(id, (n: number) => Effect.succeed(n)),
              ...options
            } as never)
          ),
          (error) => (error as { readonly reason: string }).reason
        )
      assert.strictEqual(yield* reasonOf({ size: { min: 0, max: 2 } }), "size.min must be a positive integer, got 0")
      assert.strictEqual(
        yield* reasonOf({ size: { min: 3, max: 2 } }),
        "size.min must not be above size.max, got 3 and 2"
      )
      assert.strictEqual(
        yield* reasonOf({ size: { min: 1, max: 2 }, idleTimeout: 0 }),
        "idleTimeout must be at least 1 millisecond"
      )
      assert.strictEqual(
        yield* reasonOf({ size: { min: 1, max: 2 }, idleTimeout: "-1 seconds" }),
        "idleTimeout must be a finite, non-negative duration, got -1 seconds"
      )
      assert.strictEqual(
        yield* reasonOf({ size: { min: 1, max: 2 }, targetUtilization: 0 }),
        "targetUtilization must be a number within (0, 1], got 0"
      )
      assert.strictEqual(
        yield* reasonOf({ size: { min: 1, max: 2 }, targetUtilization: 1.5 }),
        "targetUtilization must be a number within (0, 1], got 1.5"
      )
      assert.strictEqual(
        yield* reasonOf({ size: { min: 1, max: 2 }, targetUtilization: Number.NaN }),
        "targetUtilization must be a number within (0, 1], got NaN"
      )
      assert.strictEqual(
        yield* reasonOf({ size: { min: 1, max: 2 }, utilizationWindow: 0 }),
        "utilizationWindow must be at least 1 millisecond"
      )
      assert.strictEqual(
        yield* reasonOf({ size: 2, targetUtilization: 0.5 }),
        "targetUtilization applies to an elastic size, { min, max }"
      )
      assert.strictEqual(
        yield* reasonOf({ size: 2, utilizationWindow: "1 second" }),
        "utilizationWindow applies to an elastic size, { min, max }"
      )
      assert.strictEqual(
        yield* reasonOf({ size: 2, idleTimeout: "1 second" }),
        "idleTimeout applies to an elastic size, { min, max }"
      )
      assert.strictEqual(yield* reasonOf({ size: "x" }), "size must be a non-negative integer or { min, max }, got x")
      // A fixed size stays valid as before.
      const fixed = yield* WorkerPool.make({
        size: 2,
        worker: (id) => Worker.make(id, (n: number) => Effect.succeed(n))
      })
      assert.strictEqual(yield* fixed.size, 2)
    }).pipe(Effect.scoped)
  )
})
