/**
 * A pool of one worker script, run in threads or in subprocesses, in one
 * call: the kind, the workers and the pool are made from a single set of
 * options, and `Service` turns them into a service key with its layer.
 *
 * ```ts no-run
 * import { Schema } from "effect"
 * import { ScriptPool } from "effect-worker-pool"
 *
 * class Hasher extends ScriptPool.Service<Hasher>()("app/Hasher", {
 *   thread: new URL("./hash.ts", import.meta.url),
 *   request: Schema.String,
 *   response: Schema.String
 * }) {}
 * ```
 *
 * The script calls `Runner.run` with the same schemas. Everything a pool of
 * `WorkerPool.make`, `Worker.fromKind`, `Thread.make` and `Subprocess.node`
 * can do stays available: their options pass through.
 *
 * @since 0.2.0
 */

import { availableParallelism } from "node:os"
import { Context, Effect, Layer, type Scope } from "effect"
import type * as Rpc from "effect/rpc/Rpc"
import type * as RpcGroup from "effect/rpc/RpcGroup"
import * as Operations from "./internal/operations.ts"
import * as Streams from "./internal/streams.ts"
import type * as Operation from "./Operation.ts"
import * as Subprocess from "./Subprocess.ts"
import * as Thread from "./Thread.ts"
import type { InvalidRequest } from "./WireError.ts"
import * as Worker from "./Worker.ts"
import { type DomainError, InvalidOptions } from "./WorkerError.ts"
import type { WorkerKind } from "./WorkerKind.ts"
import * as WorkerPool from "./WorkerPool.ts"

/**
 * The pool of a worker script: a `WorkerPool` whose errors are the script's
 * domain errors `E` and `InvalidRequest` (a request that could not be sent to
 * the script, or that it could not decode).
 *
 * @example
 * ```ts
 * import type { ScriptPool } from "effect-worker-pool"
 *
 * // The same type as WorkerPool.WorkerPool<string, number, DomainError | InvalidRequest>.
 * declare const pool: ScriptPool.ScriptPool<string, number>
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export type ScriptPool<Req, Resp, E = DomainError> = WorkerPool.WorkerPool<Req, Resp, E | InvalidRequest>

/**
 * Every way a dispatch to a script's pool can fail: the script's domain error
 * `E`, `InvalidRequest`, or one of the pool's own errors.
 *
 * @example
 * ```ts
 * import type { ScriptPool } from "effect-worker-pool"
 *
 * const status = (error: ScriptPool.DispatchError): number => {
 *   switch (error._tag) {
 *     case "DomainError":
 *     case "InvalidRequest":
 *       return 400
 *     case "PoolBusy":
 *       return 429
 *     case "WorkerCrash":
 *     case "PoolShutdown":
 *       return 503
 *     case "RequestTimeout":
 *     case "QueueTimeout":
 *       return 504
 *   }
 * }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export type DispatchError<E = DomainError> = WorkerPool.DispatchError<E | InvalidRequest>

/**
 * The options of the pool and of each of its workers, as `WorkerPool.make`
 * and `Worker.fromKind` take them: `policy`, `timeout`, `queueTimeout`,
 * `queueCapacity`, `queueStrategy`, `ejection`, `retry`, `drain`, `spares`,
 * `name`, `metrics`, and `restart`, `maxRestarts`, `restartWindow`,
 * `resetBackoffAfter`, `maxInFlight`, `recycle`. Each reaches the pool or the workers.
 * `size` is how many workers the pool starts with; it defaults to the number
 * of CPUs (`os.availableParallelism()`).
 *
 * @example
 * ```ts
 * import { DispatchPolicy, type ScriptPool } from "effect-worker-pool"
 *
 * const options: ScriptPool.PoolOptions<string> = {
 *   size: 4,
 *   policy: DispatchPolicy.LeastLoaded,
 *   timeout: "5 seconds",
 *   queueStrategy: "fail",
 *   maxRestarts: 10
 * }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface PoolOptions<Req>
  extends Omit<WorkerPool.Options<Req, unknown, unknown, never, never>, "worker">,
    Worker.WorkerOptions {}

/**
 * A pool of threads: `thread` is the script (a `file:` URL, or a path), and
 * the rest are the options of `Thread.make` (the schemas, `concurrency`,
 * `execArgv`, `resourceLimits`, ...) and the {@link PoolOptions}.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import type { ScriptPool } from "effect-worker-pool"
 *
 * const options: ScriptPool.ThreadOptions<string, string, never> = {
 *   thread: new URL("./hash.ts", import.meta.url),
 *   request: Schema.String,
 *   response: Schema.String,
 *   resourceLimits: { maxOldGenerationSizeMb: 128 },
 *   size: 2
 * }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface ThreadOptions<Req, Resp, E> extends Thread.Options<Req, Resp, E>, PoolOptions<Req> {
  readonly thread: string | URL
  readonly subprocess?: never
}

/**
 * A pool of Node subprocesses: `subprocess` is the script (a `file:` URL, or
 * a path), and the rest are the options of `Subprocess.node` (the schemas,
 * `concurrency`, `execArgv`, `args`, `env`, `nodePath`, ...) and the
 * {@link PoolOptions}.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import type { ScriptPool } from "effect-worker-pool"
 *
 * const options: ScriptPool.SubprocessOptions<string, string, never> = {
 *   subprocess: new URL("./hash.ts", import.meta.url),
 *   request: Schema.String,
 *   response: Schema.String,
 *   execArgv: ["--max-old-space-size=256"],
 *   size: 2
 * }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface SubprocessOptions<Req, Resp, E> extends Subprocess.NodeOptions<Req, Resp, E>, PoolOptions<Req> {
  readonly subprocess: string | URL
  readonly thread?: never
}

/**
 * The options of a script's pool: `thread: script` for a pool of threads, or
 * `subprocess: script` for a pool of processes, with the schemas and any
 * option of the kind, of the workers and of the pool. The schemas must be the
 * ones the script gives `Runner.run`; `error` defaults to `DomainError`.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import type { ScriptPool } from "effect-worker-pool"
 *
 * const contract = { request: Schema.String, response: Schema.Number }
 *
 * const threads: ScriptPool.Options<string, number> = { thread: "./count.ts", ...contract }
 * const processes: ScriptPool.Options<string, number> = { subprocess: "./count.ts", ...contract, size: 2 }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export type Options<Req, Resp, E = DomainError> = ThreadOptions<Req, Resp, E> | SubprocessOptions<Req, Resp, E>

/**
 * The options of the pool of a script that serves the operations of an
 * `effect/rpc` `RpcGroup` (`Runner.run({ group, handlers })`): `thread` or
 * `subprocess`, `group` in place of the schemas, `idempotent` (the
 * operations a crash may retry, as `WorkerPool.client` takes it), `window`
 * (the chunks of a streamed call in flight, default 16, as
 * `WorkerPool.client` takes it), and any option of the kind, of the workers
 * and of the pool.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Rpc, RpcGroup } from "effect/rpc"
 * import type { ScriptPool } from "effect-worker-pool"
 *
 * const Hashing = RpcGroup.make(
 *   Rpc.make("Hash", { payload: { text: Schema.String }, success: Schema.String }),
 *   Rpc.make("Verify", { payload: { text: Schema.String, digest: Schema.String }, success: Schema.Boolean })
 * )
 *
 * const options: ScriptPool.GroupOptions<RpcGroup.Rpcs<typeof Hashing>> = {
 *   thread: new URL("./hash.ts", import.meta.url),
 *   group: Hashing,
 *   idempotent: ["Hash", "Verify"],
 *   size: 2
 * }
 * ```
 *
 * @since 0.4.0
 * @category models
 */
export type GroupOptions<Rpcs extends Rpc.Any> = (
  | Omit<
      ThreadOptions<Operation.Request<Rpcs>, Operation.Response<Rpcs>, Operation.Failure<Rpcs>>,
      "request" | "response" | "error"
    >
  | Omit<
      SubprocessOptions<Operation.Request<Rpcs>, Operation.Response<Rpcs>, Operation.Failure<Rpcs>>,
      "request" | "response" | "error"
    >
) & {
  readonly group: RpcGroup.RpcGroup<Rpcs>
  readonly idempotent?: ReadonlyArray<Rpcs["_tag"]> | undefined
  readonly window?: number | undefined
}

/**
 * The pool of a script that serves a group: an `Operation.Pool`, with its
 * typed `client` (see `WorkerPool.client`).
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Rpc, RpcGroup } from "effect/rpc"
 * import type { ScriptPool } from "effect-worker-pool"
 *
 * const Hashing = RpcGroup.make(Rpc.make("Hash", { payload: { text: Schema.String }, success: Schema.String }))
 *
 * declare const pool: ScriptPool.GroupPool<RpcGroup.Rpcs<typeof Hashing>>
 * const digest = pool.client.Hash({ text: "abc" })
 * ```
 *
 * @since 0.4.0
 * @category models
 */
export interface GroupPool<Rpcs extends Rpc.Any> extends Operation.Pool<Rpcs> {
  readonly client: Operation.Client<Rpcs>
}

/** The options of the pool, as `WorkerPool.make` takes them, but `worker` (made here). */
type PoolOnly = Omit<WorkerPool.Options<unknown, unknown, unknown, never, never>, "worker">

/**
 * Every option name of the pool and of a worker, as a record that the
 * compiler checks both ways: a name missing here, or one that is not an
 * option, is a type error. So an option added to `WorkerPool.Options` or
 * `Worker.WorkerOptions` reaches the pool or the workers, never the kind.
 */
const poolKeys: { readonly [K in keyof PoolOnly]-?: true } = {
  policy: true,
  size: true,
  idleTimeout: true,
  targetUtilization: true,
  utilizationWindow: true,
  timeout: true,
  queueTimeout: true,
  queueCapacity: true,
  queueStrategy: true,
  ejection: true,
  retry: true,
  drain: true,
  spares: true,
  name: true,
  metrics: true
}
const workerKeys: { readonly [K in keyof Worker.WorkerOptions]-?: true } = {
  restart: true,
  maxRestarts: true,
  restartWindow: true,
  resetBackoffAfter: true,
  maxInFlight: true,
  recycle: true
}

/**
 * `options` taken apart: the pool's, each worker's, and the rest, which are
 * the kind's (the script itself, `thread` or `subprocess`, left out).
 */
const split = <Req, Resp, E>(
  options: Options<Req, Resp, E>
): {
  readonly pool: Omit<PoolOptions<Req>, keyof Worker.WorkerOptions>
  readonly worker: Worker.WorkerOptions
  readonly kind: Record<string, unknown>
} => {
  const pool: Record<string, unknown> = {}
  const worker: Record<string, unknown> = {}
  const kind: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(options)) {
    if (key === "thread" || key === "subprocess") continue
    const into = Object.hasOwn(poolKeys, key) ? pool : Object.hasOwn(workerKeys, key) ? worker : kind
    into[key] = value
  }
  return { pool: pool as Omit<PoolOptions<Req>, keyof Worker.WorkerOptions>, worker, kind }
}

/** The kind of `options`: with invalid options, one that carries `InvalidOptions` (see `WorkerKind.invalid`). */
const kindOf = <Req, Resp, E>(
  options: Options<Req, Resp, E>,
  kindOptions: any
): WorkerKind<Req, Resp, E | InvalidRequest> => {
  if (options.thread !== undefined) return Thread.make(options.thread, kindOptions)
  if (options.subprocess !== undefined) return Subprocess.node(options.subprocess, kindOptions)
  const invalid = new InvalidOptions({ reason: "give the script as thread or as subprocess" })
  return { name: "script", spawn: Effect.die(invalid), invalid }
}

/**
 * Makes the pool of a worker script in the current scope: one kind (so that
 * a spare serves every worker), `size` workers of it, and the pool over them.
 * Closing the scope shuts the pool down and stops every thread or process.
 * Invalid options fail with `InvalidOptions` and start nothing. With a
 * `group` in place of the schemas (see {@link GroupOptions}), the pool has
 * the group's typed `client`.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { ScriptPool } from "effect-worker-pool"
 *
 * const program = Effect.scoped(
 *   Effect.gen(function* () {
 *     const pool = yield* ScriptPool.make({
 *       subprocess: new URL("./count.ts", import.meta.url),
 *       request: Schema.String,
 *       response: Schema.Number,
 *       size: 2
 *     })
 *     return yield* pool.dispatch("how many words are these")
 *   })
 * )
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const make: {
  <Rpcs extends Rpc.Any>(options: GroupOptions<Rpcs>): Effect.Effect<GroupPool<Rpcs>, InvalidOptions, Scope.Scope>
  <Req, Resp, E = DomainError>(
    options: Options<Req, Resp, E>
  ): Effect.Effect<ScriptPool<Req, Resp, E>, InvalidOptions, Scope.Scope>
} = Effect.fn("ScriptPool.make")(function* (options: Options<unknown, unknown, unknown> | GroupOptions<any>) {
  if (!("group" in options)) return yield* makeSingle(options)
  const { group, idempotent: idempotentOption, window: windowOption, ...rest } = options
  const rpcs = Operations.operationsOf(group)
  if (typeof rpcs === "string") return yield* new InvalidOptions({ reason: rpcs })
  const idempotent = Operations.idempotentTags(rpcs, idempotentOption)
  if (typeof idempotent === "string") return yield* new InvalidOptions({ reason: idempotent })
  const window = Streams.windowOf(windowOption)
  if (typeof window === "string") return yield* new InvalidOptions({ reason: window })
  const pool = yield* makeSingle({ ...rest, ...Operations.schemasOf(group, rpcs) } as Options<
    unknown,
    unknown,
    unknown
  >)
  return { ...pool, client: Operations.makeClient(rpcs, pool.dispatch as never, idempotent, window) }
}) as never

/** Makes the pool of a script of the single-request form. */
const makeSingle = Effect.fnUntraced(function* <Req, Resp, E = DomainError>(
  options: Options<Req, Resp, E>
): Effect.fn.Return<ScriptPool<Req, Resp, E>, InvalidOptions, Scope.Scope> {
  const { pool, worker, kind: kindOptions } = split(options)
  const kind = kindOf(options, kindOptions)
  if (kind.invalid !== undefined) return yield* kind.invalid
  return yield* WorkerPool.make<Req, Resp, E | InvalidRequest, InvalidOptions>({
    ...pool,
    size: pool.size ?? availableParallelism(),
    worker: (id) => Worker.fromKind(id, kind, worker)
  })
})

/**
 * A service key for the pool of a worker script, as made by {@link Service}:
 * `yield*` it for the pool, and provide its `layer`, which makes the pool
 * (see {@link make}) and shuts it down with the layer.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type { ScriptPool } from "effect-worker-pool"
 *
 * declare const Counter: ScriptPool.ServiceClass<"Counter", "app/Counter", string, number, never>
 *
 * const program = Effect.gen(function* () {
 *   const counter = yield* Counter
 *   return yield* counter.dispatch("one two")
 * }).pipe(Effect.provide(Counter.layer))
 * ```
 *
 * @since 0.2.0
 * @category services
 */
export interface ServiceClass<Self, Id extends string, Req, Resp, E>
  extends Context.ServiceClass<Self, Id, ScriptPool<Req, Resp, E>> {
  readonly layer: Layer.Layer<Self, InvalidOptions>
}

/**
 * Declares the pool of a worker script as a service: a class to extend, like
 * `Context.Service`, whose `layer` makes the pool from the options (see
 * {@link Options}) and whose type is the pool's (see {@link ScriptPool}),
 * its request, response and error types read from the schemas. With a
 * `group` (see {@link GroupOptions}), the service is a {@link GroupPool},
 * with its `client`.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { ScriptPool } from "effect-worker-pool"
 *
 * class Hasher extends ScriptPool.Service<Hasher>()("app/Hasher", {
 *   thread: new URL("./hash.ts", import.meta.url),
 *   request: Schema.String,
 *   response: Schema.String,
 *   size: 4
 * }) {}
 *
 * const program = Effect.gen(function* () {
 *   const hasher = yield* Hasher
 *   return yield* hasher.dispatch("correct horse battery staple")
 * }).pipe(Effect.provide(Hasher.layer))
 * ```
 *
 * @since 0.2.0
 * @category services
 */
export const Service =
  <Self>(): {
    <const Id extends string, Rpcs extends Rpc.Any>(
      id: Id,
      options: GroupOptions<Rpcs>
    ): GroupServiceClass<Self, Id, Rpcs>
    <const Id extends string, Req, Resp, E = DomainError>(
      id: Id,
      options: Options<Req, Resp, E>
    ): ServiceClass<Self, Id, Req, Resp, E>
  } =>
  (id: string, options: Options<unknown, unknown, unknown> | GroupOptions<any>): any => {
    const key = Context.Service<Self, unknown>()(id)
    return Object.assign(key, { layer: Layer.effect(key)(make(options as Options<unknown, unknown, unknown>)) })
  }

/**
 * A service key for the pool of a script that serves a group, as made by
 * {@link Service} with a `group`: `yield*` it for the pool and its `client`.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Rpc, RpcGroup } from "effect/rpc"
 * import type { ScriptPool } from "effect-worker-pool"
 *
 * const Counting = RpcGroup.make(Rpc.make("Count", { payload: { text: Schema.String }, success: Schema.Number }))
 *
 * declare const Counter: ScriptPool.GroupServiceClass<"Counter", "app/Counter", RpcGroup.Rpcs<typeof Counting>>
 *
 * const program = Effect.gen(function* () {
 *   const counter = yield* Counter
 *   return yield* counter.client.Count({ text: "one two" })
 * }).pipe(Effect.provide(Counter.layer))
 * ```
 *
 * @since 0.4.0
 * @category services
 */
export interface GroupServiceClass<Self, Id extends string, Rpcs extends Rpc.Any>
  extends Context.ServiceClass<Self, Id, GroupPool<Rpcs>> {
  readonly layer: Layer.Layer<Self, InvalidOptions>
}
