/**
 * Operations from an `effect/rpc` `RpcGroup`, carried as the pool's one
 * request: a call of operation `Hash` is the request `{ _tag: "Hash",
 * payload }`, its answer `{ _tag: "Hash", value }` on the wire, its domain
 * error `{ _tag: "Hash", error }`. Each is a union of one member per
 * operation, discriminated by its literal tag, so that every kind carries a
 * group with its usual codecs (one decoding per payload, the tag picks the
 * member), and a fingerprint of the three unions covers the whole group.
 *
 * An answer and an error decode to the bare value and error: the pool's
 * response and error types are the operations' own, and the caller's
 * client is the pool's dispatch with the request's envelope, nothing to
 * unwrap. A runner encodes what its handler gave tagged with its operation
 * (`Tagged`), so that the union encodes it with its operation's member.
 *
 * A call of an operation that is not a stream may also travel without the
 * envelope, to a runner that says it reads it: its tag beside its own
 * payload, answered with its own value or error (`Protocol.Request`'s
 * `operation`). Each side then encodes and decodes with the operation's own
 * schemas (`bareOperations`, `servedOf`): no union to walk, no envelope to
 * clone.
 *
 * The rest: the checks of a group and of its handlers, the handler of a
 * runner that calls the operation's handler and tags its end, the handler
 * of an in-process worker, and the client.
 */
import * as Effect from "effect/Effect"
import type * as Rpc from "effect/rpc/Rpc"
import type * as RpcGroup from "effect/rpc/RpcGroup"
import * as Schema from "effect/Schema"
import * as SchemaTransformation from "effect/SchemaTransformation"
import { InvalidRequest } from "../WireError.ts"
import { WorkerCrash } from "../WorkerError.ts"
import type { Codec } from "./codec.ts"
import { describe } from "./describe.ts"
import * as Streams from "./streams.ts"

/** What a runner's handler of operation `tag` gave (its success, or its domain error), to encode with its member. */
class Tagged {
  readonly tag: string
  readonly value: unknown
  constructor(tag: string, value: unknown) {
    this.tag = tag
    this.value = value
  }
}

/** A request of an operation of `Rpcs`: its tag and its payload. */
export type Request<Rpcs extends Rpc.Any> = Rpcs extends Rpc.Any
  ? { readonly _tag: Rpcs["_tag"]; readonly payload: Rpc.Payload<Rpcs> }
  : never

/** The answer of an operation of `Rpcs`: its success value. */
export type Response<Rpcs extends Rpc.Any> = Rpc.Success<Rpcs>

/** The domain error of an operation of `Rpcs`. */
export type Failure<Rpcs extends Rpc.Any> = Rpc.Error<Rpcs>

/** Whether `schema` is a stream (`RpcSchema.Stream`), read without loading the rpc modules. */
const isStream = (schema: unknown): boolean =>
  (typeof schema === "object" || typeof schema === "function") &&
  schema !== null &&
  "~effect/rpc/RpcSchema/StreamSchema" in schema

/** Whether `rpc` is a streamed operation. */
export const isStreamed = (rpc: Rpc.AnyWithProps): boolean => isStream(rpc.successSchema)

/** The operations of `group`, or why it cannot be served or called. */
export const operationsOf = (group: unknown): ReadonlyArray<Rpc.AnyWithProps> | string => {
  const requests = (group as { readonly requests?: unknown } | null)?.requests
  if (!(requests instanceof Map)) return `group must be an RpcGroup, got ${describe(group)}`
  if (requests.size === 0) return "the group has no operation"
  return [...requests.values()] as Array<Rpc.AnyWithProps>
}

/** The element and error schemas of a streamed operation. */
const streamSchemas = (rpc: Rpc.AnyWithProps) =>
  rpc.successSchema as unknown as { readonly success: Schema.Top; readonly error: Schema.Top }

/** The schema of an operation's domain errors: its rpc's error, and its stream's error for a stream. */
const errorSchemaOf = (rpc: Rpc.AnyWithProps): Schema.Top =>
  isStreamed(rpc) ? Schema.Union([rpc.errorSchema as Schema.Top, streamSchemas(rpc).error]) : rpc.errorSchema

/** The codecs of a group's calls: its requests, answers and domain errors, each a union over its operations. */
export interface Schemas<Rpcs extends Rpc.Any> {
  readonly request: Codec<Request<Rpcs>>
  readonly response: Codec<Response<Rpcs>>
  readonly error: Codec<Failure<Rpcs>>
}

const cache = new WeakMap<object, Schemas<any>>()

/** The operations of a group, by its request schema (made by `schemasOf`). */
const groupsByRequest = new WeakMap<object, ReadonlyArray<Rpc.AnyWithProps>>()

/** The schemas of a call of one operation that travels without the envelope. */
export interface BareOperation {
  readonly tag: string
  readonly payload: Schema.Top
  readonly success: Schema.Top
  readonly error: Schema.Top
}

const bare = (rpc: Rpc.AnyWithProps): BareOperation => ({
  tag: rpc._tag,
  payload: rpc.payloadSchema,
  success: rpc.successSchema,
  error: rpc.errorSchema
})

/**
 * The operations whose calls may travel without the envelope, of the group
 * whose request schema is `request` (as `schemasOf` made it): every one but
 * the streamed ones, whose chunks keep their tag. `undefined` for a schema
 * that is no group's.
 */
export const bareOperations = (request: unknown): ReadonlyArray<BareOperation> | undefined => {
  const rpcs = typeof request === "object" || typeof request === "function" ? groupsByRequest.get(request!) : undefined
  return rpcs?.filter((rpc) => !isStreamed(rpc)).map(bare)
}

/** The codecs of the calls of `rpcs` (made once per group). */
export const schemasOf = <Rpcs extends Rpc.Any>(
  group: object,
  rpcs: ReadonlyArray<Rpc.AnyWithProps>
): Schemas<Rpcs> => {
  const cached = cache.get(group)
  if (cached !== undefined) return cached
  const made: Schemas<Rpcs> = {
    request: Schema.Union(
      rpcs.map((rpc) => Schema.Struct({ _tag: Schema.Literal(rpc._tag), payload: rpc.payloadSchema }))
    ) as never,
    response: Schema.Union(
      rpcs.map((rpc) =>
        isStreamed(rpc)
          ? taggedChunk(rpc._tag, streamSchemas(rpc).success)
          : tagged(rpc._tag, "value", rpc.successSchema)
      )
    ) as never,
    error: Schema.Union(rpcs.map((rpc) => tagged(rpc._tag, "error", errorSchemaOf(rpc)))) as never
  }
  cache.set(group, made)
  groupsByRequest.set(made.request, rpcs)
  return made
}

/**
 * `{ _tag, [field]: schema }` on the wire; in the code, the bare value when
 * decoded, and a `Tagged` of operation `tag` to encode (anything else does
 * not encode with this member).
 */
const tagged = (tag: string, field: "value" | "error", schema: Schema.Top) =>
  Schema.Struct({ _tag: Schema.Literal(tag), [field]: schema }).pipe(
    Schema.decodeTo(
      Schema.declare((u): u is unknown => (u instanceof Tagged ? u.tag === tag : true), {
        expected: `an answer of ${tag}`
      }),
      SchemaTransformation.transform({
        decode: (encoded: Record<string, unknown>) => encoded[field],
        // Not a `Tagged` of this operation: a `_tag` its literal refuses.
        encode: (value: unknown): Record<string, unknown> & { readonly _tag: string } =>
          value instanceof Tagged && value.tag === tag ? { _tag: tag, [field]: value.value } : { _tag: "" }
      })
    )
  )

/**
 * A streamed operation's chunk, `{ _tag, value: [...] }` on the wire (see
 * `Protocol.Chunk`), and its end, `{ _tag }`: in the code, the bare chunk
 * (`undefined` at the end), and a `Tagged` of operation `tag` to encode.
 */
const taggedChunk = (tag: string, element: Schema.Top) =>
  Schema.Struct({ _tag: Schema.Literal(tag), value: Schema.optionalKey(Schema.Array(element)) }).pipe(
    Schema.decodeTo(
      Schema.declare((u): u is unknown => (u instanceof Tagged ? u.tag === tag : true), {
        expected: `a chunk of ${tag}`
      }),
      SchemaTransformation.transform({
        decode: (encoded: { readonly value?: ReadonlyArray<unknown> }): unknown => encoded.value,
        encode: (value: unknown): { readonly _tag: string; readonly value?: ReadonlyArray<unknown> } =>
          value instanceof Tagged && value.tag === tag
            ? value.value === undefined
              ? { _tag: tag }
              : { _tag: tag, value: value.value as ReadonlyArray<unknown> }
            : { _tag: "" }
      })
    )
  )

/** A chunk of streamed operation `tag` (or its end, `undefined`), to encode with the response's schema. */
export const chunkOf = (tag: string, chunk: ReadonlyArray<unknown> | undefined): unknown => new Tagged(tag, chunk)

/** What a runner's handler of one operation may return, as `Runner.Handler`. */
type AnyHandler = (payload: any, context: { readonly signal: AbortSignal; readonly id: number }) => unknown

/**
 * Checks that `handlers` has a function for every operation of `rpcs`, and
 * nothing else: `undefined` when it does, else why not.
 */
export const checkHandlers = (rpcs: ReadonlyArray<Rpc.AnyWithProps>, handlers: unknown): string | undefined => {
  if (typeof handlers !== "object" || handlers === null) return `handlers must be an object, got ${describe(handlers)}`
  const tags = new Set(rpcs.map((rpc) => rpc._tag))
  const missing = rpcs.filter((rpc) => typeof (handlers as Record<string, unknown>)[rpc._tag] !== "function")
  if (missing.length > 0) return `no handler for operation ${missing.map((rpc) => rpc._tag).join(", ")}`
  const unknown = Object.keys(handlers).filter((key) => !tags.has(key))
  if (unknown.length > 0) return `handlers for no operation of the group: ${unknown.join(", ")}`
  return undefined
}

const isPromiseLike = (u: unknown): u is PromiseLike<unknown> =>
  typeof u === "object" && u !== null && typeof (u as { then?: unknown }).then === "function"

/** An operation's end, tagged: its value, and its error if its rpc's schema says it is one. */
interface Tagging {
  readonly succeed: (value: unknown) => Tagged
  readonly fail: (error: unknown) => unknown
}

const tagging = (rpc: Rpc.AnyWithProps): Tagging => {
  const tag = rpc._tag
  const isError = Schema.is(errorSchemaOf(rpc))
  return {
    succeed: (value) => new Tagged(tag, value),
    // A crash stays a crash; an error its schema does not describe stays itself (a defect, said as such).
    fail: (error) => (error instanceof WorkerCrash || !isError(error) ? error : new Tagged(tag, error))
  }
}

/**
 * The handler of a runner that serves `rpcs` with `handlers` (checked): it
 * calls the operation's handler on the payload, as a runner would, and tags
 * what it returns, resolves or fails with.
 */
export const runnerHandler = (
  rpcs: ReadonlyArray<Rpc.AnyWithProps>,
  handlers: Record<string, AnyHandler>
): AnyHandler => {
  const table = new Map<
    string,
    { readonly handler: AnyHandler; readonly tagging: Tagging; readonly streamed: boolean }
  >()
  for (const rpc of rpcs) {
    const handler = handlers[rpc._tag]!
    const streamed = isStreamed(rpc)
    table.set(rpc._tag, {
      handler: streamed ? Streams.runnerHandler(rpc._tag, handler) : handler,
      tagging: tagging(rpc),
      streamed
    })
  }
  const streamed = new Set(rpcs.filter(isStreamed).map((rpc) => rpc._tag))
  // The operations a call may name without the envelope: the user's own handler, with the operation's schemas.
  const served = new Map<string, Served>()
  for (const rpc of rpcs) if (!isStreamed(rpc)) served.set(rpc._tag, { ...bare(rpc), handler: handlers[rpc._tag]! })
  const handle = (request: { readonly _tag: string; readonly payload: unknown }, context: HandlerContext) => {
    // The request was decoded: its tag is an operation's.
    const { handler, tagging, streamed } = table.get(request._tag)!
    let result: unknown
    try {
      // A stream's handler takes the whole request: its sink rides on it.
      result = handler(streamed ? request : request.payload, context)
    } catch (error) {
      throw tagging.fail(error)
    }
    if (Effect.isEffect(result)) {
      return Effect.mapBoth(result as Effect.Effect<unknown, unknown, unknown>, {
        onSuccess: tagging.succeed,
        onFailure: tagging.fail
      })
    }
    if (isPromiseLike(result)) {
      return Promise.resolve(result).then(tagging.succeed, (error) => {
        throw tagging.fail(error)
      })
    }
    return tagging.succeed(result)
  }
  Object.assign(handle, { [servedKey]: served })
  return streamed.size === 0 ? handle : Object.assign(handle, { [Streams.streamedKey]: streamed })
}

/** An operation a runner serves without the envelope: its schemas and its user's handler. */
export interface Served extends BareOperation {
  readonly handler: AnyHandler
}

/** The key of the operations a runner's handler serves without the envelope, on the handler. */
const servedKey: unique symbol = Symbol.for("effect-worker-pool/Operation/Served")

/** The operations a runner's handler serves without the envelope, by tag: `undefined` for a handler of no group. */
export const servedOf = (handler: unknown): ReadonlyMap<string, Served> | undefined =>
  typeof handler === "function"
    ? (handler as { readonly [servedKey]?: ReadonlyMap<string, Served> })[servedKey]
    : undefined

/** What a runner's handler gets beside its request. */
type HandlerContext = { readonly signal: AbortSignal; readonly id: number }

/**
 * The handler of an in-process worker that serves `rpcs` with `handlers`
 * (checked, each giving an Effect): an unknown tag is an `InvalidRequest`.
 * An operation's handler is called as it is: the worker calls this handler
 * as it calls any (`handler.ts`), so that a throw, or a value that is not an
 * Effect, of the operation's handler is the same defect as a single form's.
 */
export const inProcessHandler = (
  rpcs: ReadonlyArray<Rpc.AnyWithProps>,
  handlers: Record<string, (payload: any) => Effect.Effect<unknown, unknown>>
) => {
  const table = new Map<string, (payload: unknown) => Effect.Effect<unknown, unknown>>()
  // Streamed operations apart, so that a call of the others costs what it did.
  const streamed = new Map<string, (request: { readonly payload: unknown }) => Effect.Effect<unknown, unknown>>()
  for (const rpc of rpcs) {
    if (isStreamed(rpc)) streamed.set(rpc._tag, Streams.inProcessHandler(rpc._tag, handlers[rpc._tag]!))
    else table.set(rpc._tag, handlers[rpc._tag]!)
  }
  // The last call's operation first (the client's tag, the same string: a quick comparison), else a lookup.
  let lastTag: unknown
  let lastHandler: ((payload: unknown) => Effect.Effect<unknown, unknown>) | undefined
  return (request: { readonly _tag: string; readonly payload: unknown }): Effect.Effect<unknown, unknown> => {
    const tag = (request as { readonly _tag?: unknown } | null)?._tag
    let handler = lastHandler
    if (tag !== lastTag || handler === undefined) {
      handler = table.get(tag as string)
      if (handler !== undefined) {
        lastTag = tag
        lastHandler = handler
      }
    }
    if (handler === undefined) {
      const stream = streamed.get(tag as string)
      if (stream !== undefined) return stream(request)
      return Effect.fail(new InvalidRequest({ reason: `no operation ${describe(tag)} in the group` }))
    }
    return handler(request.payload)
  }
}

/** A dispatch with the local options that name its operation, and say it is a stream. */
type Dispatch = (
  request: { readonly _tag: string; readonly payload: unknown },
  options: {
    readonly idempotent?: boolean | undefined
    readonly operation: string
    readonly stream?: boolean | undefined
  }
) => Effect.Effect<unknown, unknown>

/**
 * The client of `rpcs` over `dispatch`: a method per operation, idempotent
 * when its tag is in `idempotent` (a call's own `idempotent` overrides it);
 * a streamed operation's method gives a `Stream` with `window` chunks in
 * flight at most.
 */
export const makeClient = (
  rpcs: ReadonlyArray<Rpc.AnyWithProps>,
  dispatch: Dispatch,
  idempotent: ReadonlySet<string>,
  window: number = Streams.defaultWindow
): Record<string, (payload: unknown, options?: object) => unknown> => {
  const client: Record<string, (payload: unknown, options?: object) => unknown> = {}
  for (const rpc of rpcs) {
    const tag = rpc._tag
    if (isStreamed(rpc)) {
      const defaults = { idempotent: idempotent.has(tag), operation: tag, stream: true }
      client[tag] = (payload, options) =>
        Streams.call(
          (envelope) =>
            dispatch(
              envelope as never,
              options === undefined
                ? defaults
                : { idempotent: defaults.idempotent, ...options, operation: tag, stream: true }
            ),
          tag,
          payload,
          window
        )
      continue
    }
    const defaults = { idempotent: idempotent.has(tag), operation: tag }
    client[tag] = (payload, options) =>
      dispatch(
        { _tag: tag, payload },
        options === undefined ? defaults : { idempotent: defaults.idempotent, ...options, operation: tag }
      )
  }
  return client
}

/** The operation tags `idempotent` names, or why it is not a list of the group's tags. */
export const idempotentTags = (
  rpcs: ReadonlyArray<Rpc.AnyWithProps>,
  idempotent: unknown
): ReadonlySet<string> | string => {
  if (idempotent === undefined) return new Set()
  if (!Array.isArray(idempotent)) return `idempotent must be a list of operation tags, got ${describe(idempotent)}`
  const tags = new Set(rpcs.map((rpc) => rpc._tag))
  const unknown = idempotent.filter((tag) => !tags.has(tag))
  if (unknown.length > 0) return `idempotent names no operation of the group: ${unknown.map(String).join(", ")}`
  return new Set(idempotent as ReadonlyArray<string>)
}

/** The group of a set of rpcs, as a type. */
export type Group<Rpcs extends Rpc.Any> = RpcGroup.RpcGroup<Rpcs>
