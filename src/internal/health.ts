/**
 * A worker's health as it changes: plain fields updated in place, one per
 * counter, so that a request costs a few increments and no copy. The public
 * `WorkerHealth` is a snapshot of it (`snapshot`); policies read the live
 * record through the roster.
 *
 * The requests a worker is running are kept in start order in an intrusive
 * list of their records, so that the start of the oldest one is at hand
 * without a map or a scan. A request counts as in flight from the moment it
 * takes a slot (`reserved`) until it gives it back.
 */
import type { LastCrash, LastRecycle, WorkerHealth, WorkerState } from "../WorkerHealth.ts"
import type { RecycleReason } from "./recycle.ts"
import type { Outcome, Request } from "./request.ts"

export type { Outcome }

/**
 * How many starts in a row may miss their start timeout before requests stop
 * waiting for the worker: a busy machine can make a start slow, a hung
 * initialiser makes every start miss it.
 */
export const slowStartTries = 3

export class HealthRecord implements WorkerHealth {
  state: WorkerState = "Starting"
  inFlight = 0
  /** How many requests a pool lets it hold now (its adaptive limit, or its fixed `maxInFlight`). */
  maxInFlight = 1
  completed = 0
  errored = 0
  timeouts = 0
  interrupted = 0
  rejected = 0
  crashes = 0
  restarts = 0
  attempt = 0
  failedStarts = 0
  /** Whether its last start failed by missing its start timeout (a slow start, not a broken one). */
  lastStartTimedOut = false
  consecutiveFailures = 0
  ejections = 0
  ejectedUntil: number | undefined = undefined
  lastCrash: LastCrash | undefined = undefined
  retiredBecause: string | undefined = undefined
  recycles = 0
  lastRecycle: LastRecycle | undefined = undefined
  /** Recycles by reason, for the metrics; set on a worker that has recycling rules. */
  recycledFor: Record<RecycleReason, number> | undefined = undefined
  private oldest: Request | undefined = undefined
  private newest: Request | undefined = undefined

  /** When the oldest request it runs started; `undefined` when it runs none. */
  get oldestInFlightSince(): number | undefined {
    return this.oldest?.startedAt
  }

  /** Whether it has a live incarnation that takes requests. */
  get isLive(): boolean {
    return this.state === "Healthy" || this.state === "Ejected"
  }

  /**
   * Whether it can serve again: it is live, or it is coming back from a crash
   * of an incarnation that had become ready (its last start did not fail), or
   * from starts that were only slow (they missed their start timeout, fewer
   * than `slowStartTries` in a row).
   */
  get canComeBack(): boolean {
    const state = this.state
    return (
      state === "Healthy" ||
      state === "Ejected" ||
      ((state === "Starting" || state === "Restarting") &&
        (this.failedStarts === 0 || (this.lastStartTimedOut && this.failedStarts < slowStartTries)))
    )
  }

  /** The requests running now, oldest first. */
  *running(): Generator<Request> {
    for (let request = this.oldest; request !== undefined; request = request.next) yield request
  }

  /** A request takes a slot. */
  reserved(): void {
    this.inFlight++
  }

  /** A request that took a slot gives it back without having started. */
  released(): void {
    this.inFlight--
  }

  /** A request starts running (its `startedAt` is set). */
  started(request: Request): void {
    request.prev = this.newest
    request.next = undefined
    if (this.newest === undefined) this.oldest = request
    else this.newest.next = request
    this.newest = request
  }

  /** A running request gives its slot back, counting its `outcome`. */
  settled(request: Request, outcome: Outcome): void {
    if (request.prev === undefined) this.oldest = request.next
    else request.prev.next = request.next
    if (request.next === undefined) this.newest = request.prev
    else request.next.prev = request.prev
    request.prev = request.next = undefined
    this.inFlight--
    switch (outcome) {
      case "succeeded":
        this.completed++
        this.consecutiveFailures = 0
        return
      case "domainError":
        this.completed++
        this.errored++
        this.consecutiveFailures = 0
        return
      case "rejected":
        this.rejected++
        return
      case "crashed":
        this.completed++
        this.errored++
        this.consecutiveFailures++
        return
      case "timedOut":
        this.completed++
        this.errored++
        this.timeouts++
        this.consecutiveFailures++
        return
      case "torn":
        this.completed++
        this.errored++
        return
      case "interrupted":
        this.completed++
        this.interrupted++
        return
    }
  }

  /** An incarnation was recycled, for `reason`, at `at` (epoch millis). */
  recycled(reason: RecycleReason, at: number): void {
    this.recycles++
    this.recycledFor ??= { requests: 0, age: 0, memory: 0 }
    this.recycledFor[reason]++
    this.lastRecycle = { reason, at }
  }

  /** The public snapshot; optional fields appear only when set. */
  snapshot(): WorkerHealth {
    const health: { -readonly [K in keyof WorkerHealth]: WorkerHealth[K] } = {
      state: this.state,
      inFlight: this.inFlight,
      maxInFlight: this.maxInFlight,
      completed: this.completed,
      errored: this.errored,
      timeouts: this.timeouts,
      interrupted: this.interrupted,
      rejected: this.rejected,
      crashes: this.crashes,
      restarts: this.restarts,
      attempt: this.attempt,
      failedStarts: this.failedStarts,
      consecutiveFailures: this.consecutiveFailures,
      ejections: this.ejections
    }
    if (this.ejectedUntil !== undefined) health.ejectedUntil = this.ejectedUntil
    const oldest = this.oldestInFlightSince
    if (oldest !== undefined) health.oldestInFlightSince = oldest
    if (this.lastCrash !== undefined) health.lastCrash = this.lastCrash
    if (this.retiredBecause !== undefined) health.retiredBecause = this.retiredBecause
    if (this.recycles > 0) {
      health.recycles = this.recycles
      health.lastRecycle = this.lastRecycle
    }
    return health
  }
}
