/**
 * What a worker reports about itself: its lifecycle state and its counters.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * The lifecycle state of a worker.
 *
 * | state      | selectable | meaning                                                              |
 * |------------|------------|----------------------------------------------------------------------|
 * | `Starting` | no         | its kind is spawning it, or its initialiser is running               |
 * | `Healthy`  | yes        | it takes requests                                                    |
 * | `Crashed`  | no         | it crashed; its supervisor restarts it when the backoff delay is over |
 * | `Retired`  | no         | its restart schedule is exhausted: it is never restarted again        |
 * | `Stopped`  | no         | it was removed from its pool or its scope was closed                  |
 *
 * @example
 * ```ts
 * import { WorkerState } from "effect-worker-pool"
 *
 * const isUp = (state: WorkerState) => state === "Healthy"
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const WorkerState = Schema.Literals(["Starting", "Healthy", "Crashed", "Retired", "Stopped"])

/**
 * @since 0.1.0
 * @category models
 */
export type WorkerState = typeof WorkerState.Type

/**
 * The most recent crash of a worker: why, and when (epoch milliseconds from
 * Effect's `Clock`, so a `TestClock` drives it in tests).
 *
 * @example
 * ```ts
 * import type { LastCrash } from "effect-worker-pool"
 *
 * const describe = (crash: LastCrash) => `${crash.reason} at ${new Date(crash.at).toISOString()}`
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const LastCrash = Schema.Struct({
  reason: Schema.String,
  at: Schema.Number
})

/**
 * @since 0.1.0
 * @category models
 */
export type LastCrash = typeof LastCrash.Type

/**
 * A snapshot of one worker's health.
 *
 * Counters are per worker, not per incarnation: they survive restarts.
 *
 * - `inFlight`: requests the worker holds right now.
 * - `completed`: requests that reached the worker and have settled, whatever
 *   the outcome (success, domain error, crash, interruption).
 * - `errored`: of those, the ones that ended in a `DomainError` or a
 *   `WorkerCrash` (a defect counts as a crash).
 * - `interrupted`: of those, the ones whose caller interrupted them.
 * - `crashes`: how many times the worker crashed (an incarnation died, or an
 *   initialiser failed).
 * - `restarts`: how many times the supervisor started it again.
 *
 * So `completed - errored - interrupted` is the number of successes, and once
 * everything has settled `inFlight` is `0`.
 *
 * @example
 * ```ts
 * import type { WorkerHealth } from "effect-worker-pool"
 *
 * const succeeded = (h: WorkerHealth) => h.completed - h.errored - h.interrupted
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const WorkerHealth = Schema.Struct({
  state: WorkerState,
  inFlight: Schema.Number,
  completed: Schema.Number,
  errored: Schema.Number,
  interrupted: Schema.Number,
  crashes: Schema.Number,
  restarts: Schema.Number,
  lastCrash: Schema.optional(LastCrash)
})

/**
 * @since 0.1.0
 * @category models
 */
export type WorkerHealth = typeof WorkerHealth.Type
