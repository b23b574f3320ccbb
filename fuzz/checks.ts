/**
 * The invariants a run must keep, each a named check over a `RunRecord`
 * (plain data, so that each check can be tested on a record broken by hand).
 * They say what the library promises (README, docs/errors.md,
 * docs/admission.md, docs/health.md, docs/supervision.md): every request
 * gets exactly one typed outcome, in time; the counters add up; no slot is
 * left taken; the close returns in time; nothing is left running; nothing
 * is logged that should not be.
 */
import { Effect } from "effect"
import { type WorkerHealth, WorkerId } from "effect-worker-pool"
import { Testing } from "effect-worker-pool/testing"
import { inProcess } from "./catalogue.ts"
import {
  allowanceOf,
  answers,
  domainFailure,
  policyMayDie,
  queueTimeoutOf,
  refusedOnTheWire,
  runMillis,
  timeoutOf,
  typedErrors
} from "./model.ts"
import { describeStep } from "./plan.ts"
import { describeOutcome, type RequestRecord, type RunRecord } from "./record.ts"

/** A broken invariant: which, what was seen, and the request it concerns, if one. */
export interface Finding {
  readonly invariant: string
  readonly message: string
  readonly request?: number | undefined
}

/** One named invariant. */
export interface Check {
  readonly name: string
  readonly description: string
  readonly run: (record: RunRecord) => Array<Finding>
}

const label = (rec: RequestRecord) => `request ${describeStep(rec.request)}`

/** When the request must have ended (see docs/fuzzing.md, "Bounds"). */
export const deadlineOf = (rec: RequestRecord, record: RunRecord): number => {
  const plan = record.plan
  const pool = plan.pool
  const allowance = allowanceOf(plan)
  const request = rec.request
  const direct = request.direct === true
  const tries = request.idempotent === true ? 1 + pool.maxRetries : 1
  const run = Math.min(timeoutOf(request, pool) ?? Infinity, runMillis(request.act))
  const queue = direct ? 0 : queueTimeoutOf(request, pool)
  let deadline = rec.dispatchedAt + tries * (queue + run) + allowance.request
  if (!direct && record.closeAt !== undefined) {
    // A request that came after the close began fails at once; the others end by the drain deadline.
    const cut =
      rec.seq > (record.closeSeq ?? Infinity)
        ? rec.dispatchedAt + allowance.request
        : record.closeAt + pool.drainMillis + allowance.close
    deadline = Math.min(deadline, cut)
  }
  if (rec.interruptedAt !== undefined) deadline = Math.min(deadline, rec.interruptedAt + allowance.request)
  return deadline
}

const oneOutcome: Check = {
  name: "one outcome",
  description: "every request ends, with exactly one outcome",
  run: (record) =>
    record.requests
      .filter((rec) => rec.outcome === undefined)
      .map((rec) => ({
        invariant: "one outcome",
        request: rec.request.id,
        message: `${label(rec)}: never ended`
      }))
}

const typedOutcome: Check = {
  name: "typed outcome",
  description:
    "a response, the handler's domain error or one of the pool's typed errors; a defect only from a buggy policy, an interruption only of a caller the plan interrupted",
  run: (record) => {
    const findings: Array<Finding> = []
    for (const rec of record.requests) {
      const o = rec.outcome
      if (o === undefined) continue
      const found = (message: string) =>
        findings.push({ invariant: "typed outcome", request: rec.request.id, message: `${label(rec)}: ${message}` })
      switch (o._tag) {
        case "Success":
          break
        case "Failure":
          if (!typedErrors.has(o.error)) found(`failed with ${describeOutcome(o)}, which a dispatch never fails with`)
          break
        case "Defect":
          if (!policyMayDie(rec.request)) found(`died instead of a typed outcome: ${o.message}`)
          break
        case "Interrupted":
          if (rec.interruptedAt === undefined) {
            found("its caller was interrupted, though nobody interrupted it")
          }
          break
      }
    }
    return findings
  }
}

const followsBehaviour: Check = {
  name: "outcome follows the behaviour",
  description:
    "only requests whose worker answers succeed, with their own answer; only bad requests end with a domain error; only requests the wire refuses end with InvalidRequest; only requests with a timeout time out; PoolBusy only from a queue that refuses; PoolShutdown only once the close began",
  run: (record) => {
    const findings: Array<Finding> = []
    const { plan } = record
    for (const rec of record.requests) {
      const o = rec.outcome
      if (o === undefined || o._tag === "Interrupted" || o._tag === "Defect") continue
      const act = rec.request.act
      const found = (message: string) =>
        findings.push({
          invariant: "outcome follows the behaviour",
          request: rec.request.id,
          message: `${label(rec)}: ${message}`
        })
      if (o._tag === "Success") {
        if (!answers(act, plan.target, plan.pool)) found("succeeded, but its worker does not answer")
        else if (o.value !== rec.request.id) found(`answered ${JSON.stringify(o.value)}, not its own answer`)
        continue
      }
      switch (o.error) {
        case "DomainError":
          if (!domainFailure(act)) found(`ended with a domain error: ${o.message}`)
          break
        case "InvalidRequest":
          if (!refusedOnTheWire(act, plan.target, plan.pool)) found(`was refused on the wire: ${o.message}`)
          break
        case "RequestTimeout":
          if (timeoutOf(rec.request, plan.pool) === undefined) found("timed out without a timeout")
          break
        case "PoolBusy":
          if (plan.pool.queueStrategy === "suspend") found(`got PoolBusy from a queue that suspends: ${o.message}`)
          break
        case "PoolShutdown":
          if (record.closeAt === undefined || (rec.endedAt ?? Infinity) < record.closeAt) {
            found("got PoolShutdown before the pool began to close")
          }
          break
        case "QueueTimeout":
          if (rec.request.direct === true) found("got QueueTimeout from Worker.dispatch")
          break
      }
    }
    return findings
  }
}

const inTime: Check = {
  name: "ends in time",
  description:
    "each request ends within its bound: its queue timeout, its run (its timeout, or how long its worker takes), the drain once the pool closes, its cancel once interrupted, plus the allowance",
  run: (record) => {
    const findings: Array<Finding> = []
    for (const rec of record.requests) {
      if (rec.endedAt === undefined) continue
      const deadline = deadlineOf(rec, record)
      if (rec.endedAt > deadline) {
        findings.push({
          invariant: "ends in time",
          request: rec.request.id,
          message: `${label(rec)}: ended at ${fmt(rec.endedAt)} ms (${describeOutcome(rec.outcome)}), past its bound of ${fmt(deadline)} ms (dispatched at ${fmt(rec.dispatchedAt)})`
        })
      }
    }
    return findings
  }
}

const fmt = (millis: number) => (Number.isInteger(millis) ? `${millis}` : millis.toFixed(1))

/** Margin, in real time, around a sample of the queue (a request enters it just after its dispatch is stamped). */
const sampleMargin = (record: RunRecord) => (inProcess(record.plan.target) ? 0 : 10)

/**
 * How long, in real time, the queue must be seen empty in a row to count: a
 * request served a slot whose incarnation died before its caller woke is out
 * of the queue for a moment, then placed again.
 */
const emptyFor = (record: RunRecord) => (inProcess(record.plan.target) ? 0 : 50)

const visibleWhileWaiting: Check = {
  name: "waiting requests are queued",
  description:
    "a request that timed out in the queue was in it all along: pool.queued was never 0 while it waited (a request taken out of the queue without being served is lost)",
  run: (record) => {
    const findings: Array<Finding> = []
    // A queue of capacity 0 holds nobody: its waiting callers are suspended for room, which pool.queued does not count.
    if (record.plan.pool.queueCapacity === 0) return findings
    const margin = sampleMargin(record)
    const stretch = emptyFor(record)
    for (const rec of record.requests) {
      const o = rec.outcome
      if (o === undefined || o._tag !== "Failure" || o.error !== "QueueTimeout") continue
      const from = rec.dispatchedAt + margin
      const until = rec.dispatchedAt + queueTimeoutOf(rec.request, record.plan.pool) - margin
      let emptySince: number | undefined
      for (const sample of record.samples) {
        if (sample.seq < rec.seq || sample.at < from || sample.at >= until) continue
        if (sample.queued > 0) {
          emptySince = undefined
          continue
        }
        emptySince ??= sample.at
        if (sample.at - emptySince >= stretch) {
          findings.push({
            invariant: "waiting requests are queued",
            request: rec.request.id,
            message: `${label(rec)}: ended with QueueTimeout, but the queue was empty at ${fmt(sample.at)} ms while it waited`
          })
          break
        }
      }
    }
    return findings
  }
}

/** The counts of no request: every kind of outcome `Testing.Outcomes` tells apart, at 0. */
const noOutcomes: Testing.Outcomes = Effect.runSync(Testing.checkOutcomes([]))

/**
 * What the callers of a set of requests saw, counted as `Testing.checkTotals`
 * takes it. A request whose count on the workers the callers cannot tell (a
 * retry of an idempotent request, a request that never ended or that a
 * policy failed) counts as one whose caller was interrupted: its worker may
 * have counted it or not, which loosens the upper bounds by as many.
 */
export const tally = (requests: ReadonlyArray<RequestRecord>, maxRetries: number): Testing.Outcomes => {
  const t: { -readonly [K in keyof Testing.Outcomes]: number } = { ...noOutcomes }
  let uncounted = 0
  for (const rec of requests) {
    const o = rec.outcome
    if (rec.request.idempotent === true) uncounted += maxRetries
    if (o === undefined || o._tag === "Defect") {
      uncounted++
      continue
    }
    t.requests++
    if (o._tag === "Success") t.succeeded++
    else if (o._tag === "Interrupted") t.interrupted++
    else if (o.error === "WorkerCrash") {
      // A refusal reached no worker: none was available (NoWorker), or the worker was not up (Unavailable).
      if (o.workerId === undefined || o.reason === "Unavailable") t.refused++
      else t.crashed++
    } else if (o.error === "RequestTimeout") t.timeouts++
    else if (o.error === "QueueTimeout") t.queueTimeouts++
    else if (o.error === "PoolBusy") t.busy++
    else if (o.error === "PoolShutdown") t.shutdown++
    else if (o.error === "InvalidRequest") t.rejected++
    else t.domainErrors++
  }
  return { ...t, requests: t.requests + uncounted, interrupted: t.interrupted + uncounted }
}

/** What a check of the test kit found, in words; `undefined` when the invariant holds. */
const violationOf = (check: Effect.Effect<unknown, Testing.InvariantViolation>): string | undefined =>
  Effect.runSync(Effect.match(check, { onFailure: (violation) => violation.message, onSuccess: () => undefined }))

/**
 * A final health as the counters are judged: the slots a worker still holds
 * set aside, since "no slot left taken" judges them.
 */
const slotsSetAside = (h: WorkerHealth): WorkerHealth => {
  if (h.inFlight === 0) return h
  const { oldestInFlightSince: _oldest, ...rest } = h
  return { ...rest, inFlight: 0 }
}

const counters: Check = {
  name: "counters add up",
  description:
    "each worker's health is consistent, and the counters of the pool's workers (and of the worker outside it) match what their callers saw, by the rules of Testing.checkTotals",
  run: (record) => {
    const findings: Array<Finding> = []
    const groups = [
      ["the pool's workers", false],
      ["the worker outside the pool", true]
    ] as const
    for (const [name, standalone] of groups) {
      const workers = record.workers.filter((w) => w.standalone === standalone && w.health !== undefined)
      if (workers.length === 0) continue
      const requests = record.requests.filter((rec) => (rec.request.direct === true) === standalone)
      const healths = workers.map((w) => [WorkerId.make(w.id), slotsSetAside(w.health!)] as const)
      const problem = violationOf(Testing.checkTotals(tally(requests, record.plan.pool.maxRetries), healths))
      if (problem !== undefined) findings.push({ invariant: "counters add up", message: `${name}: ${problem}` })
    }
    return findings
  }
}

const slotsFree: Check = {
  name: "no slot left taken",
  description: "once every request has ended and the pool has closed, every worker's inFlight is 0",
  run: (record) =>
    record.workers
      .filter((w) => w.health !== undefined && w.health.inFlight !== 0)
      .map((w) => ({
        invariant: "no slot left taken",
        message: `worker ${w.id} holds ${w.health!.inFlight} slots after every request ended (${w.health!.state})`
      }))
}

const closeInTime: Check = {
  name: "close returns in time",
  description:
    "closing the pool's scope returns within the drain plus the allowance; every remove returns; the other scopes of the run close",
  run: (record) => {
    const findings: Array<Finding> = []
    const { plan } = record
    const allowance = allowanceOf(plan)
    if (record.closeAt !== undefined) {
      const bound = record.closeAt + plan.pool.drainMillis + allowance.close
      if (record.closedAt === undefined) {
        findings.push({
          invariant: "close returns in time",
          message: `closing the pool's scope never returned (began at ${fmt(record.closeAt)} ms)`
        })
      } else if (record.closedAt > bound) {
        findings.push({
          invariant: "close returns in time",
          message: `closing the pool's scope returned at ${fmt(record.closedAt)} ms, past its bound of ${fmt(bound)} ms (drain ${plan.pool.drainMillis} ms)`
        })
      }
    }
    for (const removal of record.removals) {
      if (removal.returnedAt === undefined || removal.returnedAt > removal.at + allowance.close) {
        findings.push({
          invariant: "close returns in time",
          message: `pool.remove(${removal.id}) at ${fmt(removal.at)} ms ${removal.returnedAt === undefined ? "never returned" : `returned at ${fmt(removal.returnedAt)} ms`}`
        })
      }
    }
    for (const stuck of record.stuck) findings.push({ invariant: "close returns in time", message: stuck })
    return findings
  }
}

const nothingLeft: Check = {
  name: "nothing left running",
  description:
    "once the scopes closed: no handler running, every worker Stopped and quiet, pool.changes ended, no thread or child process left",
  run: (record) => record.leftovers.map((message) => ({ invariant: "nothing left running", message }))
}

/** Error logs the documentation lists (docs/supervision.md, "Logs"). */
const documentedErrors = [
  /^the pool has no worker that can serve or come back/,
  /^worker retired/,
  // A plan whose policy throws from onResult on purpose (policy-learn-throws).
  /^dispatch policy Buggy\w+ threw from onResult/
]

const quietLogs: Check = {
  name: "nothing logged amiss",
  description:
    "no line at Error or above but the documented ones (a worker retired, no worker can serve or come back), no stack overflow",
  run: (record) =>
    record.logs
      .filter((line) => !documentedErrors.some((known) => known.test(line.message)))
      .map((line) => ({ invariant: "nothing logged amiss", message: `${line.level}: ${line.message}` }))
}

const harness: Check = {
  name: "the run ends",
  description: "the run finished within its real-time watchdog, with no uncaught exception",
  run: (record) => record.incidents.map((message) => ({ invariant: "the run ends", message }))
}

/** Every check, in the order findings are reported. */
export const checks: ReadonlyArray<Check> = [
  harness,
  oneOutcome,
  typedOutcome,
  followsBehaviour,
  inTime,
  visibleWhileWaiting,
  counters,
  slotsFree,
  closeInTime,
  nothingLeft,
  quietLogs
]

/** What every check finds in `record`. */
export const judge = (record: RunRecord): Array<Finding> => checks.flatMap((check) => check.run(record))
