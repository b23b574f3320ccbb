/**
 * The chaos worker, for threads and subprocesses alike: it does what each
 * request says (see `Job`). Run with Node 24 and `--conditions=effect-worker-pool-source`, so
 * that "effect-worker-pool" is the source tree.
 */
import { threadId } from "node:worker_threads"
import { Effect } from "effect"
import { DomainError, Runner, WorkerCrash } from "effect-worker-pool"
import { Answer, Job } from "./jobs.ts"

Runner.run({
  request: Job,
  response: Answer,
  handler: (job) => {
    switch (job._tag) {
      case "Work": {
        const answer = Effect.sync((): Answer => ({ pid: process.pid, thread: threadId }))
        return job.millis === 0 ? answer : Effect.andThen(Effect.sleep(job.millis), answer)
      }
      case "Domain":
        return Effect.fail(new DomainError({ reason: "a bad request, on purpose" }))
      case "Crash":
        if (job.throws) throw new Error("a defect, on purpose")
        return Effect.fail(WorkerCrash.report("a crash, on purpose"))
      case "Exit":
        return Effect.sync(() => process.exit(job.code)).pipe(Effect.andThen(Effect.never))
      case "Hang":
        return Effect.never
    }
  }
})
