/**
 * Invariant checks: every request has exactly one typed outcome
 * ({@link checkOutcomes}), each worker's health keeps its invariants
 * ({@link checkHealth}), the workers' counters add up to what the callers
 * saw ({@link checkTotals}), and a whole command run keeps the pool's
 * promises ({@link checkRun}). Each fails with an {@link InvariantViolation}
 * that names the invariant and says what was seen.
 *
 * @since 0.2.0
 */
import { Cause, Effect, Exit, Fiber, Schema } from "effect"
import { healthProblem, type Problem } from "../internal/testing/consistency.ts"
import type { WorkerCrash } from "../WorkerError.ts"
import type { WorkerHealth } from "../WorkerHealth.ts"
import type { WorkerId } from "../WorkerId.ts"
import type { Run } from "./model.ts"

// --- invariant checks ---------------------------------------------------------

/**
 * A broken invariant: which one, and what was seen. Every check of the kit
 * fails with it; its `message` reads `invariant: reason`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Testing } from "effect-worker-pool/testing"
 *
 * const tampered = Testing.health({ completed: 1, errored: 2 })
 * const message = Testing.checkHealth(tampered).pipe(
 *   Effect.flip,
 *   Effect.map((violation) => violation.message) // "completed = succeeded + errored + interrupted: ..."
 * )
 * ```
 *
 * @since 0.2.0
 * @category checks
 */
export class InvariantViolation extends Schema.TaggedError<InvariantViolation>()("InvariantViolation", {
  invariant: Schema.String,
  reason: Schema.String
}) {
  /** The invariant and the reason, so that a failing test prints both. */
  override get message(): string {
    return `${this.invariant}: ${this.reason}`
  }
}

const violation = (problem: Problem) => Effect.fail(new InvariantViolation(problem))

/**
 * What the callers of a set of requests saw, one count per kind of outcome:
 *
 * | field           | the request ended with                                   |
 * |-----------------|----------------------------------------------------------|
 * | `succeeded`     | a response                                               |
 * | `domainErrors`  | an error of the handler (any error that is not the pool's) |
 * | `crashed`       | a `WorkerCrash` that names a worker: it reached one       |
 * | `refused`       | a `WorkerCrash` that names none: no worker could take it |
 * | `timeouts`      | a `RequestTimeout`                                       |
 * | `queueTimeouts` | a `QueueTimeout`                                         |
 * | `busy`          | a `PoolBusy`                                             |
 * | `shutdown`      | a `PoolShutdown`                                         |
 * | `rejected`      | an `InvalidRequest`                                      |
 * | `interrupted`   | its caller's interruption                                |
 *
 * `requests` is their sum.
 *
 * @example
 * ```ts
 * import type { Testing } from "effect-worker-pool/testing"
 *
 * const failed = (o: Testing.Outcomes) => o.requests - o.succeeded - o.interrupted
 * ```
 *
 * @since 0.2.0
 * @category checks
 */
export interface Outcomes {
  readonly requests: number
  readonly succeeded: number
  readonly domainErrors: number
  readonly crashed: number
  readonly refused: number
  readonly timeouts: number
  readonly queueTimeouts: number
  readonly busy: number
  readonly shutdown: number
  readonly rejected: number
  readonly interrupted: number
}

type OutcomeKind = Exclude<keyof Outcomes, "requests">

/** The kind of outcome of an exit, or what is wrong with it. */
const classify = (exit: Exit.Exit<unknown, unknown>, label: string): OutcomeKind | Problem => {
  if (Exit.isSuccess(exit)) return "succeeded"
  const error = Cause.findErrorOption(exit.cause)
  if (error._tag === "None") {
    if (Cause.hasDies(exit.cause)) {
      return {
        invariant: "every request has one outcome",
        reason: `${label} died instead of ending with a typed outcome: ${String(Cause.squash(exit.cause))}`
      }
    }
    return "interrupted"
  }
  const tag = (error.value as { readonly _tag?: unknown } | null)?._tag
  switch (tag) {
    case "WorkerCrash":
      return (error.value as WorkerCrash).workerId === undefined ? "refused" : "crashed"
    case "RequestTimeout":
      return "timeouts"
    case "QueueTimeout":
      return "queueTimeouts"
    case "PoolBusy":
      return "busy"
    case "PoolShutdown":
      return "shutdown"
    case "InvalidRequest":
      return "rejected"
    default:
      return "domainErrors"
  }
}

const emptyOutcomes = (): { -readonly [K in keyof Outcomes]: number } => ({
  requests: 0,
  succeeded: 0,
  domainErrors: 0,
  crashed: 0,
  refused: 0,
  timeouts: 0,
  queueTimeouts: 0,
  busy: 0,
  shutdown: 0,
  rejected: 0,
  interrupted: 0
})

/**
 * Checks that every request has exactly one typed outcome, given the fibers
 * that dispatched them or their exits, once everything should have settled:
 * a fiber still running, a missing exit (`undefined`), or an exit with a
 * defect (the pool never lets one through: it would be a bug of the pool or
 * of a policy) fails with an {@link InvariantViolation} naming the request by
 * its index. It does not wait for anything. Otherwise it counts the
 * outcomes.
 *
 * @example
 * ```ts
 * import { Effect, Fiber } from "effect"
 * import { WorkerPool } from "effect-worker-pool"
 * import { Testing } from "effect-worker-pool/testing"
 *
 * const program = Effect.scoped(
 *   Effect.gen(function* () {
 *     const pool = yield* WorkerPool.make({ size: 2, worker: (id) => Testing.fakeWorker<number>(id) })
 *     const fibers = yield* Effect.forEach([Testing.succeed(1), Testing.fail(), Testing.crash()], (request) =>
 *       Effect.forkChild(pool.dispatch(request))
 *     )
 *     yield* Fiber.awaitAll(fibers)
 *     return yield* Testing.checkOutcomes(fibers) // { requests: 3, succeeded: 1, domainErrors: 1, crashed: 1, ... }
 *   })
 * )
 * ```
 *
 * @since 0.2.0
 * @category checks
 */
export const checkOutcomes = (
  results: Iterable<Exit.Exit<unknown, unknown> | Fiber.Fiber<unknown, unknown> | undefined>
): Effect.Effect<Outcomes, InvariantViolation> =>
  Effect.suspend(() => {
    const labelled: Array<readonly [string, Exit.Exit<unknown, unknown> | Fiber.Fiber<unknown, unknown> | undefined]> =
      []
    for (const result of results) labelled.push([`request ${labelled.length}`, result])
    return tally(labelled)
  })

/** Counts the outcomes of requests named by their labels, or says which one has none, or died. */
const tally = (
  results: ReadonlyArray<readonly [string, Exit.Exit<unknown, unknown> | Fiber.Fiber<unknown, unknown> | undefined]>
): Effect.Effect<Outcomes, InvariantViolation> => {
  const outcomes = emptyOutcomes()
  for (const [label, result] of results) {
    const exit = Fiber.isFiber(result) ? result.pollUnsafe() : result
    if (exit === undefined) {
      const reason = Fiber.isFiber(result)
        ? `${label} has no outcome: its fiber is still running`
        : `${label} has no outcome`
      return violation({ invariant: "every request has one outcome", reason })
    }
    const kind = classify(exit, label)
    if (typeof kind !== "string") return violation(kind)
    outcomes[kind]++
    outcomes.requests++
  }
  return Effect.succeed(outcomes)
}

/**
 * Checks the invariants of one worker's health (see the health guide):
 * counters are whole numbers; `completed = succeeded + errored + interrupted`
 * (so `completed >= errored + interrupted`); `timeouts <= errored`;
 * `restarts <= crashes` and `failedStarts <= crashes`; `lastCrash` is set
 * once there was a crash; an ejected worker has an `ejectedUntil`; a retired
 * one has a `retiredBecause`; no `oldestInFlightSince` without a request in
 * flight; and, with `settled: true` (every request has ended), `inFlight` is
 * 0. Fails with an {@link InvariantViolation}, or returns the record.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Testing } from "effect-worker-pool/testing"
 *
 * const program = Effect.scoped(
 *   Effect.gen(function* () {
 *     const worker = yield* Testing.fakeWorker<number>(0)
 *     yield* Effect.exit(worker.dispatch(Testing.crash()))
 *     return yield* Testing.checkHealth(yield* worker.health, { settled: true })
 *   })
 * )
 * ```
 *
 * @since 0.2.0
 * @category checks
 */
export const checkHealth = (
  health: WorkerHealth,
  options?: { readonly settled?: boolean | undefined }
): Effect.Effect<WorkerHealth, InvariantViolation> =>
  Effect.suspend(() => {
    const problem = healthProblem(health, options?.settled === true, "")
    return problem === undefined ? Effect.succeed(health) : violation(problem)
  })

/**
 * The counters of a set of workers, summed.
 *
 * @example
 * ```ts
 * import type { Testing } from "effect-worker-pool/testing"
 *
 * const succeeded = (t: Testing.Totals) => t.completed - t.errored - t.interrupted
 * ```
 *
 * @since 0.2.0
 * @category checks
 */
export interface Totals {
  readonly workers: number
  readonly inFlight: number
  readonly completed: number
  readonly errored: number
  readonly timeouts: number
  readonly interrupted: number
  readonly rejected: number
  readonly crashes: number
  readonly restarts: number
}

/**
 * Checks that the workers' counters add up to what the callers saw, once
 * every request has ended. `healths` holds the final health of every worker
 * that took requests (removed ones included): `worker.health` values, or
 * `[id, health]` pairs as `pool.health` gives them. Each is checked with
 * {@link checkHealth} (settled), then the sums against `outcomes`:
 *
 * - a request counts on at most one worker, and only if it reached one:
 *   `completed + rejected` is at most the requests that were not refused,
 *   busy or timed out in the queue;
 * - every response, domain error, `WorkerCrash` naming a worker and
 *   `RequestTimeout` was counted on a worker: `completed - interrupted` is at
 *   least their number, and the rest of it (requests a worker counted as
 *   ended while their caller was interrupted or saw `PoolShutdown`) is at
 *   most `interrupted + shutdown - Σ interrupted`;
 * - `Σ interrupted <= interrupted`; `Σ errored >= domainErrors + crashed +
 *   timeouts`; the successes (`completed - errored - interrupted`) are at
 *   least `succeeded`; `Σ timeouts >= timeouts`; `Σ rejected >= rejected`.
 *
 * It assumes each request was dispatched once, without `idempotent` (a retry
 * runs a request on a second worker).
 *
 * @example
 * ```ts
 * import { Effect, Fiber } from "effect"
 * import { WorkerPool } from "effect-worker-pool"
 * import { Testing } from "effect-worker-pool/testing"
 *
 * const program = Effect.scoped(
 *   Effect.gen(function* () {
 *     const pool = yield* WorkerPool.make({ size: 2, worker: (id) => Testing.fakeWorker<number>(id) })
 *     const fibers = yield* Effect.forEach([Testing.succeed(1), Testing.crash()], (request) =>
 *       Effect.forkChild(pool.dispatch(request))
 *     )
 *     yield* Fiber.awaitAll(fibers)
 *     const outcomes = yield* Testing.checkOutcomes(fibers)
 *     return yield* Testing.checkTotals(outcomes, yield* pool.health)
 *   })
 * )
 * ```
 *
 * @since 0.2.0
 * @category checks
 */
export const checkTotals = (
  outcomes: Outcomes,
  healths: Iterable<WorkerHealth | readonly [WorkerId, WorkerHealth]>
): Effect.Effect<Totals, InvariantViolation> =>
  Effect.suspend(() => {
    const totals = {
      workers: 0,
      inFlight: 0,
      completed: 0,
      errored: 0,
      timeouts: 0,
      interrupted: 0,
      rejected: 0,
      crashes: 0,
      restarts: 0
    }
    for (const entry of healths) {
      const [label, h] = Array.isArray(entry)
        ? [`worker ${entry[0]}: `, entry[1] as WorkerHealth]
        : [`worker at index ${totals.workers}: `, entry as WorkerHealth]
      const problem = healthProblem(h, true, label)
      if (problem !== undefined) return violation(problem)
      totals.workers++
      totals.inFlight += h.inFlight
      totals.completed += h.completed
      totals.errored += h.errored
      totals.timeouts += h.timeouts
      totals.interrupted += h.interrupted
      totals.rejected += h.rejected
      totals.crashes += h.crashes
      totals.restarts += h.restarts
    }
    const o = outcomes
    const invariant = "worker counters match what callers saw"
    const seen = o.succeeded + o.domainErrors + o.crashed + o.timeouts
    const ended = totals.completed - totals.interrupted
    const late = ended - seen
    const detail = `workers ${JSON.stringify(totals)}, callers ${JSON.stringify(o)}`
    const mismatch = (what: string) => violation({ invariant, reason: `${what} (${detail})` })
    if (totals.completed + totals.rejected > o.requests - o.refused - o.busy - o.queueTimeouts) {
      return mismatch(
        `workers counted ${totals.completed + totals.rejected} requests, more than the ${o.requests - o.refused - o.busy - o.queueTimeouts} that could reach one`
      )
    }
    if (late < 0) {
      return mismatch(
        `callers saw ${seen} responses, domain errors, crashes and timeouts, but workers counted ${ended} requests that ended so`
      )
    }
    if (totals.interrupted > o.interrupted) {
      return mismatch(`workers counted ${totals.interrupted} interruptions, callers saw ${o.interrupted}`)
    }
    if (late > o.interrupted + o.shutdown - totals.interrupted) {
      return mismatch(
        `workers counted ${late} more ended requests than callers saw, but only ${o.interrupted + o.shutdown - totals.interrupted} callers were interrupted or shut out`
      )
    }
    if (totals.errored < o.domainErrors + o.crashed + o.timeouts) {
      return mismatch(
        `callers saw ${o.domainErrors + o.crashed + o.timeouts} domain errors, crashes and timeouts, workers counted ${totals.errored} errors`
      )
    }
    if (totals.completed - totals.errored - totals.interrupted < o.succeeded) {
      return mismatch(
        `callers saw ${o.succeeded} responses, workers counted ${totals.completed - totals.errored - totals.interrupted}`
      )
    }
    if (totals.timeouts < o.timeouts) {
      return mismatch(`callers saw ${o.timeouts} timeouts, workers counted ${totals.timeouts}`)
    }
    if (totals.rejected < o.rejected) {
      return mismatch(`callers saw ${o.rejected} rejected requests, workers counted ${totals.rejected}`)
    }
    return Effect.succeed(totals)
  })

/** The message of the error an exit failed with ("" for none). */
const errorMessage = (exit: Exit.Exit<unknown, unknown>): string => {
  const error = Exit.isFailure(exit) ? Cause.findErrorOption(exit.cause) : undefined
  return error?._tag === "Some" ? String((error.value as { readonly message?: unknown } | null)?.message) : ""
}

/**
 * What {@link checkRun} found: the callers' outcomes and the workers' totals.
 *
 * @example
 * ```ts
 * import type { Testing } from "effect-worker-pool/testing"
 *
 * const line = (s: Testing.RunSummary) => `${s.outcomes.requests} requests, ${s.totals.crashes} crashes`
 * ```
 *
 * @since 0.2.0
 * @category checks
 */
export interface RunSummary {
  readonly outcomes: Outcomes
  readonly totals: Totals
}

/**
 * Checks a {@link Run}: every request has one typed outcome
 * ({@link checkOutcomes}); the outcomes follow the script (only requests
 * scripted to answer answer, each with its own number, and only `"fail"`
 * requests end with a domain error); the pool stopped every worker; the
 * counters add up and match the callers ({@link checkTotals}); and each crash
 * was caused by a request scripted to crash or die, while each such request
 * whose caller saw its own crash caused one.
 *
 * @example
 * ```ts
 * import { it } from "@effect/vitest"
 * import { Effect } from "effect"
 * import { DispatchPolicy } from "effect-worker-pool"
 * import { Testing } from "effect-worker-pool/testing"
 *
 * it.effect.prop("RoundRobin keeps the pool's promises", [Testing.Commands], ([commands]) =>
 *   Effect.flatMap(Testing.runCommands(commands, { pool: { policy: DispatchPolicy.RoundRobin } }), Testing.checkRun)
 * )
 * ```
 *
 * @since 0.2.0
 * @category checks
 */
export const checkRun = (run: Run): Effect.Effect<RunSummary, InvariantViolation> =>
  Effect.gen(function* () {
    const outcomes = yield* tally(run.requests.map((r) => [`request ${r.value} (${r.behaviour})`, r.exit] as const))
    const script = "outcomes follow the script"
    /** Crashes that requests scripted to crash or die caused, as their callers saw. */
    let caused = 0
    /** Such requests whose callers saw no outcome of theirs (interrupted, shut out). */
    let unseen = 0
    for (const { behaviour, value, exit } of run.requests) {
      const kind = classify(exit!, `request ${value}`) as OutcomeKind
      const label = `request ${value} (${behaviour})`
      const crasher = behaviour === "crash" || behaviour === "die"
      if (kind === "succeeded") {
        if (behaviour === "succeed" || behaviour === "slow" || behaviour === "wait") {
          const answer = (exit as Exit.Success<number>).value
          if (answer !== value) return yield* violation({ invariant: script, reason: `${label} answered ${answer}` })
        } else return yield* violation({ invariant: script, reason: `${label} succeeded` })
      } else if (kind === "domainErrors" && behaviour !== "fail") {
        return yield* violation({ invariant: script, reason: `${label} ended with a domain error` })
      } else if (kind === "rejected") {
        return yield* violation({ invariant: script, reason: `${label} was rejected` })
      } else if (kind === "crashed" && crasher) {
        const own = behaviour === "crash" ? `request ${value} crashed` : `request ${value} died`
        if (errorMessage(exit!).includes(own)) caused++
      } else if ((kind === "interrupted" || kind === "shutdown") && crasher) {
        unseen++
      }
    }
    for (const [id, h] of run.workers) {
      if (h.state !== "Stopped") {
        return yield* violation({ invariant: "the pool stopped every worker", reason: `worker ${id} is ${h.state}` })
      }
    }
    const totals = yield* checkTotals(outcomes, run.workers)
    if (totals.crashes < caused || totals.crashes > caused + unseen) {
      return yield* violation({
        invariant: "crashes match the requests that crashed",
        reason: `workers counted ${totals.crashes} crashes; ${caused} requests saw their own crash, ${unseen} more were cut off`
      })
    }
    return { outcomes, totals }
  })
