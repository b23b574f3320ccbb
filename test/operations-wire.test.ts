/**
 * How a group's calls cross the wire of threads and subprocesses: to a
 * runner whose `Ready` says `operations`, a call of an operation that is not
 * a stream travels as its tag and its own payload, and is answered with the
 * operation's own value or error (no envelope to clone, no union to walk);
 * a child that does not say it (protocol 3 before the field) gets the
 * envelope and answers in it, as before. An answer that does not match the
 * called operation's schema is still the child's fault: a `WorkerCrash`
 * (`ProtocolFault`). Whatever the form, a call's outcome is the one the
 * operation's handler gives.
 */
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { Arbitrary, Effect, Schema, Stream } from "effect"
import type { RpcGroup } from "effect/rpc"
import { Operation, ScriptPool, Subprocess, Worker, WorkerCrash, WorkerPool } from "effect-worker-pool"
import { Adding, Odd } from "./fixtures/adding.ts"
import { withFrame } from "./fixtures/frames.ts"
import * as S from "./fixtures/support.ts"

const script = new URL("./fixtures/adding-worker.ts", import.meta.url)
const handChild = fileURLToPath(new URL("./fixtures/operations-child.mjs", import.meta.url))
const fast = { startTimeout: "20 seconds", cancelGrace: "2 seconds", shutdownTimeout: "1 second" } as const
const source = { execArgv: ["--conditions=effect-worker-pool-source"] }

type Client = Operation.Client<RpcGroup.Rpcs<typeof Adding>>

/** A pool of one hand-written child (see fixtures/operations-child.mjs) serving `Adding`, and its client. */
const handPool = (env: Record<string, string>) =>
  Effect.gen(function* () {
    const schemas = yield* Operation.schemas(Adding)
    const pool = yield* WorkerPool.make({
      size: 1,
      worker: (id) =>
        Worker.fromKind(
          id,
          Subprocess.make({ command: process.execPath, args: [handChild], env, killGrace: "1 second", ...schemas })
        )
    })
    const client: Client = yield* WorkerPool.client(
      pool as never as Operation.Pool<RpcGroup.Rpcs<typeof Adding>>,
      Adding
    )
    return { pool, client }
  })

/** Every worker of `pool` is healthy and has never crashed. */
const allHealthy = (pool: WorkerPool.WorkerPool<any, any, any>) =>
  Effect.gen(function* () {
    for (const [, health] of yield* pool.health) assert.deepStrictEqual([health.state, health.crashes], ["Healthy", 0])
  })

/** One call of the group, as the property samples it. */
const Call = Schema.Union([
  Schema.TaggedStruct("Sum", { a: Schema.Int, b: Schema.Int }),
  Schema.TaggedStruct("Echo", { text: Schema.String }),
  Schema.TaggedStruct("Count", { n: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 40 })) })
])
const Calls = Schema.Array(Call).check(Schema.isMaxLength(12))

/** What a call gives, by the group's handlers: its value, or its domain error's `n`. */
const expected = (call: typeof Call.Type): unknown => {
  switch (call._tag) {
    case "Sum":
      return call.a % 2 === 1 ? { odd: call.a } : call.a + call.b
    case "Echo":
      return { text: call.text, form: "runner" }
    case "Count":
      return Array.from({ length: call.n }, (_, i) => i)
  }
}

/** What a call gives through `client`. */
const outcome = (client: Client, call: typeof Call.Type): Effect.Effect<unknown, unknown> => {
  switch (call._tag) {
    case "Sum":
      return client.Sum({ a: call.a, b: call.b }).pipe(Effect.catchTag("Odd", (odd) => Effect.succeed({ odd: odd.n })))
    case "Echo":
      return client.Echo({ text: call.text })
    case "Count":
      return Effect.map(Stream.runCollect(client.Count({ n: call.n })), (chunk) => Array.from(chunk))
  }
}

const kinds = [
  ["a thread", undefined, { thread: script }],
  ["a subprocess (binary frame)", "v8", { subprocess: script, nodePath: S.node, killGrace: "1 second" }],
  ["a subprocess (JSON lines)", "json", { subprocess: script, nodePath: S.node, killGrace: "1 second" }]
] as const

describe("a group's calls on the wire", { timeout: 120_000 }, () => {
  it.live("to a child that reads them: the operation's tag and payload, answered with its own value and error", () =>
    S.live(() =>
      Effect.gen(function* () {
        const { pool, client } = yield* handPool({ OPS_READY: "bare" })
        assert.deepStrictEqual(yield* client.Echo({ text: "hi" }), { text: "hi", form: "bare" })
        assert.strictEqual(yield* client.Sum({ a: 2, b: 3 }), 5)
        const odd = yield* Effect.flip(client.Sum({ a: 3, b: 1 }))
        assert.instanceOf(odd, Odd)
        assert.strictEqual((odd as Odd).n, 3)
        yield* allHealthy(pool)
      })
    )
  )

  it.live("to a child of protocol 3 that does not say it reads them: the envelope, answered in it, as before", () =>
    S.live(() =>
      Effect.gen(function* () {
        const { pool, client } = yield* handPool({ OPS_READY: "envelope" })
        assert.deepStrictEqual(yield* client.Echo({ text: "hi" }), { text: "hi", form: "envelope" })
        assert.strictEqual(yield* client.Sum({ a: 2, b: 3 }), 5)
        const odd = yield* Effect.flip(client.Sum({ a: 3, b: 1 }))
        assert.instanceOf(odd, Odd)
        assert.strictEqual((odd as Odd).n, 3)
        yield* allHealthy(pool)
      })
    )
  )

  it.live("an answer that does not match the called operation's schema is a WorkerCrash (ProtocolFault)", () =>
    S.live(() =>
      Effect.gen(function* () {
        const { pool, client } = yield* handPool({ OPS_READY: "bare", OPS_WRONG: "1" })
        const crash = yield* Effect.flip(client.Sum({ a: 2, b: 3 }))
        assert.instanceOf(crash, WorkerCrash)
        assert.strictEqual((crash as WorkerCrash).reason._tag, "ProtocolFault")
        assert.match(
          (crash as WorkerCrash).reason.message,
          /^protocol error: process \d+ sent a response that does not match its schema: /
        )
        // A new incarnation serves the next call.
        assert.deepStrictEqual(yield* client.Echo({ text: "again" }), { text: "again", form: "bare" })
        const [[, health]] = yield* pool.health
        assert.deepStrictEqual([health.state, health.crashes], ["Healthy", 1])
      })
    )
  )

  for (const [name, frame, kind] of kinds) {
    it.live(`${name}: any calls, streams among them, give what the operations' handlers give (sampled cases)`, () =>
      S.live(() =>
        withFrame(
          frame,
          Effect.gen(function* () {
            const pool = yield* ScriptPool.make({ ...kind, ...source, ...fast, concurrency: 4, group: Adding, size: 2 })
            const cases = yield* Arbitrary.sampleEffect(Arbitrary.schema(Calls), { count: 25, seed: 17 })
            for (const calls of cases) {
              const got = yield* Effect.forEach(calls, (call) => outcome(pool.client, call), {
                concurrency: "unbounded"
              })
              assert.deepStrictEqual(got, calls.map(expected))
            }
            yield* allHealthy(pool)
          })
        )
      )
    )
  }
})
