/**
 * Memory reports of out-of-process incarnations, for a worker that recycles
 * over a memory limit (see `recycle.ts`). The worker asks its kind for them
 * through the context its incarnations are spawned with ({@link MemoryReports});
 * the kind passes the request to its runner in the environment
 * ({@link memoryReportsEnv}); the runner then sends its memory in the optional
 * `memory` field of a `Heartbeat`: with its heartbeats, and after the answers
 * of each turn, since a busy child sends no heartbeat. A runner that does
 * not know the field sends none, and its worker is never recycled for memory.
 */
import * as v8 from "node:v8"
import * as WorkerThreads from "node:worker_threads"
import { Context } from "effect"

/** Whether the incarnations spawned with this context should report their memory. */
export const MemoryReports = Context.Reference<boolean>("effect-worker-pool/MemoryReports", {
  defaultValue: () => false
})

/** The environment variable that asks a runner for memory reports (`"1"`). */
export const memoryReportsEnv = "EFFECT_WORKER_POOL_MEMORY_REPORTS"

/** The environment entry a kind adds when its incarnations should report their memory. */
export const memoryReportsEntry = (on: boolean): Record<string, string> => (on ? { [memoryReportsEnv]: "1" } : {})

/**
 * The memory a runner reports, in bytes: a thread's V8 heap in use (its own
 * isolate's), a subprocess's resident set size.
 */
export const runnerMemory = (): number =>
  WorkerThreads.isMainThread ? globalThis.process.memoryUsage.rss() : v8.getHeapStatistics().used_heap_size
