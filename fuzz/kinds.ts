/**
 * The thread and subprocess kinds of a plan, both running `worker.ts`: a
 * TypeScript script that imports this package from its source, so each runs
 * on Node 24 with `--conditions=effect-worker-pool-source`; subprocesses
 * share a compile cache, so that a restart costs little more than Node's
 * own start.
 */
import * as os from "node:os"
import * as path from "node:path"
import { Duration } from "effect"
import { type DomainError, type InvalidRequest, Subprocess, Thread, type WorkerKind } from "effect-worker-pool"
import { typeScriptNode } from "../chaos/node.ts"
import { Answer, Job } from "./jobs.ts"
import type { PoolSettings } from "./plan.ts"

const script = new URL("./worker.ts", import.meta.url)

export type WireKind = WorkerKind.WorkerKind<Job, Answer, DomainError | InvalidRequest>

/** The kind of a plan's workers. Its grace periods are the plan's `cancelGrace`, so that kills come fast. */
export const kindOf = (target: "thread" | "subprocess", pool: PoolSettings): WireKind => {
  const grace = Duration.millis(pool.cancelGraceMillis)
  const common = {
    request: Job,
    response: Answer,
    concurrency: pool.maxInFlight,
    cancelGrace: grace,
    shutdownTimeout: grace,
    killGrace: grace,
    startTimeout: "30 seconds",
    execArgv: ["--conditions=effect-worker-pool-source"],
    // The children's stderr (a defect's stack trace) would drown the report.
    stderr: { logLevel: "None" }
  } as const
  return target === "thread"
    ? Thread.make(script, common)
    : Subprocess.node(script, {
        ...common,
        nodePath: typeScriptNode,
        maxLineBytes: pool.maxLineBytes,
        env: { NODE_COMPILE_CACHE: path.join(os.tmpdir(), "effect-worker-pool-fuzz-compile-cache") }
      })
}
