/**
 * Dispatch policies: which healthy worker takes the next request.
 *
 * A policy is a pure function over a snapshot of the healthy workers, plus a
 * piece of state of its own that the pool threads from one pick to the next.
 * It never sees a worker that is starting, crashed, retired or stopped, and it
 * is never asked to pick from an empty list. Being pure, a policy can be
 * property-tested on its own and replaced without touching the pool.
 *
 * | policy        | picks                                             | state          |
 * |---------------|---------------------------------------------------|----------------|
 * | `RoundRobin`  | the next healthy worker by id after the last pick | last picked id |
 * | `LeastLoaded` | the fewest in-flight requests, ties by lowest id  | none           |
 *
 * @since 0.1.0
 */
import type { WorkerHealth } from "./WorkerHealth.ts"
import type { WorkerId } from "./WorkerId.ts"

/**
 * One healthy worker as a policy sees it.
 *
 * @example
 * ```ts
 * import { type DispatchPolicy, WorkerId } from "effect-worker-pool"
 *
 * const candidate: DispatchPolicy.Candidate = {
 *   id: WorkerId.make(0),
 *   health: { state: "Healthy", inFlight: 2, completed: 10, errored: 1, interrupted: 0, crashes: 0, restarts: 0 }
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Candidate {
  readonly id: WorkerId
  readonly health: WorkerHealth
}

/**
 * What a policy is given for one pick.
 *
 * - `workers`: the healthy workers, sorted by id, never empty.
 * - `state`: what the previous pick returned (`initialState` at first).
 * - `random`: a number in [0, 1), drawn from Effect's `Random` service, so a
 *   seeded run is reproducible.
 * - `now`: the time in milliseconds from Effect's `Clock`.
 *
 * @example
 * ```ts
 * import type { DispatchPolicy } from "effect-worker-pool"
 *
 * const pickFirst = (input: DispatchPolicy.SelectionInput<undefined>) => ({ index: 0, state: input.state })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface SelectionInput<S> {
  readonly workers: ReadonlyArray<Candidate>
  readonly state: S
  readonly random: () => number
  readonly now: number
}

/**
 * The outcome of one pick: the index of the chosen worker in `workers`, and
 * the state for the next pick.
 *
 * @example
 * ```ts
 * import type { DispatchPolicy } from "effect-worker-pool"
 *
 * const selection: DispatchPolicy.Selection<number> = { index: 0, state: 1 }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Selection<S> {
  readonly index: number
  readonly state: S
}

/**
 * A dispatch policy: a name, the state it starts from, and a pure `select`.
 *
 * `select` must return an index within `workers`; the pool treats anything
 * else as a bug of the policy and fails the request with a defect naming it.
 *
 * @example
 * ```ts
 * import { DispatchPolicy } from "effect-worker-pool"
 *
 * // Most completed requests first: keeps a warm worker busy.
 * const Busiest: DispatchPolicy.DispatchPolicy<undefined> = DispatchPolicy.make({
 *   name: "Busiest",
 *   initialState: undefined,
 *   select: ({ workers, state }) => {
 *     let best = 0
 *     for (let i = 1; i < workers.length; i++) {
 *       if (workers[i].health.completed > workers[best].health.completed) best = i
 *     }
 *     return { index: best, state }
 *   }
 * })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface DispatchPolicy<S = any> {
  readonly name: string
  readonly initialState: S
  readonly select: (input: SelectionInput<S>) => Selection<S>
}

/**
 * Makes a policy of your own. See {@link DispatchPolicy} for an example.
 *
 * @example
 * ```ts
 * import { DispatchPolicy } from "effect-worker-pool"
 *
 * const Random = DispatchPolicy.make({
 *   name: "Random",
 *   initialState: undefined,
 *   select: ({ workers, random, state }) => ({ index: Math.floor(random() * workers.length), state })
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <S>(policy: DispatchPolicy<S>): DispatchPolicy<S> => policy

/**
 * Round robin: visits the healthy workers in id order, one pick each, then
 * starts over (ids 0, 1, 2, 0, 1, 2, ...). The state is the id of the last
 * pick, so a worker that joins, leaves, crashes or comes back does not upset
 * the rotation of the others: the next pick is the first healthy worker with a
 * greater id, or the lowest id after the last. Ignores load.
 *
 * @example
 * ```ts
 * import { DispatchPolicy, WorkerPool } from "effect-worker-pool"
 *
 * const pool = WorkerPool.make<number, number>({ policy: DispatchPolicy.RoundRobin })
 * ```
 *
 * @since 0.1.0
 * @category policies
 */
export const RoundRobin: DispatchPolicy<number> = make({
  name: "RoundRobin",
  initialState: -1,
  select: ({ workers, state }) => {
    // First worker whose id is greater than the last pick (binary search).
    let low = 0
    let high = workers.length
    while (low < high) {
      const mid = (low + high) >>> 1
      if (workers[mid]!.id <= state) low = mid + 1
      else high = mid
    }
    const index = low === workers.length ? 0 : low
    return { index, state: workers[index]!.id }
  }
})

/**
 * Least loaded: the worker with the fewest requests in flight; ties go to the
 * lowest id. Deterministic, which makes it easy to reason about in tests; note
 * that when requests finish before the next one arrives every worker shows 0
 * in flight and worker 0 takes them all.
 *
 * @example
 * ```ts
 * import { DispatchPolicy, WorkerPool } from "effect-worker-pool"
 *
 * const pool = WorkerPool.make<number, number>({ policy: DispatchPolicy.LeastLoaded })
 * ```
 *
 * @since 0.1.0
 * @category policies
 */
export const LeastLoaded: DispatchPolicy<undefined> = make({
  name: "LeastLoaded",
  initialState: undefined,
  select: ({ workers, state }) => {
    let best = 0
    for (let i = 1; i < workers.length; i++) {
      if (workers[i]!.health.inFlight < workers[best]!.health.inFlight) best = i
    }
    return { index: best, state }
  }
})
