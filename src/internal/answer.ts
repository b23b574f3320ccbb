/**
 * The answer of a request that ran on another thread, process or machine,
 * in one vocabulary for every wire: on the worker's side, how a handler's
 * end is encoded and classified (`answerExit`: a response, a domain error,
 * a crash, or a cancel); on the caller's side, how an answer that came back
 * is decoded into the caller's outcome (`settleAnswer`). The runner of
 * threads and subprocesses, the remote runner, and both clients use it.
 *
 * Conversions run synchronously when their schemas allow it (`Conversion.run`)
 * and as an Effect only when they must wait, so the common answer costs no
 * fiber.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Schema from "effect/Schema"
import { InvalidRequest } from "../WireError.ts"
import { type CrashReason, Defect, Reported, WorkerCrash } from "../WorkerError.ts"
import { type Conversion, needsEffect, schemaReason } from "./codec.ts"
import { describe } from "./describe.ts"

/** How a request ended on its worker, encoded for the wire. */
export type Answer =
  | { readonly _tag: "Success"; readonly value: unknown }
  | { readonly _tag: "Failure"; readonly error: unknown }
  | { readonly _tag: "Crash"; readonly reason: string }
  | { readonly _tag: "Cancelled" }

/** The encodings of a worker's answers. */
export interface Encoders {
  readonly encodeResponse: Conversion<unknown>
  readonly encodeError: Conversion<unknown>
}

/** Runs a conversion that must wait, then `k` with its exit. */
export type Later = <A>(effect: Effect.Effect<A, Schema.SchemaError>, k: (exit: Exit.Exit<A, unknown>) => void) => void

/** A cause in words: a schema error on one line, anything else described. */
export const describeCause = (cause: Cause.Cause<unknown>): string => {
  const error = Cause.findErrorOption(cause)
  if (error._tag === "Some") {
    return Schema.isSchemaError(error.value) ? schemaReason(error.value) : describe(error.value)
  }
  return describe(Cause.squash(cause))
}

/** Runs `conversion` on `value`, synchronously when it can; `k` gets its exit. */
const convert = <A>(
  conversion: Conversion<A>,
  value: unknown,
  later: Later,
  k: (exit: Exit.Exit<A, unknown>) => void
) => {
  const exit = conversion.run(value)
  if (needsEffect(exit)) later(conversion.effect(value), k)
  else k(exit)
}

/**
 * The answer of a handler that succeeded with `value`: the response encoded,
 * or a crash if it does not encode. `done` gets `to` (whom the answer goes
 * to: a request's id, a callback) and the answer.
 */
export const answerSuccess = <T>(
  value: unknown,
  encoders: Encoders,
  later: Later,
  to: T,
  done: (to: T, answer: Answer) => void
) =>
  convert(encoders.encodeResponse, value, later, (exit) =>
    done(
      to,
      Exit.isSuccess(exit)
        ? { _tag: "Success", value: exit.value }
        : { _tag: "Crash", reason: `defect: the response does not match its schema: ${describeCause(exit.cause)}` }
    )
  )

/**
 * The answer of a handler that failed with `error`: a `WorkerCrash` is a
 * crash in its own words; a domain error is encoded, and anything its schema
 * cannot encode is a defect.
 */
export const answerError = <T>(
  error: unknown,
  encoders: Encoders,
  later: Later,
  to: T,
  done: (to: T, answer: Answer) => void
) => {
  if (error instanceof WorkerCrash) return done(to, { _tag: "Crash", reason: error.reason.message })
  convert(encoders.encodeError, error, later, (exit) =>
    done(
      to,
      Exit.isSuccess(exit)
        ? { _tag: "Failure", error: exit.value }
        : { _tag: "Crash", reason: `defect: ${describe(error)}` }
    )
  )
}

/** The answer of an Effect handler that ended with `exit`; an interruption is a cancel. */
export const answerExit = <T>(
  exit: Exit.Exit<unknown, unknown>,
  encoders: Encoders,
  later: Later,
  to: T,
  done: (to: T, answer: Answer) => void
) => {
  if (Exit.isSuccess(exit)) return answerSuccess(exit.value, encoders, later, to, done)
  const error = Cause.findErrorOption(exit.cause)
  if (error._tag === "Some") return answerError(error.value, encoders, later, to, done)
  if (Cause.hasDies(exit.cause)) {
    return done(to, { _tag: "Crash", reason: `defect: ${describe(Cause.squash(exit.cause))}` })
  }
  done(to, cancelled)
}

const cancelled: Answer = { _tag: "Cancelled" }

/**
 * The reason of a crash a worker reported: a defect of its handler (written
 * `defect: ...`), or the handler's own words.
 */
export const reportedCrash = (message: string): CrashReason =>
  message.startsWith("defect: ") ? new Defect({ message }) : new Reported({ message })

/** The decodings of the answers a caller gets. */
export interface Decoders<Resp, E> {
  readonly decodeResponse: Conversion<Resp>
  readonly decodeError: Conversion<E>
}

/**
 * The caller's outcome of a final answer: the response or the domain error,
 * decoded (synchronously when the schemas allow it), or `InvalidRequest` when
 * the worker could not decode the request. A payload that does not decode is
 * the worker's fault: `fault` is told what it sent (and ends the incarnation),
 * and its effect is the outcome.
 */
export const settleAnswer = <Resp, E>(
  answer:
    | { readonly _tag: "Success"; readonly value?: unknown }
    | { readonly _tag: "Failure"; readonly error?: unknown }
    | { readonly _tag: "Rejected"; readonly reason: string },
  decoders: Decoders<Resp, E>,
  who: string,
  fault: (what: string) => Effect.Effect<never, WorkerCrash>
): Effect.Effect<Resp, E | InvalidRequest | WorkerCrash> => {
  switch (answer._tag) {
    case "Success":
      return decodeOrFault(decoders.decodeResponse, answer.value, "a response", fault)
    case "Failure": {
      const error = decodeOrFault(decoders.decodeError, answer.error, "an error", fault)
      return Exit.isExit(error) && Exit.isSuccess(error)
        ? Exit.fail(error.value as E)
        : Effect.flatMap(error, (e) => Effect.fail(e))
    }
    case "Rejected":
      return Exit.fail(new InvalidRequest({ reason: `${who} could not decode the request: ${answer.reason}` }))
  }
}

/** A payload of a final answer, decoded; one that does not decode is the worker's fault. */
const decodeOrFault = <A>(
  conversion: Conversion<A>,
  value: unknown,
  what: string,
  fault: (what: string) => Effect.Effect<never, WorkerCrash>
): Effect.Effect<A, WorkerCrash> => {
  const exit = conversion.run(value)
  if (Exit.isSuccess(exit)) return exit as Exit.Exit<A>
  const wrong = (error: Schema.SchemaError) => fault(`${what} that does not match its schema: ${schemaReason(error)}`)
  if (!needsEffect(exit)) {
    const error = Cause.findErrorOption(exit.cause)
    return error._tag === "Some" ? wrong(error.value) : Exit.failCause(exit.cause as Cause.Cause<never>)
  }
  return Effect.catchTag(conversion.effect(value), "SchemaError", (error) => Effect.suspend(() => wrong(error)))
}
