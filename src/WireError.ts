/**
 * Errors of the out-of-process kinds that are neither a domain error nor a
 * crash.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * The request could not be sent to an out-of-process worker: its schema could
 * not encode it, its line was over the size limit, it could not be cloned to a
 * thread, or the child could not decode it. The request never ran; the worker
 * is healthy and keeps serving (this does not count as a crash).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type { DomainError, InvalidRequest, WorkerPool } from "effect-worker-pool"
 *
 * declare const pool: WorkerPool.WorkerPool<string, number, DomainError | InvalidRequest>
 *
 * const answer = pool
 *   .dispatch("a very long document")
 *   .pipe(Effect.catchTag("InvalidRequest", (e) => Effect.logWarning(e.reason).pipe(Effect.as(0))))
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidRequest extends Schema.TaggedError<InvalidRequest>()("InvalidRequest", {
  reason: Schema.String
}) {
  /** The reason, so that an unhandled error prints it. */
  override get message(): string {
    return this.reason
  }
}
