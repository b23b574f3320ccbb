/**
 * A bare echo (see echo-pipe.ts and echo-thread.ts) that first loads this
 * library, as this library's worker scripts do: the part of a start that is
 * loading code. Run with `--conditions=effect-worker-pool-source`.
 */
import "effect-worker-pool"
import { isMainThread } from "node:worker_threads"

await import(isMainThread ? "./echo-pipe.ts" : "./echo-thread.ts")
