/**
 * A request refused on its way out of the queue (too large for the wire, or
 * not encodable by its request Schema) gets the same `InvalidRequest` it
 * would get on a free slot, and the requests waiting behind it are served:
 * with real threads and subprocesses, a pool of one worker whose slot frees
 * while they wait.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber } from "effect"
import { InvalidRequest, Worker, WorkerPool } from "effect-worker-pool"
import type { Job } from "./fixtures/jobs.ts"
import * as S from "./fixtures/support.ts"
import * as T from "./support.ts"

/** A request its Schema cannot encode (`value` must be a number). */
const unencodable = { _tag: "Echo", value: "not a number" } as unknown as Job

const kinds = [
  {
    name: "subprocess",
    kind: () => S.subprocess({ maxLineBytes: 1024 }),
    refused: [{ _tag: "Garbage", text: "z".repeat(2000) } as Job, unencodable]
  },
  { name: "thread", kind: () => S.thread(), refused: [unencodable, unencodable] }
] as const

describe("a request refused on its way out of the queue", () => {
  for (const { name, kind, refused } of kinds) {
    it.live(
      `${name}: gets its InvalidRequest, and the requests behind it are served`,
      () =>
        S.live((logs) =>
          Effect.gen(function* () {
            const pool = yield* WorkerPool.make({ size: 1, worker: (id) => Worker.fromKind(id, kind()) })
            const holding = yield* Effect.forkChild(pool.dispatch({ _tag: "Wait" }))
            yield* logs.waitFor(/^started \d+$/)
            const waiting = yield* Effect.forEach(
              [refused[0], { _tag: "Echo", value: 1 } as Job, refused[1], { _tag: "Echo", value: 2 } as Job],
              (job) => Effect.forkChild(pool.dispatch(job)),
              { concurrency: 1 }
            )
            yield* S.eventuallyEffect(
              "the four requests wait in the queue",
              Effect.map(pool.queued, (n) => n === 4)
            )
            // The slot frees once the child confirms the cancel of the request that held it.
            yield* Fiber.interrupt(holding)
            const exits = yield* Effect.forEach(waiting, Fiber.await)
            assert.instanceOf(T.errorOf(exits[0]!), InvalidRequest)
            assert.instanceOf(T.errorOf(exits[2]!), InvalidRequest)
            assert.deepStrictEqual(
              [exits[1]!, exits[3]!].map((exit) => (Exit.isSuccess(exit) ? exit.value.value : exit)),
              [1, 2]
            )
            const [[, health]] = yield* pool.health
            assert.deepStrictEqual(
              [health.state, health.crashes, health.rejected, health.interrupted, health.inFlight],
              ["Healthy", 0, 2, 1, 0]
            )
            assert.isFalse(
              logs.lines.some((line) => /Maximum call stack/.test(line)),
              "the refusal overflowed the stack"
            )
          })
        ),
      30_000
    )
  }
})
