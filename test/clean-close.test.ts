/**
 * A clean close logs nothing above debug, whatever the kind: a pool that
 * served requests and shuts down as it should is no news.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Logger, LogLevel } from "effect"
import { Worker, type WorkerId, WorkerPool } from "effect-worker-pool"
import type { Job } from "./fixtures/jobs.ts"
import * as S from "./fixtures/support.ts"

/** Runs `effect` with a logger that keeps what is logged above debug. */
const aboveDebug = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const logged: Array<string> = []
    const logger = Logger.make<unknown, void>(({ logLevel, message }) => {
      if (LogLevel.isGreaterThan(logLevel, "Debug")) logged.push(`${logLevel}: ${String(message)}`)
    })
    yield* effect.pipe(Effect.provideService(Logger.CurrentLoggers, new Set([logger])))
    return logged
  })

const kinds = [
  { name: "in-process", worker: (id: WorkerId) => Worker.make(id, (job: Job) => Effect.succeed(job)) },
  { name: "thread", worker: (id: WorkerId) => Worker.fromKind(id, S.thread()) },
  { name: "subprocess", worker: (id: WorkerId) => Worker.fromKind(id, S.subprocess()) }
] as const

describe("a clean close", () => {
  for (const { name, worker } of kinds) {
    it.live(
      `${name}: logs nothing above debug`,
      () =>
        Effect.gen(function* () {
          const logged = yield* aboveDebug(
            Effect.scoped(
              Effect.gen(function* () {
                const pool = yield* WorkerPool.make({
                  size: 2,
                  worker: worker as (id: WorkerId) => ReturnType<(typeof kinds)[0]["worker"]>
                })
                yield* Effect.forEach([1, 2, 3, 4], (value) => pool.dispatch({ _tag: "Echo", value }), {
                  concurrency: 2
                })
              })
            ).pipe(Effect.provide(NodeServices.layer))
          )
          assert.deepStrictEqual(logged, [])
        }),
      30_000
    )
  }
})
