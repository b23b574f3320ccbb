/**
 * An out-of-process way to run the trivial task (this library's kinds, the
 * peers, the bare transports), and the callers that drive it.
 */
import type { Task } from "./workers/task.ts"

/** Who a variant is: this library, a peer pool, or a bare transport without a pool. */
export type Family = "library" | "peer" | "bare"

/** One variant, open from its making until `close`, so that rounds can interleave. */
export interface WireVariant {
  readonly name: string
  readonly family: Family
  /** Runs every task, `callers` at a time; resolves with how many answers were wrong. */
  readonly run: (tasks: ReadonlyArray<Task>, callers: number) => Promise<number>
  /** Stops every thread and process of the variant. */
  readonly close: () => Promise<void>
}

/**
 * `callers` async loops that take the next task and await its answer until
 * no task is left; resolves with how many answers were wrong.
 */
export const drive = async (
  call: (task: Task) => Promise<number>,
  tasks: ReadonlyArray<Task>,
  callers: number
): Promise<number> => {
  let next = 0
  let wrong = 0
  const caller = async () => {
    while (next < tasks.length) {
      const task = tasks[next++]!
      if ((await call(task)) !== task.a + task.b) wrong++
    }
  }
  await Promise.all(Array.from({ length: callers }, caller))
  return wrong
}

/** The tasks of one run: `{ a: i, b: 1 }`. */
export const makeTasks = (count: number): ReadonlyArray<Task> =>
  Array.from({ length: count }, (_, i) => ({ a: i, b: 1 }))
