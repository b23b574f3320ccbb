/**
 * When to restart a crashed worker: the backoff schedule, stepped once per
 * failure in a row and reset by an incarnation that answered a request or
 * stayed up long enough (as Akka resets after a healthy period), and an
 * optional restart budget (at most `maxRestarts` within `window`, as
 * Erlang/OTP supervisors do; none by default).
 */
import { Duration, Effect, Exit, Schedule } from "effect"
import type { WorkerCrash } from "../WorkerError.ts"

/** The restart rules of one worker, with defaults applied. */
export interface RestartPolicy {
  readonly schedule: Schedule.Schedule<unknown, WorkerCrash>
  readonly maxRestarts: number
  readonly window: Duration.Duration
  readonly resetAfter: Duration.Duration
}

/** What to do after a crash. */
export type RestartDecision =
  | { readonly _tag: "Restart"; readonly delay: Duration.Duration; readonly attempt: number }
  | { readonly _tag: "Retire"; readonly because: string }

/**
 * Tracks one worker's restarts. `started` marks the moment an incarnation came
 * up; `next` decides, at a crash, between a restart after a delay and
 * retirement. `served` says whether the incarnation that ended answered a
 * request: if it did, the crash is not one more failure in a row and the
 * backoff starts over at its first delay, so a poison request costs one short
 * restart, not an ever longer one.
 */
export const restartTracker = Effect.fnUntraced(function* (policy: RestartPolicy) {
  const windowMillis = Duration.toMillis(policy.window)
  const resetMillis = Duration.toMillis(policy.resetAfter)
  let step = yield* Schedule.toStep(policy.schedule)
  let attempt = 0
  let upSince: number | undefined
  /** When the restarts inside the current window happen (or happened). */
  const restartTimes: Array<number> = []

  const started = Effect.clockWith((clock) =>
    Effect.sync(() => {
      upSince = clock.currentTimeMillisUnsafe()
    })
  )

  /**
   * `immediate`: the restart takes a ready spare, so it happens now rather
   * than after the delay.
   */
  const next = (crash: WorkerCrash, served: boolean, immediate = false): Effect.Effect<RestartDecision> =>
    Effect.clockWith((clock) =>
      Effect.gen(function* () {
        const now = clock.currentTimeMillisUnsafe()
        if (served || (upSince !== undefined && now - upSince >= resetMillis)) {
          step = yield* Schedule.toStep(policy.schedule)
          attempt = 0
        }
        upSince = undefined
        const stepped = yield* Effect.exit(step(now, crash))
        if (Exit.isFailure(stepped)) return { _tag: "Retire", because: "its restart schedule is exhausted" } as const
        const delay = stepped.value[1]
        const at = immediate ? now : now + Duration.toMillis(delay)
        while (restartTimes.length > 0 && restartTimes[0]! <= at - windowMillis) restartTimes.shift()
        if (restartTimes.length >= policy.maxRestarts) {
          return {
            _tag: "Retire",
            because: `its restart budget is exhausted: ${policy.maxRestarts} restarts within ${Duration.format(policy.window)}`
          } as const
        }
        if (Number.isFinite(policy.maxRestarts)) restartTimes.push(at)
        attempt++
        return { _tag: "Restart", delay, attempt } as const
      })
    )

  /** The restart decided last happens now: the budget counts it at the time it really happened. */
  const restarted = Effect.clockWith((clock) =>
    Effect.sync(() => {
      if (restartTimes.length > 0) restartTimes[restartTimes.length - 1] = clock.currentTimeMillisUnsafe()
    })
  )
  return { started, next, restarted }
})
