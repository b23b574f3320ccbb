/**
 * The model: what each request of a plan may end in, from what its worker
 * does (its act), what its caller asked for and how the pool is set up,
 * following the library's documentation (errors, admission, supervision,
 * health). The checks hold every outcome against it.
 */
import { inProcess, type Target } from "./catalogue.ts"
import type { Act, Plan, PoolSettings, Request } from "./plan.ts"

/** Whether the act answers (when nothing else ends the request first). */
export const answers = (act: Act, target: Target, pool: PoolSettings): boolean => {
  switch (act._tag) {
    case "Succeed":
    case "AnswerThenExit":
      return true
    case "Slow":
      return act.ending === "answer"
    case "Oversized":
      // Only the subprocess wire has a line limit.
      return target !== "subprocess" || pool.maxLineBytes === undefined || act.bytes < pool.maxLineBytes - 200
    default:
      return false
  }
}

/** Whether the act fails with its domain error. */
export const domainFailure = (act: Act): boolean =>
  act._tag === "Domain" || (act._tag === "Slow" && act.ending === "domain")

/** Whether the request never reaches the handler: the wire refuses it (`InvalidRequest`). */
export const refusedOnTheWire = (act: Act, target: Target, pool: PoolSettings): boolean => {
  if (inProcess(target)) return false
  switch (act._tag) {
    case "Unencodable":
      return true
    case "Uncloneable":
      return target === "thread"
    case "Oversized":
      return !answers(act, target, pool)
    default:
      return false
  }
}

/** How long the act runs before it ends by itself: `Infinity` for one that never does. */
export const runMillis = (act: Act): number => {
  switch (act._tag) {
    case "Slow":
      return act.millis
    case "Hang":
    case "SlowCancel":
    case "IgnoreCancel":
      return Infinity
    default:
      return 0
  }
}

/** How long the act takes to stop once interrupted. */
export const cancelMillis = (act: Act): number => (act._tag === "SlowCancel" ? act.millis : 0)

/** The request's run-time timeout: its own, else the pool's (none for a direct dispatch). */
export const timeoutOf = (request: Request, pool: PoolSettings): number | undefined =>
  request.timeoutMillis ?? (request.direct === true ? undefined : pool.timeoutMillis)

/** The request's queue timeout: its own, else the pool's. */
export const queueTimeoutOf = (request: Request, pool: PoolSettings): number =>
  request.queueTimeoutMillis ?? pool.queueTimeoutMillis

/** Whether a deliberately buggy policy may fail the request with a defect. */
export const policyMayDie = (request: Request): boolean =>
  request.policy !== undefined && (request.policy._tag === "Throw" || request.policy._tag === "Outside")

/** The errors a dispatch may fail with (docs/errors.md), by tag. */
export const typedErrors: ReadonlySet<string> = new Set([
  "DomainError",
  "WorkerCrash",
  "RequestTimeout",
  "QueueTimeout",
  "PoolBusy",
  "PoolShutdown",
  "InvalidRequest"
])

/**
 * The slack of time a run allows on top of what the model computes: none
 * in virtual time but the longest interruption of a handler; in real time
 * the kinds' grace periods and a margin for a busy machine.
 */
export interface Allowance {
  /** Added to every request's bound. */
  readonly request: number
  /** Added to the drain for the pool's close. */
  readonly close: number
}

/** Real-time margin on a busy machine (2 vCPUs shared with other work). */
export const busyMachineMillis = 5_000

/** The allowances of a plan (see docs/fuzzing.md, "Bounds"). */
export const allowanceOf = (plan: Plan): Allowance => {
  let cancel = 0
  for (const step of plan.steps) if (step._tag === "Request") cancel = Math.max(cancel, cancelMillis(step.act))
  if (inProcess(plan.target)) return { request: cancel, close: cancel }
  const p = plan.pool
  // A crash or a timeout tears the incarnation down (SIGTERM, then SIGKILL
  // after killGrace, which the fuzzer sets to cancelGrace); an ignored
  // cancel is a crash after cancelGrace.
  const grace = 2 * p.cancelGraceMillis
  return { request: grace + busyMachineMillis, close: grace + p.cancelGraceMillis + busyMachineMillis }
}
