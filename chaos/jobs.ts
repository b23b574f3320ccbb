/**
 * What the chaos run asks its workers to do, and what they answer. Each
 * request names its own fate, so that the run decides every fault in the
 * parent, from its seed, and the worker only obeys.
 */
import { Schema } from "effect"

/** A request to the chaos worker (chaos/worker.ts). */
export const Job = Schema.Union([
  /** Sleeps `millis` (0: none), then answers. */
  Schema.TaggedStruct("Work", { millis: Schema.Number }),
  /** Fails with a `DomainError`: a bad request. */
  Schema.TaggedStruct("Domain", {}),
  /** Fails with `WorkerCrash` (`throws: false`) or throws a defect (`throws: true`). */
  Schema.TaggedStruct("Crash", { throws: Schema.Boolean }),
  /** Calls `process.exit(code)`: a thread or a process ends under its requests. */
  Schema.TaggedStruct("Exit", { code: Schema.Number }),
  /** Never answers. */
  Schema.TaggedStruct("Hang", {})
])
export type Job = typeof Job.Type

/** The answer to `Work`: who ran it, a process and a thread. */
export const Answer = Schema.Struct({
  pid: Schema.Number,
  thread: Schema.Number
})
export type Answer = typeof Answer.Type
