/**
 * One way to check options: each option is read through a `Schema` whose
 * failure message names the option, says what it must be and what it got.
 * `read` throws that message as `InvalidOptions` (for constructors that
 * return plain values, such as a kind's); `check` fails with it (for
 * constructors that return an Effect).
 */
import { Duration, Effect, Option, Result, Schema } from "effect"
import { InvalidOptions } from "../WorkerError.ts"

/** How an option's value shows in a reason. */
const show = (u: unknown): string => (typeof u === "string" ? u : String(u))

/** The schema of an option `name` whose valid values satisfy `ok`; `wants` says what they are. */
export const rule = <A>(name: string, wants: string, ok: (u: unknown) => boolean): Schema.Codec<A, unknown> =>
  Schema.Unknown.check(
    Schema.makeFilter((u) => ok(u) || `${name} must be ${wants}, got ${show(u)}`)
  ) as unknown as Schema.Codec<A, unknown>

/** The value of `input` under `schema`, or a throw of `InvalidOptions` with the schema's message. */
export const read = <A>(schema: Schema.Codec<A, unknown>, input: unknown): A => {
  const result = Schema.decodeUnknownResult(schema)(input)
  if (Result.isSuccess(result)) return result.success
  throw new InvalidOptions({ reason: result.failure.message })
}

/** Throws `InvalidOptions` with `reason`, for a rule about several options at once. */
export const invalid = (reason: string): never => {
  throw new InvalidOptions({ reason })
}

/** `read`, in the error channel. */
export const check = <A>(schema: Schema.Codec<A, unknown>, input: unknown): Effect.Effect<A, InvalidOptions> =>
  Effect.try({
    try: () => read(schema, input),
    catch: (error) => error as InvalidOptions
  })

const isInt = (u: unknown): u is number => typeof u === "number" && Number.isSafeInteger(u)

/** An integer of at least 1. */
export const positiveInt = (name: string) => rule<number>(name, "a positive integer", (u) => isInt(u) && u >= 1)

/** An integer of at least 0. */
export const nonNegativeInt = (name: string) => rule<number>(name, "a non-negative integer", (u) => isInt(u) && u >= 0)

/** An integer of at least 0, or `Infinity`. */
export const countOrInfinity = (name: string) =>
  rule<number>(name, "a non-negative integer or Infinity", (u) => u === Infinity || (isInt(u) && u >= 0))

/** A number within [0, 1]. */
export const share = (name: string) =>
  rule<number>(name, "within [0, 1]", (u) => typeof u === "number" && u >= 0 && u <= 1)

/** One of `values`. */
export const oneOf = <const A extends string>(name: string, values: ReadonlyArray<A>) =>
  rule<A>(name, `one of ${values.map((v) => JSON.stringify(v)).join(", ")}`, (u) => values.includes(u as A))

/** A `Duration.Input` that is a finite, non-negative duration. */
export const duration = (name: string) =>
  rule<Duration.Input>(name, "a finite, non-negative duration", (u) => {
    const d = Duration.fromInput(u as Duration.Input)
    return Option.isSome(d) && Duration.isFinite(d.value) && Duration.toMillis(d.value) >= 0
  })

/** A `Duration.Input` that is a non-negative duration, possibly infinite. */
export const openDuration = (name: string) =>
  rule<Duration.Input>(name, "a non-negative duration", (u) => {
    const d = Duration.fromInput(u as Duration.Input)
    return Option.isSome(d) && Duration.toMillis(d.value) >= 0
  })

/** The duration of `input` (or of `fallback` when it is absent), read through {@link openDuration}. */
export const readOpenDuration = (name: string, input: Duration.Input | undefined, fallback: Duration.Input) =>
  Option.getOrThrow(Duration.fromInput(read(openDuration(name), input ?? fallback)))

/** A finite number of at least 0. */
export const nonNegativeNumber = (name: string) =>
  rule<number>(name, "a non-negative number", (u) => typeof u === "number" && Number.isFinite(u) && u >= 0)

/** A string that is not empty. */
export const nonEmptyString = (name: string) =>
  rule<string>(name, "a non-empty string", (u) => typeof u === "string" && u !== "")

/** `true` or `false`. */
export const boolean = (name: string) => rule<boolean>(name, "a boolean", (u) => typeof u === "boolean")

/** The duration of `input` (or of `fallback` when it is absent), read through {@link duration}. */
export const readDuration = (name: string, input: Duration.Input | undefined, fallback: Duration.Input) =>
  Option.getOrThrow(Duration.fromInput(read(duration(name), input ?? fallback)))
