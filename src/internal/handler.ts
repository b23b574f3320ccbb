/**
 * Calling a handler, whatever it does. A handler is user code that should
 * return an Effect; it may instead throw before it returns one (an argument
 * check, a `JSON.parse`, an error class whose constructor throws), or return
 * something that is not an Effect (a plain value, a Promise, `undefined`).
 * Each of those is a defect of the worker, not of the request: the call
 * becomes an effect that dies with a message that says which mistake it was,
 * and the worker classifies that death as a `WorkerCrash` (reason `Defect`)
 * like any other defect of its handler.
 */
import { Effect } from "effect"
import { describe } from "./describe.ts"

/** A handler's mistake: it did not give an Effect. */
export class HandlerMistake extends Error {
  override readonly name = "HandlerMistake"
}

const isThenable = (u: unknown): u is PromiseLike<unknown> =>
  typeof u === "object" && u !== null && typeof (u as { then?: unknown }).then === "function"

const ignore = () => {}

/** What the handler returned, if it is not an Effect: the defect it becomes. */
const notAnEffect = (value: unknown): Effect.Effect<never> => {
  if (isThenable(value)) {
    // Its rejection, if it comes, must not become an unhandled rejection of the process.
    value.then(undefined, ignore)
    return Effect.die(
      new HandlerMistake(
        "the handler returned a Promise, not an Effect (wrap it in Effect.promise or Effect.tryPromise)"
      )
    )
  }
  return Effect.die(new HandlerMistake(`the handler returned ${shape(value)}, not an Effect`))
}

/** What a value is, in a few words. */
export const shape = (value: unknown): string => {
  switch (typeof value) {
    case "undefined":
      return "undefined"
    case "string":
      return `a string (${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)})`
    case "number":
    case "boolean":
    case "bigint":
      return `a ${typeof value} (${String(value)})`
    case "function":
      return "a function"
    case "symbol":
      return "a symbol"
    default:
      return value === null ? "null" : Array.isArray(value) ? "an array" : "an object"
  }
}

/** `handler(request)` as an effect that never throws: a throw or a value that is not an Effect dies. */
export const invoke = <Req, A, E, R>(
  handler: (request: Req) => Effect.Effect<A, E, R>,
  request: Req
): Effect.Effect<A, E, R> => {
  let result: unknown
  try {
    result = handler(request)
  } catch (error) {
    return Effect.die(new HandlerMistake(`the handler threw before it returned an Effect: ${describe(error)}`))
  }
  return isEffect(result) ? (result as Effect.Effect<A, E, R>) : notAnEffect(result)
}

/** `Effect.isEffect`, without its generic `hasProperty` (a few ns against twenty, on every request). */
const isEffect = (u: unknown): boolean =>
  ((typeof u === "object" && u !== null) || typeof u === "function") && Effect.TypeId in (u as object)
