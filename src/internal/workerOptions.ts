/**
 * The Schema of a worker's options (`Worker.WorkerOptions`): every option's
 * rule and default, decoded once by `Worker.fromKind` into the supervisor's
 * settings.
 */
import { Schedule, Schema } from "effect"
import type { WorkerCrash } from "../WorkerError.ts"
import { defaultRestartSchedule } from "./backoff.ts"
import * as Options from "./options.ts"
import { RecycleOptions } from "./recycle.ts"
import type { Settings } from "./supervisor.ts"

/** The fields of `Worker.WorkerOptions`, for a kind whose `concurrency` is the default `maxInFlight`. */
const fields = (concurrency: number) =>
  Schema.Struct({
    restart: Options.withDefault(
      Options.rule<Schedule.Schedule<unknown, WorkerCrash>>("restart", "a Schedule", Schedule.isSchedule),
      defaultRestartSchedule
    ),
    maxRestarts: Options.withDefault(Options.countOrInfinity("maxRestarts"), Infinity),
    restartWindow: Options.withDefault(Options.duration("restartWindow"), "1 minute"),
    resetBackoffAfter: Options.withDefault(Options.duration("resetBackoffAfter"), "30 seconds"),
    maxInFlight: Options.withDefault(Options.positiveInt("maxInFlight"), concurrency),
    recycle: Options.optional(RecycleOptions)
  })

/**
 * `Worker.WorkerOptions`, decoded to a worker's settings, for a kind whose
 * `concurrency` (`WorkerKind.concurrency`, when it has one, else 1) is the
 * default `maxInFlight`.
 */
export const WorkerOptions = (concurrency = 1): Options.Rule<Settings> =>
  Options.map(
    Options.options(fields(concurrency)),
    (o): Settings => ({
      restart: {
        schedule: o.restart,
        maxRestarts: o.maxRestarts,
        window: o.restartWindow,
        resetAfter: o.resetBackoffAfter
      },
      maxInFlight: o.maxInFlight,
      recycle: o.recycle
    })
  )

/** The decoding of {@link WorkerOptions}, by the default `maxInFlight`: a few kinds' concurrencies. */
const decoders = new Map<number, ReturnType<typeof Options.decodeResult<Settings>>>()

/** `options` decoded for a kind whose `concurrency` is the default `maxInFlight`, or why they are invalid. */
export const decode = (concurrency: number | undefined, options: unknown) => {
  const key = concurrency ?? 1
  let decoder = decoders.get(key)
  if (decoder === undefined) {
    decoder = Options.decodeResult(WorkerOptions(key))
    decoders.set(key, decoder)
  }
  return decoder(options)
}
