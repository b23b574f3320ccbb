/**
 * Metrics and traces: what a pool reports through Effect's `Metric`, and the
 * span of each dispatch, carried to thread, subprocess and remote workers so
 * that a handler's spans in the child (or on the runner) are children of it.
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as OtelTracer from "@effect/opentelemetry/OtelTracer"
import { assert, describe, it } from "@effect/vitest"
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Deferred, Effect, Fiber, Layer, Metric, Schedule, Schema, Tracer } from "effect"
import { TestClock } from "effect/testing"
import { DispatchPolicy, PoolMetrics, Subprocess, Thread, Worker, WorkerPool } from "effect-worker-pool"
import { Remote } from "effect-worker-pool/remote"
import { metricValue } from "./fixtures/metrics.ts"
import { freePort, startScript } from "./fixtures/remote-processes.ts"
import type { SpanLine } from "./fixtures/span-file.ts"
import * as S from "./fixtures/support.ts"
import * as T from "./support.ts"

/** Runs `effect` with a metric registry of its own. */
const isolated = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.provideService(effect, Metric.MetricRegistry, new Map())

const pool = { pool: "observed", policy: "RoundRobin" }
const kind = { ...pool, kind: "in-process" }

describe("metrics", () => {
  it.effect("count requests by outcome, and the workers' crashes, restarts, slots and states", () =>
    isolated(
      Effect.gen(function* () {
        const p = yield* WorkerPool.make({
          name: "observed",
          policy: DispatchPolicy.RoundRobin,
          size: 2,
          // One slot per worker, pinned: the requests below fill the slots and the queue, and an
          // adaptive limit (the in-process default) grows as answers return.
          worker: (id) => Worker.make(id, T.handler, { restart: Schedule.spaced("1 second"), maxInFlight: 1 }),
          queueCapacity: 1,
          queueStrategy: "fail"
        })
        yield* p.dispatch(T.ok(1))
        yield* p.dispatch(T.ok(2))
        yield* Effect.exit(p.dispatch(T.domain))

        // Two requests hold both workers, one waits, one is refused: the queue holds one.
        const gate = yield* Deferred.make<number>()
        const held = yield* Effect.forEach([1, 2], () => Effect.forkChild(p.dispatch(T.wait(gate))))
        const waiting = yield* Effect.forkChild(p.dispatch(T.ok(3)))
        yield* Effect.yieldNow
        const busy = yield* Effect.exit(p.dispatch(T.ok(4)))
        assert.strictEqual(T.errorOf(busy)?._tag, "PoolBusy")

        const during = yield* Metric.snapshot
        assert.strictEqual(metricValue(during, PoolMetrics.queued, pool), 1)
        assert.strictEqual(metricValue(during, PoolMetrics.inFlight, kind), 2)
        assert.strictEqual(metricValue(during, PoolMetrics.maxInFlight, kind), 2, "two workers of one slot each")

        yield* Fiber.interrupt(waiting)
        yield* Deferred.succeed(gate, 7)
        yield* Fiber.joinAll(held)
        yield* Effect.exit(p.dispatch(T.crash))

        const after = yield* Metric.snapshot
        const requests = (outcome: string) => metricValue(after, PoolMetrics.requests, { ...pool, outcome })
        assert.strictEqual(requests("Success"), 4)
        assert.strictEqual(requests("DomainError"), 1)
        assert.strictEqual(requests("WorkerCrash"), 1)
        assert.strictEqual(requests("PoolBusy"), 1)
        assert.strictEqual(requests("Interrupted"), 1)
        assert.strictEqual(metricValue(after, PoolMetrics.queued, pool), 0)
        assert.strictEqual(metricValue(after, PoolMetrics.inFlight, kind), 0)
        assert.strictEqual(metricValue(after, PoolMetrics.crashes, kind), 1)
        // Every request that took a slot ran: 4 successes, a domain error, a crash.
        assert.strictEqual(metricValue(after, PoolMetrics.runTime, kind), 6)
        // Every request but the refused one waited for a slot (most for 0 ms), the one that left too.
        assert.strictEqual(metricValue(after, PoolMetrics.queueWait, pool), 7)
        assert.strictEqual(metricValue(after, PoolMetrics.workers, { ...kind, state: "Healthy" }), 1)
        assert.strictEqual(metricValue(after, PoolMetrics.workers, { ...kind, state: "Restarting" }), 1)

        yield* TestClock.adjust("1 second")
        const restarted = yield* Metric.snapshot
        assert.strictEqual(metricValue(restarted, PoolMetrics.restarts, kind), 1)
        assert.strictEqual(metricValue(restarted, PoolMetrics.workers, { ...kind, state: "Healthy" }), 2)
      }).pipe(Effect.scoped)
    )
  )

  it.effect("count timeouts, retries and ejections", () =>
    isolated(
      Effect.gen(function* () {
        const gate = yield* Deferred.make<number>()
        const p = yield* WorkerPool.make({
          name: "observed",
          policy: DispatchPolicy.RoundRobin,
          size: 2,
          worker: (id) => Worker.make(id, T.handler),
          ejection: { consecutiveFailures: 1 }
        })
        const timedOut = yield* Effect.forkChild(p.dispatch(T.wait(gate), { timeout: "1 second" }))
        yield* Effect.yieldNow
        yield* TestClock.adjust("1 second")
        assert.strictEqual(T.errorOf(yield* Fiber.await(timedOut))?._tag, "RequestTimeout")
        // Worker 0 is ejected: the request goes to worker 1, whose crash leaves no healthy worker
        // (the pool is in panic), so its retry goes to worker 0, and crashes it too.
        const retried = yield* Effect.exit(p.dispatch(T.crash, { idempotent: true }))
        assert.strictEqual(T.errorOf(retried)?._tag, "WorkerCrash")
        const snapshot = yield* Metric.snapshot
        const requests = (outcome: string) => metricValue(snapshot, PoolMetrics.requests, { ...pool, outcome })
        assert.strictEqual(requests("RequestTimeout"), 1)
        assert.strictEqual(requests("WorkerCrash"), 1)
        assert.strictEqual(metricValue(snapshot, PoolMetrics.ejections, kind), 1)
        assert.strictEqual(metricValue(snapshot, PoolMetrics.retries, pool), 1)
      }).pipe(Effect.scoped)
    )
  )

  it.effect("a per-worker series with metrics.workerId; counts outlive their pool, and pools of one name add up", () =>
    isolated(
      Effect.gen(function* () {
        const run = (n: number, before: readonly [number, number]) =>
          Effect.scoped(
            Effect.gen(function* () {
              const p = yield* WorkerPool.make({
                name: "observed",
                policy: DispatchPolicy.RoundRobin,
                size: 2,
                worker: (id) => Worker.make(id, T.handler),
                metrics: { workerId: true }
              })
              yield* Effect.forEach(
                Array.from({ length: n }, (_, i) => i),
                (i) => p.dispatch(T.ok(i))
              )
              const snapshot = yield* Metric.snapshot
              // A series per worker; what the previous pool of that name counted stays in it.
              const ran = (id: string) => metricValue(snapshot, PoolMetrics.runTime, { ...kind, worker_id: id })
              assert.strictEqual(ran("0"), before[0] + Math.ceil(n / 2))
              assert.strictEqual(ran("1"), before[1] + Math.floor(n / 2))
              assert.strictEqual(metricValue(snapshot, PoolMetrics.runTime, kind), undefined)
            })
          )
        yield* run(3, [0, 0])
        yield* run(4, [2, 1])
        const [one, two] = yield* Effect.all([
          WorkerPool.make({
            name: "observed",
            policy: DispatchPolicy.RoundRobin,
            size: 1,
            worker: (id) => Worker.make(id, T.handler)
          }),
          WorkerPool.make({
            name: "observed",
            policy: DispatchPolicy.RoundRobin,
            size: 1,
            worker: (id) => Worker.make(id, T.handler)
          })
        ])
        yield* one.dispatch(T.ok(1))
        yield* two.dispatch(T.ok(2))
        const snapshot = yield* Metric.snapshot
        assert.strictEqual(metricValue(snapshot, PoolMetrics.requests, { ...pool, outcome: "Success" }), 3 + 4 + 2)
        assert.strictEqual(metricValue(snapshot, PoolMetrics.workers, { ...kind, state: "Healthy" }), 2)
      }).pipe(Effect.scoped)
    )
  )
})

/** A tracer that keeps every span it ends, in memory. */
const inMemoryTracing = () => {
  const exporter = new InMemorySpanExporter()
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  const layer = OtelTracer.layer.pipe(Layer.provide(Layer.succeed(OtelTracer.OtelTracerProvider)(provider)))
  return { exporter, layer }
}

const tracedScript = new URL("./fixtures/traced-worker.ts", import.meta.url)
const tracedRunner = new URL("./fixtures/traced-runner.ts", import.meta.url).pathname

/** Where the child writes its spans, fresh. */
const spansFile = () => Path.join(Fs.mkdtempSync(Path.join(Os.tmpdir(), "ewp-spans-")), "spans.jsonl")

const readSpans = (file: string): ReadonlyArray<SpanLine> =>
  Fs.existsSync(file)
    ? Fs.readFileSync(file, "utf8")
        .split("\n")
        .filter((line) => line !== "")
        .map((line) => JSON.parse(line) as SpanLine)
    : []

/**
 * Dispatches five strings to `pool` (one alone, three at once, one with a timeout, so that requests go from the
 * caller's fiber, from a freed slot and from a fiber of the worker's), then checks that each span the child (or
 * runner) wrote to `file` is a child of its own dispatch span, in its trace.
 */
const dispatchAndCheckChildren = <E>(
  pool: WorkerPool.WorkerPool<string, string, E>,
  tracing: ReturnType<typeof inMemoryTracing>,
  file: string
) =>
  Effect.gen(function* () {
    assert.strictEqual(yield* pool.dispatch("hello"), "HELLO")
    // Sent from a slot freed by another request: the trace goes without a fiber of the caller's.
    const answers = yield* Effect.forEach(["a", "b", "c"], (text) => pool.dispatch(text), { concurrency: 3 })
    assert.deepStrictEqual(answers, ["A", "B", "C"])
    // With a timeout, the request runs on a fiber of the worker's: the span goes in its context.
    assert.strictEqual(yield* pool.dispatch("d", { timeout: "20 seconds" }), "D")

    const dispatches = tracing.exporter.getFinishedSpans().filter((span) => span.name === "WorkerPool.dispatch")
    const children = readSpans(file)
    assert.strictEqual(dispatches.length, 5)
    assert.strictEqual(children.length, 5)
    for (const child of children) {
      assert.strictEqual(child.name, "handler")
      const parent = dispatches.find((span) => span.spanContext().spanId === child.parentSpanId)
      assert.isDefined(parent, `the child span's parent ${child.parentSpanId} is no dispatch span`)
      assert.strictEqual(child.traceId, parent!.spanContext().traceId)
    }
    assert.strictEqual(new Set(children.map((child) => child.parentSpanId)).size, 5)
  })

describe("traces", { timeout: 30_000 }, () => {
  it.effect("no span under Effect's default tracer", () =>
    Effect.gen(function* () {
      const spans: Array<string> = []
      const p = yield* WorkerPool.make({ size: 1, worker: (id) => Worker.make(id, T.handler) })
      yield* p.dispatch(T.ok(1))
      // A tracer of the application's is what turns the spans on.
      const tracer = Tracer.make({
        span: (options) => {
          spans.push(options.name)
          return new Tracer.NativeSpan(options)
        }
      })
      yield* p.dispatch(T.ok(2)).pipe(Effect.provideService(Tracer.Tracer, tracer))
      assert.deepStrictEqual(spans, ["WorkerPool.dispatch"])
    }).pipe(Effect.scoped)
  )

  it.effect(
    "a span per dispatch, with its worker, kind, policy, attempt and time queued; in-process spans are its children",
    () => {
      const tracing = inMemoryTracing()
      return Effect.gen(function* () {
        const gate = yield* Deferred.make<number>()
        const p = yield* WorkerPool.make({
          name: "traced",
          policy: DispatchPolicy.RoundRobin,
          size: 1,
          worker: (id) =>
            Worker.make(id, (request: T.Behaviour) => Effect.withSpan(T.handler(request), "handler"), {
              maxInFlight: 1
            })
        })
        const first = yield* Effect.forkChild(p.dispatch(T.wait(gate)))
        yield* Effect.yieldNow
        const second = yield* Effect.forkChild(p.dispatch(T.ok(2)))
        yield* Effect.yieldNow
        yield* TestClock.adjust("250 millis")
        yield* Deferred.succeed(gate, 1)
        assert.strictEqual(yield* Fiber.join(first), 1)
        assert.strictEqual(yield* Fiber.join(second), 2)

        const spans = tracing.exporter.getFinishedSpans()
        const dispatches = spans.filter((span) => span.name === "WorkerPool.dispatch")
        const handlers = spans.filter((span) => span.name === "handler")
        assert.strictEqual(dispatches.length, 2)
        assert.strictEqual(handlers.length, 2)
        for (const dispatch of dispatches) {
          assert.strictEqual(dispatch.attributes["worker_pool.name"], "traced")
          assert.strictEqual(dispatch.attributes["worker_pool.policy"], "RoundRobin")
          assert.strictEqual(dispatch.attributes["worker_pool.worker_id"], 0)
          assert.strictEqual(dispatch.attributes["worker_pool.kind"], "in-process")
          assert.strictEqual(dispatch.attributes["worker_pool.attempt"], 1)
          const child = handlers.find((span) => span.parentSpanContext?.spanId === dispatch.spanContext().spanId)
          assert.isDefined(child)
          assert.strictEqual(child!.spanContext().traceId, dispatch.spanContext().traceId)
        }
        assert.deepStrictEqual(dispatches.map((span) => span.attributes["worker_pool.queued_ms"]).sort(), [0, 250])
      }).pipe(Effect.scoped, Effect.provide(tracing.layer))
    }
  )

  for (const [label, makeKind] of [
    [
      "a subprocess",
      (file: string) =>
        Subprocess.node(tracedScript, {
          nodePath: S.node,
          execArgv: ["--conditions=effect-worker-pool-source"],
          env: { EWP_SPANS_FILE: file },
          request: Schema.String,
          response: Schema.String
        })
    ],
    [
      "a thread",
      (file: string) =>
        Thread.make(tracedScript, {
          execArgv: ["--conditions=effect-worker-pool-source"],
          env: { EWP_SPANS_FILE: file },
          request: Schema.String,
          response: Schema.String
        })
    ]
  ] as const) {
    it.live(`the handler's spans in ${label} are children of the dispatch span, in its trace`, () => {
      const tracing = inMemoryTracing()
      const file = spansFile()
      return Effect.gen(function* () {
        const p = yield* WorkerPool.make({
          name: "traced",
          size: 1,
          spares: 0,
          worker: (id) => Worker.fromKind(id, makeKind(file))
        })
        yield* dispatchAndCheckChildren(p, tracing, file)
      }).pipe(Effect.scoped, Effect.provide(tracing.layer))
    })
  }

  it.live("the handler's spans on a remote runner are children of the dispatch span, in its trace", () => {
    const tracing = inMemoryTracing()
    const file = spansFile()
    return Effect.gen(function* () {
      const port = yield* freePort
      const runner = yield* startScript(tracedRunner, port, { args: [String(port)], env: { EWP_SPANS_FILE: file } })
      const { pool } = yield* Remote.pool({
        addresses: [runner.address],
        request: Schema.String,
        response: Schema.String,
        connectTimeout: "20 seconds",
        pool: { name: "traced", spares: 0 }
      })
      yield* dispatchAndCheckChildren(pool, tracing, file)
      // Untraced (Effect's default tracer), the request carries nothing: the runner's span starts a trace of its own.
      assert.strictEqual(yield* Effect.provideService(pool.dispatch("e"), Tracer.Tracer, Tracer.nativeTracer), "E")
      const untraced = readSpans(file).slice(5)
      assert.strictEqual(untraced.length, 1)
      assert.strictEqual(untraced[0]!.parentSpanId, undefined)
    }).pipe(Effect.scoped, Effect.provide(tracing.layer))
  })

  it.live("a request without a span carries no trace context: the child's handler starts a trace of its own", () => {
    const file = spansFile()
    return Effect.gen(function* () {
      const p = yield* WorkerPool.make({
        size: 1,
        spares: 0,
        worker: (id) =>
          Worker.fromKind(
            id,
            Thread.make(tracedScript, {
              execArgv: ["--conditions=effect-worker-pool-source"],
              env: { EWP_SPANS_FILE: file },
              request: Schema.String,
              response: Schema.String
            })
          )
      })
      assert.strictEqual(yield* p.dispatch("x"), "X")
      const [child] = readSpans(file)
      assert.strictEqual(child?.parentSpanId, undefined)
    }).pipe(Effect.scoped)
  })
})
