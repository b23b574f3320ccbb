/**
 * The pool: a set of workers behind one `dispatch`, routed by a dispatch
 * policy, with an admission queue, per-request timeouts, passive ejection of
 * workers that keep failing, opt-in retries within a budget, and a drain at
 * shutdown.
 *
 * @since 0.1.0
 */

import type { Context, Option, Stream } from "effect"
import { Clock, type Duration, Effect, Exit, Layer, Random, Scope } from "effect"
import type * as Rpc from "effect/rpc/Rpc"
import type * as RpcGroup from "effect/rpc/RpcGroup"
import type { DispatchPolicy } from "./DispatchPolicy.ts"
import * as Operations from "./internal/operations.ts"
import * as Rules from "./internal/options.ts"
import { PoolOptions } from "./internal/pool/options.ts"
import * as engine from "./internal/pool.ts"
import * as Streams from "./internal/streams.ts"
import type * as Operation from "./Operation.ts"
import type { Worker } from "./Worker.ts"
import {
  type DomainError,
  type DuplicateWorkerId,
  InvalidOptions,
  type PoolBusy,
  type PoolShutdown,
  type QueueTimeout,
  type RequestTimeout,
  type UnknownWorkerId,
  type WorkerCrash
} from "./WorkerError.ts"
import type { WorkerHealth } from "./WorkerHealth.ts"
import { WorkerId } from "./WorkerId.ts"

/**
 * Every way a dispatch can fail: the handler's domain error `E`, or one of
 * the pool's own typed errors.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type { DomainError, WorkerPool } from "effect-worker-pool"
 *
 * const describe = (error: WorkerPool.DispatchError<DomainError>) => error._tag
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type DispatchError<E> = E | WorkerCrash | RequestTimeout | QueueTimeout | PoolBusy | PoolShutdown

/**
 * Options of one dispatch.
 *
 * - `timeout`: how long the request may run on its worker (time spent in the
 *   queue does not count); overrides the pool's `timeout`.
 * - `queueTimeout`: how long the request may wait in the admission queue for
 *   a worker to take it, before it fails with `QueueTimeout`; overrides the
 *   pool's `queueTimeout`.
 * - `idempotent`: the request may run twice; after a `WorkerCrash` it is
 *   tried again on another worker, within the pool's retry budget.
 *
 * @example
 * ```ts
 * import type { WorkerPool } from "effect-worker-pool"
 *
 * const options: WorkerPool.DispatchOptions = { timeout: "5 seconds", queueTimeout: "1 second", idempotent: true }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface DispatchOptions {
  readonly timeout?: Duration.Input | undefined
  readonly queueTimeout?: Duration.Input | undefined
  readonly idempotent?: boolean | undefined
}

/**
 * What the pool does with a request when its admission queue is full:
 * `"suspend"` the caller until there is room (backpressure), `"fail"` it at
 * once with `PoolBusy`, or `"dropOldest"`: fail the oldest waiting request
 * with `PoolBusy` and queue the new one.
 *
 * @example
 * ```ts
 * import type { WorkerPool } from "effect-worker-pool"
 *
 * const strategy: WorkerPool.QueueStrategy = "fail"
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type QueueStrategy = "suspend" | "fail" | "dropOldest"

/**
 * A pool of workers.
 *
 * - `dispatch(request, options?)`: runs the request on a healthy worker with a
 *   free slot, picked by the policy. When no worker can take it now (every
 *   worker is busy, or restarting) the request waits in the admission queue,
 *   and the next worker to free a slot or to come back takes it, within the
 *   queue's `queueTimeout`. It is refused at once with `WorkerCrash` (a reason
 *   that says no worker is available, and no `workerId`) only when no worker
 *   can take it now or later: the pool is empty, or every worker is retired,
 *   or failing to start. Exactly one outcome: the response, the handler's
 *   domain error, or one of the pool's typed errors (see
 *   {@link DispatchError}).
 * - `select`: the worker the policy picks now (advancing the policy's state,
 *   as a dispatch would), or `None` when no worker can take a request. A
 *   policy that throws makes it die with what it threw (as the request it
 *   was asked to place would).
 * - `add(worker)`: the pool routes to it from now on and owns it: `remove`
 *   and the pool's shutdown stop it.
 * - `remove(id)`: stops routing to the worker and stops it; requests it still
 *   holds fail with `WorkerCrash`.
 * - `size`, `isEmpty`: how many workers the pool has, whatever their state.
 * - `queued`: how many requests wait in the admission queue (never more than
 *   its capacity).
 * - `health`: every worker's `[id, health]`, sorted by id.
 * - `changes`: every change of a worker's state (started, crashed,
 *   restarting, ejected, readmitted, retired, stopped) from the moment the
 *   stream is run; counters alone do not emit (read them with `health`).
 * - `spares`: the spare incarnations the pool keeps started ahead (see the
 *   `spares` option).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type { WorkerPool } from "effect-worker-pool"
 *
 * declare const pool: WorkerPool.WorkerPool<string, number>
 *
 * const lengthOrZero = pool.dispatch("hello").pipe(
 *   Effect.catchTag("DomainError", () => Effect.succeed(0)),
 *   Effect.catchTag("WorkerCrash", (crash) => Effect.logWarning(crash.message).pipe(Effect.as(0)))
 * )
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface WorkerPool<Req, Resp, E = DomainError> {
  /** The name of the pool's dispatch policy. */
  readonly policy: string
  readonly add: (worker: Worker<Req, Resp, E>) => Effect.Effect<void, DuplicateWorkerId>
  readonly remove: (id: WorkerId) => Effect.Effect<void, UnknownWorkerId>
  readonly size: Effect.Effect<number>
  readonly isEmpty: Effect.Effect<boolean>
  readonly queued: Effect.Effect<number>
  readonly select: Effect.Effect<Option.Option<Worker<Req, Resp, E>>>
  readonly dispatch: (request: Req, options?: DispatchOptions) => Effect.Effect<Resp, DispatchError<E>>
  readonly health: Effect.Effect<ReadonlyArray<readonly [WorkerId, WorkerHealth]>>
  readonly changes: Stream.Stream<readonly [WorkerId, WorkerHealth]>
  readonly spares: Effect.Effect<ReadonlyArray<SpareHealth>>
}

/**
 * One spare incarnation of a pool (see the `spares` option): the name of its
 * kind, its state (`Starting`, `Ready`, or `Restarting` after a failed
 * start), how many times it was started, and the starts that failed in a row,
 * with the last reason.
 *
 * @example
 * ```ts
 * import type { WorkerPool } from "effect-worker-pool"
 *
 * const ready = (spares: ReadonlyArray<WorkerPool.SpareHealth>) => spares.filter((s) => s.state === "Ready").length
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface SpareHealth {
  readonly kind: string
  readonly state: "Starting" | "Ready" | "Restarting"
  readonly starts: number
  readonly failedStarts: number
  readonly lastFailure?: string | undefined
}

/**
 * Passive ejection of workers whose requests keep failing (`WorkerCrash` or
 * `RequestTimeout`) without the worker being retired, after Envoy's outlier
 * detection and Linkerd's failure accrual.
 *
 * | option                | default       | meaning                                                     |
 * |-----------------------|---------------|-------------------------------------------------------------|
 * | `consecutiveFailures` | `5`           | failures in a row that eject a worker                        |
 * | `baseDuration`        | `"30 seconds"`| the first ejection's length; the n-th in a row lasts n × base |
 * | `maxDuration`         | `"5 minutes"` | cap of an ejection (after ±20 % jitter)                      |
 * | `maxEjectedShare`     | `0.1`         | at most this share of the workers is ejected at once (always at least one) |
 * | `panicThreshold`      | `0.5`         | below this share of healthy workers, ejected workers take traffic again rather than the pool refusing it |
 *
 * When an ejection is over, the worker admits exactly one probe request: a
 * success readmits it, a failure ejects it again for longer.
 *
 * @example
 * ```ts
 * import type { WorkerPool } from "effect-worker-pool"
 *
 * const ejection: WorkerPool.EjectionOptions = { consecutiveFailures: 3, baseDuration: "10 seconds" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface EjectionOptions {
  readonly consecutiveFailures?: number | undefined
  readonly baseDuration?: Duration.Input | undefined
  readonly maxDuration?: Duration.Input | undefined
  readonly maxEjectedShare?: number | undefined
  readonly panicThreshold?: number | undefined
}

/**
 * The retry budget of idempotent requests: retries may add at most `share`
 * of the requests of the last `window`, plus `minPerWindow`, so that a crash
 * loop cannot multiply the load. Each request is retried at most
 * `maxRetries` times, each time on another worker.
 *
 * | option         | default        |
 * |----------------|----------------|
 * | `maxRetries`   | `1`            |
 * | `share`        | `0.2`          |
 * | `minPerWindow` | `10`           |
 * | `window`       | `"10 seconds"` |
 *
 * @example
 * ```ts
 * import type { WorkerPool } from "effect-worker-pool"
 *
 * const retry: WorkerPool.RetryOptions = { maxRetries: 2, share: 0.1 }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface RetryOptions {
  readonly maxRetries?: number | undefined
  readonly share?: number | undefined
  readonly minPerWindow?: number | undefined
  readonly window?: Duration.Input | undefined
}

/**
 * Options of a pool; every field is optional.
 *
 * | option          | default                        | meaning                                                        |
 * |-----------------|--------------------------------|----------------------------------------------------------------|
 * | `policy`        | `DispatchPolicy.ShortestExpectedDelay()` | how a worker is picked                               |
 * | `size`, `worker`| none: the pool starts empty    | start with `size` workers, ids `0` to `size - 1`, each made by `worker(id)`; give both or neither. `size: { min, max }` makes the pool elastic: `min` workers at first, more up to `max` while requests wait or utilization stays at or above `targetUtilization`, and those above `min` retired after `idleTimeout` idle |
 * | `idleTimeout`   | `"30 seconds"`                 | with `size: { min, max }`: how long a worker above `min` may stay idle before it is retired |
 * | `targetUtilization` | `1`                        | with `size: { min, max }`: after a `utilizationWindow` whose average share of busy slots was at least this (within (0, 1]), one worker more |
 * | `utilizationWindow` | `"1 second"`               | with `size: { min, max }`: the window over which utilization is averaged (sampled ten times) |
 * | `timeout`       | none                           | how long a request may run on its worker (queue time excluded) |
 * | `queueTimeout`  | `"30 seconds"`                 | how long a request may wait in the queue for a worker, then `QueueTimeout` (`Infinity`: no bound) |
 * | `queueCapacity` | `1024`                         | requests that may wait for a free worker                       |
 * | `queueStrategy` | `"suspend"`                    | what a full queue does: see {@link QueueStrategy}              |
 * | `ejection`      | on, see {@link EjectionOptions}| `false` turns passive ejection off                             |
 * | `retry`         | see {@link RetryOptions}       | budget of retries of idempotent requests                       |
 * | `drain`         | `"10 seconds"`                 | at shutdown, how long admitted requests may take to finish     |
 * | `spares`        | `1`                            | incarnations kept started ahead, of the kind of the first worker whose kind allows it (threads, subprocesses); a crashed worker of that kind takes one at once instead of waiting for a restart; `0` turns them off |
 * | `name`          | `"default"`                    | the pool's name: the `pool` attribute of its metrics (see `PoolMetrics`) and `worker_pool.name` of its spans; pools of the same name report together |
 * | `metrics`       | `{ workerId: false }`          | `workerId: true` adds a `worker_id` attribute to the per-worker metrics (a series per worker, rather than per kind) |
 *
 * Every dispatch gets a span, `WorkerPool.dispatch`, when the caller's fiber
 * has a tracer of the application's (such as `@effect/opentelemetry`'s), and
 * none under Effect's default tracer; its trace context goes with the
 * request to a thread or a subprocess (see the observability guide).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { DispatchPolicy, type InvalidOptions, Worker, type WorkerPool } from "effect-worker-pool"
 *
 * const options: WorkerPool.Options<number, number, never, InvalidOptions, never> = {
 *   policy: DispatchPolicy.RoundRobin,
 *   size: 4,
 *   worker: (id) => Worker.make(id, (n: number) => Effect.succeed(n * 2)),
 *   timeout: "2 seconds",
 *   queueCapacity: 100,
 *   queueStrategy: "fail"
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<Req, Resp, E, WE, R> {
  readonly policy?: DispatchPolicy<any, Req> | undefined
  readonly size?: number | { readonly min: number; readonly max: number } | undefined
  readonly idleTimeout?: Duration.Input | undefined
  readonly targetUtilization?: number | undefined
  readonly utilizationWindow?: Duration.Input | undefined
  readonly worker?: ((id: WorkerId) => Effect.Effect<Worker<Req, Resp, E>, WE, R | Scope.Scope>) | undefined
  readonly timeout?: Duration.Input | undefined
  readonly queueTimeout?: Duration.Input | undefined
  readonly queueCapacity?: number | undefined
  readonly queueStrategy?: QueueStrategy | undefined
  readonly ejection?: EjectionOptions | false | undefined
  readonly retry?: RetryOptions | undefined
  readonly drain?: Duration.Input | undefined
  readonly spares?: number | undefined
  readonly name?: string | undefined
  readonly metrics?: MetricsOptions | undefined
}

/**
 * What the pool's metrics say of each worker: with `workerId: true`, the
 * per-worker metrics (run time, in flight, crashes, restarts, ejections,
 * workers by state) have a `worker_id` attribute, one series per worker;
 * by default they have one series per kind of worker, which keeps the
 * number of series small.
 *
 * @example
 * ```ts
 * import type { WorkerPool } from "effect-worker-pool"
 *
 * const metrics: WorkerPool.MetricsOptions = { workerId: true }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface MetricsOptions {
  readonly workerId?: boolean | undefined
}

/** Reads the options, once: the pool's settings, or why they are invalid. */
const decodeOptions = Rules.decodeEffect(PoolOptions)

/**
 * Makes a pool in the current scope.
 *
 * Closing the scope shuts the pool down: new requests fail at once with
 * `PoolShutdown`; requests already admitted (queued or running) may finish
 * within the `drain` deadline; then those still queued fail with
 * `PoolShutdown`, those still running are interrupted and fail with
 * `PoolShutdown`, and every worker is stopped and its resources released. No
 * fiber of the pool is left running.
 *
 * Invalid options fail with `InvalidOptions` and start nothing.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { DispatchPolicy, Worker, WorkerPool } from "effect-worker-pool"
 *
 * const program = Effect.scoped(
 *   Effect.gen(function* () {
 *     const pool = yield* WorkerPool.make({
 *       policy: DispatchPolicy.RoundRobin,
 *       size: 3,
 *       worker: (id) => Worker.make(id, (n: number) => Effect.succeed(n * 2))
 *     })
 *     return yield* pool.dispatch(21) // 42
 *   })
 * )
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fn("WorkerPool.make")(function* <Req, Resp, E = DomainError, WE = never, R = never>(
  options: Options<Req, Resp, E, WE, R>
): Effect.fn.Return<WorkerPool<Req, Resp, E>, InvalidOptions | WE, R | Scope.Scope> {
  const config = yield* decodeOptions(options)
  const scope = yield* Scope.fork(yield* Scope.Scope, "sequential")
  // Made first, so closed last: the pool drains before its own workers stop.
  const workersScope = yield* Scope.fork(scope, "sequential")
  const services = { clock: yield* Clock.Clock, random: yield* Random.Random, context: yield* Effect.context<never>() }
  const elastic = config.workers?.elastic
  const pool = yield* (
    engine.make<Req, Resp, E>(
      config,
      services,
      elastic === undefined ? undefined : { size: elastic, make: config.workers!.make as never, workersScope }
    ) as Effect.Effect<WorkerPool<Req, Resp, E>, WE, R | Scope.Scope>
  ).pipe(
    Scope.provide(scope),
    Effect.onError((cause) => Scope.close(scope, Exit.failCause(cause)))
  )
  if (config.workers !== undefined && elastic === undefined) {
    const { size, make: makeWorker } = config.workers
    const workers = yield* Effect.forEach(
      Array.from({ length: size }, (_, i) => WorkerId.make(i)),
      (id) => makeWorker(id) as Effect.Effect<Worker<Req, Resp, E>, WE, R | Scope.Scope>,
      { concurrency: "unbounded" }
    ).pipe(
      Scope.provide(workersScope),
      Effect.onError((cause) => Scope.close(scope, Exit.failCause(cause)))
    )
    for (const worker of workers) yield* Effect.orDie(pool.add(worker))
  }
  return pool
})

/**
 * The pool as a `Layer` for a service key of your own, so that an application
 * writes `Layer.provide(MyPool.layer)` and `yield* MyPool`. The pool lives as
 * long as the layer.
 *
 * @example
 * ```ts
 * import { Context, Effect, Layer } from "effect"
 * import { DispatchPolicy, Worker, WorkerPool } from "effect-worker-pool"
 *
 * class Doubler extends Context.Service<Doubler, WorkerPool.WorkerPool<number, number, never>>()("app/Doubler") {
 *   static readonly layer = WorkerPool.layer(Doubler, {
 *     policy: DispatchPolicy.LeastLoaded,
 *     size: 4,
 *     worker: (id) => Worker.make(id, (n: number) => Effect.succeed(n * 2))
 *   })
 * }
 *
 * const program = Effect.gen(function* () {
 *   const pool = yield* Doubler
 *   return yield* pool.dispatch(21)
 * }).pipe(Effect.provide(Doubler.layer))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <I, Req, Resp, E, WE = never, R = never>(
  service: Context.Key<I, WorkerPool<Req, Resp, E>>,
  options: Options<Req, Resp, E, WE, R>
): Layer.Layer<I, InvalidOptions | WE, Exclude<R, Scope.Scope>> => Layer.effect(service)(make(options))

/**
 * The typed client of a pool whose workers serve `group` (made by
 * `ScriptPool.make({ ..., group })`, or by `WorkerPool.make` with
 * `Worker.fromGroup` workers, or with a kind given `Operation.schemas`): a
 * method per operation (see `Operation.Client`). Each call is one dispatch,
 * with the pool's policies, queue, timeouts, health and retries; its span
 * is named after its operation (`WorkerPool.dispatch Hash`, with a
 * `worker_pool.operation` attribute), and the pool's request metrics count
 * it with an `operation` attribute. `idempotent` lists the operations that
 * may be retried after a crash; a call's own `idempotent` overrides it. A
 * streamed operation's method gives a `Stream`, with at most `window`
 * chunks in flight (default 16). An `idempotent` that names no operation of
 * the group, or a `window` that is not a positive integer, fails with
 * `InvalidOptions`.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Rpc, RpcGroup } from "effect/rpc"
 * import { Worker, WorkerPool } from "effect-worker-pool"
 *
 * const Counting = RpcGroup.make(
 *   Rpc.make("Count", { payload: { text: Schema.String }, success: Schema.Number }),
 *   Rpc.make("Upper", { payload: { text: Schema.String }, success: Schema.String })
 * )
 *
 * const program = Effect.scoped(
 *   Effect.gen(function* () {
 *     const pool = yield* WorkerPool.make({
 *       size: 2,
 *       worker: (id) =>
 *         Worker.fromGroup(id, Counting, {
 *           Count: ({ text }) => Effect.succeed(text.length),
 *           Upper: ({ text }) => Effect.succeed(text.toUpperCase())
 *         })
 *     })
 *     const client = yield* WorkerPool.client(pool, Counting, { idempotent: ["Count"] })
 *     const n = yield* client.Count({ text: "four" }) // 4
 *     const upper = yield* client.Upper({ text: "abc" }) // "ABC"
 *     return [n, upper] as const
 *   })
 * )
 * ```
 *
 * @since 0.4.0
 * @category operations
 */
export const client = Effect.fn("WorkerPool.client")(function* <Rpcs extends Rpc.Any, E>(
  pool: WorkerPool<Operation.Request<Rpcs>, Operation.Response<Rpcs>, E>,
  group: RpcGroup.RpcGroup<Rpcs>,
  options?: Operation.ClientOptions<Rpcs>
): Effect.fn.Return<Operation.Client<Rpcs>, InvalidOptions> {
  const rpcs = Operations.operationsOf(group)
  if (typeof rpcs === "string") return yield* new InvalidOptions({ reason: rpcs })
  const idempotent = Operations.idempotentTags(rpcs, options?.idempotent)
  if (typeof idempotent === "string") return yield* new InvalidOptions({ reason: idempotent })
  const window = Streams.windowOf(options?.window)
  if (typeof window === "string") return yield* new InvalidOptions({ reason: window })
  return Operations.makeClient(rpcs, pool.dispatch as never, idempotent, window) as never
})
