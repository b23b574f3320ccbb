/**
 * Recycling: a worker's incarnation is replaced after a number of requests,
 * after an age (jittered, so that workers started together do not recycle
 * together), or once its memory is over a limit. The rules are the worker's
 * `recycle` option, decoded here; the supervisor applies them (see
 * `supervisor.ts`): the replacement (the pool's spare, or a fresh start)
 * takes over before the old incarnation stops taking requests, and the old
 * one finishes those it holds before it ends.
 */
import { Duration, Effect, Schema } from "effect"
import * as Options from "./options.ts"

/** Why an incarnation was recycled. */
export type RecycleReason = "requests" | "age" | "memory"

/** Every reason, in the order the metrics list them. */
export const recycleReasons: ReadonlyArray<RecycleReason> = ["requests", "age", "memory"]

/** A worker's recycling rules, checked. */
export interface RecycleRules {
  /** Requests an incarnation starts before it is recycled (`Infinity`: no limit). */
  readonly maxRequests: number
  /** Its age limit in milliseconds before jitter (`Infinity`: no limit). */
  readonly maxAgeMillis: number
  /** The share of `maxAgeMillis` an incarnation's limit is drawn below it, at random. */
  readonly ageJitter: number
  /** Its memory limit in bytes (`Infinity`: no limit). */
  readonly maxMemoryBytes: number
  /** How often `memoryProbe` is read, in milliseconds. */
  readonly memoryCheckMillis: number
  /** Measures an incarnation that does not report its memory (an in-process one), in bytes. */
  readonly memoryProbe: Effect.Effect<number> | undefined
}

/** `Worker.RecycleOptions`. */
const Fields = Schema.Struct({
  maxRequests: Options.optional(Options.positiveInt("recycle.maxRequests")),
  maxAge: Options.optional(Options.interval("recycle.maxAge")),
  ageJitter: Options.withDefault(
    Options.also(
      Options.share("recycle.ageJitter"),
      (s) => s < 1,
      () => "recycle.ageJitter must be below 1"
    ),
    0.1
  ),
  maxMemoryMb: Options.optional(
    Options.rule<number>(
      "recycle.maxMemoryMb",
      "a positive number",
      (u) => typeof u === "number" && Number.isFinite(u) && u > 0
    )
  ),
  memoryCheckInterval: Options.withDefault(Options.interval("recycle.memoryCheckInterval"), "1 second"),
  memoryProbe: Options.optional(
    Options.rule<Effect.Effect<number>>("recycle.memoryProbe", "an Effect", Effect.isEffect)
  )
})

/** The `recycle` option of a worker, decoded: `undefined` when none is given. */
export const RecycleOptions: Options.Rule<RecycleRules | undefined> = Options.map(
  Options.object("recycle", Fields),
  (o): RecycleRules | undefined =>
    o.maxRequests === undefined && o.maxAge === undefined && o.maxMemoryMb === undefined
      ? undefined
      : {
          maxRequests: o.maxRequests ?? Infinity,
          maxAgeMillis: o.maxAge === undefined ? Infinity : Duration.toMillis(o.maxAge),
          ageJitter: o.ageJitter,
          maxMemoryBytes: o.maxMemoryMb === undefined ? Infinity : o.maxMemoryMb * 1024 * 1024,
          memoryCheckMillis: Duration.toMillis(o.memoryCheckInterval),
          memoryProbe: o.memoryProbe
        }
)

/** The age limit of one incarnation: `maxAgeMillis`, less up to `ageJitter` of it, drawn with `random` in [0, 1). */
export const ageLimit = (rules: RecycleRules, random: number): number =>
  rules.maxAgeMillis === Infinity ? Infinity : Math.round(rules.maxAgeMillis * (1 - rules.ageJitter * random))

/** Bytes as mebibytes, for messages. */
export const megabytes = (bytes: number): string => `${(bytes / (1024 * 1024)).toFixed(1)} MB`
