/**
 * Operations from an `RpcGroup`: one pool serves every operation of a
 * group, on every kind (in process, threads, subprocesses on both frames,
 * remote runners), through a typed client; bad input (an unknown tag, a
 * payload its schema refuses, a missing handler, a streamed operation) is a
 * clear typed error and the worker stays up; `idempotent` is per operation;
 * spans and request metrics name the operation.
 */
import { spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Metric, Schedule, Stream, Tracer } from "effect"
import type { RpcGroup } from "effect/rpc"
import {
  InvalidRequest,
  Operation,
  PoolMetrics,
  Runner,
  ScriptPool,
  Worker,
  WorkerCrash,
  WorkerId,
  WorkerPool
} from "effect-worker-pool"
import { Remote } from "effect-worker-pool/remote"
import { withFrame } from "./fixtures/frames.ts"
import { metricValue } from "./fixtures/metrics.ts"
import { HashError, Hashing, Lax, Streaming, sha256 } from "./fixtures/operations.ts"
import * as S from "./fixtures/support.ts"
import { recordingTracer } from "./fixtures/tracing.ts"

const script = new URL("./fixtures/operations-worker.ts", import.meta.url)
const fast = { startTimeout: "20 seconds", cancelGrace: "2 seconds", shutdownTimeout: "1 second" } as const
const source = { execArgv: ["--conditions=effect-worker-pool-source"] }

/** The in-process handlers of `Hashing`; `Hash` of `"crash"` crashes its worker. */
const handlers: Operation.EffectHandlers<RpcGroup.Rpcs<typeof Hashing>> = {
  Hash: ({ text }) =>
    text === ""
      ? Effect.fail(new HashError({ reason: "empty text" }))
      : text === "crash"
        ? Effect.fail(WorkerCrash.report("crashed on purpose"))
        : Effect.succeed(sha256(text)),
  Verify: ({ text, digest }) => Effect.succeed(sha256(text) === digest)
}

/** What every kind must do with a client of `Hashing`: answers, a domain error, the worker up. */
const exercise = (client: Operation.Client<RpcGroup.Rpcs<typeof Hashing>>) =>
  Effect.gen(function* () {
    const digest = yield* client.Hash({ text: "abc" })
    assert.strictEqual(digest, sha256("abc"))
    assert.isTrue(yield* client.Verify({ text: "abc", digest }))
    assert.isFalse(yield* client.Verify({ text: "abd", digest }))
    const failed = yield* Effect.flip(client.Hash({ text: "" }))
    assert.instanceOf(failed, HashError)
    assert.strictEqual((failed as HashError).reason, "empty text")
    // Concurrent calls of both operations, each with its own answer.
    const texts = ["a", "b", "c", "d", "e", "f"]
    const answers = yield* Effect.forEach(
      texts,
      (text, i): Effect.Effect<string | boolean, unknown> =>
        i % 2 === 0 ? client.Hash({ text }) : client.Verify({ text, digest: sha256(text) }),
      { concurrency: "unbounded" }
    )
    assert.deepStrictEqual(
      answers,
      texts.map((text, i) => (i % 2 === 0 ? sha256(text) : true))
    )
  })

/** Never called: what must not compile (the typecheck of the tests checks each `@ts-expect-error`). */
const mustNotCompile = (
  client: Operation.Client<RpcGroup.Rpcs<typeof Hashing>>,
  pool: Operation.Pool<RpcGroup.Rpcs<typeof Hashing>>,
  streaming: Operation.Client<RpcGroup.Rpcs<typeof Streaming>>
) => {
  // @ts-expect-error a payload of the wrong shape
  client.Hash({ text: 1 })
  // @ts-expect-error a payload that misses a field
  client.Verify({ text: "abc" })
  // @ts-expect-error Hash gives a string, not a number
  const wrong: Effect.Effect<number, unknown> = client.Hash({ text: "abc" })
  // @ts-expect-error Verify fails with no HashError
  const noHashError: Effect.Effect<boolean, HashError> = client.Verify({ text: "abc", digest: "" })
  // @ts-expect-error no such operation
  client.Sign({ text: "abc" })
  // @ts-expect-error idempotent names the group's operations only
  WorkerPool.client(pool, Hashing, { idempotent: ["Sign"] })
  // @ts-expect-error a handler of the wrong success type
  Worker.fromGroup(WorkerId.make(0), Hashing, { ...handlers, Hash: () => Effect.succeed(1) })
  // @ts-expect-error a handler is missing
  Worker.fromGroup(WorkerId.make(0), Hashing, { Hash: handlers.Hash })
  const wrongPayload = { Hash: ({ text }: { readonly text: number }) => String(text), Verify: () => true }
  // @ts-expect-error a runner's handler of the wrong payload
  Runner.run({ group: Hashing, handlers: wrongPayload })
  // @ts-expect-error a streamed operation's method gives a Stream, not an Effect
  const _lines: Effect.Effect<unknown, unknown> = streaming.Lines({ text: "a" })
  streaming.Hash({ text: "a" })
  return [wrong, noHashError]
}

/** Every worker of `pool` is healthy and never crashed. */
const allHealthy = (pool: WorkerPool.WorkerPool<any, any, any>) =>
  Effect.gen(function* () {
    for (const [, health] of yield* pool.health) {
      assert.strictEqual(health.state, "Healthy")
      assert.strictEqual(health.crashes, 0)
    }
  })

describe("operations", { timeout: 60_000 }, () => {
  it.effect("in process: Worker.fromGroup serves both operations; an unknown tag is InvalidRequest", () =>
    Effect.gen(function* () {
      const pool = yield* WorkerPool.make({ size: 2, worker: (id) => Worker.fromGroup(id, Hashing, handlers) })
      const client = yield* WorkerPool.client(pool, Hashing)
      yield* exercise(client)
      const unknown = yield* Effect.flip(pool.dispatch({ _tag: "Nope", payload: { text: "a" } } as never))
      assert.instanceOf(unknown, InvalidRequest)
      assert.match((unknown as InvalidRequest).reason, /no operation Nope in the group/)
      yield* allHealthy(pool)
    }).pipe(Effect.scoped)
  )

  it.live("threads: one pool of a script that serves a group, with its client", () =>
    S.live(() =>
      Effect.gen(function* () {
        const pool = yield* ScriptPool.make({ thread: script, ...source, ...fast, group: Hashing, size: 2 })
        assert.strictEqual(yield* pool.size, 2)
        yield* exercise(pool.client)
        yield* allHealthy(pool)
        const crash = yield* Effect.flip(pool.client.Hash({ text: "exit" }))
        assert.instanceOf(crash, WorkerCrash)
      })
    )
  )

  for (const frame of ["v8", "json"] as const) {
    it.live(`subprocesses (${frame} frames): the same group and client`, () =>
      S.live(() =>
        withFrame(
          frame,
          Effect.gen(function* () {
            const pool = yield* ScriptPool.make({
              subprocess: script,
              nodePath: S.node,
              ...source,
              ...fast,
              killGrace: "1 second",
              group: Hashing,
              size: 2
            })
            yield* exercise(pool.client)
            yield* allHealthy(pool)
          })
        )
      )
    )
  }

  it.live("a ScriptPool.Service of a group: its service has the client", () =>
    S.live(() => {
      class Hasher extends ScriptPool.Service<Hasher>()("test/Hasher", {
        thread: script,
        ...source,
        ...fast,
        group: Hashing,
        size: 1
      }) {}
      return Effect.gen(function* () {
        const hasher = yield* Hasher
        assert.strictEqual(yield* hasher.client.Hash({ text: "x" }), sha256("x"))
      }).pipe(Effect.provide(Hasher.layer))
    })
  )

  it.live("remote: a runner serves the group over effect/rpc; a runner of another group is refused at connect", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const runner = yield* Remote.listen({
          ...Runner.fromGroup(Hashing, {
            Hash: ({ text }) => (text === "" ? Effect.fail(new HashError({ reason: "empty text" })) : sha256(text)),
            Verify: ({ text, digest }) => sha256(text) === digest
          }),
          port: 0
        })
        const address = `127.0.0.1:${runner.port}`
        const schemas = yield* Operation.schemas(Hashing)
        const pool = yield* WorkerPool.make({
          size: 2,
          worker: (id) => Worker.fromKind(id, Remote.make(address, { ...schemas, connectTimeout: "20 seconds" }))
        })
        yield* exercise(yield* WorkerPool.client(pool, Hashing))
        yield* allHealthy(pool)

        // A parent of another group (one more operation): its fingerprint differs, the runner refuses it.
        const other = yield* Worker.fromKind(
          WorkerId.make(9),
          Remote.make(address, { ...(yield* Operation.schemas(Lax)), connectTimeout: "20 seconds" }),
          { restart: Schedule.recurs(0) }
        )
        const health = yield* other.health
        assert.notStrictEqual(health.state, "Healthy")
        assert.match(health.lastCrash!.reason, /SchemaMismatch/)
      })
    )
  )

  it.live("bad input: an unknown tag and a payload its schema refuses are InvalidRequest; the worker stays up", () =>
    S.live(() =>
      Effect.gen(function* () {
        // A parent whose view of the group is laxer than the worker's.
        const pool = yield* ScriptPool.make({ thread: script, ...source, ...fast, group: Lax, size: 1 })
        const unknown = yield* Effect.flip(pool.client.Unknown({ text: "a" }))
        assert.instanceOf(unknown, InvalidRequest)
        assert.match((unknown as InvalidRequest).reason, /could not decode the request/)
        const wrongPayload = yield* Effect.flip(pool.client.Hash({ text: 42 }))
        assert.instanceOf(wrongPayload, InvalidRequest)
        assert.match((wrongPayload as InvalidRequest).reason, /Expected string/)
        // The same worker goes on serving.
        assert.strictEqual(yield* pool.client.Hash({ text: "abc" }), sha256("abc"))
        yield* allHealthy(pool)
      })
    )
  )

  it("bad input: handlers that miss an operation are refused when the runner starts (stderr, exit code 2)", () => {
    const child = spawnSync(
      process.execPath,
      [
        "--conditions=effect-worker-pool-source",
        fileURLToPath(new URL("./fixtures/operations-missing.ts", import.meta.url))
      ],
      { input: "", encoding: "utf8", timeout: 30_000 }
    )
    assert.strictEqual(child.status, 2)
    assert.match(child.stderr, /invalid operations: no handler for operation Verify/)
    // It never said it was ready.
    assert.notInclude(child.stdout, "Ready")
  })

  it.effect("bad input: a missing handler, a handler of no operation, a wrong idempotent: typed", () =>
    Effect.gen(function* () {
      const served = yield* Effect.exit(Runner.serve({ group: Hashing, handlers: { Hash: () => "x" } as never }))
      assert.isTrue(Exit.isFailure(served))
      const crash = Exit.isFailure(served) ? (served.cause.reasons[0] as { error: WorkerCrash }).error : undefined
      assert.instanceOf(crash, WorkerCrash)
      assert.match(crash!.message, /no handler for operation Verify/)

      const extra = yield* Effect.flip(
        Worker.fromGroup(WorkerId.make(0), Hashing, { ...handlers, Other: () => Effect.void } as never)
      )
      assert.match(extra.reason, /handlers for no operation of the group: Other/)

      // A remote runner serves streams too (test/remote-streams.test.ts): its handlers are checked the same way.
      assert.isFunction(Runner.fromGroup(Streaming, { Hash: () => "x", Lines: () => Stream.make("a") }).handler)
      assert.throws(() => Runner.fromGroup(Streaming, { Hash: () => "x" } as never), /no handler for operation Lines/)
      yield* Operation.schemas(Streaming)

      const pool = yield* WorkerPool.make({ size: 1, worker: (id) => Worker.fromGroup(id, Hashing, handlers) })
      const wrong = yield* Effect.flip(WorkerPool.client(pool, Hashing, { idempotent: ["Hash", "Nope" as never] }))
      assert.match(wrong.reason, /idempotent names no operation of the group: Nope/)
    }).pipe(Effect.scoped)
  )

  it.live("idempotent per operation: a crash is retried for an idempotent operation only; a call overrides", () =>
    Effect.gen(function* () {
      // The next call of each operation on "crash" crashes its worker; the calls after it answer.
      const crashNext = { Hash: true, Verify: true }
      const crashOnce = (operation: "Hash" | "Verify") =>
        Effect.suspend(() => {
          if (!crashNext[operation]) return Effect.void
          crashNext[operation] = false
          return Effect.fail(WorkerCrash.report("crashed on purpose"))
        })
      const pool = yield* WorkerPool.make({
        size: 2,
        ejection: false,
        worker: (id) =>
          Worker.fromGroup(
            id,
            Hashing,
            {
              Hash: ({ text }) => Effect.as(text === "crash" ? crashOnce("Hash") : Effect.void, sha256(text)),
              Verify: ({ text, digest }) =>
                Effect.as(text === "crash" ? crashOnce("Verify") : Effect.void, sha256(text) === digest)
            },
            { maxInFlight: 1, ...S.restartAtOnce }
          )
      })
      const client = yield* WorkerPool.client(pool, Hashing, { idempotent: ["Hash"] })
      const retries = () =>
        Effect.map(Metric.snapshot, (snapshot) =>
          metricValue(snapshot, PoolMetrics.retries, { pool: "default", policy: "ShortestExpectedDelay" })
        )
      // Hash is idempotent: its crash is retried on the other worker, and its caller gets the answer.
      assert.strictEqual(yield* client.Hash({ text: "crash" }), sha256("crash"))
      assert.isFalse(crashNext.Hash)
      assert.strictEqual(yield* retries(), 1)
      // A retry needs another worker free: each crash below waits until every worker is back.
      const everyWorkerUp = S.eventuallyEffect(
        "every worker is healthy",
        Effect.map(pool.health, (all) => all.every(([, health]) => health.state === "Healthy"))
      )
      // Verify is not: its crash is its caller's.
      yield* everyWorkerUp
      const crash = yield* Effect.flip(client.Verify({ text: "crash", digest: sha256("crash") }))
      assert.instanceOf(crash, WorkerCrash)
      assert.strictEqual(yield* retries(), 1)
      // A call's own idempotent overrides the client's.
      crashNext.Verify = true
      yield* everyWorkerUp
      assert.isTrue(yield* client.Verify({ text: "crash", digest: sha256("crash") }, { idempotent: true }))
      assert.isFalse(crashNext.Verify)
      assert.strictEqual(yield* retries(), 2)
      // And the other way round.
      crashNext.Hash = true
      yield* everyWorkerUp
      assert.instanceOf(yield* Effect.flip(client.Hash({ text: "crash" }, { idempotent: false })), WorkerCrash)
      assert.strictEqual(yield* retries(), 2)
    }).pipe(Effect.scoped, Effect.provideService(Metric.MetricRegistry, new Map()))
  )

  it.effect("types: each method takes its payload and gives its success and error types", () =>
    Effect.gen(function* () {
      const pool = yield* WorkerPool.make({ size: 1, worker: (id) => Worker.fromGroup(id, Hashing, handlers) })
      const client = yield* WorkerPool.client(pool, Hashing, { idempotent: ["Verify"] })
      const digest: Effect.Effect<string, HashError | InvalidRequest | WorkerPool.DispatchError<never>> = client.Hash({
        text: "abc"
      })
      const verified: Effect.Effect<boolean, InvalidRequest | WorkerPool.DispatchError<never>> = client.Verify({
        text: "abc",
        digest: sha256("abc")
      })
      assert.isTrue(yield* Effect.zipWith(digest, verified, (d, v) => d === sha256("abc") && v))
      assert.isFunction(mustNotCompile)
    }).pipe(Effect.scoped)
  )

  it.effect("spans are named after the operation; request metrics have an operation attribute", () =>
    Effect.gen(function* () {
      const { tracer, made } = recordingTracer()
      const pool = yield* WorkerPool.make({
        name: "ops",
        size: 1,
        worker: (id) => Worker.fromGroup(id, Hashing, handlers)
      })
      const client = yield* WorkerPool.client(pool, Hashing)
      yield* Effect.provideService(
        Effect.gen(function* () {
          yield* client.Hash({ text: "a" })
          yield* client.Hash({ text: "b" })
          yield* client.Verify({ text: "a", digest: "no" })
          yield* Effect.flip(client.Hash({ text: "" }))
        }),
        Tracer.Tracer,
        tracer
      )
      const spans = made.map((span) => ({ name: span.name, operation: span.attributes.get("worker_pool.operation") }))
      assert.deepStrictEqual(
        spans.filter((span) => span.name.startsWith("WorkerPool.dispatch")),
        [
          { name: "WorkerPool.dispatch Hash", operation: "Hash" },
          { name: "WorkerPool.dispatch Hash", operation: "Hash" },
          { name: "WorkerPool.dispatch Verify", operation: "Verify" },
          { name: "WorkerPool.dispatch Hash", operation: "Hash" }
        ]
      )
      // A single request beside them: no operation attribute.
      yield* pool.dispatch({ _tag: "Hash", payload: { text: "c" } })
      const snapshot = yield* Metric.snapshot
      const pool_ = { pool: "ops", policy: "ShortestExpectedDelay" }
      const requests = (attributes: Record<string, string>) =>
        metricValue(snapshot, PoolMetrics.requests, { ...pool_, ...attributes })
      assert.strictEqual(requests({ outcome: "Success", operation: "Hash" }), 2)
      assert.strictEqual(requests({ outcome: "Success", operation: "Verify" }), 1)
      assert.strictEqual(requests({ outcome: "HashError", operation: "Hash" }), 1)
      assert.strictEqual(requests({ outcome: "Success" }), 1)
    }).pipe(Effect.scoped, Effect.provideService(Metric.MetricRegistry, new Map()))
  )
})
