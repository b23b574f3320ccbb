/**
 * The pool: a set of workers behind one `dispatch`, routed by a dispatch
 * policy, which never sends a request to a worker that is not healthy.
 *
 * @since 0.1.0
 */

import type { Context } from "effect"
import { Clock, Effect, Exit, Layer, Option, Random, Ref, Scope } from "effect"
import type { Candidate, DispatchPolicy } from "./DispatchPolicy.ts"
import { LeastLoaded } from "./DispatchPolicy.ts"
import { internals } from "./internal/worker.ts"
import type { Worker } from "./Worker.ts"
import { type DomainError, DuplicateWorkerId, InvalidOptions, UnknownWorkerId, WorkerCrash } from "./WorkerError.ts"
import type { WorkerHealth } from "./WorkerHealth.ts"
import { WorkerId } from "./WorkerId.ts"

/**
 * A pool of workers.
 *
 * - `dispatch(request)`: picks a healthy worker with the policy and runs the
 *   request on it. Exactly one outcome: the response, the handler's domain
 *   error, or a `WorkerCrash` (the worker crashed while it held the request,
 *   or no worker is healthy: an empty or fully crashed pool fails at once,
 *   it never waits).
 * - `select`: the worker the policy picks now (advancing the policy's state,
 *   as a dispatch would), or `None` when no worker is healthy.
 * - `add(worker)`: the pool routes to it from now on and owns it: `remove`
 *   and the pool's shutdown stop it.
 * - `remove(id)`: stops routing to the worker and stops it; requests it still
 *   holds fail with `WorkerCrash`.
 * - `size`, `isEmpty`: how many workers the pool has, whatever their state.
 * - `health`: every worker's `[id, health]`, sorted by id.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { WorkerPool } from "effect-worker-pool"
 *
 * declare const pool: WorkerPool.WorkerPool<string, number>
 *
 * const lengthOrZero = pool.dispatch("hello").pipe(
 *   Effect.catchTag("DomainError", () => Effect.succeed(0)),
 *   Effect.catchTag("WorkerCrash", (crash) => Effect.logWarning(crash.reason).pipe(Effect.as(0)))
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
  readonly select: Effect.Effect<Option.Option<Worker<Req, Resp, E>>>
  readonly dispatch: (request: Req) => Effect.Effect<Resp, E | WorkerCrash>
  readonly health: Effect.Effect<ReadonlyArray<readonly [WorkerId, WorkerHealth]>>
}

/**
 * Options of a pool.
 *
 * - `policy`: how a worker is picked. Default: `DispatchPolicy.LeastLoaded`.
 * - `size` and `worker`: start the pool with `size` workers, with ids `0` to
 *   `size - 1`, each made by `worker(id)` in the pool's scope. Give both or
 *   neither; without them the pool starts empty and is filled with `add`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { DispatchPolicy, Worker, type WorkerPool } from "effect-worker-pool"
 *
 * const options: WorkerPool.Options<number, number, never, never, never> = {
 *   policy: DispatchPolicy.RoundRobin,
 *   size: 4,
 *   worker: (id) => Worker.make(id, (n: number) => Effect.succeed(n * 2))
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<Req, Resp, E, WE, R> {
  readonly policy?: DispatchPolicy | undefined
  readonly size?: number | undefined
  readonly worker?: ((id: WorkerId) => Effect.Effect<Worker<Req, Resp, E>, WE, R | Scope.Scope>) | undefined
}

const noWorkerReason = (workers: ReadonlyArray<Worker<any, any, any>>): string => {
  if (workers.length === 0) return "no worker available: the pool is empty"
  const states = new Map<string, number>()
  for (const worker of workers) {
    const state = Ref.getUnsafe(internals(worker).healthRef).state
    states.set(state, (states.get(state) ?? 0) + 1)
  }
  const summary = [...states].map(([state, n]) => `${n} ${state}`).join(", ")
  return `no worker available: none of the ${workers.length} workers is healthy (${summary})`
}

const validate = (options: Options<any, any, any, any, any>): string | undefined => {
  const { size, worker, policy } = options
  if (size !== undefined && (!Number.isSafeInteger(size) || size < 0)) {
    return `size must be a non-negative integer, got ${size}`
  }
  if ((size === undefined) !== (worker === undefined)) return "size and worker must be given together"
  if (policy !== undefined && (typeof policy.select !== "function" || typeof policy.name !== "string")) {
    return "policy must have a name and a select function"
  }
  return undefined
}

/**
 * Makes a pool in the current scope. Closing the scope stops every worker of
 * the pool (their in-flight requests fail with `WorkerCrash`, their resources
 * are released) and leaves no fiber running; a dispatch after that fails with
 * `WorkerCrash`.
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
  const invalid = validate(options)
  if (invalid !== undefined) return yield* new InvalidOptions({ reason: invalid })
  const policy: DispatchPolicy = options.policy ?? LeastLoaded
  const scope = yield* Scope.fork(yield* Scope.Scope, "sequential")
  const membersRef = yield* Ref.make<ReadonlyArray<Worker<Req, Resp, E>>>([])
  let policyState: unknown = policy.initialState
  let closed = false

  const stopWorker = (worker: Worker<Req, Resp, E>, reason: string) => internals(worker).stop(reason)

  /** The policy's pick among the healthy workers; synchronous, so nothing changes under it. */
  const pick = (random: Random.Random, clock: Clock.Clock): Worker<Req, Resp, E> | undefined => {
    const members = Ref.getUnsafe(membersRef)
    const candidates: Array<Candidate> = []
    const workers: Array<Worker<Req, Resp, E>> = []
    for (const worker of members) {
      const inner = internals(worker)
      if (!inner.isLive()) continue
      candidates.push({ id: worker.id, health: Ref.getUnsafe(inner.healthRef) })
      workers.push(worker)
    }
    if (candidates.length === 0) return undefined
    const selection = policy.select({
      workers: candidates,
      state: policyState,
      random: () => random.nextDoubleUnsafe(),
      now: clock.currentTimeMillisUnsafe()
    })
    const index = selection.index
    if (!Number.isInteger(index) || index < 0 || index >= candidates.length) {
      throw new RangeError(`dispatch policy ${policy.name} picked index ${index} among ${candidates.length} workers`)
    }
    policyState = selection.state
    return workers[index]
  }

  const withPick = <A, E2>(f: (worker: Worker<Req, Resp, E> | undefined) => Effect.Effect<A, E2>) =>
    Effect.withFiber((fiber) => f(pick(fiber.getRef(Random.Random), fiber.getRef(Clock.Clock))))

  const dispatch = (request: Req): Effect.Effect<Resp, E | WorkerCrash> =>
    withPick((worker) => {
      if (closed) return Effect.fail(new WorkerCrash({ reason: "no worker available: the pool is shut down" }))
      if (worker === undefined) {
        return Effect.fail(new WorkerCrash({ reason: noWorkerReason(Ref.getUnsafe(membersRef)) }))
      }
      // The pick saw the worker live and nothing ran since, so it takes the request.
      return internals(worker).tryDispatch(request)!
    })

  const add = (worker: Worker<Req, Resp, E>): Effect.Effect<void, DuplicateWorkerId> =>
    Effect.suspend(() => {
      const members = Ref.getUnsafe(membersRef)
      if (members.some((w) => w.id === worker.id)) return Effect.fail(new DuplicateWorkerId({ workerId: worker.id }))
      if (closed) return stopWorker(worker, "it was added to a pool that had shut down")
      const next = [...members, worker].sort((a, b) => a.id - b.id)
      return Ref.set(membersRef, next)
    })

  const remove = (id: WorkerId): Effect.Effect<void, UnknownWorkerId> =>
    Effect.suspend(() => {
      const members = Ref.getUnsafe(membersRef)
      const worker = members.find((w) => w.id === id)
      if (worker === undefined) return Effect.fail(new UnknownWorkerId({ workerId: id }))
      return Ref.set(
        membersRef,
        members.filter((w) => w !== worker)
      ).pipe(Effect.andThen(stopWorker(worker, "it was removed from the pool")))
    })

  const pool: WorkerPool<Req, Resp, E> = {
    policy: policy.name,
    add,
    remove,
    size: Effect.map(Ref.get(membersRef), (members) => members.length),
    isEmpty: Effect.map(Ref.get(membersRef), (members) => members.length === 0),
    select: withPick((worker) => Effect.succeed(Option.fromNullishOr(worker))),
    dispatch,
    health: Effect.flatMap(Ref.get(membersRef), (members) =>
      Effect.forEach(members, (worker) => Effect.map(worker.health, (health) => [worker.id, health] as const))
    )
  }

  if (options.worker !== undefined) {
    const makeWorker = options.worker
    const workers = yield* Effect.forEach(
      Array.from({ length: options.size ?? 0 }, (_, i) => WorkerId.make(i)),
      (id) => makeWorker(id),
      { concurrency: "unbounded" }
    ).pipe(
      Scope.provide(scope),
      Effect.onError((cause) => Scope.close(scope, Exit.failCause(cause)))
    )
    for (const worker of workers) yield* add(worker).pipe(Effect.orDie)
  }
  // Added last, so it runs first on close: from then on no request is
  // admitted, and every worker is stopped for the same stated reason.
  yield* Scope.addFinalizer(
    scope,
    Effect.suspend(() => {
      closed = true
      return Effect.forEach(Ref.getUnsafe(membersRef), (worker) => stopWorker(worker, "the pool shut down"), {
        concurrency: "unbounded",
        discard: true
      })
    })
  )
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
