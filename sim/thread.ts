/**
 * A worker thread of `npm run sim`: runs the jobs it is sent, one at a time,
 * and posts each result back.
 */
import { parentPort } from "node:worker_threads"
import { type Job, runJob } from "./jobs.ts"

const port = parentPort
if (port === null) throw new Error("sim/thread.ts runs as a worker thread of sim/main.ts")
port.on("message", (job: Job) => {
  runJob(job).then(
    (done) => port.postMessage({ _tag: "Done", done }),
    (error: unknown) => port.postMessage({ _tag: "Failed", index: job.index, error: String(error) })
  )
})
