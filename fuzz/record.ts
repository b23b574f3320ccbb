/**
 * What a run saw, as plain data: every request with its outcome and times,
 * every worker's final health, the queue as the run sampled it, the close,
 * what was left running, and what was logged. The executors fill it in; the
 * checks judge it, and can be tested on records made by hand.
 */
import { Cause, Exit } from "effect"
import type { WorkerHealth } from "effect-worker-pool"
import type { Plan, Request } from "./plan.ts"

/** How a request ended, as its caller saw it. */
export type Outcome =
  | { readonly _tag: "Success"; readonly value: unknown }
  /** A failure in the error channel: `error` is its `_tag`. */
  | {
      readonly _tag: "Failure"
      readonly error: string
      readonly workerId: number | undefined
      /** The \`_tag\` of a \`WorkerCrash\`'s reason. */
      readonly reason: string | undefined
      readonly message: string
    }
  | { readonly _tag: "Interrupted" }
  | { readonly _tag: "Defect"; readonly message: string }

/** Where a request was when the plan interrupted its caller. */
export type Stage = "queued" | "served" | "running" | "cancelling" | "unknown"

export interface RequestRecord {
  readonly request: Request
  /** The index of its step in the plan. */
  readonly seq: number
  /** Milliseconds (virtual in process, since the run began otherwise). */
  readonly dispatchedAt: number
  endedAt: number | undefined
  /** `undefined`: it never ended. */
  outcome: Outcome | undefined
  /** When the plan interrupted its caller, if it did while the request had not ended. */
  interruptedAt: number | undefined
  interruptStage: Stage | undefined
}

export interface WorkerRecord {
  readonly id: number
  /** A worker outside the pool, for `Worker.dispatch`. */
  readonly standalone: boolean
  health: WorkerHealth | undefined
}

/** `pool.queued` after a step. */
export interface Sample {
  readonly seq: number
  readonly at: number
  readonly queued: number
}

export interface LogLine {
  readonly level: string
  readonly message: string
}

/** A `pool.remove` of the run. */
export interface Removal {
  readonly id: number
  readonly at: number
  returnedAt: number | undefined
}

export interface RunRecord {
  readonly plan: Plan
  readonly requests: Array<RequestRecord>
  readonly workers: Array<WorkerRecord>
  readonly samples: Array<Sample>
  readonly removals: Array<Removal>
  /** When the pool's scope began to close, and before which step (the number of steps: after the last). */
  closeAt: number | undefined
  closeSeq: number | undefined
  /** When that close returned; `undefined`: it did not, within the run's patience. */
  closedAt: number | undefined
  /** Other scopes of the run (added workers, the standalone worker) that did not close. */
  readonly stuck: Array<string>
  /** What was left running once everything closed, in words. */
  readonly leftovers: Array<string>
  /** Lines logged at Error or above, and any that mention a stack overflow. */
  readonly logs: Array<LogLine>
  /** What went wrong in the harness's view: a watchdog that fired, an uncaught exception. */
  readonly incidents: Array<string>
  elapsedMillis: number
}

export const emptyRecord = (plan: Plan): RunRecord => ({
  plan,
  requests: [],
  workers: [],
  samples: [],
  removals: [],
  closeAt: undefined,
  closeSeq: undefined,
  closedAt: undefined,
  stuck: [],
  leftovers: [],
  logs: [],
  incidents: [],
  elapsedMillis: 0
})

/** The outcome of an exit. */
export const outcomeOf = (exit: Exit.Exit<unknown, unknown>): Outcome => {
  if (Exit.isSuccess(exit)) return { _tag: "Success", value: exit.value }
  const error = Cause.findErrorOption(exit.cause)
  if (error._tag === "Some") {
    const e = error.value as {
      readonly _tag?: unknown
      readonly workerId?: unknown
      readonly reason?: { readonly _tag?: unknown }
      readonly message?: unknown
    } | null
    return {
      _tag: "Failure",
      error: typeof e?._tag === "string" ? e._tag : `untagged ${String(e)}`,
      workerId: typeof e?.workerId === "number" ? e.workerId : undefined,
      reason: typeof e?.reason?._tag === "string" ? e.reason._tag : undefined,
      message: String(e?.message)
    }
  }
  if (Cause.hasDies(exit.cause)) return { _tag: "Defect", message: String(Cause.squash(exit.cause)) }
  return { _tag: "Interrupted" }
}

/** An outcome, in a few words. */
export const describeOutcome = (outcome: Outcome | undefined): string => {
  if (outcome === undefined) return "no outcome"
  switch (outcome._tag) {
    case "Success":
      return "success"
    case "Failure":
      return `${outcome.error}${outcome.workerId === undefined ? "" : ` (worker ${outcome.workerId})`}: ${outcome.message}`
    case "Interrupted":
      return "interrupted"
    case "Defect":
      return `defect: ${outcome.message}`
  }
}
