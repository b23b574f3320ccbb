/**
 * What the two executors (inprocess.ts, in virtual time, and outofprocess.ts,
 * in real time) share: the pool a plan's settings describe, its policy with
 * the plan's bugs, a request's dispatch and its record, a `Remove` step, and
 * the watched run that fills a record in.
 */
import { Duration, Effect, Exit, type Fiber, Scope } from "effect"
import type { DispatchPolicy, WorkerPool } from "effect-worker-pool"
import { takeUncaught, withWatchdog } from "./harness.ts"
import type { Plan, PolicyBug, PoolSettings, Request } from "./plan.ts"
import { buggy, builtIn } from "./policy.ts"
import { emptyRecord, type RequestRecord, type RunRecord } from "./record.ts"

/** `millis` as a duration; `undefined` stays so. */
const durationOf = (millis: number | undefined): Duration.Duration | undefined =>
  millis === undefined ? undefined : Duration.millis(millis)

/**
 * The plan's policy, made buggy when one of its requests asks for a bug;
 * `bugs` is where a job dispatched is given its request's bug (by identity).
 */
export const policyOf = (
  plan: Plan
): { readonly policy: DispatchPolicy.DispatchPolicy<any, unknown>; readonly bugs: WeakMap<object, PolicyBug> } => {
  const bugs = new WeakMap<object, PolicyBug>()
  const hasBugs = plan.pool.learnThrows || plan.steps.some((s) => s._tag === "Request" && s.policy !== undefined)
  return {
    policy: hasBugs ? buggy(builtIn(plan.pool.policy), bugs, plan.pool.learnThrows) : builtIn(plan.pool.policy),
    bugs
  }
}

/** The options of `WorkerPool.make` the pool settings give: all but the policy, the workers and the spares. */
export const poolOptionsOf = (p: PoolSettings) => ({
  timeout: durationOf(p.timeoutMillis),
  queueTimeout: Duration.millis(p.queueTimeoutMillis),
  queueCapacity: p.queueCapacity,
  queueStrategy: p.queueStrategy,
  drain: Duration.millis(p.drainMillis),
  ejection: p.ejection ? undefined : (false as const),
  retry: { maxRetries: p.maxRetries }
})

/** `pool.dispatch` of `job` with the request's options, or with none when it has none. */
export const dispatchTo = <I, O, E>(pool: WorkerPool.WorkerPool<I, O, E>, job: I, step: Request) =>
  step.timeoutMillis === undefined && step.queueTimeoutMillis === undefined && step.idempotent !== true
    ? pool.dispatch(job)
    : pool.dispatch(job, {
        timeout: durationOf(step.timeoutMillis),
        queueTimeout: durationOf(step.queueTimeoutMillis),
        idempotent: step.idempotent
      })

/** The record of a request dispatched at `dispatchedAt` by step `seq`, added to the run's. */
export const recordDispatch = (record: RunRecord, step: Request, seq: number, dispatchedAt: number): RequestRecord => {
  const rec: RequestRecord = {
    request: step,
    seq,
    dispatchedAt,
    endedAt: undefined,
    outcome: undefined,
    interruptedAt: undefined,
    interruptStage: undefined
  }
  record.requests.push(rec)
  return rec
}

/**
 * A `Remove` step: removes the `pick`-th member ([0, 1) of the members) on
 * a fiber of its own, so that a remove that never returns does not hold the
 * run up, and records when it was asked and when it returned.
 */
export const removeMember = <I, O, E>(
  pool: WorkerPool.WorkerPool<I, O, E>,
  pick: number,
  record: RunRecord,
  now: () => number
): Effect.Effect<void> =>
  Effect.gen(function* () {
    const members = yield* pool.health
    if (members.length === 0) return
    const [id] = members[Math.floor(pick * members.length)]!
    const removal = { id, at: now(), returnedAt: undefined as number | undefined }
    record.removals.push(removal)
    yield* Effect.forkDetach(
      Effect.ensuring(
        Effect.exit(pool.remove(id)),
        Effect.sync(() => {
          removal.returnedAt = now()
        })
      ),
      { startImmediately: true }
    )
  })

/** The close of a run's pool, begun by a `Shutdown` step or at the end of the plan. */
export interface PoolClose {
  /** Begins closing the pool's scope before step `seq` on a fiber of its own, unless it began already. */
  readonly begin: (seq: number) => Effect.Effect<void>
  /** Whether the close began and has returned. */
  readonly returned: () => boolean
  /** Interrupts a close that began and has not returned. */
  readonly abandon: () => void
}

/**
 * The close of the pool's scope `poolScope`, recorded in `record`: when it
 * began, before which step, and when it returned. `startImmediately`: the
 * close's fiber starts at once (in real time), rather than when the caller
 * next yields (in virtual time, where the step's settle runs it).
 */
export const poolClose = (
  poolScope: Scope.Closeable,
  record: RunRecord,
  now: () => number,
  startImmediately: boolean
): PoolClose => {
  let closing: Fiber.Fiber<void> | undefined
  return {
    begin: (seq) =>
      Effect.gen(function* () {
        if (closing !== undefined) return
        record.closeAt = now()
        record.closeSeq = seq
        closing = yield* Effect.forkDetach(
          Effect.ensuring(
            Scope.close(poolScope, Exit.void),
            Effect.sync(() => {
              record.closedAt = now()
            })
          ),
          { startImmediately }
        )
      }),
    returned: () => closing !== undefined && closing.pollUnsafe() !== undefined,
    abandon: () => {
      if (closing !== undefined && closing.pollUnsafe() === undefined) closing.interruptUnsafe()
    }
  }
}

/**
 * Plays a plan: `play` fills in a fresh record of it, given when the run
 * began (real time), under a real-time watchdog: a run not done within
 * `watchdogMillis` is given up on and reported. The exceptions nothing
 * caught meanwhile and the real time the run took are added to the record.
 */
export const watchedRun = (
  plan: Plan,
  watchdogMillis: number,
  play: (record: RunRecord, began: number) => Effect.Effect<unknown>
): Effect.Effect<RunRecord> =>
  Effect.suspend(() => {
    const record = emptyRecord(plan)
    const began = performance.now()
    takeUncaught()
    return withWatchdog(Effect.as(play(record, began), record), watchdogMillis, () => {
      record.incidents.push(`the run did not finish within ${watchdogMillis} ms of real time`)
      return record
    }).pipe(
      Effect.tap(() =>
        Effect.sync(() => {
          record.incidents.push(...takeUncaught())
          record.elapsedMillis = performance.now() - began
        })
      )
    )
  })
