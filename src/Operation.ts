/**
 * Operations: a worker that serves an `effect/rpc` `RpcGroup`, one pool for
 * every operation of the group, and a typed client whose methods are the
 * operations.
 *
 * ```ts no-run
 * // count.ts, the worker script
 * import { Effect, Schema } from "effect"
 * import { Rpc, RpcGroup } from "effect/rpc"
 * import { Runner } from "effect-worker-pool/child"
 *
 * const Counting = RpcGroup.make(
 *   Rpc.make("Count", { payload: { text: Schema.String }, success: Schema.Number }),
 *   Rpc.make("Upper", { payload: { text: Schema.String }, success: Schema.String })
 * )
 *
 * Runner.run({
 *   group: Counting,
 *   handlers: {
 *     Count: ({ text }) => text.length,
 *     Upper: ({ text }) => Effect.succeed(text.toUpperCase())
 *   }
 * })
 * ```
 *
 * A call travels as the pool's one request, in an envelope: the request
 * `{ _tag: "Hash", payload }`, and on the wire its answer
 * `{ _tag: "Hash", value }` and its domain error `{ _tag: "Hash", error }`,
 * decoded to the bare value and error (see {@link schemas}). Every kind
 * carries it as it carries any request: no new message on the wire. A
 * thread or a subprocess whose runner serves the group carries a call of an
 * operation that is not a stream without the envelope: its tag beside its
 * own payload, answered with its own value or error (`Protocol.Request`'s
 * `operation`), which costs less. A tag
 * the group does not have, or a payload its rpc's schema refuses, is an
 * `InvalidRequest`, and the worker stays up.
 *
 * @since 0.4.0
 */
import * as Effect from "effect/Effect"
import type * as Rpc from "effect/rpc/Rpc"
import type * as RpcGroup from "effect/rpc/RpcGroup"
import type * as RpcSchema from "effect/rpc/RpcSchema"
import type * as Stream from "effect/Stream"
import * as internal from "./internal/operations.ts"
import type * as Runner from "./Runner.ts"
import type { InvalidRequest } from "./WireError.ts"
import { InvalidOptions, type WorkerCrash } from "./WorkerError.ts"
import type * as WorkerPool from "./WorkerPool.ts"

/**
 * A request of a pool of a group: an operation's tag and its payload.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Rpc, RpcGroup } from "effect/rpc"
 * import type { Operation } from "effect-worker-pool"
 *
 * const Hashing = RpcGroup.make(Rpc.make("Hash", { payload: { text: Schema.String }, success: Schema.String }))
 *
 * const request: Operation.Request<RpcGroup.Rpcs<typeof Hashing>> = { _tag: "Hash", payload: { text: "abc" } }
 * ```
 *
 * @since 0.4.0
 * @category models
 */
export type Request<Rpcs extends Rpc.Any> = internal.Request<Rpcs>

/**
 * An answer of a pool of a group: the success value of one of its
 * operations (on the wire, `{ _tag, value }`: see {@link schemas}).
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Rpc, RpcGroup } from "effect/rpc"
 * import type { Operation } from "effect-worker-pool"
 *
 * const Hashing = RpcGroup.make(Rpc.make("Hash", { payload: { text: Schema.String }, success: Schema.String }))
 *
 * const response: Operation.Response<RpcGroup.Rpcs<typeof Hashing>> = "ba7816bf"
 * ```
 *
 * @since 0.4.0
 * @category models
 */
export type Response<Rpcs extends Rpc.Any> = internal.Response<Rpcs>

/**
 * A domain error of a pool of a group: the error of one of its operations
 * (on the wire, `{ _tag, error }`: see {@link schemas}).
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Rpc, RpcGroup } from "effect/rpc"
 * import type { Operation } from "effect-worker-pool"
 *
 * const Hashing = RpcGroup.make(
 *   Rpc.make("Hash", { payload: { text: Schema.String }, success: Schema.String, error: Schema.String })
 * )
 *
 * const failure: Operation.Failure<RpcGroup.Rpcs<typeof Hashing>> = "empty text"
 * ```
 *
 * @since 0.4.0
 * @category models
 */
export type Failure<Rpcs extends Rpc.Any> = internal.Failure<Rpcs>

/**
 * A pool whose workers serve the group of `Rpcs`, as `ScriptPool.make` and
 * `WorkerPool.make` with `Worker.fromGroup` workers make it; its domain
 * errors are the operations' ({@link Failure}) and `InvalidRequest`.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Rpc, RpcGroup } from "effect/rpc"
 * import type { Operation } from "effect-worker-pool"
 *
 * const Hashing = RpcGroup.make(Rpc.make("Hash", { payload: { text: Schema.String }, success: Schema.String }))
 *
 * declare const pool: Operation.Pool<RpcGroup.Rpcs<typeof Hashing>>
 * ```
 *
 * @since 0.4.0
 * @category models
 */
export type Pool<Rpcs extends Rpc.Any> = WorkerPool.WorkerPool<
  Request<Rpcs>,
  Response<Rpcs>,
  Failure<Rpcs> | InvalidRequest
>

/**
 * The handlers of a worker script that serves a group (`Runner.run({ group,
 * handlers })`): one per operation, each a `Runner.Handler` of its rpc's
 * payload, success and error types: it may return an Effect, a promise or a
 * value. A streamed operation's handler gives a `Stream` of its elements
 * (threads and subprocesses; see the guide's "Streams").
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Rpc, RpcGroup } from "effect/rpc"
 * import type { Operation } from "effect-worker-pool"
 *
 * const Counting = RpcGroup.make(
 *   Rpc.make("Count", { payload: { text: Schema.String }, success: Schema.Number }),
 *   Rpc.make("Upper", { payload: { text: Schema.String }, success: Schema.String })
 * )
 *
 * const handlers: Operation.Handlers<RpcGroup.Rpcs<typeof Counting>> = {
 *   Count: ({ text }) => text.length,
 *   Upper: ({ text }) => Effect.succeed(text.toUpperCase())
 * }
 * ```
 *
 * @since 0.4.0
 * @category models
 */
export type Handlers<Rpcs extends Rpc.Any, R = never> = {
  readonly [Tag in Rpcs["_tag"]]: Rpc.SuccessSchema<Rpc.ExtractTag<Rpcs, Tag>> extends RpcSchema.Stream<any, any>
    ? (
        payload: Rpc.Payload<Rpc.ExtractTag<Rpcs, Tag>>,
        context: { readonly signal: AbortSignal; readonly id: number }
      ) => Stream.Stream<
        Rpc.SuccessChunk<Rpc.ExtractTag<Rpcs, Tag>>,
        Rpc.ErrorExit<Rpc.ExtractTag<Rpcs, Tag>> | WorkerCrash,
        R
      >
    : Runner.Handler<
        Rpc.Payload<Rpc.ExtractTag<Rpcs, Tag>>,
        Rpc.Success<Rpc.ExtractTag<Rpcs, Tag>>,
        Rpc.Error<Rpc.ExtractTag<Rpcs, Tag>>,
        R
      >
}

/**
 * The handlers of an in-process worker that serves a group
 * (`Worker.fromGroup`): one per operation, each giving an Effect of its
 * rpc's success and error types (a `WorkerCrash` crashes the worker); a
 * streamed operation's handler gives a `Stream` of its rpc's elements and
 * stream error (see {@link StreamHandler}).
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Rpc, RpcGroup } from "effect/rpc"
 * import type { Operation } from "effect-worker-pool"
 *
 * const Counting = RpcGroup.make(Rpc.make("Count", { payload: { text: Schema.String }, success: Schema.Number }))
 *
 * const handlers: Operation.EffectHandlers<RpcGroup.Rpcs<typeof Counting>> = {
 *   Count: ({ text }) => Effect.succeed(text.length)
 * }
 * ```
 *
 * @since 0.4.0
 * @category models
 */
export type EffectHandlers<Rpcs extends Rpc.Any> = {
  readonly [Tag in Rpcs["_tag"]]: Rpc.SuccessSchema<Rpc.ExtractTag<Rpcs, Tag>> extends RpcSchema.Stream<any, any>
    ? StreamHandler<Rpc.ExtractTag<Rpcs, Tag>>
    : (
        payload: Rpc.Payload<Rpc.ExtractTag<Rpcs, Tag>>
      ) => Effect.Effect<Rpc.Success<Rpc.ExtractTag<Rpcs, Tag>>, Rpc.Error<Rpc.ExtractTag<Rpcs, Tag>> | WorkerCrash>
}

/**
 * The in-process handler of a streamed operation: it gives a `Stream` of
 * the rpc's elements, failing with its error (a `WorkerCrash` crashes the
 * worker). The worker runs it into the caller's window: it is pulled as the
 * caller reads, and interrupted when the caller stops.
 *
 * @example
 * ```ts
 * import { Schema, Stream } from "effect"
 * import { Rpc } from "effect/rpc"
 * import type { Operation } from "effect-worker-pool"
 *
 * const Lines = Rpc.make("Lines", { payload: { text: Schema.String }, success: Schema.String, stream: true })
 *
 * const handler: Operation.StreamHandler<typeof Lines> = ({ text }) => Stream.fromIterable(text.split("\n"))
 * ```
 *
 * @since 0.4.0
 * @category models
 */
export type StreamHandler<Current extends Rpc.Any> = (
  payload: Rpc.Payload<Current>
) => Stream.Stream<Rpc.SuccessChunk<Current>, Rpc.ErrorExit<Current> | WorkerCrash>

/**
 * The options of one call of a client's method: those of a dispatch (see
 * `WorkerPool.DispatchOptions`); `idempotent` overrides the client's.
 *
 * @example
 * ```ts
 * import type { Operation } from "effect-worker-pool"
 *
 * const options: Operation.CallOptions = { timeout: "2 seconds", idempotent: false }
 * ```
 *
 * @since 0.4.0
 * @category models
 */
export type CallOptions = WorkerPool.DispatchOptions

/**
 * A typed client of a pool of a group: a method per operation, taking its
 * rpc's payload and giving its success, failing with its error or one of the
 * pool's (see `WorkerPool.DispatchError`), `InvalidRequest` included. A
 * streamed operation's method gives a `Stream` of its elements, failing
 * with its stream error or one of the pool's; each run of it is one request
 * (see the guide's "Streams").
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Rpc, RpcGroup } from "effect/rpc"
 * import type { Operation } from "effect-worker-pool"
 *
 * const Hashing = RpcGroup.make(Rpc.make("Hash", { payload: { text: Schema.String }, success: Schema.String }))
 *
 * declare const client: Operation.Client<RpcGroup.Rpcs<typeof Hashing>>
 *
 * const digest: Effect.Effect<string, unknown> = client.Hash({ text: "abc" }, { timeout: "1 second" })
 * ```
 *
 * @since 0.4.0
 * @category models
 */
export type Client<Rpcs extends Rpc.Any> = {
  readonly [Current in Rpcs as Current["_tag"]]: Rpc.SuccessSchema<Current> extends RpcSchema.Stream<any, any>
    ? (
        payload: Rpc.Payload<Current>,
        options?: CallOptions
      ) => Stream.Stream<Rpc.SuccessChunk<Current>, WorkerPool.DispatchError<Rpc.ErrorExit<Current> | InvalidRequest>>
    : (
        payload: Rpc.Payload<Current>,
        options?: CallOptions
      ) => Effect.Effect<Rpc.Success<Current>, WorkerPool.DispatchError<Rpc.Error<Current> | InvalidRequest>>
}

/**
 * The options of a client: `idempotent` lists the operations that may run
 * twice (after a `WorkerCrash`, a call is tried again on another worker,
 * within the pool's retry budget; a stream only before its first chunk); a
 * call's own `idempotent` overrides it. `window` is how many chunks of a
 * streamed call may be in flight, produced and not yet read (default 16, a
 * positive integer).
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Rpc, RpcGroup } from "effect/rpc"
 * import type { Operation } from "effect-worker-pool"
 *
 * const Hashing = RpcGroup.make(
 *   Rpc.make("Hash", { payload: { text: Schema.String }, success: Schema.String }),
 *   Rpc.make("Store", { payload: { text: Schema.String } })
 * )
 *
 * const options: Operation.ClientOptions<RpcGroup.Rpcs<typeof Hashing>> = { idempotent: ["Hash"] }
 * ```
 *
 * @since 0.4.0
 * @category models
 */
export interface ClientOptions<Rpcs extends Rpc.Any> {
  readonly idempotent?: ReadonlyArray<Rpcs["_tag"]> | undefined
  readonly window?: number | undefined
}

/**
 * The schemas of a group's calls, for a kind made by hand (`Thread.make`,
 * `Subprocess.node`, `Remote.make`, `Remote.pool`): `request`, `response`
 * and `error`, each a union with one member per operation, discriminated by
 * its tag (`{ _tag, payload }`, `{ _tag, value }`, `{ _tag, error }` on the
 * wire); an answer and an error decode to the operation's bare value and
 * error. The remote kind's fingerprint, derived from them, covers the whole
 * group. A streamed operation's answer member is its chunk,
 * `{ _tag, value: [...] }` (`{ _tag }` at its end), and its error member
 * takes its stream's error.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Rpc, RpcGroup } from "effect/rpc"
 * import { Operation, Thread } from "effect-worker-pool"
 *
 * const Hashing = RpcGroup.make(Rpc.make("Hash", { payload: { text: Schema.String }, success: Schema.String }))
 *
 * const kind = Effect.map(Operation.schemas(Hashing), (schemas) =>
 *   Thread.make(new URL("./hash.ts", import.meta.url), { ...schemas, concurrency: 4 })
 * )
 * ```
 *
 * @since 0.4.0
 * @category schemas
 */
export const schemas = <Rpcs extends Rpc.Any>(
  group: RpcGroup.RpcGroup<Rpcs>
): Effect.Effect<internal.Schemas<Rpcs>, InvalidOptions> => {
  const rpcs = internal.operationsOf(group)
  return typeof rpcs === "string"
    ? Effect.fail(new InvalidOptions({ reason: rpcs }))
    : Effect.succeed(internal.schemasOf<Rpcs>(group, rpcs))
}

/**
 * The schemas of a group's calls, as {@link schemas} gives them.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Rpc, RpcGroup } from "effect/rpc"
 * import type { Operation } from "effect-worker-pool"
 *
 * const Hashing = RpcGroup.make(Rpc.make("Hash", { payload: { text: Schema.String }, success: Schema.String }))
 *
 * declare const schemas: Operation.Schemas<RpcGroup.Rpcs<typeof Hashing>>
 * ```
 *
 * @since 0.4.0
 * @category schemas
 */
export type Schemas<Rpcs extends Rpc.Any> = internal.Schemas<Rpcs>
