/**
 * How options are read. Each options object has one `Schema`: a struct whose
 * fields are rules, each with its default, and whose checks tie options
 * together. It is decoded once, at the public constructor, into the settings
 * the rest of the code uses; nothing after it reads a raw option or applies a
 * default.
 *
 * A rule's failure message is the whole reason: it names the option, says
 * what it must be and what it got (`<option> must be <what>, got <value>`). A
 * failed decoding is reported as `InvalidOptions` with the message of the
 * first rule that failed ({@link reason}): thrown by {@link decode} (for
 * constructors that return plain values, such as a kind's), failed by
 * {@link decodeEffect} (for constructors that return an Effect).
 */
import { Duration, Effect, Option, Result, Schema, SchemaGetter, SchemaIssue } from "effect"
import { InvalidOptions } from "../WorkerError.ts"

/** The Schema of an option: it takes any value, and decodes it to `A` or fails with its own message. */
export type Rule<A> = Schema.Codec<A, unknown>

/** How an option's value shows in a reason (also one that cannot be made a string, such as an object without a prototype). */
export const show = (u: unknown): string => {
  if (typeof u === "string") return u
  try {
    return String(u)
  } catch {
    return Object.prototype.toString.call(u)
  }
}

/** A rule whose valid values satisfy `ok`; `message` is the reason for any other value. */
export const refine = <A>(ok: (u: unknown) => boolean, message: (u: unknown) => string): Rule<A> =>
  Schema.Unknown.check(Schema.makeFilter((u) => ok(u) || message(u))) as unknown as Rule<A>

/** The rule of an option `name` whose valid values satisfy `ok`; `wants` says what they are. */
export const rule = <A>(name: string, wants: string, ok: (u: unknown) => boolean): Rule<A> =>
  refine<A>(ok, (u) => `${name} must be ${wants}, got ${show(u)}`)

/** `self`, whose decoded value must also satisfy `ok`; `message` is the reason for one that does not. */
export const also = <A>(self: Rule<A>, ok: (a: A) => boolean, message: (a: A) => string): Rule<A> =>
  (self as Schema.Codec<A, unknown> & Schema.Top).check(
    Schema.makeFilter((a: A) => ok(a) || message(a))
  ) as unknown as Rule<A>

/** `self`, its decoded value turned by `f` (settings are decoded, never encoded back). */
export const map = <A, B>(self: Rule<A>, f: (a: A) => B): Rule<B> =>
  (self as Schema.Codec<A, unknown> & Schema.Top).pipe(
    Schema.decodeTo(Schema.Unknown, {
      decode: SchemaGetter.transform((a) => f(a as A)),
      encode: SchemaGetter.forbiddenEncoding
    })
  ) as unknown as Rule<B>

/**
 * A field of an options struct: `self`, or `fallback` when the option is
 * absent or `undefined`. The fallback is given as a user would give the
 * option (`"30 seconds"`), and decoded by `self` like any value.
 */
export const withDefault = <A>(self: Rule<A>, fallback: unknown) =>
  self.pipe(Schema.withDecodingDefault(Effect.succeed(fallback)))

/** {@link withDefault}, with a fallback made afresh for each decoding (an object with state of its own). */
export const withDefaultFrom = <A>(self: Rule<A>, fallback: () => unknown) =>
  self.pipe(Schema.withDecodingDefault(Effect.sync(fallback)))

/** A field with no default: `self`, or `undefined` when the option is absent or `undefined`. */
export const optional = <A>(self: Rule<A>) =>
  Schema.UndefinedOr(self).pipe(Schema.withDecodingDefault(Effect.succeed(undefined)))

/** A field that must be given: `self` decodes it, and says what it must be when it is absent. */
export const required = <A>(self: Rule<A>) => withDefault(self, undefined)

/** Whether `u` is an object that can hold options (not `null`, not an array). */
const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/** The options object `name` (or nested object, such as `"ejection"`), decoded by `struct`. */
export const object = <A>(name: string, struct: Schema.Codec<A, unknown, never, never>): Rule<A> =>
  rule<object>(name, "an object", isRecord).pipe(Schema.decodeTo(struct as any)) as unknown as Rule<A>

/** The options of a constructor, decoded by `struct`; none given (`undefined`) are all at their defaults. */
export const options = <A>(struct: Schema.Codec<A, unknown, never, never>): Rule<A> =>
  map(
    rule<object | undefined>("options", "an object", (u) => u === undefined || isRecord(u)),
    (u) => u ?? {}
  ).pipe(Schema.decodeTo(struct as any)) as unknown as Rule<A>

/** A nested options object: {@link object}, with every field at its default when it is absent. */
export const nested = <A>(name: string, struct: Schema.Codec<A, unknown, never, never>) =>
  withDefault(object(name, struct), {})

/** A check of a struct that ties several of its options: `message` is the reason when `ok` is false. */
export const tie = <A>(ok: (a: A) => boolean, message: (a: A) => string) =>
  Schema.makeFilter<A>((a) => ok(a) || message(a))

/** The reasons of a failed decoding, each with the path of its option, first to fail first. */
const leaves = SchemaIssue.makeFormatterStandardSchemaV1()

/**
 * The reason of a failed decoding of options: the message of the first rule
 * that failed, in its own words (the struct's path to it is left out: the
 * message names the option).
 */
export const reason = (error: Schema.SchemaError): string => leaves(error.issue).issues[0]?.message ?? error.message

/** `input` decoded by `schema`, or the `InvalidOptions` that says why it cannot be. */
export const decodeResult = <A>(schema: Rule<A>) => {
  const decodeUnknown = Schema.decodeUnknownResult(schema)
  return (input: unknown): Result.Result<A, InvalidOptions> =>
    Result.mapError(decodeUnknown(input), (error) => new InvalidOptions({ reason: reason(error) }))
}

/** `input` decoded by `schema`; throws `InvalidOptions` when it cannot be. */
export const decode = <A>(schema: Rule<A>) => {
  const decoded = decodeResult(schema)
  return (input: unknown): A => {
    const result = decoded(input)
    if (Result.isSuccess(result)) return result.success
    throw result.failure
  }
}

/** `input` decoded by `schema`, or a failure with `InvalidOptions`. */
export const decodeEffect = <A>(schema: Rule<A>) => {
  const decoded = decodeResult(schema)
  return (input: unknown): Effect.Effect<A, InvalidOptions> => Effect.suspend(() => Effect.fromResult(decoded(input)))
}

/** Throws `InvalidOptions` with `reason`, for a check made outside a Schema (an argument, not an option). */
export const invalid = (reason: string): never => {
  throw new InvalidOptions({ reason })
}

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

/** A finite number of at least 0. */
export const nonNegativeNumber = (name: string) =>
  rule<number>(name, "a non-negative number", (u) => typeof u === "number" && Number.isFinite(u) && u >= 0)

/** A string that is not empty. */
export const nonEmptyString = (name: string) =>
  rule<string>(name, "a non-empty string", (u) => typeof u === "string" && u !== "")

/** `true` or `false`. */
export const boolean = (name: string) => rule<boolean>(name, "a boolean", (u) => typeof u === "boolean")

/** A `Schema` (of requests, responses or errors). */
export const schema = <A>(name: string) => rule<A>(name, "a Schema", Schema.isSchema)

/** A function. */
export const func = <A>(name: string) => rule<A>(name, "a function", (u) => typeof u === "function")

/** Any value: an option that is passed on as it is given. */
export const any = <A>(): Rule<A> => Schema.Unknown as unknown as Rule<A>

/** The duration `u` is, when it is one (`Duration.Input`, read leniently). */
const toDuration = (u: unknown): Option.Option<Duration.Duration> => {
  try {
    return Duration.fromInput(u as Duration.Input)
  } catch {
    return Option.none()
  }
}

/** A `Duration.Input` that is a finite, non-negative duration, decoded to a `Duration`. */
export const duration = (name: string): Rule<Duration.Duration> =>
  map(
    rule<Duration.Input>(name, "a finite, non-negative duration", (u) => {
      const d = toDuration(u)
      return Option.isSome(d) && Duration.isFinite(d.value) && Duration.toMillis(d.value) >= 0
    }),
    Duration.fromInputUnsafe
  )

/** A `Duration.Input` that is a non-negative duration, possibly infinite, decoded to a `Duration`. */
export const openDuration = (name: string): Rule<Duration.Duration> =>
  map(
    rule<Duration.Input>(name, "a non-negative duration", (u) => {
      const d = toDuration(u)
      return Option.isSome(d) && Duration.toMillis(d.value) >= 0
    }),
    Duration.fromInputUnsafe
  )

/** A duration of at least 1 millisecond (see {@link duration}). */
export const interval = (name: string): Rule<Duration.Duration> =>
  also(
    duration(name),
    (d) => Duration.toMillis(d) >= 1,
    () => `${name} must be at least 1 millisecond`
  )
