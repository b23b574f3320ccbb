/**
 * What a worker reports about itself: its lifecycle state and its counters.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * The lifecycle state of a worker.
 *
 * | state        | takes requests        | meaning                                                                  |
 * |--------------|-----------------------|--------------------------------------------------------------------------|
 * | `Starting`   | no                    | its kind is spawning it, or its initialiser is running                   |
 * | `Healthy`    | yes                   | it takes requests                                                        |
 * | `Ejected`    | one probe, when due   | it kept failing without dying: out of rotation until `ejectedUntil`, then one probe request decides |
 * | `Restarting` | no                    | it crashed, or a start failed; its supervisor starts it again when the backoff delay is over |
 * | `Retired`    | no                    | its restart budget or restart schedule (both opt-in) is exhausted: it is never started again |
 * | `Stopped`    | no                    | it was removed from its pool, or its pool or scope was closed             |
 *
 * ```text
 *             spawn ok                 failures ≥ threshold
 * Starting ───────────▶ Healthy ───────────────────────────▶ Ejected
 *    ▲   │                 │  ▲        probe succeeded          │
 *    │   │ spawn failed    │  └─────────────────────────────────┘
 *    │   ▼                 │ crash (WorkerCrash, defect, exit)   │ crash
 *    └─ Restarting ◀───────┴────────────────────────────────────┘
 *          │ budget or schedule exhausted (only when configured)
 *          ▼
 *       Retired            (any state) ── remove / shutdown ──▶ Stopped
 * ```
 *
 * @example
 * ```ts
 * import type { WorkerState } from "effect-worker-pool"
 *
 * const isUp = (state: WorkerState) => state === "Healthy"
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const WorkerState = Schema.Literals(["Starting", "Healthy", "Ejected", "Restarting", "Retired", "Stopped"])

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
 * The most recent recycle of a worker (see `Worker.RecycleOptions`): why
 * (`requests`, `age` or `memory`), and when (epoch milliseconds from
 * Effect's `Clock`).
 *
 * @example
 * ```ts
 * import type { LastRecycle } from "effect-worker-pool"
 *
 * const describe = (recycle: LastRecycle) => `recycled for ${recycle.reason} at ${recycle.at}`
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export const LastRecycle = Schema.Struct({
  reason: Schema.Literals(["requests", "age", "memory"]),
  at: Schema.Number
})

/**
 * @since 0.3.0
 * @category models
 */
export type LastRecycle = typeof LastRecycle.Type

/**
 * A snapshot of one worker's health.
 *
 * Counters are per worker, not per incarnation: they survive restarts.
 *
 * - `inFlight`: requests the worker holds right now (a request the pool has
 *   assigned to it counts from that moment).
 * - `maxInFlight`: how many requests a pool lets it hold now: its fixed
 *   `maxInFlight`, or, when that is adaptive (the default in process), the
 *   limit learned so far, from 1 up to its `max` (see the capacity guide).
 *   Set in every snapshot a worker gives; optional in the type, so that a
 *   health built by hand (for a policy's test) may leave it out.
 * - `completed`: requests that reached the worker and have settled, whatever
 *   the outcome (success, domain error, crash, timeout, interruption).
 * - `errored`: of those, the ones that ended in a domain error, a
 *   `WorkerCrash` (a defect counts as a crash) or a `RequestTimeout`.
 * - `timeouts`: of the errored ones, those that ran past their timeout.
 * - `interrupted`: of those, the ones whose caller interrupted them.
 * - `rejected`: requests that never reached the handler because they could
 *   not be sent or decoded (`InvalidRequest`); they are not `completed`, not
 *   `errored`, and say nothing about the worker's health.
 * - `crashes`: how many times the worker crashed (an incarnation died, or a
 *   start failed).
 * - `restarts`: how many times the supervisor started it again after a
 *   crash (a clean end, such as a remote runner's drain, is not counted).
 * - `attempt`: restarts since the backoff last reset. It resets when an
 *   incarnation answered a request (a response or a domain error), or stayed
 *   up for the reset period; so it counts failures in a row: failed starts,
 *   and crashes before any answer.
 * - `failedStarts`: starts that failed in a row, since an incarnation last
 *   became ready. While it is above 0 the worker is not expected back soon:
 *   a pool refuses requests at once when every worker it has is retired,
 *   stopped, or failing to start.
 * - `consecutiveFailures`: crashes and timeouts of its requests since its
 *   last success (a domain error is a success for this count); drives
 *   ejection.
 * - `ejections`: how many times it was ejected; `ejectedUntil` (epoch
 *   milliseconds) is set while it is ejected.
 * - `oldestInFlightSince` (epoch milliseconds): when the oldest request it is
 *   running started; unset when it runs none. A worker that hangs shows an
 *   ever older one.
 * - `lastCrash`: the most recent crash; `retiredBecause` says why a `Retired`
 *   worker gave up.
 * - `recycles` and `lastRecycle`: how many times its incarnation was
 *   replaced by its recycling rules (`Worker.RecycleOptions`), and the most
 *   recent time; set from the first recycle on. A recycle is neither a crash
 *   nor a restart.
 *
 * So `completed - errored - interrupted` is the number of successes, and once
 * everything has settled `inFlight` is `0`.
 *
 * A `WorkerHealth` is a snapshot: reading it again gives the newer values.
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
  maxInFlight: Schema.optional(Schema.Number),
  completed: Schema.Number,
  errored: Schema.Number,
  timeouts: Schema.Number,
  interrupted: Schema.Number,
  rejected: Schema.Number,
  crashes: Schema.Number,
  restarts: Schema.Number,
  attempt: Schema.Number,
  failedStarts: Schema.Number,
  consecutiveFailures: Schema.Number,
  ejections: Schema.Number,
  ejectedUntil: Schema.optional(Schema.Number),
  oldestInFlightSince: Schema.optional(Schema.Number),
  lastCrash: Schema.optional(LastCrash),
  retiredBecause: Schema.optional(Schema.String),
  recycles: Schema.optional(Schema.Number),
  lastRecycle: Schema.optional(LastRecycle)
})

/**
 * @since 0.1.0
 * @category models
 */
export type WorkerHealth = typeof WorkerHealth.Type
