/**
 * This library's out-of-process kinds as throughput variants: a pool of 2
 * thread or subprocess workers, made with the defaults but for the kind's
 * `concurrency`, running the worker script workers/sum.ts. The callers are
 * fibers, each taking the next task until none is left. The group variant
 * runs the same task as the one operation of a group (workers/sum-group.ts),
 * called through the pool's client: what a group costs over the single form.
 */
import { NodeServices } from "@effect/platform-node"
import { Effect, Exit, Schema, Scope } from "effect"
import { Operation, Subprocess, Thread, Worker, WorkerPool } from "effect-worker-pool"
import type { WireVariant } from "./wireVariant.ts"
import { Summing, Task } from "./workers/schemas.ts"
import type { Task as TaskType } from "./workers/task.ts"

const script = new URL("./workers/sum.ts", import.meta.url)
const groupScript = new URL("./workers/sum-group.ts", import.meta.url)

/** The kinds of this library that run out of process. */
export type Kind = "thread" | "subprocess"

/** The name of a kind's variant at a `concurrency`, as the tables show it. */
export const kindName = (kind: Kind, concurrency: number): string =>
  `effect-worker-pool ${kind} kind, concurrency ${concurrency}`

/** The name of a kind's group variant at a `concurrency`. */
export const groupKindName = (kind: Kind, concurrency: number): string =>
  `effect-worker-pool ${kind} kind, one-operation group, concurrency ${concurrency}`

/** A pool of 2 workers of `kind` running `worker` with `schemas`, each holding up to `concurrency` requests. */
const makePool = (kind: Kind, worker: URL, schemas: object, concurrency: number) => {
  const options = { ...(schemas as { request: typeof Task; response: typeof Schema.Number }), concurrency }
  return kind === "thread"
    ? WorkerPool.make({ size: 2, worker: (id) => Worker.fromKind(id, Thread.make(worker, options)) })
    : WorkerPool.make({
        size: 2,
        worker: (id) =>
          Worker.fromKind(
            id,
            Subprocess.node(worker, { ...options, execArgv: ["--conditions=effect-worker-pool-source"] })
          )
      })
}

/** A pool of 2 workers of `kind`, each holding up to `concurrency` requests. */
export const makeKind = async (kind: Kind, concurrency: number): Promise<WireVariant> => {
  const scope = Scope.makeUnsafe()
  const pool = await Effect.runPromise(
    makePool(kind, script, { request: Task, response: Schema.Number }, concurrency).pipe(
      Scope.provide(scope),
      Effect.provide(NodeServices.layer)
    )
  )
  return variant(kindName(kind, concurrency), pool.dispatch, scope)
}

/** The same pool, its workers serving the task as the one operation `Sum` of a group, called through its client. */
export const makeGroupKind = async (kind: Kind, concurrency: number): Promise<WireVariant> => {
  const scope = Scope.makeUnsafe()
  const sum = await Effect.runPromise(
    Effect.gen(function* () {
      const pool = yield* makePool(kind, groupScript, yield* Operation.schemas(Summing), concurrency)
      return (yield* WorkerPool.client(pool as never, Summing)).Sum
    }).pipe(Scope.provide(scope), Effect.provide(NodeServices.layer))
  )
  return variant(groupKindName(kind, concurrency), sum, scope)
}

/** The variant that runs its tasks through `call`; `close` closes `scope`. */
const variant = (
  name: string,
  call: (task: TaskType) => Effect.Effect<number, unknown>,
  scope: Scope.Closeable
): WireVariant => ({
  name,
  family: "library",
  run: async (tasks, callers) => {
    // `callers` fibers, each taking the next task and awaiting its answer
    // until none is left: the same shape as the peers' async callers.
    let next = 0
    let wrong = 0
    const caller = Effect.gen(function* () {
      while (next < tasks.length) {
        const task = tasks[next++]!
        if ((yield* call(task)) !== task.a + task.b) wrong++
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
})
