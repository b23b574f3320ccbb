/**
 * The trivial task of the out-of-process benchmarks, shared by every worker
 * script. Plain TypeScript without imports, so that the peers' workers load
 * nothing more than their own pool.
 */

/** Two numbers to add. */
export interface Task {
  readonly a: number
  readonly b: number
}

/** The whole work of a task. */
export const add = ({ a, b }: Task): number => a + b
