/**
 * The two kinds of worker a chaos pool mixes, both running chaos/worker.ts:
 * worker threads and Node subprocesses. The script is TypeScript that imports
 * this package from its source, so each runs on Node 24 with
 * `--conditions=effect-worker-pool-source`; subprocesses share a compile cache, so that a
 * restart costs little more than Node's own start.
 */
import * as os from "node:os"
import * as path from "node:path"
import { Subprocess, Thread } from "effect-worker-pool"
import { Answer, Job } from "./jobs.ts"
import { typeScriptNode } from "./node.ts"
import type { KindName } from "./plan.ts"

const script = new URL("./worker.ts", import.meta.url)

/** How many requests one worker holds at once: two, so that a crash takes a neighbour down with it. */
export const concurrency = 2

const wire = {
  request: Job,
  response: Answer,
  concurrency,
  execArgv: ["--conditions=effect-worker-pool-source"],
  // The workers' stderr (a defect's stack trace) would drown the report.
  stderr: { logLevel: "None" }
} as const

const kinds = {
  thread: Thread.make(script, wire),
  subprocess: Subprocess.node(script, {
    ...wire,
    nodePath: typeScriptNode,
    env: { NODE_COMPILE_CACHE: path.join(os.tmpdir(), "effect-worker-pool-chaos-compile-cache") }
  })
}

/** The worker kind of each name. */
export const kindOf = (name: KindName) => kinds[name]
