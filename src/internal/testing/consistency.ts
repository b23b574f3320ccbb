/**
 * What a health record must satisfy, as plain functions: each returns what is
 * wrong, or `undefined`. The kit's checks turn an answer into an
 * `InvariantViolation`; the Schema of candidates uses them to validate.
 */
import type { WorkerHealth } from "../../WorkerHealth.ts"

/** A broken invariant: its name, and what was seen. */
export interface Problem {
  readonly invariant: string
  readonly reason: string
}

const counters = [
  "inFlight",
  "completed",
  "errored",
  "timeouts",
  "interrupted",
  "rejected",
  "crashes",
  "restarts",
  "attempt",
  "failedStarts",
  "consecutiveFailures",
  "ejections"
] as const

/**
 * The first invariant `health` breaks, if any. `settled`: every request has
 * ended, so nothing may be in flight. `label` starts the reason (such as
 * `"worker 3: "`), or is empty.
 */
export const healthProblem = (health: WorkerHealth, settled: boolean, label: string): Problem | undefined => {
  for (const name of counters) {
    const n = health[name]
    if (!(Number.isSafeInteger(n) && n >= 0)) {
      return { invariant: "counters are whole numbers", reason: `${label}${name} is ${n}` }
    }
  }
  const { completed, errored, interrupted, timeouts, crashes, restarts, failedStarts, inFlight } = health
  if (completed < errored + interrupted) {
    return {
      invariant: "completed = succeeded + errored + interrupted",
      reason: `${label}completed ${completed} < errored ${errored} + interrupted ${interrupted}`
    }
  }
  if (timeouts > errored) {
    return { invariant: "timeouts are errors", reason: `${label}timeouts ${timeouts} > errored ${errored}` }
  }
  if (restarts > crashes) {
    return { invariant: "restarts <= crashes", reason: `${label}restarts ${restarts} > crashes ${crashes}` }
  }
  if (failedStarts > crashes) {
    return {
      invariant: "failed starts are crashes",
      reason: `${label}failedStarts ${failedStarts} > crashes ${crashes}`
    }
  }
  if (crashes > 0 !== (health.lastCrash !== undefined)) {
    return {
      invariant: "the last crash is recorded",
      reason: `${label}crashes ${crashes}, lastCrash ${health.lastCrash === undefined ? "absent" : "present"}`
    }
  }
  if (health.state === "Ejected" && health.ejectedUntil === undefined) {
    return { invariant: "an ejection has an end", reason: `${label}Ejected without ejectedUntil` }
  }
  if (health.ejectedUntil !== undefined && health.ejections === 0) {
    return { invariant: "an ejection has an end", reason: `${label}ejectedUntil set, but ejections is 0` }
  }
  if (health.state === "Retired" && health.retiredBecause === undefined) {
    return { invariant: "a retired worker says why", reason: `${label}Retired without retiredBecause` }
  }
  if (inFlight === 0 && health.oldestInFlightSince !== undefined) {
    return {
      invariant: "inFlight is 0 once settled",
      reason: `${label}oldestInFlightSince is set, but inFlight is 0`
    }
  }
  if (settled && inFlight !== 0) {
    return {
      invariant: "inFlight is 0 once settled",
      reason: `${label}inFlight ${inFlight} after every request ended`
    }
  }
  return undefined
}
