/**
 * The wire of the threads and subprocesses a plan runs: each request says
 * what its worker does (see `worker.ts`), so that the plan decides every
 * behaviour in the parent and the child only obeys. The parent's response
 * Schema is stricter than the child's, so that a child can answer what the
 * parent cannot decode.
 */
import { Schema } from "effect"

/** What the child does with a request; the acts of `plan.ts` that cross a wire. */
export const WireAct = Schema.Union([
  Schema.TaggedStruct("Succeed", {}),
  Schema.TaggedStruct("Domain", {}),
  Schema.TaggedStruct("Crash", {}),
  Schema.TaggedStruct("Die", {}),
  Schema.TaggedStruct("SyncThrow", {}),
  Schema.TaggedStruct("ThrowingConstructor", {}),
  Schema.TaggedStruct("Reject", {}),
  Schema.TaggedStruct("SelfInterrupt", {}),
  Schema.TaggedStruct("ThrowInSync", {}),
  Schema.TaggedStruct("Slow", { millis: Schema.Number, ending: Schema.Literals(["answer", "domain", "crash"]) }),
  Schema.TaggedStruct("Hang", {}),
  Schema.TaggedStruct("IgnoreCancel", {}),
  Schema.TaggedStruct("Exit", { code: Schema.Number }),
  Schema.TaggedStruct("AnswerThenExit", {}),
  Schema.TaggedStruct("BadResponse", {}),
  /** Its `text` makes the line as long as the plan wants. */
  Schema.TaggedStruct("Oversized", { text: Schema.String }),
  /** Sent with a `value` of 0 or less, which the Schema cannot encode. */
  Schema.TaggedStruct("Unencodable", { value: Schema.Number.check(Schema.isGreaterThan(0)) }),
  /** Sent with a function in `payload`, which a thread cannot be sent. */
  Schema.TaggedStruct("Opaque", { payload: Schema.Any })
])
export type WireAct = typeof WireAct.Type

/** A request: its label and what to do. */
export const Job = Schema.Struct({ id: Schema.Number, act: WireAct })
export type Job = typeof Job.Type

/** The answer, as the child encodes it. */
export const LooseAnswer = Schema.Struct({ id: Schema.Number })

/** The answer, as the parent decodes it: an `id` below 0 does not decode. */
export const Answer = Schema.Struct({ id: Schema.Number.check(Schema.isGreaterThanOrEqualTo(0)) })
export type Answer = typeof Answer.Type
