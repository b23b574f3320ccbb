/**
 * This library's worker script for the capacity benchmark: a request names
 * how much CPU it spends (a busy loop of `cpuMicros` µs) and how long it then
 * waits (`waitMillis` ms, as a call to another service would), and is answered
 * with its own number. Run with `--conditions=effect-worker-pool-source`.
 */
import { Schema } from "effect"
import { Runner } from "effect-worker-pool/child"
import { LoadTask } from "./schemas.ts"

Runner.run({
  request: LoadTask,
  response: Schema.Number,
  handler: ({ n, cpuMicros, waitMillis }) => {
    const until = performance.now() + cpuMicros / 1000
    while (performance.now() < until) {
      // spends the task's CPU
    }
    return waitMillis <= 0 ? n : new Promise<number>((resolve) => setTimeout(() => resolve(n), waitMillis))
  }
})
