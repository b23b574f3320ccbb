/**
 * This library's out-of-process kinds as throughput variants: a pool of 2
 * thread or subprocess workers, made with the defaults but for the kind's
 * `concurrency`, running the worker script workers/sum.ts. The callers are
 * fibers, each taking the next task until none is left.
 */
import { NodeServices } from "@effect/platform-node"
import { Effect, Exit, Schema, Scope } from "effect"
import { Subprocess, Thread, Worker, WorkerPool } from "effect-worker-pool"
import type { WireVariant } from "./wireVariant.ts"
import { Task } from "./workers/schemas.ts"

const script = new URL("./workers/sum.ts", import.meta.url)

/** The kinds of this library that run out of process. */
export type Kind = "thread" | "subprocess"

/** The name of a kind's variant at a `concurrency`, as the tables show it. */
export const kindName = (kind: Kind, concurrency: number): string =>
  `effect-worker-pool ${kind} kind, concurrency ${concurrency}`

/** A pool of 2 workers of `kind`, each holding up to `concurrency` requests. */
export const makeKind = async (kind: Kind, concurrency: number): Promise<WireVariant> => {
  const scope = Scope.makeUnsafe()
  const options = { request: Task, response: Schema.Number, concurrency }
  const pool = await Effect.runPromise(
    (kind === "thread"
      ? WorkerPool.make({ size: 2, worker: (id) => Worker.fromKind(id, Thread.make(script, options)) })
      : WorkerPool.make({
          size: 2,
          worker: (id) =>
            Worker.fromKind(
              id,
              Subprocess.node(script, { ...options, execArgv: ["--conditions=effect-worker-pool-source"] })
            )
        })
    ).pipe(Scope.provide(scope), Effect.provide(NodeServices.layer))
  )
  return {
    name: kindName(kind, concurrency),
    family: "library",
    run: async (tasks, callers) => {
      // `callers` fibers, each taking the next task and awaiting its answer
      // until none is left: the same shape as the peers' async callers.
      let next = 0
      let wrong = 0
      const caller = Effect.gen(function* () {
        while (next < tasks.length) {
          const task = tasks[next++]!
          if ((yield* pool.dispatch(task)) !== task.a + task.b) wrong++
        }
      })
      await Effect.runPromise(
        Effect.all(
          Array.from({ length: callers }, () => caller),
          { concurrency: "unbounded", discard: true }
        )
      )
      return wrong
    },
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}
