/**
 * Schema conversions for the wire, synchronous when the schema allows it:
 * one conversion per payload, without an Effect to run in the common case.
 */
import * as Cause from "effect/Cause"
import type * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Schema from "effect/Schema"

/** A schema usable on the wire: no services needed to encode or decode. */
export type Codec<A> = Schema.Codec<A, unknown, never, never>

/**
 * One direction of a codec. `run` converts synchronously; a schema that needs
 * to wait (an asynchronous transformation) makes it fail without a
 * `SchemaError`, and then `effect` is the way.
 */
export interface Conversion<A> {
  readonly run: (value: unknown) => Exit.Exit<A, Schema.SchemaError>
  readonly effect: (value: unknown) => Effect.Effect<A, Schema.SchemaError>
}

/** Whether a failed `run` means the conversion must be run as an Effect instead. */
export const needsEffect = <A>(exit: Exit.Exit<A, Schema.SchemaError>): boolean =>
  Exit.isFailure(exit) && !Cause.hasFails(exit.cause)

/** Decoding with `schema`: a wire value to what the code sees. */
export const decoding = <A>(schema: Codec<A>): Conversion<A> => ({
  run: Schema.decodeUnknownExit(schema),
  effect: Schema.decodeUnknownEffect(schema)
})

/** Encoding with `schema`: what the code sees to a wire value. */
export const encoding = <A>(schema: Codec<A>): Conversion<unknown> => ({
  run: Schema.encodeUnknownExit(schema),
  effect: Schema.encodeUnknownEffect(schema)
})

/** A schema error on one line. */
export const schemaReason = (error: Schema.SchemaError): string => error.message.replaceAll("\n", " ")
