/**
 * The typed outcomes of a request that did not succeed.
 *
 * Two kinds matter to a caller and they are kept apart in the type system:
 *
 * - {@link DomainError}: the request was bad. The worker that saw it is
 *   healthy and keeps serving.
 * - {@link WorkerCrash}: the worker failed (it raised `WorkerCrash`, died with
 *   a defect, its initialiser failed, or it was stopped). The pool stops
 *   routing to it and its supervisor restarts it.
 *
 * Both are `Schema` tagged errors, so they can be encoded, sent across a
 * process boundary and decoded again, and handled with `Effect.catchTag`.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"
import { WorkerId } from "./WorkerId.ts"

/**
 * The request was bad: the handler rejected it. The worker stays healthy and
 * selectable.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { DomainError } from "effect-worker-pool"
 *
 * const parse = (input: string) =>
 *   Number.isNaN(Number(input))
 *     ? Effect.fail(new DomainError({ reason: `not a number: ${input}` }))
 *     : Effect.succeed(Number(input))
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class DomainError extends Schema.TaggedError<DomainError>()("DomainError", {
  reason: Schema.String
}) {
  /** The reason, so that an unhandled error prints it. */
  override get message(): string {
    return this.reason
  }
}

/**
 * The worker failed while it held the request, or no worker could take it.
 *
 * `reason` says what happened in words meant for a log line; `workerId` names
 * the worker when one was involved (it is absent when the pool had no worker
 * to offer).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { WorkerCrash } from "effect-worker-pool"
 *
 * // A handler reports that its engine is gone: the worker is restarted.
 * const handler = (_req: string) => Effect.fail(new WorkerCrash({ reason: "engine lost its GPU context" }))
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class WorkerCrash extends Schema.TaggedError<WorkerCrash>()("WorkerCrash", {
  reason: Schema.String,
  workerId: Schema.optional(WorkerId)
}) {
  /** The reason, so that an unhandled error prints it. */
  override get message(): string {
    return this.workerId === undefined ? this.reason : `worker ${this.workerId}: ${this.reason}`
  }
}

/**
 * `WorkerPool.add` was given a worker whose id is already in the pool.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { WorkerPool } from "effect-worker-pool"
 *
 * declare const pool: WorkerPool.WorkerPool<number, number>
 * declare const worker: Parameters<typeof pool.add>[0]
 *
 * const addOnce = pool.add(worker).pipe(
 *   Effect.catchTag("DuplicateWorkerId", (e) => Effect.logWarning(`worker ${e.workerId} is already in the pool`))
 * )
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class DuplicateWorkerId extends Schema.TaggedError<DuplicateWorkerId>()("DuplicateWorkerId", {
  workerId: WorkerId
}) {
  /** The reason, so that an unhandled error prints it. */
  override get message(): string {
    return `worker ${this.workerId} is already in the pool`
  }
}

/**
 * `WorkerPool.remove` was given an id that no worker of the pool has.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { WorkerId, WorkerPool } from "effect-worker-pool"
 *
 * declare const pool: WorkerPool.WorkerPool<number, number>
 *
 * const removeIfPresent = pool.remove(WorkerId.make(9)).pipe(Effect.catchTag("UnknownWorkerId", () => Effect.void))
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class UnknownWorkerId extends Schema.TaggedError<UnknownWorkerId>()("UnknownWorkerId", {
  workerId: WorkerId
}) {
  /** The reason, so that an unhandled error prints it. */
  override get message(): string {
    return `no worker ${this.workerId} in the pool`
  }
}

/**
 * Options given to a constructor were invalid; `reason` says which and why.
 * Nothing was started.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { WorkerPool } from "effect-worker-pool"
 *
 * const program = WorkerPool.make<number, number>({ size: -1, worker: () => Effect.die("unused") }).pipe(
 *   Effect.catchTag("InvalidOptions", (e) => Effect.logError(e.reason))
 * )
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidOptions extends Schema.TaggedError<InvalidOptions>()("InvalidOptions", {
  reason: Schema.String
}) {
  /** The reason, so that an unhandled error prints it. */
  override get message(): string {
    return this.reason
  }
}

/**
 * The request ran longer than its timeout on the worker that took it. The
 * timeout counts run time only, not time spent waiting in the pool's queue.
 * The work was interrupted, and the timeout counts toward the worker's
 * ejection; a worker kind that cannot stop a wedged request (a subprocess, a
 * thread) is replaced.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type { WorkerPool } from "effect-worker-pool"
 *
 * declare const pool: WorkerPool.WorkerPool<string, string>
 *
 * const answer = pool
 *   .dispatch("slow question", { timeout: "2 seconds" })
 *   .pipe(Effect.catchTag("RequestTimeout", (e) => Effect.succeed(`gave up after ${e.timeoutMillis} ms`)))
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class RequestTimeout extends Schema.TaggedError<RequestTimeout>()("RequestTimeout", {
  workerId: WorkerId,
  timeoutMillis: Schema.Number
}) {
  /** The reason, so that an unhandled error prints it. */
  override get message(): string {
    return `worker ${this.workerId} ran the request past its ${this.timeoutMillis} ms timeout`
  }
}

/**
 * The pool's admission queue was full: with the `"fail"` strategy the request
 * was refused at once, with `"dropOldest"` the oldest waiting request was
 * dropped to make room for a newer one. The request never reached a worker.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type { WorkerPool } from "effect-worker-pool"
 *
 * declare const pool: WorkerPool.WorkerPool<string, string>
 *
 * // Answer "busy" (say, an HTTP 429) instead of queueing without end.
 * const answer = pool.dispatch("job").pipe(Effect.catchTag("PoolBusy", () => Effect.succeed("try again later")))
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class PoolBusy extends Schema.TaggedError<PoolBusy>()("PoolBusy", {
  reason: Schema.String
}) {
  /** The reason, so that an unhandled error prints it. */
  override get message(): string {
    return this.reason
  }
}

/**
 * The pool is shutting down: the request arrived after its scope began to
 * close, or it was still queued or running when the drain deadline passed.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type { WorkerPool } from "effect-worker-pool"
 *
 * declare const pool: WorkerPool.WorkerPool<string, string>
 *
 * const answer = pool.dispatch("job").pipe(Effect.catchTag("PoolShutdown", (e) => Effect.fail(e.reason)))
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class PoolShutdown extends Schema.TaggedError<PoolShutdown>()("PoolShutdown", {
  reason: Schema.String
}) {
  /** The reason, so that an unhandled error prints it. */
  override get message(): string {
    return this.reason
  }
}

/**
 * The request waited in the pool's admission queue for longer than its queue
 * timeout (`queueTimeout`, a pool option and a dispatch option) without a
 * worker to take it. It never reached a worker, so it is safe to send again.
 * Time spent running on a worker does not count: that is `RequestTimeout`'s.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type { WorkerPool } from "effect-worker-pool"
 *
 * declare const pool: WorkerPool.WorkerPool<string, string>
 *
 * // Answer "unavailable" (say, an HTTP 503) after 2 s in the queue.
 * const answer = pool
 *   .dispatch("job", { queueTimeout: "2 seconds" })
 *   .pipe(Effect.catchTag("QueueTimeout", (e) => Effect.succeed(`no worker within ${e.queueTimeoutMillis} ms`)))
 * ```
 *
 * @since 0.2.0
 * @category errors
 */
export class QueueTimeout extends Schema.TaggedError<QueueTimeout>()("QueueTimeout", {
  queueTimeoutMillis: Schema.Number,
  waitedMillis: Schema.Number
}) {
  /** The reason, so that an unhandled error prints it. */
  override get message(): string {
    return `no worker took the request within its queue timeout of ${this.queueTimeoutMillis} ms`
  }
}
