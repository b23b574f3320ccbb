/**
 * Streamed operations over the wire (protocol 3: `Chunk`, `Ack`), on real
 * threads and subprocesses (JSON lines and the binary frame): chunks in
 * order, the window across the boundary (the child's producer stops at the
 * window), the caller closing its stream cancels the child's handler, a
 * crash mid-stream is a `WorkerCrash` and the worker comes back, a domain
 * error leaves it healthy, an oversized chunk is a typed crash, and a child
 * of protocol 2 still serves a parent of protocol 3.
 */
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { Arbitrary, Effect, Schema, Stream } from "effect"
import type { RpcGroup } from "effect/rpc"
import { InvalidRequest, Operation, ScriptPool, Subprocess, Worker, WorkerCrash, WorkerPool } from "effect-worker-pool"
import { withFrame } from "./fixtures/frames.ts"
import { drain, errorOf, inFlight } from "./fixtures/stream-checks.ts"
import { CountError, Streams } from "./fixtures/streams.ts"
import * as S from "./fixtures/support.ts"

const script = new URL("./fixtures/streams-worker.ts", import.meta.url)
const frameChild = fileURLToPath(new URL("./fixtures/frame-child.mjs", import.meta.url))
const fast = { startTimeout: "20 seconds", cancelGrace: "5 seconds", shutdownTimeout: "1 second" } as const
const source = { execArgv: ["--conditions=effect-worker-pool-source"] }

const kinds = [
  ["a thread", undefined, { thread: script }],
  ["a subprocess (binary frame)", "v8", { subprocess: script, nodePath: S.node, killGrace: "1 second" }],
  ["a subprocess (JSON lines)", "json", { subprocess: script, nodePath: S.node, killGrace: "1 second" }]
] as const

/** A pool of one worker of `kind` that serves `Streams`, taking 4 requests at once. */
const makePool = (
  kind: (typeof kinds)[number][2],
  options?: { readonly maxLineBytes?: number; readonly window?: number }
) => ScriptPool.make({ ...kind, ...source, ...fast, ...options, concurrency: 4, group: Streams, size: 1 })

describe("streamed operations over the wire", { timeout: 120_000 }, () => {
  for (const [name, frame, kind] of kinds) {
    it.live(`${name}: chunks in order, a domain error mid-stream, a crash mid-stream`, () =>
      S.live(() =>
        withFrame(
          frame,
          Effect.gen(function* () {
            const pool = yield* makePool(kind)
            const client = pool.client
            const chunks = [[1, 2, 3], [4], [5, 6, 7, 8]]
            assert.deepStrictEqual(
              Array.from(yield* Stream.runCollect(client.Count({ chunks }))),
              [1, 2, 3, 4, 5, 6, 7, 8]
            )
            const many = Array.from({ length: 300 }, (_, i) => [i])
            assert.deepStrictEqual(Array.from(yield* Stream.runCollect(client.Count({ chunks: many }))), many.flat())

            const failed = yield* drain(client.Count({ chunks: [[1, 2], [-1], [3]] }))
            assert.deepStrictEqual(failed.seen, [1, 2])
            assert.instanceOf(errorOf(failed.exit), CountError)
            const [[, healthy]] = yield* pool.health
            assert.deepStrictEqual([healthy.state, healthy.crashes, healthy.inFlight], ["Healthy", 0, 0])

            const crashed = yield* drain(client.Count({ chunks: [[1, 2], [-2], [3]] }))
            assert.deepStrictEqual(crashed.seen, [1, 2])
            assert.instanceOf(errorOf(crashed.exit), WorkerCrash)
            // The worker comes back and serves.
            assert.deepStrictEqual(Array.from(yield* Stream.runCollect(client.Count({ chunks: [[9]] }))), [9])
            const [[, after]] = yield* pool.health
            assert.deepStrictEqual([after.crashes, after.restarts, after.inFlight], [1, 1, 0])
          })
        )
      )
    )

    it.live(`${name}: the child's producer stops at the window; closing the stream cancels its handler`, () =>
      S.live(() =>
        withFrame(
          frame,
          Effect.gen(function* () {
            const window = 4
            const pool = yield* makePool(kind, { window })
            const client = pool.client
            const produced = Effect.map(pool.client.Produced({}), (p) => p.produced)
            let consumed = 0
            const seen = yield* Stream.runCollect(
              client.Ticks({ limit: 100_000 }).pipe(
                Stream.take(30),
                Stream.tap((n) =>
                  Effect.gen(function* () {
                    consumed++
                    if (n !== 10) return
                    // Holding element 10: the child fills the window, holds one more, and stops there.
                    const bound = consumed + window + 1
                    const reached = yield* Effect.repeat(produced, { until: (p) => p >= bound })
                    assert.strictEqual(reached, bound)
                    for (let i = 0; i < 5; i++) assert.strictEqual(yield* produced, bound)
                  })
                )
              )
            )
            assert.deepStrictEqual(
              Array.from(seen),
              Array.from({ length: 30 }, (_, i) => i + 1)
            )
            // The stream is closed: the child's handler is interrupted, and the slot comes back once it stopped.
            yield* Effect.repeat(pool.client.Produced({}), { until: (p) => p.interrupted === 1 })
            assert.isBelow(yield* produced, 30 + window + 2)
            yield* Effect.repeat(inFlight(pool), { until: (n) => n === 0 })
            const [[, health]] = yield* pool.health
            assert.deepStrictEqual([health.state, health.crashes], ["Healthy", 0])
          })
        )
      )
    )
  }

  /** A case of the property: a window, chunks of elements, and where the reader stops (past the end: never). */
  const Case = Schema.Struct({
    window: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 8 })),
    chunks: Schema.Array(
      Schema.Array(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 1000 }))).check(Schema.isMinLength(1))
    ).check(Schema.isMaxLength(30)),
    stopAt: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 120 }))
  })
  for (const [name, frame, kind] of [kinds[0], kinds[1]] as const) {
    it.live(
      `${name}: every chunk is delivered once, in order, whatever the window and the chunks (sampled cases)`,
      () =>
        S.live(() =>
          withFrame(
            frame,
            Effect.gen(function* () {
              const pool = yield* makePool(kind)
              const cases = yield* Arbitrary.sampleEffect(Arbitrary.schema(Case), { count: 40, seed: 17 })
              for (const { window, chunks, stopAt } of cases) {
                const client = yield* WorkerPool.client(pool, Streams, { window })
                const all = chunks.flat()
                const read = yield* Stream.runCollect(Stream.take(client.Count({ chunks }), stopAt))
                assert.deepStrictEqual(Array.from(read), all.slice(0, stopAt))
              }
              // Every stream ended or was cancelled and confirmed: nothing holds the worker.
              yield* Effect.repeat(inFlight(pool), { until: (n) => n === 0 })
              const [[, health]] = yield* pool.health
              assert.deepStrictEqual([health.state, health.crashes], ["Healthy", 0])
            })
          )
        )
    )
  }

  it.effect("ScriptPool.make checks its window: InvalidOptions, nothing started", () =>
    Effect.gen(function* () {
      for (const window of [0, 2.5, "4"]) {
        const wrong = yield* Effect.flip(makePool(kinds[0][2], { window: window as never }))
        assert.strictEqual(wrong._tag, "InvalidOptions")
        assert.match(wrong.reason, /window must be a positive integer/)
      }
    }).pipe(Effect.scoped)
  )

  it.live("an oversized chunk fails the stream with a WorkerCrash that says why, after the chunks before it", () =>
    S.live(() =>
      withFrame(
        "json",
        Effect.gen(function* () {
          const pool = yield* makePool(kinds[2][2], { maxLineBytes: 64 * 1024 })
          const big = yield* Effect.flip(Stream.runCollect(pool.client.Big({ bytes: 100_000 })))
          assert.instanceOf(big, WorkerCrash)
          assert.match((big as WorkerCrash).message, /a chunk could not be sent/)
          assert.deepStrictEqual(Array.from(yield* Stream.runCollect(pool.client.Big({ bytes: 10 }))), ["x".repeat(10)])
        })
      )
    )
  )

  for (const offer of [true, false]) {
    it.live(`a child of protocol 2 (${offer ? "binary frame" : "JSON lines"}) serves a parent of protocol 3`, () =>
      S.live(() =>
        // The parent takes the frame the child offers (whatever frame the run's environment asks for).
        withFrame(
          "v8",
          Effect.gen(function* () {
            const child = (schemas: { readonly request: any; readonly response: any; readonly error?: any }) =>
              Subprocess.make({
                command: process.execPath,
                args: [frameChild],
                env: { FRAME_OFFER: offer ? "v8" : "none" },
                killGrace: "1 second",
                ...schemas
              })
            const Text = Schema.Struct({ text: Schema.String })
            const Read = Schema.Struct({ read: Schema.String, echo: Schema.String })
            const pool = yield* WorkerPool.make({
              size: 1,
              worker: (id) => Worker.fromKind(id, child({ request: Text, response: Read }))
            })
            assert.deepStrictEqual(yield* pool.dispatch({ text: "old" }), { read: offer ? "v8" : "json", echo: "old" })
            // A streamed call to it is refused, typed, and the child stays up.
            const schemas = yield* Operation.schemas(Streams)
            const streams = yield* WorkerPool.make({ size: 1, worker: (id) => Worker.fromKind(id, child(schemas)) })
            const client = yield* WorkerPool.client(
              streams as never as Operation.Pool<RpcGroup.Rpcs<typeof Streams>>,
              Streams
            )
            const refused = yield* Effect.flip(Stream.runCollect(client.Ticks({ limit: 3 })))
            assert.instanceOf(refused, InvalidRequest)
            assert.match((refused as InvalidRequest).reason, /speaks protocol version 2, which has no streams/)
            const [[, health]] = yield* streams.health
            assert.deepStrictEqual([health.state, health.crashes], ["Healthy", 0])
          })
        )
      )
    )
  }
})
