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

const reasonFields = { message: Schema.String }

/**
 * The handler reported that its worker is broken, in its own words: it failed
 * with `WorkerCrash.report(text)` (or `new WorkerCrash({ reason: new
 * Reported({ message }) })`).
 *
 * @example
 * ```ts
 * import { Reported } from "effect-worker-pool"
 *
 * const reason = new Reported({ message: "engine lost its GPU context" })
 * ```
 *
 * @since 0.2.0
 * @category crash reasons
 */
export class Reported extends Schema.TaggedClass<Reported>()("Reported", reasonFields) {}

/**
 * A defect: the handler died (`Effect.die`, a throw in `Effect.sync`, a
 * rejected promise that is not a domain error), or a thread threw an uncaught
 * exception. `message` starts with `defect: ` or names the thread.
 *
 * @example
 * ```ts
 * import { Defect } from "effect-worker-pool"
 *
 * const reason = new Defect({ message: "defect: TypeError: x is undefined" })
 * ```
 *
 * @since 0.2.0
 * @category crash reasons
 */
export class Defect extends Schema.TaggedClass<Defect>()("Defect", reasonFields) {}

/**
 * A child process or a thread exited on its own, with `code` when it is
 * known.
 *
 * @example
 * ```ts
 * import { Exited } from "effect-worker-pool"
 *
 * const reason = new Exited({ message: "process 4242 exited with code 3", code: 3 })
 * ```
 *
 * @since 0.2.0
 * @category crash reasons
 */
export class Exited extends Schema.TaggedClass<Exited>()("Exited", {
  ...reasonFields,
  code: Schema.optional(Schema.Number)
}) {}

/**
 * A child process was killed by a signal (`SIGKILL`, the OOM killer, ...).
 *
 * @example
 * ```ts
 * import { Killed } from "effect-worker-pool"
 *
 * const reason = new Killed({ message: "process 4242 was killed by SIGKILL", signal: "SIGKILL" })
 * ```
 *
 * @since 0.2.0
 * @category crash reasons
 */
export class Killed extends Schema.TaggedClass<Killed>()("Killed", { ...reasonFields, signal: Schema.String }) {}

/**
 * The child broke the wire protocol (a line that is not a message, an answer
 * to an unknown id, a payload that does not match its schema), or the pipe to
 * it broke.
 *
 * @example
 * ```ts
 * import { ProtocolFault } from "effect-worker-pool"
 *
 * const reason = new ProtocolFault({ message: "protocol error: process 4242 sent a line that is not JSON" })
 * ```
 *
 * @since 0.2.0
 * @category crash reasons
 */
export class ProtocolFault extends Schema.TaggedClass<ProtocolFault>()("ProtocolFault", reasonFields) {}

/**
 * The child stopped responding: its process was stopped, or it went silent
 * while idle (see `silenceLimit`).
 *
 * @example
 * ```ts
 * import { Unresponsive } from "effect-worker-pool"
 *
 * const reason = new Unresponsive({ message: "process 4242 stopped responding: no heartbeat for 1600 ms while idle" })
 * ```
 *
 * @since 0.2.0
 * @category crash reasons
 */
export class Unresponsive extends Schema.TaggedClass<Unresponsive>()("Unresponsive", reasonFields) {}

/**
 * The connection to a remote runner was lost while the worker was up: the
 * runner closed it or was killed, the network reset it. `address` names the
 * runner (`host:port`). A runner that stops answering pings is `Unresponsive`
 * instead; one that cannot be reached at a start is `StartFailed`.
 *
 * @example
 * ```ts
 * import { ConnectionLost } from "effect-worker-pool"
 *
 * const reason = new ConnectionLost({
 *   message: "the connection to runner 10.0.0.7:7400 was lost: reset by the peer (ECONNRESET)",
 *   address: "10.0.0.7:7400"
 * })
 * ```
 *
 * @since 0.2.0
 * @category crash reasons
 */
export class ConnectionLost extends Schema.TaggedClass<ConnectionLost>()("ConnectionLost", {
  ...reasonFields,
  address: Schema.String
}) {}

/**
 * The child did not confirm the cancel of a request within `cancelGrace`,
 * and was replaced.
 *
 * @example
 * ```ts
 * import { CancelIgnored } from "effect-worker-pool"
 *
 * const reason = new CancelIgnored({ message: "process 4242 ignored the cancel of request 7 for 1000 ms" })
 * ```
 *
 * @since 0.2.0
 * @category crash reasons
 */
export class CancelIgnored extends Schema.TaggedClass<CancelIgnored>()("CancelIgnored", reasonFields) {}

/**
 * Another request on the same thread or process ran past its timeout; as
 * such a kind cannot stop wedged work, the incarnation was torn down. (The
 * request that timed out gets `RequestTimeout`.)
 *
 * @example
 * ```ts
 * import { TimedOut } from "effect-worker-pool"
 *
 * const reason = new TimedOut({
 *   message: "a request ran past its 2000 ms timeout: the worker is wedged",
 *   timeoutMillis: 2000
 * })
 * ```
 *
 * @since 0.2.0
 * @category crash reasons
 */
export class TimedOut extends Schema.TaggedClass<TimedOut>()("TimedOut", {
  ...reasonFields,
  timeoutMillis: Schema.Number
}) {}

/**
 * The worker could not start: its initialiser or its kind's `spawn` failed,
 * or a child did not become ready in time (then `timeoutMillis` is the
 * `startTimeout` it missed: a slow start, which the pool tells from a start
 * that failed; see docs/admission.md, "When no worker is up").
 *
 * @example
 * ```ts
 * import { StartFailed } from "effect-worker-pool"
 *
 * const reason = new StartFailed({ message: "start failed: model file not found" })
 * const slow = new StartFailed({ message: "thread 1 did not become ready within 10000 ms", timeoutMillis: 10_000 })
 * ```
 *
 * @since 0.2.0
 * @category crash reasons
 */
export class StartFailed extends Schema.TaggedClass<StartFailed>()("StartFailed", {
  ...reasonFields,
  timeoutMillis: Schema.optionalKey(Schema.Number)
}) {}

/**
 * The worker was stopped while it held the request: removed from its pool,
 * its scope closed, or its pool shut down.
 *
 * @example
 * ```ts
 * import { Stopped } from "effect-worker-pool"
 *
 * const reason = new Stopped({ message: "worker 3 stopped: it was removed from the pool" })
 * ```
 *
 * @since 0.2.0
 * @category crash reasons
 */
export class Stopped extends Schema.TaggedClass<Stopped>()("Stopped", reasonFields) {}

/**
 * `worker.dispatch` was called on a worker that is not up (`state` says
 * where it is): the request never reached it.
 *
 * @example
 * ```ts
 * import { Unavailable } from "effect-worker-pool"
 *
 * const reason = new Unavailable({ message: "worker 3 is not available (Restarting)", state: "Restarting" })
 * ```
 *
 * @since 0.2.0
 * @category crash reasons
 */
export class Unavailable extends Schema.TaggedClass<Unavailable>()("Unavailable", {
  ...reasonFields,
  state: Schema.String
}) {}

/**
 * The pool refused the request: no worker could take it now or come back
 * (the pool is empty, or every worker is retired or failing to start). The
 * request never reached a worker, so it is safe to send again.
 *
 * @example
 * ```ts
 * import { NoWorker } from "effect-worker-pool"
 *
 * const reason = new NoWorker({ message: "no worker available: the pool is empty" })
 * ```
 *
 * @since 0.2.0
 * @category crash reasons
 */
export class NoWorker extends Schema.TaggedClass<NoWorker>()("NoWorker", reasonFields) {}

/**
 * Why a `WorkerCrash` happened: a tagged union, one variant per way a worker
 * can fail a request (or a pool can have no worker for it). Every variant has
 * a `message` for a log line; some carry more (an exit `code`, a `signal`, a
 * `timeoutMillis`, a worker `state`).
 *
 * @example
 * ```ts
 * import type { CrashReason } from "effect-worker-pool"
 *
 * const retryLater = (reason: CrashReason) => reason._tag === "NoWorker" || reason._tag === "Unavailable"
 * ```
 *
 * @since 0.2.0
 * @category crash reasons
 */
export const CrashReason = Schema.Union([
  Reported,
  Defect,
  Exited,
  Killed,
  ProtocolFault,
  Unresponsive,
  ConnectionLost,
  CancelIgnored,
  TimedOut,
  StartFailed,
  Stopped,
  Unavailable,
  NoWorker
])

/**
 * @since 0.2.0
 * @category crash reasons
 */
export type CrashReason = typeof CrashReason.Type

/**
 * The worker failed while it held the request, or no worker could take it.
 *
 * `reason` says why, as a tagged union ({@link CrashReason}): match it with
 * `Effect.catchReason("WorkerCrash", "Exited", ...)` or on `reason._tag`; its
 * `message` (and the crash's own `message`) is the line for a log. `workerId`
 * names the worker when one was involved (it is absent when the pool refused
 * the request: reason `NoWorker`).
 *
 * A handler that finds its worker broken fails with
 * `WorkerCrash.report("what happened")`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { WorkerCrash } from "effect-worker-pool"
 *
 * // A handler reports that its engine is gone: the worker is restarted.
 * const handler = (_req: string) => Effect.fail(WorkerCrash.report("engine lost its GPU context"))
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class WorkerCrash extends Schema.TaggedError<WorkerCrash>()("WorkerCrash", {
  reason: CrashReason,
  workerId: Schema.optional(WorkerId)
}) {
  /**
   * A crash a handler reports in its own words (reason `Reported`).
   *
   * @example
   * ```ts
   * import { WorkerCrash } from "effect-worker-pool"
   *
   * const crash = WorkerCrash.report("engine lost its GPU context")
   * console.log(crash.reason._tag) // "Reported"
   * ```
   */
  static report(message: string): WorkerCrash {
    return new WorkerCrash({ reason: new Reported({ message }) })
  }

  /** The reason, so that an unhandled error prints it. */
  override get message(): string {
    return this.workerId === undefined ? this.reason.message : `worker ${this.workerId}: ${this.reason.message}`
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
