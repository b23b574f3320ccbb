/**
 * The in-process workers of a plan: one handler that does what each
 * request's act says, mistakes included, and counts the handler effects that
 * are running (so that a run can tell whether anything was left running).
 */

import { Effect, Schema } from "effect"
import { WorkerCrash as Crash, DomainError, type WorkerCrash, type WorkerKind } from "effect-worker-pool"
import type { Act } from "./plan.ts"

/** A request of an in-process plan: its label and its act. */
export interface Job {
  readonly id: number
  readonly act: Act
}

/**
 * A domain error whose constructor checks its field: building it with a
 * negative code throws, as a Schema-checked error does on bad input.
 */
export class Strict extends Schema.TaggedError<Strict>()("Strict", {
  code: Schema.Number.check(Schema.isGreaterThanOrEqualTo(0))
}) {}

/** What the handler of a run has seen. */
export interface HandlerLog {
  /** Handler effects running now. */
  running: number
  /** Requests whose handler was called (even if it threw). */
  readonly called: Set<number>
}

/** The handler of every in-process worker of a run. */
export const makeHandler = (log: HandlerLog): WorkerKind.Handler<Job, number, DomainError> => {
  const track = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
    Effect.suspend(() => {
      log.running++
      return Effect.ensuring(
        effect,
        Effect.sync(() => {
          log.running--
        })
      )
    })
  return (job: Job): Effect.Effect<number, DomainError | WorkerCrash> => {
    log.called.add(job.id)
    const act = job.act
    const domain = () => new DomainError({ reason: `request ${job.id} is bad` })
    const crash = () => Crash.report(`request ${job.id} crashed its worker`)
    switch (act._tag) {
      case "Succeed":
        return track(Effect.succeed(job.id))
      case "Domain":
        return track(Effect.fail(domain()))
      case "Crash":
        return track(Effect.fail(crash()))
      case "Die":
        return track(Effect.die(new Error(`request ${job.id} died`)))
      case "SyncThrow":
        throw new Error(`request ${job.id} threw before returning an Effect`)
      case "ThrowingConstructor":
        return Effect.fail(new Strict({ code: -job.id }) as never)
      case "NonEffect":
        return (
          act.returns === "value" ? job.id : act.returns === "promise" ? Promise.resolve(job.id) : undefined
        ) as never
      case "Reject":
        return track(Effect.promise(() => Promise.reject(new Error(`request ${job.id} rejected`))))
      case "SelfInterrupt":
        return track(Effect.interrupt)
      case "ThrowInSync":
        return track(
          Effect.sync(() => {
            throw new Error(`request ${job.id} threw inside Effect.sync`)
          })
        )
      case "Slow":
        return track(
          Effect.andThen(
            Effect.sleep(act.millis),
            Effect.suspend(
              (): Effect.Effect<number, DomainError | WorkerCrash> =>
                act.ending === "answer"
                  ? Effect.succeed(job.id)
                  : act.ending === "domain"
                    ? Effect.fail(domain())
                    : Effect.fail(crash())
            )
          )
        )
      case "Hang":
        return track(Effect.never)
      case "SlowCancel":
        return track(Effect.onInterrupt(Effect.never, () => Effect.sleep(act.millis)))
      default:
        // The acts of threads and subprocesses: an in-process plan never draws them.
        return track(Effect.succeed(job.id))
    }
  }
}
