/**
 * Workers: isolated units that take requests one at a time or concurrently,
 * report their health, and are restarted by their supervisor when they crash.
 *
 * @since 0.1.0
 */

import type { Scope } from "effect"
import { type Duration, Effect, Result, type Schedule } from "effect"
import type * as Rpc from "effect/rpc/Rpc"
import type * as RpcGroup from "effect/rpc/RpcGroup"
import * as backoff from "./internal/backoff.ts"
import { isInProcess } from "./internal/inProcessKinds.ts"
import * as Operations from "./internal/operations.ts"
import * as Options from "./internal/options.ts"
import * as supervisor from "./internal/supervisor.ts"
import { TypeId as internalTypeId } from "./internal/worker.ts"
import * as WorkerSettings from "./internal/workerOptions.ts"
import type * as Operation from "./Operation.ts"
import type { InvalidRequest } from "./WireError.ts"
import { type DomainError, InvalidOptions, type RequestTimeout, type WorkerCrash } from "./WorkerError.ts"
import type { WorkerHealth } from "./WorkerHealth.ts"
import type { WorkerId } from "./WorkerId.ts"
import * as WorkerKind from "./WorkerKind.ts"

/**
 * A worker: an Effect service with a stable id, a health snapshot and a
 * `dispatch` that always ends in exactly one outcome: the response, the
 * handler's domain error `E`, a `WorkerCrash`, a `RequestTimeout` (when a
 * timeout is given), or the caller's own interruption.
 *
 * Workers are made by {@link make}, {@link makeScoped} or {@link fromKind}. A
 * worker lives in the `Scope` it was made in; adding it to a pool hands its
 * life to the pool, which stops it on `remove` and on shutdown.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Worker, WorkerId } from "effect-worker-pool"
 *
 * const program = Effect.scoped(
 *   Effect.gen(function* () {
 *     const worker = yield* Worker.make(WorkerId.make(7), (n: number) => Effect.succeed(n * 2))
 *     const answer = yield* worker.dispatch(5) // 10
 *     const health = yield* worker.health // { state: "Healthy", completed: 1, ... }
 *     return [answer, health.completed]
 *   })
 * )
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Worker<in Req, out Resp, out E = DomainError> {
  /** Makes the type opaque: only {@link make}, {@link makeScoped} and {@link fromKind} make workers. */
  readonly [TypeId]: TypeId
  readonly id: WorkerId
  /** The name of the worker's kind, such as `"in-process"`. */
  readonly kind: string
  /**
   * The most requests a pool lets it hold at once: its fixed `maxInFlight`,
   * or, when that is adaptive, the largest limit it may learn (the limit now
   * is its health's `maxInFlight`).
   */
  readonly maxInFlight: number
  readonly health: Effect.Effect<WorkerHealth>
  /**
   * Runs a request on this worker directly (a pool is not involved, so
   * `maxInFlight` does not apply). With `timeout`, the request fails with
   * `RequestTimeout` when it runs longer.
   */
  readonly dispatch: (
    request: Req,
    options?: { readonly timeout?: Duration.Input | undefined }
  ) => Effect.Effect<Resp, E | WorkerCrash | RequestTimeout>
}

/**
 * The brand of a {@link Worker}. An object that only has a worker's shape is
 * not a worker: a pool refuses it (`pool.add` dies with a `TypeError` that
 * says so), since the pool drives the worker through what its constructor
 * made.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Worker, WorkerId } from "effect-worker-pool"
 *
 * const program = Effect.gen(function* () {
 *   const worker = yield* Worker.make(WorkerId.make(0), (n: number) => Effect.succeed(n))
 *   return Worker.TypeId in worker // true
 * })
 * ```
 *
 * @since 0.2.0
 * @category type ids
 */
export const TypeId: typeof internalTypeId = internalTypeId

/**
 * @since 0.2.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * Options of a worker; every field is optional.
 *
 * | option              | default                       | meaning                                                        |
 * |---------------------|-------------------------------|----------------------------------------------------------------|
 * | `restart`           | {@link defaultRestartSchedule} | delay before each restart, stepped once per failure in a row with the `WorkerCrash` as input; if it ends, the worker is `Retired` |
 * | `maxRestarts`       | `Infinity` (no budget)        | restart budget, for OTP-style giving up: at most this many restarts ... |
 * | `restartWindow`     | `"1 minute"`                  | ... within any window this long; beyond it the worker is `Retired` |
 * | `resetBackoffAfter` | `"30 seconds"`                | an incarnation that stayed up this long resets the backoff to its first delay |
 * | `maxInFlight`       | in process: `"adaptive"` (up to 64); other kinds: their `concurrency`, else `1` | how many requests a pool lets the worker hold at once: a number (1: one request per worker, full isolation), or an adaptive limit (see {@link MaxInFlight}) |
 * | `recycle`           | none (never recycled)         | when its incarnation is replaced by a fresh one without failing a request: see {@link RecycleOptions} |
 *
 * @example
 * ```ts
 * import { Effect, Schedule } from "effect"
 * import { Worker, WorkerId } from "effect-worker-pool"
 *
 * // Restart after 1 s, 2 s, 4 s, then give up; at most 3 restarts a minute.
 * const worker = Worker.make(WorkerId.make(0), (n: number) => Effect.succeed(n), {
 *   restart: Schedule.exponential("1 second").pipe(Schedule.upTo({ times: 3 })),
 *   maxRestarts: 3,
 *   restartWindow: "1 minute",
 *   maxInFlight: 4
 * })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface WorkerOptions {
  readonly restart?: Schedule.Schedule<unknown, WorkerCrash> | undefined
  readonly maxRestarts?: number | undefined
  readonly restartWindow?: Duration.Input | undefined
  readonly resetBackoffAfter?: Duration.Input | undefined
  readonly maxInFlight?: MaxInFlight | undefined
  readonly recycle?: RecycleOptions | undefined
}

/**
 * When a worker's incarnation (its thread, its process, its in-process
 * handler and what its initialiser acquired) is replaced by a fresh one, as
 * a leaky or ageing worker should be. Every field is optional; a worker
 * recycles when any limit given is reached.
 *
 * | option                | default      | meaning                                                                         |
 * |-----------------------|--------------|---------------------------------------------------------------------------------|
 * | `maxRequests`         | none         | requests an incarnation starts before it is recycled                            |
 * | `maxAge`              | none         | how long an incarnation serves before it is recycled, less the jitter           |
 * | `ageJitter`           | `0.1`        | each incarnation's age limit is drawn at random within the last `ageJitter` of `maxAge`, so that workers started together do not recycle together; within [0, 1) |
 * | `maxMemoryMb`         | none         | the memory an incarnation may take, in MB: a thread's heap in use and a subprocess's resident set size, as its runner reports them (with its answers and heartbeats); an in-process worker's `memoryProbe` |
 * | `memoryProbe`         | none         | how an incarnation that reports no memory (an in-process one) is measured: an effect giving bytes |
 * | `memoryCheckInterval` | `"1 second"` | how often `memoryProbe` is read                                                  |
 *
 * A recycle fails no request. The replacement (the pool's spare if one is
 * ready, else a fresh start) is started while the old incarnation still
 * serves, and takes over in one step: the old one takes no new request from
 * then on, finishes those it holds, and then ends. If the replacement fails
 * to start, the old one keeps serving and the replacement is tried again
 * after the restart schedule's first delay. At most one worker of a pool
 * recycles at a time. A recycle is neither a crash nor a restart: it counts
 * in `WorkerHealth.recycles`, `lastRecycle`, the `changes` stream and the
 * `effect_worker_pool_recycles` metric, with its reason.
 *
 * An incarnation over `maxMemoryMb` takes no new request from that moment
 * (its requests wait for the replacement or go to other workers), since each
 * one would grow it further. A limit below what a fresh incarnation takes is
 * refused: the constructor fails with `InvalidOptions` once the first
 * incarnation has reported its memory; so is a limit on a worker that cannot
 * be measured (an in-process worker without `memoryProbe`). A runner that
 * does not report its memory (an older one) keeps working, and is never
 * recycled for memory.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Worker, WorkerId } from "effect-worker-pool"
 *
 * // A fresh incarnation every 1,000 requests, and at least every hour (54 to 60 minutes).
 * const worker = Worker.make(WorkerId.make(0), (n: number) => Effect.succeed(n), {
 *   recycle: { maxRequests: 1000, maxAge: "1 hour" }
 * })
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export interface RecycleOptions {
  readonly maxRequests?: number | undefined
  readonly maxAge?: Duration.Input | undefined
  readonly ageJitter?: number | undefined
  readonly maxMemoryMb?: number | undefined
  readonly memoryProbe?: Effect.Effect<number> | undefined
  readonly memoryCheckInterval?: Duration.Input | undefined
}

/**
 * How many requests a pool lets a worker hold at once:
 *
 * - a positive integer: that many, always;
 * - `"adaptive"`: a limit learned from the latency of the worker's answers.
 *   It starts at 1 (one request at a time until answers return), grows
 *   while latency stays near the worker's latency without load (slow start,
 *   then about one more per round trip, while the worker uses at least half
 *   of it), and backs off when latency grows with load, or at once when a
 *   request crashes the worker or runs past its timeout. It is bounded by 64
 *   for an in-process worker, and by its kind's `concurrency` for the
 *   others, so that a crash takes at most that many requests down;
 * - `{ adaptive: { max } }`: the same, bounded by `max` (for a kind with a
 *   `concurrency`, at most that).
 *
 * The default is `"adaptive"` for an in-process worker (`Worker.make`,
 * `makeScoped`, `WorkerKind.inProcess`), and the kind's `concurrency` (else
 * 1) for the others. The limit now is in the worker's health
 * (`maxInFlight`), in the metric `effect_worker_pool_max_in_flight`, and in
 * a policy's `Candidate.maxInFlight`. Anything else fails the worker's
 * making with `InvalidOptions`. See the capacity guide.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Worker, WorkerId } from "effect-worker-pool"
 *
 * // A handler that waits on another service: up to 16 requests at once, as its latency allows.
 * const worker = Worker.make(WorkerId.make(0), (n: number) => Effect.as(Effect.sleep("50 millis"), n), {
 *   maxInFlight: { adaptive: { max: 16 } }
 * })
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export type MaxInFlight = number | "adaptive" | { readonly adaptive: { readonly max?: number | undefined } }

/**
 * The default restart delay: exponential from 100 ms, doubling, capped at
 * 10 s, then jittered by ±20 % so that workers that crashed together do not
 * restart together. It never ends: a worker is restarted as often as it
 * crashes. The schedule is stepped once per failure in a row (a failed start,
 * or a crash before the incarnation answered any request) and starts over
 * when an incarnation answers a request, so a worker that serves between
 * crashes always restarts after about 100 ms.
 *
 * @example
 * ```ts
 * import { Effect, Schedule } from "effect"
 * import { Worker } from "effect-worker-pool"
 *
 * const firstDelays = Effect.gen(function* () {
 *   const step = yield* Schedule.toStep(Worker.defaultRestartSchedule)
 *   return yield* step(0, undefined) // about 100 ms
 * })
 * ```
 *
 * @since 0.1.0
 * @category supervision
 */
export const defaultRestartSchedule: Schedule.Schedule<Duration.Duration> = backoff.defaultRestartSchedule

/** Checks a worker's id: an integer of at least 0. */
const checkId = Options.decodeResult(Options.nonNegativeInt("worker id"))

/**
 * Makes a supervised worker of any kind (see `WorkerKind`). It returns once the
 * first start has been tried: the worker is then `Healthy`, or `Restarting`.
 * Invalid options fail with `InvalidOptions` and start nothing.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Worker, WorkerId, WorkerKind } from "effect-worker-pool"
 *
 * const worker = Worker.fromKind(
 *   WorkerId.make(1),
 *   WorkerKind.inProcess((s: string) => Effect.succeed(s.toUpperCase()))
 * )
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromKind = <Req, Resp, E, R>(
  id: WorkerId,
  kind: WorkerKind.WorkerKind<Req, Resp, E, R>,
  options?: WorkerOptions
): Effect.Effect<Worker<Req, Resp, E>, InvalidOptions, R | Scope.Scope> =>
  Effect.suspend(() => {
    if (kind.invalid !== undefined) return Effect.fail(kind.invalid)
    const checkedId = checkId(id)
    if (Result.isFailure(checkedId)) return Effect.fail(checkedId.failure)
    const settings = WorkerSettings.decode(kind.concurrency, options, isInProcess(kind))
    if (Result.isFailure(settings)) return Effect.fail(settings.failure)
    return supervisor.make(id, kind, settings.success)
  })

/**
 * Makes an in-process worker from a handler. Each request runs on a fiber of
 * its own; a handler that fails with `WorkerCrash` or dies with a defect
 * crashes the worker, which is then restarted.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { DomainError, Worker, WorkerId } from "effect-worker-pool"
 *
 * const worker = Worker.make(WorkerId.make(0), (n: number) =>
 *   n < 0 ? Effect.fail(new DomainError({ reason: "negative" })) : Effect.succeed(Math.sqrt(n))
 * )
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <Req, Resp, E = never>(
  id: WorkerId,
  handler: WorkerKind.Handler<Req, Resp, E>,
  options?: WorkerOptions
): Effect.Effect<Worker<Req, Resp, E>, InvalidOptions, Scope.Scope> =>
  fromKind(id, WorkerKind.inProcess(handler), options)

/**
 * Makes an in-process worker whose handler is built by a scoped initialiser.
 * The initialiser runs at the first start and at every restart; what it
 * acquires is released when that incarnation crashes, before the restart, and
 * at shutdown. A failing initialiser is a crash.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Worker, WorkerId } from "effect-worker-pool"
 *
 * const worker = Worker.makeScoped(
 *   WorkerId.make(0),
 *   Effect.gen(function* () {
 *     const model = yield* Effect.acquireRelease(
 *       Effect.sync(() => ({ predict: (x: number) => x * 0.5 })),
 *       () => Effect.log("model released")
 *     )
 *     return (x: number) => Effect.sync(() => model.predict(x))
 *   })
 * )
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeScoped = <Req, Resp, E = never, InitE = never, R = never>(
  id: WorkerId,
  initialise: Effect.Effect<WorkerKind.Handler<Req, Resp, E>, InitE, R | Scope.Scope>,
  options?: WorkerOptions
): Effect.Effect<Worker<Req, Resp, E>, InvalidOptions, Exclude<R, Scope.Scope> | Scope.Scope> =>
  fromKind(id, WorkerKind.inProcessScoped(initialise), options) as never

/**
 * Makes an in-process worker that serves the operations of an `effect/rpc`
 * `RpcGroup`, one Effect handler per operation (see
 * `Operation.EffectHandlers`). Its requests and answers are the group's (see
 * `Operation.Request`); call it through `WorkerPool.client`. A request whose
 * tag is no operation of the group fails with `InvalidRequest` (in process,
 * payloads are not decoded: their types are the check). A streamed
 * operation's handler gives a `Stream` (see `Operation.StreamHandler`).
 * Handlers that miss an operation fail with `InvalidOptions` and start
 * nothing.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Rpc, RpcGroup } from "effect/rpc"
 * import { Worker, WorkerId } from "effect-worker-pool"
 *
 * const Counting = RpcGroup.make(Rpc.make("Count", { payload: { text: Schema.String }, success: Schema.Number }))
 *
 * const worker = Worker.fromGroup(WorkerId.make(0), Counting, {
 *   Count: ({ text }) => Effect.succeed(text.length)
 * })
 * ```
 *
 * @since 0.4.0
 * @category constructors
 */
export const fromGroup = <Rpcs extends Rpc.Any>(
  id: WorkerId,
  group: RpcGroup.RpcGroup<Rpcs>,
  handlers: Operation.EffectHandlers<Rpcs>,
  options?: WorkerOptions
): Effect.Effect<
  Worker<Operation.Request<Rpcs>, Operation.Response<Rpcs>, Operation.Failure<Rpcs> | InvalidRequest>,
  InvalidOptions,
  Scope.Scope
> =>
  Effect.suspend(() => {
    const rpcs = Operations.operationsOf(group)
    if (typeof rpcs === "string") return Effect.fail(new InvalidOptions({ reason: rpcs }))
    const wrong = Operations.checkHandlers(rpcs, handlers)
    if (wrong !== undefined) return Effect.fail(new InvalidOptions({ reason: wrong }))
    return make(id, Operations.inProcessHandler(rpcs, handlers as never) as never, options)
  })
