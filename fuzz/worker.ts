/**
 * The fuzzer's worker script, for threads and subprocesses alike: it does
 * what each request's act says (see `jobs.ts`). Run with Node 24 and
 * `--conditions=effect-worker-pool-source`, so that the package is the
 * source tree.
 */
import { Effect, Schema } from "effect"
import { DomainError, Runner, WorkerCrash } from "effect-worker-pool/child"
import { Job, LooseAnswer } from "./jobs.ts"

/** An error whose constructor throws on a negative code (a Schema check). */
class Strict extends Schema.TaggedError<Strict>()("Strict", {
  code: Schema.Number.check(Schema.isGreaterThanOrEqualTo(0))
}) {}

Runner.run({
  request: Job,
  response: LooseAnswer,
  handler: ({ id, act }) => {
    const answer = { id }
    switch (act._tag) {
      case "Succeed":
      case "Oversized":
      case "Unencodable":
      case "Opaque":
        return Effect.succeed(answer)
      case "Domain":
        return Effect.fail(new DomainError({ reason: `request ${id} is bad` }))
      case "Crash":
        return Effect.fail(WorkerCrash.report(`request ${id} crashed its worker`))
      case "Die":
        return Effect.die(new Error(`request ${id} died`))
      case "SyncThrow":
        throw new Error(`request ${id} threw before returning an Effect`)
      case "ThrowingConstructor":
        return Effect.fail(new Strict({ code: -id }) as never)
      case "Reject":
        return Effect.promise(() => Promise.reject(new Error(`request ${id} rejected`)))
      case "SelfInterrupt":
        return Effect.interrupt
      case "ThrowInSync":
        return Effect.sync(() => {
          throw new Error(`request ${id} threw inside Effect.sync`)
        })
      case "Slow":
        return Effect.andThen(
          Effect.sleep(act.millis),
          Effect.suspend(
            (): Effect.Effect<{ readonly id: number }, DomainError | WorkerCrash> =>
              act.ending === "answer"
                ? Effect.succeed(answer)
                : act.ending === "domain"
                  ? Effect.fail(new DomainError({ reason: `request ${id} is bad` }))
                  : Effect.fail(WorkerCrash.report(`request ${id} crashed its worker`))
          )
        )
      case "Hang":
        return Effect.never
      case "IgnoreCancel":
        return Effect.uninterruptible(Effect.never)
      case "Exit":
        return Effect.sync(() => process.exit(act.code)).pipe(Effect.andThen(Effect.never))
      case "AnswerThenExit":
        return Effect.sync(() => {
          setTimeout(() => process.exit(3), 1)
          return answer
        })
      case "BadResponse":
        return Effect.succeed({ id: -1 })
    }
  }
})
