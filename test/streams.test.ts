/**
 * Streamed operations in process: a client's method of a streamed operation
 * gives a `Stream`, its chunks in order, within a bounded window (a caller
 * that stops reading stops the producer), one request in flight until it
 * ends; the caller closing its stream interrupts the handler and holds the
 * slot until it has stopped; a crash mid-stream is a `WorkerCrash` (no retry
 * after the first chunk), a domain error leaves the worker healthy.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Latch, Metric, Schema, Scope, Stream } from "effect"
import { Rpc, RpcGroup } from "effect/rpc"
import { TestClock } from "effect/testing"
import {
  InvalidRequest,
  type Operation,
  PoolMetrics,
  PoolShutdown,
  RequestTimeout,
  Worker,
  WorkerCrash,
  WorkerPool
} from "effect-worker-pool"
import { metricValue } from "./fixtures/metrics.ts"
import { drain, errorOf, inFlight } from "./fixtures/stream-checks.ts"

class CountError extends Schema.TaggedError<CountError>()("CountError", { at: Schema.Number }) {}

const Counting = RpcGroup.make(
  Rpc.make("Count", {
    payload: { chunks: Schema.Array(Schema.Array(Schema.Number)) },
    success: Schema.Number,
    error: CountError,
    stream: true
  }),
  Rpc.make("Ticks", { payload: {}, success: Schema.Number, stream: true }),
  Rpc.make("Double", { payload: { n: Schema.Number }, success: Schema.Number })
)

type Rpcs = RpcGroup.Rpcs<typeof Counting>

/** `Count` emits its payload's chunks as they are; `Ticks` comes from each test; `Double` is a plain call. */
const handlers = (ticks: Operation.EffectHandlers<Rpcs>["Ticks"]): Operation.EffectHandlers<Rpcs> => ({
  Count: ({ chunks }) => Stream.fromArrays(...chunks),
  Ticks: ticks,
  Double: ({ n }) => Effect.succeed(n * 2)
})

const makePool = (ticks: Operation.EffectHandlers<Rpcs>["Ticks"], options?: { readonly size?: number }) =>
  WorkerPool.make({
    size: options?.size ?? 1,
    worker: (id) => Worker.fromGroup(id, Counting, handlers(ticks))
  })

const noTicks: Operation.EffectHandlers<Rpcs>["Ticks"] = () => Stream.empty

describe("streamed operations, in process", () => {
  it.effect("chunks come in order, and the stream is one request in flight until it ends", () =>
    Effect.gen(function* () {
      const started = yield* Deferred.make<void>()
      const release = yield* Latch.make(false)
      const pool = yield* makePool(() =>
        Stream.make(1, 2).pipe(
          Stream.concat(Stream.fromEffect(Effect.andThen(Deferred.succeed(started, undefined), release.await))),
          Stream.drain
        )
      )
      const client = yield* WorkerPool.client(pool, Counting)
      const chunks = [[1, 2, 3], [4], [5, 6]]
      assert.deepStrictEqual(Array.from(yield* Stream.runCollect(client.Count({ chunks }))), [1, 2, 3, 4, 5, 6])
      assert.strictEqual(yield* client.Double({ n: 21 }), 42)

      const open = yield* Effect.forkChild(Stream.runDrain(client.Ticks({})))
      yield* Deferred.await(started)
      assert.strictEqual(yield* inFlight(pool), 1)
      yield* release.open
      yield* Fiber.join(open)
      assert.strictEqual(yield* inFlight(pool), 0)
    }).pipe(Effect.scoped)
  )

  it.effect("backpressure: the producer runs at most the window ahead of the reader", () =>
    Effect.gen(function* () {
      const window = 4
      let produced = 0
      let consumed = 0
      let ahead = 0
      const stalled = yield* Deferred.make<void>()
      const pool = yield* makePool(() =>
        Stream.range(1, 200).pipe(
          Stream.rechunk(1),
          Stream.tap(() =>
            Effect.suspend(() => {
              produced++
              ahead = Math.max(ahead, produced - consumed)
              return produced === consumed + window + 1 ? Deferred.succeed(stalled, undefined) : Effect.void
            })
          )
        )
      )
      const client = yield* WorkerPool.client(pool, Counting, { window })
      const seen = yield* Stream.runCollect(
        client.Ticks({}).pipe(
          Stream.take(50),
          Stream.tap((n) =>
            Effect.gen(function* () {
              consumed++
              if (n !== 10) return
              // The reader holds element 10: the producer fills the window, holds one more, and stops there.
              yield* Deferred.await(stalled)
              for (let i = 0; i < 200; i++) yield* Effect.yieldNow
              assert.strictEqual(produced, 10 + window + 1)
            })
          )
        )
      )
      assert.deepStrictEqual(
        Array.from(seen),
        Array.from({ length: 50 }, (_, i) => i + 1)
      )
      // One chunk may be in transit (taken from the window, not yet read) when the producer looks.
      assert.isAtMost(ahead, window + 2)
      assert.isBelow(produced, 200)
      assert.strictEqual(yield* inFlight(pool), 0)
    }).pipe(Effect.scoped)
  )

  for (const [name, options] of [
    ["on the caller's fiber", undefined],
    ["on the worker's fiber (a timeout)", { timeout: "1 minute" }]
  ] as const) {
    it.effect(`a caller that stops reading interrupts the handler, which holds the slot until it stops (${name})`, () =>
      Effect.gen(function* () {
        const interrupted = yield* Deferred.make<number>()
        let pool: WorkerPool.WorkerPool<unknown, unknown, unknown> | undefined
        const p = yield* makePool(() =>
          Stream.make(1, 2, 3).pipe(
            Stream.concat(
              Stream.fromEffect(
                Effect.never.pipe(
                  // While the handler stops, its request still holds its slot.
                  Effect.onInterrupt(() => Effect.flatMap(inFlight(pool!), (n) => Deferred.succeed(interrupted, n)))
                )
              )
            )
          )
        )
        pool = p as never
        const client = yield* WorkerPool.client(p, Counting)
        const firstThree = yield* Stream.runCollect(Stream.take(client.Ticks({}, options), 3))
        assert.deepStrictEqual(Array.from(firstThree), [1, 2, 3])
        assert.strictEqual(yield* Deferred.await(interrupted), 1)
        yield* Effect.repeat(inFlight(p), { until: (n) => n === 0 })
        const [[, health]] = yield* p.health
        assert.deepStrictEqual([health.state, health.crashes], ["Healthy", 0])
        assert.strictEqual(yield* client.Double({ n: 2 }), 4)
      }).pipe(Effect.scoped)
    )
  }

  it.effect("the caller's interruption mid-stream interrupts the handler", () =>
    Effect.gen(function* () {
      const reading = yield* Deferred.make<void>()
      const interrupted = yield* Deferred.make<void>()
      const pool = yield* makePool(() =>
        Stream.make(1).pipe(
          Stream.concat(
            Stream.fromEffect(Effect.never.pipe(Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined))))
          )
        )
      )
      const client = yield* WorkerPool.client(pool, Counting)
      const fiber = yield* Effect.forkChild(
        Stream.runForEach(client.Ticks({}), () => Deferred.succeed(reading, undefined))
      )
      yield* Deferred.await(reading)
      yield* Fiber.interrupt(fiber)
      assert.isTrue(Exit.hasInterrupts(yield* Fiber.await(fiber)))
      yield* Deferred.await(interrupted)
      assert.strictEqual(yield* inFlight(pool), 0)
      assert.strictEqual(yield* client.Double({ n: 1 }), 2)
    }).pipe(Effect.scoped)
  )

  it.effect("a crash mid-stream fails it with WorkerCrash after its chunks; the worker restarts and serves", () =>
    Effect.gen(function* () {
      let calls = 0
      const pool = yield* makePool(
        () =>
          Stream.suspend(() => {
            calls++
            return Stream.make(1, 2).pipe(Stream.concat(Stream.fail(WorkerCrash.report("crashed mid-stream"))))
          }),
        { size: 2 }
      )
      // Idempotent: still not retried, since it gave a chunk.
      const client = yield* WorkerPool.client(pool, Counting, { idempotent: ["Ticks"] })
      const { seen, exit } = yield* drain(client.Ticks({}))
      assert.deepStrictEqual(seen, [1, 2])
      assert.instanceOf(errorOf(exit), WorkerCrash)
      assert.strictEqual(calls, 1)
      const crashes = (yield* pool.health).reduce((sum, [, health]) => sum + health.crashes, 0)
      assert.strictEqual(crashes, 1)
      assert.strictEqual(yield* client.Double({ n: 5 }), 10)
      // The crashed worker comes back after its backoff.
      yield* TestClock.adjust("1 minute")
      const health = yield* Effect.repeat(pool.health, {
        until: (all) => all.every(([, h]) => h.state === "Healthy")
      })
      assert.strictEqual(
        health.reduce((sum, [, h]) => sum + h.restarts, 0),
        1
      )
      assert.deepStrictEqual(Array.from(yield* Stream.runCollect(client.Count({ chunks: [[7]] }))), [7])
    }).pipe(Effect.scoped)
  )

  it.effect("an idempotent stream that crashed before its first chunk is tried again", () =>
    Effect.gen(function* () {
      let calls = 0
      const pool = yield* makePool(
        () =>
          Stream.suspend(() =>
            ++calls === 1 ? Stream.fail(WorkerCrash.report("crashed before a chunk")) : Stream.make(1, 2, 3)
          ),
        { size: 2 }
      )
      const client = yield* WorkerPool.client(pool, Counting, { idempotent: ["Ticks"] })
      assert.deepStrictEqual(Array.from(yield* Stream.runCollect(client.Ticks({}))), [1, 2, 3])
      assert.strictEqual(calls, 2)
      // Not idempotent: the crash is the caller's.
      calls = 0
      const other = yield* WorkerPool.client(pool, Counting)
      assert.instanceOf(yield* Effect.flip(Stream.runCollect(other.Ticks({}))), WorkerCrash)
      assert.strictEqual(calls, 1)
    }).pipe(Effect.scoped)
  )

  it.effect("a domain error mid-stream fails it after its chunks; the worker stays healthy", () =>
    Effect.gen(function* () {
      const pool = yield* WorkerPool.make({
        size: 1,
        worker: (id) =>
          Worker.fromGroup(id, Counting, {
            ...handlers(noTicks),
            Count: ({ chunks }) =>
              Stream.fromArrays(...chunks).pipe(Stream.concat(Stream.fail(new CountError({ at: 3 }))))
          })
      })
      const client = yield* WorkerPool.client(pool, Counting)
      const { seen, exit } = yield* drain(client.Count({ chunks: [[1, 2], [3]] }))
      assert.deepStrictEqual(seen, [1, 2, 3])
      const error = errorOf(exit)
      assert.instanceOf(error, CountError)
      assert.strictEqual((error as CountError).at, 3)
      const [[, health]] = yield* pool.health
      assert.deepStrictEqual([health.state, health.crashes, health.inFlight], ["Healthy", 0, 0])
    }).pipe(Effect.scoped)
  )

  it.effect("bad input: a bare dispatch of a streamed operation, a handler that gives no Stream, a wrong window", () =>
    Effect.gen(function* () {
      const pool = yield* makePool(() => 42 as never, { size: 2 })
      const bare = yield* Effect.flip(pool.dispatch({ _tag: "Ticks", payload: {} }))
      assert.instanceOf(bare, InvalidRequest)
      assert.match((bare as InvalidRequest).reason, /operation Ticks is a stream: call it through the client's method/)
      const client = yield* WorkerPool.client(pool, Counting)
      const mistake = yield* Effect.flip(Stream.runCollect(client.Ticks({})))
      assert.instanceOf(mistake, WorkerCrash)
      assert.match(
        String((mistake as WorkerCrash).message),
        /the handler of Ticks returned a number \(42\), not a Stream/
      )
      assert.strictEqual(yield* client.Double({ n: 1 }), 2)
      for (const window of [0, 1.5, -1, "8"]) {
        const wrong = yield* Effect.flip(WorkerPool.client(pool, Counting, { window: window as never }))
        assert.strictEqual(wrong._tag, "InvalidOptions")
        assert.match(wrong.reason, /window must be a positive integer/)
      }
    }).pipe(Effect.scoped)
  )

  it.effect("a shutdown waits for an open stream until its drain deadline, then fails it with PoolShutdown", () =>
    Effect.gen(function* () {
      const reading = yield* Deferred.make<void>()
      const scope = yield* Scope.make()
      const pool = yield* WorkerPool.make({
        size: 1,
        drain: "1 second",
        worker: (id) =>
          Worker.fromGroup(
            id,
            Counting,
            handlers(() => Stream.make(1).pipe(Stream.concat(Stream.never)))
          )
      }).pipe(Scope.provide(scope))
      const client = yield* WorkerPool.client(pool, Counting)
      const reader = yield* Effect.forkChild(
        drain(client.Ticks({}).pipe(Stream.tap(() => Deferred.succeed(reading, undefined))))
      )
      yield* Deferred.await(reading)
      const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
      // Within the drain, the stream stays open: one request in flight.
      yield* TestClock.adjust("999 millis")
      assert.isUndefined(reader.pollUnsafe())
      assert.strictEqual(yield* inFlight(pool), 1)
      yield* TestClock.adjust("1 millis")
      const { seen, exit } = yield* Fiber.join(reader)
      yield* Fiber.join(closing)
      assert.deepStrictEqual(seen, [1])
      assert.instanceOf(errorOf(exit), PoolShutdown)
    })
  )

  it.effect("a stream's run time does not feed the adaptive limit; a plain call's does", () =>
    Effect.gen(function* () {
      const Timed = RpcGroup.make(
        Rpc.make("Wait", { payload: {}, success: Schema.Number }),
        Rpc.make("Flow", { payload: {}, success: Schema.Number, stream: true })
      )
      let started = yield* Deferred.make<void>()
      let release = yield* Deferred.make<void>()
      const held = Effect.andThen(
        Effect.suspend(() => Deferred.succeed(started, undefined)),
        Effect.suspend(() => Deferred.await(release))
      )
      const pool = yield* WorkerPool.make({
        size: 1,
        worker: (id) =>
          Worker.fromGroup(id, Timed, {
            Wait: () => Effect.as(held, 1),
            Flow: () => Stream.fromEffect(Effect.as(held, 1))
          })
      })
      const client = yield* WorkerPool.client(pool, Timed)
      /** Runs `call` five times, each 5 ms long by the pool's clock; the worker's limit after. */
      const limitAfter = (call: Effect.Effect<unknown, unknown>) =>
        Effect.gen(function* () {
          for (let i = 0; i < 5; i++) {
            started = yield* Deferred.make<void>()
            release = yield* Deferred.make<void>()
            const fiber = yield* Effect.forkChild(call)
            yield* Deferred.await(started)
            yield* TestClock.adjust("5 millis")
            yield* Deferred.succeed(release, undefined)
            yield* Fiber.join(fiber)
          }
          const [[, health]] = yield* pool.health
          return health.maxInFlight ?? 0
        })
      assert.strictEqual(yield* limitAfter(Stream.runDrain(client.Flow({}))), 1)
      assert.isAbove(yield* limitAfter(client.Wait({})), 1)
    }).pipe(Effect.scoped)
  )

  it.effect("timeout bounds the whole stream: RequestTimeout after the chunks given before it", () =>
    Effect.gen(function* () {
      const reading = yield* Deferred.make<void>()
      const pool = yield* makePool(() => Stream.make(1, 2).pipe(Stream.concat(Stream.never)), { size: 1 })
      const client = yield* WorkerPool.client(pool, Counting)
      const reader = yield* Effect.forkChild(
        drain(client.Ticks({}, { timeout: "1 second" }).pipe(Stream.tap(() => Deferred.succeed(reading, undefined))))
      )
      yield* Deferred.await(reading)
      yield* TestClock.adjust("1 second")
      const { seen, exit } = yield* Fiber.join(reader)
      assert.deepStrictEqual(seen, [1, 2])
      assert.instanceOf(errorOf(exit), RequestTimeout)
    }).pipe(Effect.scoped)
  )

  it.effect("the requests counter counts a stream once, at its end, with its operation", () =>
    Effect.gen(function* () {
      const pool = yield* WorkerPool.make({
        name: "streams",
        size: 2,
        worker: (id) =>
          Worker.fromGroup(id, Counting, {
            ...handlers(() => Stream.make(1, 2, 3).pipe(Stream.concat(Stream.never))),
            Count: ({ chunks }) =>
              chunks.length === 0 ? Stream.fail(new CountError({ at: 0 })) : Stream.fromArrays(...chunks)
          })
      })
      const client = yield* WorkerPool.client(pool, Counting)
      yield* Stream.runDrain(client.Count({ chunks: [[1, 2], [3]] }))
      yield* Stream.runDrain(client.Count({ chunks: [[1]] }))
      yield* Effect.flip(Stream.runDrain(client.Count({ chunks: [] })))
      yield* Stream.runDrain(Stream.take(client.Ticks({}), 2))
      const snapshot = yield* Metric.snapshot
      const requests = (attributes: Record<string, string>) =>
        metricValue(snapshot, PoolMetrics.requests, { pool: "streams", policy: "ShortestExpectedDelay", ...attributes })
      assert.strictEqual(requests({ outcome: "Success", operation: "Count" }), 2)
      assert.strictEqual(requests({ outcome: "CountError", operation: "Count" }), 1)
      assert.strictEqual(requests({ outcome: "Interrupted", operation: "Ticks" }), 1)
    }).pipe(Effect.scoped, Effect.provideService(Metric.MetricRegistry, new Map()))
  )

  it.effect.prop(
    "every chunk is delivered exactly once, in order, whatever the window and the chunks",
    [
      Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 6 })),
      Schema.Array(Schema.Array(Schema.Int).check(Schema.isMinLength(1))).check(Schema.isMaxLength(40))
    ],
    ([window, chunks]) =>
      Effect.gen(function* () {
        const pool = yield* makePool(noTicks)
        const client = yield* WorkerPool.client(pool, Counting, { window })
        assert.deepStrictEqual(Array.from(yield* Stream.runCollect(client.Count({ chunks }))), chunks.flat())
        assert.strictEqual(yield* inFlight(pool), 0)
      }).pipe(Effect.scoped),
    { timeout: 60_000, arbitrary: { runs: 50 } }
  )
})
