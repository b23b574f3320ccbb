/**
 * `node --conditions=effect-worker-pool-source bench/tracing.ts`: what a span per dispatch
 * costs. A pool of 4 in-process workers, made with the library's defaults,
 * dispatches without a tracer of the application's (no span: the library's
 * default) and with one installed (a span per dispatch), in interleaved
 * rounds; the ratio of the two, per round, and its median over the rounds
 * are printed, beside `Effect.withSpan` around the bare handler under the
 * same tracer, against the bare handler.
 *
 * The tracer makes Effect's own `NativeSpan`s and keeps none: the figure is
 * the cost of the span, not of an exporter.
 */
import { loadavg } from "node:os"
import { Effect, Exit, Scope, Tracer } from "effect"
import { Worker, WorkerPool } from "effect-worker-pool"
import { cpuTimed, interleave, type Loop, nanosPerOperation, ratio } from "./rounds.ts"

const rounds = 31
const targetMillis = 25

const handler = (x: number) => Effect.sync(() => x + 1)

const tracer = Tracer.make({ span: (options) => new Tracer.NativeSpan(options) })

type One = (x: number) => Effect.Effect<unknown, unknown>

const sequential =
  (one: One, traced: boolean): Loop =>
  (iterations) =>
    cpuTimed(() =>
      Effect.runPromise(
        Effect.gen(function* () {
          for (let i = 0; i < iterations; i++) yield* one(i)
        }).pipe(traced ? Effect.provideService(Tracer.Tracer, tracer) : (self) => self)
      )
    )

const loadAtStart = loadavg()[0]!
const scope = Scope.makeUnsafe()
const pool = await Effect.runPromise(
  WorkerPool.make({ size: 4, worker: (id) => Worker.make(id, handler) }).pipe(Scope.provide(scope))
)
const dispatch: One = (x) => pool.dispatch(x)
const spanned: One = (x) => Effect.withSpan(handler(x), "handler")
const ns = await interleave(
  await nanosPerOperation(
    [sequential(dispatch, false), sequential(dispatch, true), sequential(handler, false), sequential(spanned, true)],
    targetMillis
  ),
  rounds
)
await Effect.runPromise(Scope.close(scope, Exit.void))
const [plain, traced, bare, bareSpanned] = ns as [Array<number>, Array<number>, Array<number>, Array<number>]
const withSpan = ratio(traced, plain)
const reference = ratio(bareSpanned, bare)
console.log(
  `dispatch with a span / without: ${withSpan.median.toFixed(2)} (${withSpan.low.toFixed(2)}–${withSpan.high.toFixed(2)})`
)
console.log(
  `Effect.withSpan(handler) / handler: ${reference.median.toFixed(2)} (${reference.low.toFixed(2)}–${reference.high.toFixed(2)})`
)
console.log(
  `${rounds} rounds, Node ${process.version}, load average ${loadAtStart.toFixed(2)} → ${loadavg()[0]!.toFixed(2)}`
)
