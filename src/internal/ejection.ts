/**
 * Passive ejection, after Envoy's outlier detection and Linkerd's failure
 * accrual: a worker whose requests keep failing without it dying is taken out
 * of rotation for a penalty that grows with each ejection, then admits exactly
 * one probe request (half-open) that decides between readmission and a longer
 * ejection. Pure rules; the pool applies them.
 */
import type { WorkerHealth } from "../WorkerHealth.ts"

export interface EjectionRules {
  /** Consecutive crashes or timeouts that eject a worker. */
  readonly consecutiveFailures: number
  readonly baseMillis: number
  readonly maxMillis: number
  /** At most this share of the workers is ejected at once (at least one). */
  readonly maxEjectedShare: number
  /** Below this share of healthy workers, ejected ones take traffic again. */
  readonly panicThreshold: number
}

/** How many workers of `members` may be ejected at once. */
export const maxEjected = (rules: EjectionRules, members: number): number =>
  Math.max(1, Math.floor(rules.maxEjectedShare * members))

/**
 * The penalty of the `streak`-th ejection in a row: `base × streak`, jittered
 * by ±20 % (with `random` in [0, 1)), capped, in whole milliseconds.
 */
export const penaltyMillis = (rules: EjectionRules, streak: number, random: number): number =>
  Math.round(Math.min(rules.maxMillis, rules.baseMillis * streak * (0.8 + 0.4 * random)))

/** Whether a settled failure should eject a worker now. */
export const shouldEject = (rules: EjectionRules, health: WorkerHealth, ejectedNow: number, members: number): boolean =>
  health.ejectedUntil === undefined &&
  health.consecutiveFailures >= rules.consecutiveFailures &&
  ejectedNow < maxEjected(rules, members)

/** Whether the pool is in panic: too few healthy workers to honour ejections. */
export const inPanic = (rules: EjectionRules, healthy: number, members: number): boolean =>
  members > 0 && healthy < rules.panicThreshold * members
