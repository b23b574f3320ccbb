/**
 * What a call of an operation asks of the pool (its plan), in process and
 * in virtual time: its span and its count name its operation whichever
 * operation came before it; `idempotent` is the client's per operation,
 * unless the call says otherwise; a call's own `timeout` and `queueTimeout`
 * bound it and keep its operation; the policy learns a call's run time but
 * not a stream's. In the mutation set (vitest.mutate.config.ts):
 * the threads, subprocesses and remote runners of the operations tests are not.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Metric, Stream, Tracer } from "effect"
import type { RpcGroup } from "effect/rpc"
import { TestClock } from "effect/testing"
import {
  DispatchPolicy,
  type Operation,
  PoolMetrics,
  QueueTimeout,
  RequestTimeout,
  Worker,
  WorkerCrash,
  WorkerPool
} from "effect-worker-pool"
import { metricValue } from "./fixtures/metrics.ts"
import { Hashing, Streaming, sha256 } from "./fixtures/operations.ts"
import * as S from "./fixtures/support.ts"
import { recordingTracer } from "./fixtures/tracing.ts"

const labels = { pool: "plans", policy: "ShortestExpectedDelay" }

/** The count of the requests of `operation` that ended with `outcome`. */
const requests = (operation: string, outcome: string) =>
  Effect.map(Metric.snapshot, (snapshot) =>
    metricValue(snapshot, PoolMetrics.requests, { ...labels, outcome, operation })
  )

/** A pool of 2 workers serving `Hashing` with `handlers`, each restarted at once after a crash. */
const pairOf = (handlers: Operation.EffectHandlers<RpcGroup.Rpcs<typeof Hashing>>) =>
  WorkerPool.make({
    name: "plans",
    size: 2,
    ejection: false,
    worker: (id) => Worker.fromGroup(id, Hashing, handlers, S.restartAtOnce)
  })

describe("the plan of a call of an operation", () => {
  it.effect("its span and its count name its operation, whichever operation came before", () =>
    Effect.gen(function* () {
      const { tracer, made } = recordingTracer()
      const pool = yield* WorkerPool.make({
        name: "plans",
        size: 1,
        worker: (id) =>
          Worker.fromGroup(id, Hashing, {
            Hash: ({ text }) => Effect.succeed(sha256(text)),
            Verify: ({ text, digest }) => Effect.succeed(sha256(text) === digest)
          })
      })
      const client = yield* WorkerPool.client(pool, Hashing)
      // Untraced calls first, in turns: each counted under its own operation.
      assert.strictEqual(yield* client.Verify({ text: "a", digest: sha256("a") }), true)
      assert.strictEqual(yield* client.Hash({ text: "a" }), sha256("a"))
      assert.strictEqual(yield* client.Hash({ text: "b" }), sha256("b"))
      assert.strictEqual(yield* client.Verify({ text: "b", digest: "no" }), false)
      assert.strictEqual(yield* requests("Hash", "Success"), 2)
      assert.strictEqual(yield* requests("Verify", "Success"), 2)
      // Traced calls, in turns: each span named after its own operation.
      yield* Effect.provideService(
        Effect.gen(function* () {
          yield* client.Hash({ text: "c" })
          yield* client.Verify({ text: "c", digest: "no" })
          yield* client.Verify({ text: "d", digest: "no" })
          yield* client.Hash({ text: "d" })
        }),
        Tracer.Tracer,
        tracer
      )
      assert.deepStrictEqual(
        made
          .filter((span) => span.name.startsWith("WorkerPool.dispatch"))
          .map((span) => [span.name, span.attributes.get("worker_pool.operation")]),
        [
          ["WorkerPool.dispatch Hash", "Hash"],
          ["WorkerPool.dispatch Verify", "Verify"],
          ["WorkerPool.dispatch Verify", "Verify"],
          ["WorkerPool.dispatch Hash", "Hash"]
        ]
      )
      // A single request after them: a span of its own name, counted without an operation.
      yield* Effect.provideService(pool.dispatch({ _tag: "Hash", payload: { text: "e" } }), Tracer.Tracer, tracer)
      assert.strictEqual(made.at(-1)?.name, "WorkerPool.dispatch")
      assert.isUndefined(made.at(-1)?.attributes.get("worker_pool.operation"))
      const snapshot = yield* Metric.snapshot
      assert.strictEqual(metricValue(snapshot, PoolMetrics.requests, { ...labels, outcome: "Success" }), 1)
    }).pipe(Effect.scoped, Effect.provideService(Metric.MetricRegistry, new Map()))
  )

  it.effect("idempotent per operation, and a call's own idempotent overrides it", () =>
    Effect.gen(function* () {
      // A call of "crash" made after `crashNext` is set crashes the worker it runs on; a retry answers.
      let crashNext = false
      let crashes = 0
      const crashOnce = <A>(answer: A) =>
        Effect.suspend(() => {
          if (!crashNext) return Effect.succeed(answer)
          crashNext = false
          crashes++
          return Effect.fail(WorkerCrash.report("crashed on purpose"))
        })
      const pool = yield* pairOf({
        Hash: ({ text }) => crashOnce(sha256(text)),
        Verify: ({ text, digest }) => crashOnce(sha256(text) === digest)
      })
      const client = yield* WorkerPool.client(pool, Hashing, { idempotent: ["Verify"] })
      // The crashed worker restarts 1 ms (virtual) after its crash.
      const everyWorkerUp = Effect.gen(function* () {
        yield* TestClock.adjust("10 millis")
        const states = (yield* pool.health).map(([, health]) => health.state)
        assert.deepStrictEqual(states, ["Healthy", "Healthy"])
      })
      // Hash is not idempotent: its crash is its caller's.
      crashNext = true
      assert.instanceOf(yield* Effect.flip(client.Hash({ text: "crash" })), WorkerCrash)
      yield* everyWorkerUp
      // Verify is: retried on the other worker, and answered.
      crashNext = true
      assert.isTrue(yield* client.Verify({ text: "crash", digest: sha256("crash") }))
      yield* everyWorkerUp
      // A call's own idempotent, both ways.
      crashNext = true
      assert.strictEqual(yield* client.Hash({ text: "crash" }, { idempotent: true }), sha256("crash"))
      yield* everyWorkerUp
      crashNext = true
      assert.instanceOf(
        yield* Effect.flip(client.Verify({ text: "crash", digest: sha256("crash") }, { idempotent: false })),
        WorkerCrash
      )
      assert.strictEqual(crashes, 4)
      assert.strictEqual(yield* requests("Hash", "WorkerCrash"), 1)
      assert.strictEqual(yield* requests("Verify", "WorkerCrash"), 1)
      assert.strictEqual(yield* requests("Hash", "Success"), 1)
      assert.strictEqual(yield* requests("Verify", "Success"), 1)
    }).pipe(Effect.scoped, Effect.provideService(Metric.MetricRegistry, new Map()))
  )

  it.effect("a call's own timeout bounds its run, and its count keeps its operation", () =>
    Effect.gen(function* () {
      const pool = yield* WorkerPool.make({
        name: "plans",
        size: 1,
        worker: (id) =>
          Worker.fromGroup(id, Hashing, {
            Hash: ({ text }) => Effect.as(Effect.sleep("10 seconds"), sha256(text)),
            Verify: () => Effect.succeed(true)
          })
      })
      const client = yield* WorkerPool.client(pool, Hashing)
      const bounded = yield* Effect.forkChild(Effect.flip(client.Hash({ text: "a" }, { timeout: "1 second" })))
      yield* TestClock.adjust("1 second")
      assert.instanceOf(yield* Fiber.join(bounded), RequestTimeout)
      assert.strictEqual(yield* requests("Hash", "RequestTimeout"), 1)
      // Without a timeout of its own, a call of the same operation runs to its end.
      const unbounded = yield* Effect.forkChild(client.Hash({ text: "b" }))
      yield* TestClock.adjust("10 seconds")
      assert.strictEqual(yield* Fiber.join(unbounded), sha256("b"))
    }).pipe(Effect.scoped, Effect.provideService(Metric.MetricRegistry, new Map()))
  )

  it.effect("a call with a timeout of its own is idempotent only if the client or the call says so", () =>
    Effect.gen(function* () {
      let crashes = 0
      const pool = yield* pairOf({
        Hash: () =>
          Effect.suspend(() => {
            crashes++
            return Effect.fail(WorkerCrash.report("crashed on purpose"))
          }),
        Verify: () => Effect.succeed(true)
      })
      const client = yield* WorkerPool.client(pool, Hashing)
      assert.instanceOf(yield* Effect.flip(client.Hash({ text: "a" }, { timeout: "1 second" })), WorkerCrash)
      assert.strictEqual(crashes, 1)
    }).pipe(Effect.scoped, Effect.provideService(Metric.MetricRegistry, new Map()))
  )

  it.effect("the policy learns a call's run time, but not a stream's, whose pace is its reader's", () =>
    Effect.gen(function* () {
      const learnt: Array<readonly [number, boolean]> = []
      const Recording = DispatchPolicy.make({
        name: "Recording",
        initial: () => undefined,
        select: ({ view, state }) => ({ worker: view.at(0).id, state }),
        onResult: (state, result) => {
          learnt.push([result.millis, result.failed])
          return state
        }
      })
      const pool = yield* WorkerPool.make({
        name: "plans",
        policy: Recording,
        size: 1,
        worker: (id) =>
          Worker.fromGroup(id, Streaming, {
            Hash: ({ text }) => Effect.as(Effect.sleep("100 millis"), sha256(text)),
            Lines: ({ text }) => Stream.fromEffect(Effect.as(Effect.sleep("300 millis"), text))
          })
      })
      const client = yield* WorkerPool.client(pool, Streaming)
      for (const timeout of [undefined, "1 second"] as const) {
        learnt.length = 0
        const options = timeout === undefined ? undefined : { timeout }
        const hashed = yield* Effect.forkChild(client.Hash({ text: "a" }, options))
        yield* TestClock.adjust("100 millis")
        assert.strictEqual(yield* Fiber.join(hashed), sha256("a"))
        const lines = yield* Effect.forkChild(Stream.runCollect(client.Lines({ text: "b" }, options)))
        yield* TestClock.adjust("300 millis")
        assert.deepStrictEqual(yield* Fiber.join(lines), ["b"])
        assert.deepStrictEqual(learnt, [[100, false]], `timeout ${timeout}`)
      }
    }).pipe(Effect.scoped)
  )

  it.effect("a call's own queueTimeout bounds its wait for a slot, and its count keeps its operation", () =>
    Effect.gen(function* () {
      const gate = yield* Deferred.make<void>()
      const pool = yield* WorkerPool.make({
        name: "plans",
        size: 1,
        worker: (id) =>
          Worker.fromGroup(id, Hashing, {
            Hash: ({ text }) => Effect.as(Deferred.await(gate), sha256(text)),
            Verify: () => Effect.succeed(true)
          })
      })
      const client = yield* WorkerPool.client(pool, Hashing)
      const holding = yield* Effect.forkChild(client.Hash({ text: "a" }))
      yield* Effect.yieldNow
      const [[, health]] = yield* pool.health
      assert.strictEqual(health.inFlight, 1)
      const waiting = yield* Effect.forkChild(
        Effect.flip(client.Verify({ text: "a", digest: "no" }, { queueTimeout: "1 second" }))
      )
      const patient = yield* Effect.forkChild(client.Verify({ text: "b", digest: "no" }))
      yield* Effect.yieldNow
      assert.strictEqual(yield* pool.queued, 2)
      yield* TestClock.adjust("1 second")
      assert.instanceOf(yield* Fiber.join(waiting), QueueTimeout)
      assert.strictEqual(yield* requests("Verify", "QueueTimeout"), 1)
      yield* Deferred.succeed(gate, undefined)
      assert.strictEqual(yield* Fiber.join(holding), sha256("a"))
      assert.isTrue(yield* Fiber.join(patient))
    }).pipe(Effect.scoped, Effect.provideService(Metric.MetricRegistry, new Map()))
  )
})
