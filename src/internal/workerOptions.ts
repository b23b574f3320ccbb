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

/** The largest adaptive limit of an in-process worker, unless its options say otherwise. */
export const defaultAdaptiveMax = 64

/** How many requests a worker may hold: a fixed number, or a limit learned up to `max`. */
export interface MaxInFlight {
  /** The fixed number, or the largest limit. */
  readonly max: number
  readonly adaptive: boolean
}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)
const isPositiveInt = (u: unknown): u is number => typeof u === "number" && Number.isSafeInteger(u) && u >= 1

/**
 * The rule of `maxInFlight`: a positive integer, `"adaptive"`, or
 * `{ adaptive: { max } }`; an adaptive `max` is at most the kind's
 * `concurrency` when it has one (so that a crash takes at most that many
 * requests down), and defaults to it (else to {@link defaultAdaptiveMax}).
 */
const maxInFlightRule = (concurrency: number | undefined): Options.Rule<MaxInFlight> => {
  const wants = 'a positive integer, "adaptive" or { adaptive: { max } }'
  const maxOf = (u: unknown): unknown => (isRecord(u) && isRecord(u.adaptive) ? u.adaptive.max : undefined)
  const reason = (u: unknown): string | undefined => {
    if (isPositiveInt(u) || u === "adaptive") return undefined
    if (!isRecord(u) || !isRecord(u.adaptive)) return `maxInFlight must be ${wants}, got ${Options.show(u)}`
    const max = maxOf(u)
    if (max === undefined) return undefined
    if (!isPositiveInt(max)) return `maxInFlight's adaptive max must be a positive integer, got ${Options.show(max)}`
    if (concurrency !== undefined && max > concurrency) {
      return `maxInFlight's adaptive max must be at most the kind's concurrency (${concurrency}), got ${max}`
    }
    return undefined
  }
  return Options.map(
    Options.refine<unknown>(
      (u) => reason(u) === undefined,
      (u) => reason(u)!
    ),
    (u): MaxInFlight =>
      isPositiveInt(u)
        ? { max: u, adaptive: false }
        : { max: (maxOf(u) as number | undefined) ?? concurrency ?? defaultAdaptiveMax, adaptive: true }
  )
}

/**
 * The fields of `Worker.WorkerOptions`, for a kind whose `concurrency` is the
 * default `maxInFlight`; an in-process kind's default is adaptive.
 */
const fields = (concurrency: number | undefined, inProcess: boolean) =>
  Schema.Struct({
    restart: Options.withDefault(
      Options.rule<Schedule.Schedule<unknown, WorkerCrash>>("restart", "a Schedule", Schedule.isSchedule),
      defaultRestartSchedule
    ),
    maxRestarts: Options.withDefault(Options.countOrInfinity("maxRestarts"), Infinity),
    restartWindow: Options.withDefault(Options.duration("restartWindow"), "1 minute"),
    resetBackoffAfter: Options.withDefault(Options.duration("resetBackoffAfter"), "30 seconds"),
    maxInFlight: Options.withDefault(maxInFlightRule(concurrency), inProcess ? "adaptive" : (concurrency ?? 1)),
    recycle: Options.optional(RecycleOptions)
  })

/**
 * `Worker.WorkerOptions`, decoded to a worker's settings, for a kind whose
 * `concurrency` (`WorkerKind.concurrency`, when it has one, else 1) is the
 * default `maxInFlight`; for an in-process kind, the default is adaptive.
 */
export const WorkerOptions = (concurrency?: number, inProcess = false): Options.Rule<Settings> =>
  Options.map(
    Options.options(fields(concurrency, inProcess)),
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

/** The decoding of {@link WorkerOptions}, by the kind: a few kinds' concurrencies, and the in-process kinds. */
const decoders = new Map<string, ReturnType<typeof Options.decodeResult<Settings>>>()

/**
 * `options` decoded for a kind whose `concurrency` is the default
 * `maxInFlight` (adaptive for an in-process kind), or why they are invalid.
 */
export const decode = (concurrency: number | undefined, options: unknown, inProcess = false) => {
  const key = `${concurrency ?? ""}/${inProcess}`
  let decoder = decoders.get(key)
  if (decoder === undefined) {
    decoder = Options.decodeResult(WorkerOptions(concurrency, inProcess))
    decoders.set(key, decoder)
  }
  return decoder(options)
}
