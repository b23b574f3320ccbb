/**
 * One interface: in-process, thread and subprocess workers side by side in
 * one pool, under the same policy, counters and lifecycle rules.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Scope } from "effect"
import {
  DispatchPolicy,
  DomainError,
  type InvalidRequest,
  Worker,
  WorkerCrash,
  type WorkerId,
  WorkerPool
} from "effect-worker-pool"
import type { Answer, Job } from "./fixtures/jobs.ts"
import * as S from "./fixtures/support.ts"
import * as T from "./support.ts"

/** The in-process twin of the test script, for the jobs this test sends. */
const inProcess = (job: Job): Effect.Effect<Answer, DomainError | WorkerCrash> => {
  const answer = { pid: process.pid, thread: 0 }
  switch (job._tag) {
    case "Echo":
      return Effect.succeed({ ...answer, value: job.value })
    case "Domain":
      return Effect.fail(new DomainError({ reason: job.reason }))
    case "Exit":
      return Effect.fail(WorkerCrash.report(`exited with code ${job.code}`))
    case "Wait":
      return Effect.never
    default:
      return Effect.die(new Error(`${job._tag} is not supported in process`))
  }
}

const kinds = ["in-process", "thread", "subprocess"] as const

const makeWorker = (id: WorkerId) => {
  const options = { ...S.restartAtOnce, maxInFlight: 2 }
  if (id === 0) return Worker.make<Job, Answer, DomainError | InvalidRequest>(id, inProcess, options)
  if (id === 1) return Worker.fromKind(id, S.thread({ concurrency: 2 }), options)
  return Worker.fromKind(id, S.subprocess({ concurrency: 2 }), options)
}

describe("In-process, thread and subprocess workers", { timeout: 30_000 }, () => {
  it.live("share one pool: the same policy, counters, crashes, restarts and shutdown", () =>
    S.live(() =>
      Effect.gen(function* () {
        const scope = yield* Scope.make()
        const pool = yield* WorkerPool.make({
          policy: DispatchPolicy.RoundRobin,
          size: 3,
          worker: makeWorker,
          drain: "100 millis"
        }).pipe(Scope.provide(scope))
        const workers = (yield* pool.health).map(([id]) => id)
        assert.deepStrictEqual(workers, [0, 1, 2])

        // Round robin visits every kind in turn.
        const answers = yield* Effect.forEach([0, 1, 2, 3, 4, 5], (value) => pool.dispatch({ _tag: "Echo", value }))
        const kindOf = (a: Answer) => (a.pid !== process.pid ? "subprocess" : a.thread === 0 ? "in-process" : "thread")
        assert.deepStrictEqual(answers.map(kindOf), [...kinds, ...kinds])
        const subprocessPid = answers[2]!.pid

        // A domain error leaves each kind healthy; a crash restarts each kind.
        for (const _ of kinds) {
          assert.deepStrictEqual(
            yield* Effect.flip(pool.dispatch({ _tag: "Domain", reason: "bad" })),
            new DomainError({ reason: "bad" })
          )
        }
        for (const _ of kinds) {
          assert.instanceOf(yield* Effect.flip(pool.dispatch({ _tag: "Exit", code: 3 })), WorkerCrash)
        }
        yield* S.gone([subprocessPid], subprocessPid)
        yield* S.eventuallyEffect(
          "every worker is back",
          Effect.map(pool.health, (all) => all.every(([, h]) => h.state === "Healthy"))
        )
        const health = (yield* pool.health).map(([, h]) => h)
        for (const [i, h] of health.entries()) {
          assert.deepStrictEqual(
            [h.state, h.completed, h.errored, h.crashes, h.restarts, h.inFlight, h.consecutiveFailures],
            // The crash counts toward ejection whichever kind it hit.
            ["Healthy", 4, 2, 1, 1, 0, 1],
            kinds[i]
          )
        }

        // Shutdown with a request in flight on each: each gets a typed outcome, no process is left.
        const answersAfter = yield* Effect.forEach([0, 1, 2], (value) => pool.dispatch({ _tag: "Echo", value }))
        const pid = answersAfter.find((a) => a.pid !== process.pid)!.pid
        const waiting = yield* Effect.forEach(kinds, () => Effect.forkChild(pool.dispatch({ _tag: "Wait" })))
        yield* S.eventuallyEffect(
          "every worker holds a request",
          Effect.map(pool.health, (all) => all.every(([, h]) => h.inFlight === 1))
        )
        yield* Scope.close(scope, Exit.void)
        for (const fiber of waiting) {
          const error = T.errorOf(yield* Fiber.await(fiber))
          assert.include(["PoolShutdown", "WorkerCrash"], (error as { _tag: string } | undefined)?._tag)
        }
        assert.isFalse(S.isAlive(pid))
        assert.deepStrictEqual(S.processGroup(pid), [])
      })
    )
  )
})
