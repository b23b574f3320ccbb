/**
 * Dispatch policies: which worker takes the next request.
 *
 * A policy is a pure function over a view of the workers it may pick (the
 * healthy ones with a free slot), plus a state of its own that the pool
 * threads from one pick to the next. It never sees a worker that is starting,
 * restarting, retired or stopped, nor an ejected one unless too few workers
 * are healthy (the pool's panic mode). Being a plain function, a policy
 * can be property-tested on its own (build a view with the test kit's
 * `Testing.view`, from `effect-worker-pool/testing`) and
 * replaced without touching the pool.
 *
 * | policy               | picks                                                               | cost of a pick |
 * |----------------------|---------------------------------------------------------------------|----------------|
 * | `RoundRobin`         | the next worker in id order after the last pick                     | O(n / 32)      |
 * | `LeastLoaded`        | the fewest requests in flight; ties to the lowest id                | O(n / 32)      |
 * | `LeastLoadedRandom`  | the fewest requests in flight; ties broken at random                | O(1)           |
 * | `Random`             | a worker at random                                                  | O(1)           |
 * | `PowerOfTwoChoices`  | the less loaded of two workers drawn at random                      | O(1)           |
 * | `PeakEwma(options)`  | of two drawn at random, the lower latency estimate × (in flight + 1) | O(1)           |
 * | `ShortestExpectedDelay(options)` | the lowest latency estimate × (in flight + 1) of four candidates; the default | O(1) |
 * | `WorkPulling`        | an idle worker, else the request waits in the pool's queue          | O(1)           |
 * | `ConsistentHash(options)` | the worker owning the request's key on a hash ring             | O(log n)       |
 *
 * (n / 32: a scan of a bitset, 32 workers a step.) See the policies guide for
 * what each measures and where it wins or loses.
 *
 * @since 0.1.0
 */
import { Duration } from "effect"
import { LatencyEstimates } from "./internal/latency.ts"
import { viewOf } from "./internal/view.ts"
import type { WorkerHealth } from "./WorkerHealth.ts"
import type { WorkerId } from "./WorkerId.ts"

/**
 * A worker as a policy sees it: its id, its health now, and how many requests
 * it may hold.
 *
 * @example
 * ```ts
 * import type { DispatchPolicy } from "effect-worker-pool"
 *
 * const spare = (c: DispatchPolicy.Candidate) => c.maxInFlight - c.health.inFlight
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Candidate {
  readonly id: WorkerId
  readonly health: WorkerHealth
  readonly maxInFlight: number
}

/**
 * The workers a policy may pick, with the queries the built-in policies need,
 * each cheap whatever the size of the pool.
 *
 * - `size`, `at(i)`: the eligible workers, in no particular order.
 * - `has(id)`: whether a worker is eligible.
 * - `next(id)`: the first eligible worker with an id greater than `id`,
 *   wrapping around to the lowest.
 * - `leastLoaded(random?)`: an eligible worker with the fewest requests in
 *   flight: the lowest id, or one drawn with `random` in [0, 1) among those
 *   tied.
 * - `members`, `membersVersion`: every worker of the pool, eligible or not,
 *   sorted by id, and a number that changes when that list changes (for
 *   policies that build a structure over the membership, like a hash ring).
 * - `toArray()`: the eligible workers sorted by id (O(n): for policies of
 *   your own and for tests).
 *
 * @example
 * ```ts
 * import { Testing } from "effect-worker-pool/testing"
 *
 * const view = Testing.view([Testing.candidate(0, { inFlight: 2, maxInFlight: 4 }), Testing.candidate(1, { maxInFlight: 4 })])
 * console.log(view.leastLoaded()?.id) // 1
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface WorkerView {
  readonly size: number
  readonly at: (index: number) => Candidate
  readonly has: (id: WorkerId) => boolean
  readonly next: (after: number) => Candidate | undefined
  readonly leastLoaded: (random?: number) => Candidate | undefined
  readonly members: ReadonlyArray<Candidate>
  readonly membersVersion: number
  readonly toArray: () => ReadonlyArray<Candidate>
}

/**
 * What a policy is given for one pick.
 *
 * - `view`: the eligible workers, never empty.
 * - `state`: what the previous pick (or `onResult`) returned.
 * - `random`: numbers in [0, 1) drawn from Effect's `Random` service, so a
 *   seeded run is reproducible.
 * - `now`: the time in milliseconds from Effect's `Clock`.
 * - `request`: the request being routed (`undefined` for `WorkerPool.select`).
 *
 * The pool fills one input object anew for each pick: read it during
 * `select`, and keep what you need of it in your state, not the object.
 *
 * @example
 * ```ts
 * import type { DispatchPolicy } from "effect-worker-pool"
 *
 * const first = (input: DispatchPolicy.SelectionInput<undefined>) => ({ worker: input.view.at(0).id, state: input.state })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface SelectionInput<S, Req = unknown> {
  readonly view: WorkerView
  readonly state: S
  readonly random: () => number
  readonly now: number
  readonly request: Req | undefined
}

/**
 * The outcome of one pick: the chosen worker (one of the view's), or
 * `undefined` to let the request wait in the pool's queue until the pool asks
 * again (it does when a worker frees a slot); and the state for the next pick.
 *
 * @example
 * ```ts
 * import { type DispatchPolicy, WorkerId } from "effect-worker-pool"
 *
 * const selection: DispatchPolicy.Selection<number> = { worker: WorkerId.make(0), state: 1 }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Selection<S> {
  readonly worker: WorkerId | undefined
  readonly state: S
}

/**
 * How a request that reached a worker ended, for policies that learn from
 * latency (`onResult`). `millis` is its run time, from start on the worker to
 * its outcome; `failed` is true for a crash or a timeout. Every crash and
 * timeout is reported, and every answer whose run time the pool knows (an
 * in-process answer that started and ended within one turn of the event
 * loop is timed exactly for one request per worker per turn, and not
 * reported otherwise; see the policies guide). The pool fills one object
 * anew for each result: keep what you need of it, not the object.
 *
 * @example
 * ```ts
 * import { type DispatchPolicy, WorkerId } from "effect-worker-pool"
 *
 * const result: DispatchPolicy.Result = { worker: WorkerId.make(0), millis: 12, failed: false, now: 1_000 }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Result {
  readonly worker: WorkerId
  readonly millis: number
  readonly failed: boolean
  readonly now: number
}

/**
 * A dispatch policy: a name, a fresh state for each pool, a pure `select`,
 * and optionally `onResult` to learn from the requests that reached a worker
 * (see {@link Result}).
 *
 * `select` must return a worker of the view (or `undefined`); the pool treats
 * anything else as a bug of the policy and fails the request with a defect
 * naming it.
 *
 * @example
 * ```ts
 * import { DispatchPolicy } from "effect-worker-pool"
 *
 * // The eligible worker that completed the most requests: keeps a warm worker busy.
 * const Busiest = DispatchPolicy.make({
 *   name: "Busiest",
 *   initial: () => undefined,
 *   select: ({ view, state }) => {
 *     let best = view.at(0)
 *     for (let i = 1; i < view.size; i++) {
 *       if (view.at(i).health.completed > best.health.completed) best = view.at(i)
 *     }
 *     return { worker: best.id, state }
 *   }
 * })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface DispatchPolicy<S = any, Req = unknown> {
  readonly name: string
  readonly initial: () => S
  readonly select: (input: SelectionInput<S, Req>) => Selection<S>
  readonly onResult?: ((state: S, result: Result) => S) | undefined
}

/**
 * Makes a policy of your own. See {@link DispatchPolicy} for an example.
 *
 * @example
 * ```ts
 * import { DispatchPolicy } from "effect-worker-pool"
 *
 * const First = DispatchPolicy.make({
 *   name: "First",
 *   initial: () => undefined,
 *   select: ({ view, state }) => ({ worker: view.toArray()[0]!.id, state })
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <S, Req = unknown>(policy: DispatchPolicy<S, Req>): DispatchPolicy<S, Req> => policy

/**
 * Builds a view over the given workers, all eligible: for testing a policy
 * without a pool.
 *
 * @deprecated Use `Testing.view` of `effect-worker-pool/testing`, the test
 * kit's builder: it takes bare ids as well as candidates, and refuses a view
 * no pool offers (empty, or a worker twice). This one stays for the code
 * that uses it, and builds the same view.
 *
 * @example
 * ```ts
 * import { DispatchPolicy, WorkerId } from "effect-worker-pool"
 *
 * const health = { state: "Healthy", inFlight: 0, completed: 0, errored: 0, timeouts: 0, interrupted: 0,
 *   rejected: 0, crashes: 0, restarts: 0, attempt: 0, failedStarts: 0, consecutiveFailures: 0, ejections: 0 } as const
 * const view = DispatchPolicy.view([0, 1, 2].map((i) => ({ id: WorkerId.make(i), health, maxInFlight: 1 })))
 * const pick = DispatchPolicy.RoundRobin.select({
 *   view,
 *   state: DispatchPolicy.RoundRobin.initial(),
 *   random: Math.random,
 *   now: 0,
 *   request: undefined
 * })
 * console.log(pick.worker) // 0
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const view: (candidates: ReadonlyArray<Candidate>) => WorkerView = viewOf

/**
 * Round robin: visits the eligible workers in id order, one pick each, then
 * starts over (ids 0, 1, 2, 0, 1, 2, ...). The state is the id of the last
 * pick, so a worker that joins, leaves, crashes or comes back does not upset
 * the rotation of the others. Ignores load.
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
  initial: () => -1,
  select: ({ view, state }) => {
    const picked = view.next(state)!
    return { worker: picked.id, state: picked.id }
  }
})

/**
 * Least loaded: the eligible worker with the fewest requests in flight; ties
 * go to the lowest id. Deterministic, which makes it easy to reason about in
 * tests; but when requests finish before the next one arrives every worker
 * shows 0 in flight and the lowest id takes them all. Prefer
 * {@link LeastLoadedRandom} in production.
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
  initial: () => undefined,
  select: ({ view, state }) => ({ worker: view.leastLoaded()!.id, state })
})

/**
 * Least loaded with a random tie-break (join the shortest queue): the
 * eligible worker with the fewest requests in flight, drawn at random among
 * those tied. The best choice when load information is fresh, as it is in a
 * local pool.
 *
 * @example
 * ```ts
 * import { DispatchPolicy, WorkerPool } from "effect-worker-pool"
 *
 * const pool = WorkerPool.make<number, number>({ policy: DispatchPolicy.LeastLoadedRandom })
 * ```
 *
 * @since 0.1.0
 * @category policies
 */
export const LeastLoadedRandom: DispatchPolicy<undefined> = make({
  name: "LeastLoadedRandom",
  initial: () => undefined,
  select: ({ view, state, random }) => ({ worker: view.leastLoaded(random())!.id, state })
})

/**
 * Random: an eligible worker drawn uniformly. Needs no load information at
 * all; queues build up on slow workers.
 *
 * @example
 * ```ts
 * import { DispatchPolicy, WorkerPool } from "effect-worker-pool"
 *
 * const pool = WorkerPool.make<number, number>({ policy: DispatchPolicy.Random })
 * ```
 *
 * @since 0.1.0
 * @category policies
 */
export const Random: DispatchPolicy<undefined> = make({
  name: "Random",
  initial: () => undefined,
  select: ({ view, state, random }) => ({ worker: view.at(Math.floor(random() * view.size)).id, state })
})

/** Two distinct positions of the view, drawn uniformly. */
const twoChoices = (view: WorkerView, random: () => number): readonly [Candidate, Candidate] => {
  const first = Math.floor(random() * view.size)
  let second = Math.floor(random() * (view.size - 1))
  if (second >= first) second++
  return [view.at(first), view.at(second)]
}

/**
 * Power of two choices: draws two distinct eligible workers at random and
 * takes the one with fewer requests in flight (the first drawn on a tie).
 * Nearly as good as least loaded, O(1), and robust to stale load
 * information.
 *
 * @example
 * ```ts
 * import { DispatchPolicy, WorkerPool } from "effect-worker-pool"
 *
 * const pool = WorkerPool.make<number, number>({ policy: DispatchPolicy.PowerOfTwoChoices })
 * ```
 *
 * @since 0.1.0
 * @category policies
 */
export const PowerOfTwoChoices: DispatchPolicy<undefined> = make({
  name: "PowerOfTwoChoices",
  initial: () => undefined,
  select: ({ view, state, random }) => {
    if (view.size === 1) return { worker: view.at(0).id, state }
    const [a, b] = twoChoices(view, random)
    return { worker: (b.health.inFlight < a.health.inFlight ? b : a).id, state }
  }
})

/**
 * Work pulling: a request goes only to an idle worker (none in flight); when
 * none is idle it waits in the pool's shared queue and the next worker to
 * become idle takes it, as with one queue in front of n servers (M/M/n). Ties
 * among idle workers are broken at random.
 *
 * @example
 * ```ts
 * import { DispatchPolicy, WorkerPool } from "effect-worker-pool"
 *
 * const pool = WorkerPool.make<number, number>({ policy: DispatchPolicy.WorkPulling })
 * ```
 *
 * @since 0.1.0
 * @category policies
 */
export const WorkPulling: DispatchPolicy<undefined> = make({
  name: "WorkPulling",
  initial: () => undefined,
  select: ({ view, state, random }) => {
    const idle = view.leastLoaded(random())!
    return { worker: idle.health.inFlight === 0 ? idle.id : undefined, state }
  }
})

/**
 * Options of {@link PeakEwma}.
 *
 * - `decay`: how fast old latency is forgotten (the time constant τ).
 *   Default `"10 seconds"`.
 * - `defaultRtt`: the latency assumed of a worker never measured. Default
 *   `"100 millis"`.
 *
 * @example
 * ```ts
 * import type { DispatchPolicy } from "effect-worker-pool"
 *
 * const options: DispatchPolicy.PeakEwmaOptions = { decay: "5 seconds", defaultRtt: "20 millis" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface PeakEwmaOptions {
  readonly decay?: Duration.Input | undefined
  readonly defaultRtt?: Duration.Input | undefined
}

/**
 * Peak EWMA (as in Finagle, tower and Linkerd): each worker's latency is
 * estimated by a moving average that jumps to any higher sample at once (the
 * peak) and decays smoothly otherwise, `w = exp(-Δt / τ)`. Of two workers
 * drawn at random, the one with the lower `cost × (in flight + 1)` wins.
 *
 * A worker that hangs answers nothing, so its estimate would decay toward 0
 * and attract ever more traffic. The age of its oldest request in flight is
 * therefore a floor on its cost.
 *
 * @example
 * ```ts
 * import { DispatchPolicy, WorkerPool } from "effect-worker-pool"
 *
 * const pool = WorkerPool.make<number, number>({ policy: DispatchPolicy.PeakEwma({ decay: "10 seconds" }) })
 * ```
 *
 * @since 0.1.0
 * @category policies
 */
export const PeakEwma = (options?: PeakEwmaOptions): DispatchPolicy<LatencyEstimates> => {
  const { tau, defaultRtt } = ewmaSettings(options)
  return make({
    name: "PeakEwma",
    initial: () => new LatencyEstimates(tau, defaultRtt),
    select: ({ view, state, random, now }) => {
      if (view.size === 1) return { worker: view.at(0).id, state }
      const [a, b] = twoChoices(view, random)
      const cost = (c: Candidate) => state.estimate(c, now, false) * (c.health.inFlight + 1)
      return { worker: (cost(b) < cost(a) ? b : a).id, state }
    },
    onResult: (state, result) => {
      state.record(result.worker, result.millis, result.now)
      return state
    }
  })
}

const ewmaSettings = (options: PeakEwmaOptions | undefined) => ({
  tau: Duration.toMillis(Duration.fromInputUnsafe(options?.decay ?? "10 seconds")),
  defaultRtt: Duration.toMillis(Duration.fromInputUnsafe(options?.defaultRtt ?? "100 millis"))
})

/**
 * Shortest expected delay: the worker where the request should finish first,
 * estimated as `latency × (in flight + 1)` with each worker's peak-EWMA
 * latency (see {@link PeakEwma}, whose options it takes). It weighs four
 * candidates, in O(1): two drawn among the least loaded workers (so that
 * with equal speeds it joins the shortest queue) and two distinct workers
 * drawn among all, as `PeakEwma` draws its two (so that a fast worker with a
 * slightly longer queue can win over a slow idle one). Its pick is
 * therefore, by its estimates, never worse than the better of a pair
 * `PeakEwma` could have drawn, and the worker of the highest expected delay
 * is never picked while another eligible worker did not fail. A worker
 * never measured is assumed as fast as the others on average;
 * a hung worker is held off by the age of its oldest request, and a timed
 * out request counts as a sample as long as its timeout. A worker whose last
 * request failed (crashed or timed out) within the decay time is a last
 * resort: while a worker that did not fail is merely busy, the request waits
 * in the pool's queue for it rather than go there.
 *
 * @example
 * ```ts
 * import { DispatchPolicy, WorkerPool } from "effect-worker-pool"
 *
 * const pool = WorkerPool.make<number, number>({ policy: DispatchPolicy.ShortestExpectedDelay() })
 * ```
 *
 * @since 0.1.0
 * @category policies
 */
export const ShortestExpectedDelay = (options?: PeakEwmaOptions): DispatchPolicy<LatencyEstimates> => {
  const { tau, defaultRtt } = ewmaSettings(options)
  /** The delays of a small view's workers, for one pick at a time. */
  const scratch = new Float64Array(4)
  return make({
    name: "ShortestExpectedDelay",
    initial: () => new LatencyEstimates(tau, defaultRtt),
    select: ({ view, state, random, now }) => {
      const size = view.size
      // The best by expected delay wins among the workers whose last request
      // did not fail; `fallback` is the best of the others. In a view of at
      // most four: every worker, ties broken at random. In a larger one: four
      // candidates, two drawn among the least loaded and two distinct ones
      // among all, so that at least one candidate is not the worker the
      // others may all name (a slow worker alone at the lowest load).
      let best: Candidate | undefined
      let bestDelay = Infinity
      let fallback: Candidate | undefined
      let fallbackDelay = Infinity
      if (size <= 4) {
        let ties = 0
        let first = 0
        for (let k = 0; k < size; k++) {
          const c = view.at(k)
          const d = state.delay(c, now)
          if (state.suspect(c.id, now)) {
            scratch[k] = Infinity
            if (d < fallbackDelay) {
              fallback = c
              fallbackDelay = d
            }
            continue
          }
          scratch[k] = d
          if (d < bestDelay) {
            first = k
            bestDelay = d
            ties = 1
          } else if (d === bestDelay) ties++
        }
        if (ties === 1) return { worker: view.at(first).id, state }
        if (ties === size) return { worker: view.at(Math.floor(random() * size)).id, state }
        if (ties > 0) {
          let nth = Math.floor(random() * ties)
          for (let k = 0; k < size; k++) {
            if (scratch[k] === bestDelay && nth-- === 0) return { worker: view.at(k).id, state }
          }
        }
      } else {
        const [a, b] = twoChoices(view, random)
        for (let k = 0; k < 4; k++) {
          const c = k < 2 ? view.leastLoaded(random())! : k === 2 ? a : b
          const d = state.delay(c, now)
          if (state.suspect(c.id, now)) {
            if (d < fallbackDelay) {
              fallback = c
              fallbackDelay = d
            }
          } else if (d < bestDelay) {
            best = c
            bestDelay = d
          }
        }
      }
      if (best !== undefined) return { worker: best.id, state }
      // Every candidate drawn failed (a crash or a timeout) within τ: such a
      // worker is a last resort. Look further for one that did not fail, by
      // the same rule: every eligible worker of a small pool (ties broken
      // uniformly at random), eight drawn at random in a large one.
      if (size <= 8) {
        let ties = 0
        for (let i = 0; i < size; i++) {
          const c = view.at(i)
          if (state.suspect(c.id, now)) continue
          const d = state.delay(c, now)
          if (d < bestDelay) {
            best = c
            bestDelay = d
            ties = 1
          } else if (d === bestDelay && random() * ++ties < 1) {
            best = c
          }
        }
      } else {
        for (let i = 0; i < 8; i++) {
          const c = view.at(Math.floor(random() * size))
          if (state.suspect(c.id, now)) continue
          const d = state.delay(c, now)
          if (d < bestDelay) {
            best = c
            bestDelay = d
          }
        }
      }
      if (best !== undefined) return { worker: best.id, state }
      // Rather than send it to a worker that failed, let the request wait
      // for a healthy one that did not fail and is merely busy.
      const members = view.members.length
      const first = Math.floor(random() * members)
      for (let i = 0; i < Math.min(members, 8); i++) {
        const m = view.members[(first + i) % members]!
        if (m.health.state === "Healthy" && !view.has(m.id) && !state.suspect(m.id, now)) {
          return { worker: undefined, state }
        }
      }
      return { worker: fallback!.id, state }
    },
    onResult: (state, result) => {
      state.record(result.worker, result.millis, result.now)
      state.mark(result.worker, result.failed, result.now)
      return state
    }
  })
}

/**
 * Options of {@link ConsistentHash}.
 *
 * - `key`: what makes two requests belong together (a user id, a model
 *   name).
 * - `replicas`: points per worker on the ring; more spreads keys more
 *   evenly. Default `100`.
 *
 * @example
 * ```ts
 * import type { DispatchPolicy } from "effect-worker-pool"
 *
 * const options: DispatchPolicy.ConsistentHashOptions<{ readonly user: string }> = { key: (r) => r.user }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface ConsistentHashOptions<Req> {
  readonly key: (request: Req) => string | number
  readonly replicas?: number | undefined
}

/** FNV-1a, 32 bits, then a final mix so that nearby inputs spread. */
const hash32 = (input: string): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < input.length; i++) {
    h ^= input.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

interface Ring {
  readonly version: number
  readonly points: Uint32Array
  readonly owners: Array<WorkerId>
}

/**
 * Consistent hashing: requests with the same key go to the same worker, as
 * long as the membership of the pool does not change; when a worker joins or
 * leaves, only about 1/n of the keys move. Each worker owns `replicas` points
 * on a hash ring; a key belongs to the first point clockwise from its hash.
 *
 * When the owner cannot take the request now (it is busy, crashed or
 * ejected), the request goes to the next eligible owner clockwise (bounded
 * load), so a key sticks to its worker while that worker has a free slot.
 *
 * @example
 * ```ts
 * import { DispatchPolicy, WorkerPool } from "effect-worker-pool"
 *
 * interface Query { readonly tenant: string; readonly sql: string }
 *
 * const pool = WorkerPool.make<Query, string>({
 *   policy: DispatchPolicy.ConsistentHash({ key: (q: Query) => q.tenant })
 * })
 * ```
 *
 * @since 0.1.0
 * @category policies
 */
export const ConsistentHash = <Req>(options: ConsistentHashOptions<Req>): DispatchPolicy<Ring | undefined, Req> => {
  const replicas = options.replicas ?? 100
  const build = (view: WorkerView): Ring => {
    const entries: Array<readonly [number, WorkerId]> = []
    for (const member of view.members) {
      for (let r = 0; r < replicas; r++) entries.push([hash32(`${member.id}#${r}`), member.id])
    }
    entries.sort((a, b) => a[0] - b[0] || a[1] - b[1])
    return {
      version: view.membersVersion,
      points: Uint32Array.from(entries, ([point]) => point),
      owners: entries.map(([, owner]) => owner)
    }
  }
  return make<Ring | undefined, Req>({
    name: "ConsistentHash",
    initial: () => undefined,
    select: ({ view, state, request }) => {
      const ring = state !== undefined && state.version === view.membersVersion ? state : build(view)
      const point = request === undefined ? 0 : hash32(String(options.key(request)))
      let low = 0
      let high = ring.points.length
      while (low < high) {
        const mid = (low + high) >>> 1
        if (ring.points[mid]! < point) low = mid + 1
        else high = mid
      }
      for (let i = 0; i < ring.owners.length; i++) {
        const owner = ring.owners[(low + i) % ring.owners.length]!
        if (view.has(owner)) return { worker: owner, state: ring }
      }
      return { worker: undefined, state: ring }
    }
  })
}
