/**
 * The requests counter of a pool of a group: whatever calls of its
 * operations come, in whatever order, with whatever outcomes, each
 * operation's series counts exactly its calls of each outcome, and a series
 * of an operation exists only for an outcome that happened (single requests
 * beside them keep their own series, without an `operation` attribute).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Metric, Schema } from "effect"
import { PoolMetrics, Worker, WorkerPool } from "effect-worker-pool"
import { Adding, Odd } from "./fixtures/adding.ts"
import { metricValue } from "./fixtures/metrics.ts"

/** One call: `Sum` (an odd `a` fails with `Odd`), `Echo`, or a single request (the pool's dispatch, no client). */
const Call = Schema.Union([
  Schema.TaggedStruct("Sum", { a: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 9 })) }),
  Schema.TaggedStruct("Echo", {}),
  Schema.TaggedStruct("Single", {})
])

const handlers = {
  Sum: ({ a, b }: { readonly a: number; readonly b: number }) =>
    a % 2 === 1 ? Effect.fail(new Odd({ n: a })) : Effect.succeed(a + b),
  Echo: ({ text }: { readonly text: string }) => Effect.succeed({ text, form: "in process" }),
  Count: () => {
    throw new Error("not called")
  }
}

describe("the requests counter of a group", () => {
  it.effect.prop(
    "each operation's series counts its calls of each outcome, and only the outcomes that happened",
    [Schema.Array(Call).check(Schema.isMaxLength(40))],
    ([calls]) =>
      Effect.gen(function* () {
        const pool = yield* WorkerPool.make({
          name: "counted",
          size: 2,
          worker: (id) => Worker.fromGroup(id, Adding, handlers as never)
        })
        const client = yield* WorkerPool.client(pool, Adding)
        const expected = new Map<string, number>()
        const seen = (operation: string | undefined, outcome: string) => {
          const key = JSON.stringify({ operation, outcome })
          expected.set(key, (expected.get(key) ?? 0) + 1)
        }
        for (const call of calls) {
          switch (call._tag) {
            case "Sum": {
              const exit = yield* Effect.exit(client.Sum({ a: call.a, b: 1 }))
              seen("Sum", exit._tag === "Success" ? "Success" : "Odd")
              break
            }
            case "Echo":
              yield* client.Echo({ text: "x" })
              seen("Echo", "Success")
              break
            case "Single":
              yield* pool.dispatch({ _tag: "Echo", payload: { text: "y" } })
              seen(undefined, "Success")
          }
        }
        const snapshot = yield* Metric.snapshot
        for (const operation of ["Sum", "Echo", undefined]) {
          for (const outcome of ["Success", "Odd"]) {
            const attributes = { pool: "counted", policy: "ShortestExpectedDelay", outcome }
            assert.strictEqual(
              metricValue(
                snapshot,
                PoolMetrics.requests,
                operation === undefined ? attributes : { ...attributes, operation }
              ),
              // The single requests' successes have their series from the start.
              expected.get(JSON.stringify({ operation, outcome })) ??
                (operation === undefined && outcome === "Success" ? 0 : undefined),
              `${operation ?? "single"} ${outcome}`
            )
          }
        }
      }).pipe(Effect.scoped, Effect.provideService(Metric.MetricRegistry, new Map())),
    { arbitrary: { runs: 100 } }
  )
})
