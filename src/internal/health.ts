/**
 * A worker's health as it changes: plain fields updated in place, one per
 * counter, so that a request costs a few increments and no copy. The public
 * `WorkerHealth` is a snapshot of it (`snapshot`); policies read the live
 * record through the roster.
 *
 * The requests a worker is running are kept in start order in an intrusive
 * list of their slots, so that the start of the oldest one is at hand without
 * a map or a scan.
 */
import type { Fiber, Tracer } from "effect"
import type { LastCrash, WorkerHealth, WorkerState } from "../WorkerHealth.ts"

/**
 * A slot on a worker, taken before a request runs on it. It counts as in
 * flight from the moment it is taken until it is given back.
 */
export class Slot {
  /** The incarnation the slot was taken on. */
  readonly incarnation: object
  /** When the request started on the worker (epoch millis); 0 until it starts. */
  startedAt = 0
  /** 0: taken, 1: running, 2: given back. */
  phase: 0 | 1 | 2 = 0
  prev: Slot | undefined = undefined
  next: Slot | undefined = undefined
  /** The caller's fiber, when the request runs on it. */
  caller: Fiber.Fiber<unknown, unknown> | undefined = undefined
  /** It runs in-process on its caller's fiber: its incarnation's end waits for it. */
  waited = false
  /**
   * What its caller gets when that is not told by its outcome alone: the
   * `_tag` of a domain error, or of the error a stop cut it with (for the
   * pool's metrics).
   */
  tag: string | undefined = undefined
  /** The span of its dispatch, when it is traced: the parent of the handler's spans. */
  span: Tracer.AnySpan | undefined = undefined

  constructor(incarnation: object) {
    this.incarnation = incarnation
  }
}

/**
 * How a request that was given a slot ended, as its worker counts it.
 *
 * - `succeeded`, `domainError`: the worker answered (a domain error is a
 *   success of the worker: it judged the request).
 * - `rejected`: the request never reached the handler (`InvalidRequest`).
 * - `crashed`, `timedOut`: failures of the worker, toward ejection.
 * - `torn`: its incarnation was torn down under it by another request's
 *   crash, or by a stop: an error, but not one of its own making.
 * - `interrupted`: its caller left.
 */
export type Outcome = "succeeded" | "domainError" | "rejected" | "crashed" | "timedOut" | "torn" | "interrupted"

export class HealthRecord implements WorkerHealth {
  state: WorkerState = "Starting"
  inFlight = 0
  completed = 0
  errored = 0
  timeouts = 0
  interrupted = 0
  rejected = 0
  crashes = 0
  restarts = 0
  attempt = 0
  failedStarts = 0
  consecutiveFailures = 0
  ejections = 0
  ejectedUntil: number | undefined = undefined
  lastCrash: LastCrash | undefined = undefined
  retiredBecause: string | undefined = undefined
  private oldest: Slot | undefined = undefined
  private newest: Slot | undefined = undefined

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
   * of an incarnation that had become ready (its last start did not fail).
   */
  get canComeBack(): boolean {
    const state = this.state
    return (
      state === "Healthy" ||
      state === "Ejected" ||
      ((state === "Starting" || state === "Restarting") && this.failedStarts === 0)
    )
  }

  /** The slots of the requests running now, oldest first. */
  *running(): Generator<Slot> {
    for (let slot = this.oldest; slot !== undefined; slot = slot.next) yield slot
  }

  /** A request starts running in `slot` at `now`. */
  started(slot: Slot, now: number): void {
    slot.phase = 1
    slot.startedAt = now
    slot.prev = this.newest
    if (this.newest === undefined) this.oldest = slot
    else this.newest.next = slot
    this.newest = slot
  }

  /** Gives `slot` back, counting its request's `outcome` if it had started. */
  settled(slot: Slot, outcome: Outcome | undefined): void {
    if (slot.phase === 2) return
    if (slot.phase === 1) {
      if (slot.prev === undefined) this.oldest = slot.next
      else slot.prev.next = slot.next
      if (slot.next === undefined) this.newest = slot.prev
      else slot.next.prev = slot.prev
      slot.prev = slot.next = undefined
    }
    slot.phase = 2
    this.inFlight--
    if (outcome === undefined) return
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

  /** The public snapshot; optional fields appear only when set. */
  snapshot(): WorkerHealth {
    const health: { -readonly [K in keyof WorkerHealth]: WorkerHealth[K] } = {
      state: this.state,
      inFlight: this.inFlight,
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
    return health
  }
}
