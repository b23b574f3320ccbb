/**
 * Builders of the values a policy and a health check are given: a whole
 * health record ({@link health}), a candidate with a free slot
 * ({@link candidate}), and the view a pool offers a policy ({@link view}),
 * for tests of a policy without a pool.
 *
 * @since 0.2.0
 */
import type * as DispatchPolicy from "../DispatchPolicy.ts"
import { viewOf } from "../internal/view.ts"
import type { WorkerHealth } from "../WorkerHealth.ts"
import { WorkerId } from "../WorkerId.ts"

// --- builders -----------------------------------------------------------------

const idle: WorkerHealth = {
  state: "Healthy",
  inFlight: 0,
  completed: 0,
  errored: 0,
  timeouts: 0,
  interrupted: 0,
  rejected: 0,
  crashes: 0,
  restarts: 0,
  attempt: 0,
  failedStarts: 0,
  consecutiveFailures: 0,
  ejections: 0
}

/**
 * A whole health record: state `Healthy`, every counter 0, no optional
 * field, with `overrides` applied. It is not checked: build an inconsistent
 * one on purpose to test a check.
 *
 * @example
 * ```ts
 * import { Testing } from "effect-worker-pool/testing"
 *
 * const busy = Testing.health({ inFlight: 2, oldestInFlightSince: 1_000 })
 * console.log(busy.state, busy.inFlight, busy.completed) // Healthy 2 0
 * ```
 *
 * @since 0.2.0
 * @category builders
 */
export const health = (overrides?: Partial<WorkerHealth>): WorkerHealth => ({ ...idle, ...overrides })

/**
 * Overrides of a {@link candidate}: fields of its health, and its
 * `maxInFlight`.
 *
 * @example
 * ```ts
 * import type { Testing } from "effect-worker-pool/testing"
 *
 * const loaded: Testing.CandidateOverrides = { inFlight: 3, maxInFlight: 8, completed: 120 }
 * ```
 *
 * @since 0.2.0
 * @category builders
 */
export interface CandidateOverrides extends Partial<WorkerHealth> {
  readonly maxInFlight?: number | undefined
}

/**
 * A candidate for a policy: worker `id` (a non-negative integer, else the
 * `WorkerId` schema throws) with {@link health}`(overrides)`. Its
 * `maxInFlight` defaults to one more than its `inFlight`, so that it has a
 * free slot, as every worker a pool offers does.
 *
 * @example
 * ```ts
 * import { Testing } from "effect-worker-pool/testing"
 *
 * const c = Testing.candidate(3, { inFlight: 2, completed: 40 })
 * console.log(c.id, c.health.inFlight, c.maxInFlight) // 3 2 3
 * ```
 *
 * @since 0.2.0
 * @category builders
 */
export const candidate = (id: number, overrides?: CandidateOverrides): DispatchPolicy.Candidate => {
  const { maxInFlight, ...fields } = overrides ?? {}
  const built = health(fields)
  return { id: WorkerId.make(id), health: built, maxInFlight: maxInFlight ?? built.inFlight + 1 }
}

/**
 * A view for a policy's `select`, as `DispatchPolicy.view` builds it, from
 * candidates or bare ids (an id stands for an idle, healthy
 * {@link candidate}). A pool never offers an empty view nor the same worker
 * twice, so either throws a `RangeError`.
 *
 * @example
 * ```ts
 * import { DispatchPolicy } from "effect-worker-pool"
 * import { Testing } from "effect-worker-pool/testing"
 *
 * const view = Testing.view([Testing.candidate(0, { inFlight: 2 }), 1, 2])
 * const { worker } = DispatchPolicy.LeastLoaded.select({ view, state: undefined, random: () => 0, now: 0, request: undefined })
 * console.log(worker) // 1
 * ```
 *
 * @since 0.2.0
 * @category builders
 */
export const view = (candidates: ReadonlyArray<DispatchPolicy.Candidate | number>): DispatchPolicy.WorkerView => {
  if (candidates.length === 0) throw new RangeError("Testing.view: a pool never offers an empty view")
  const all = candidates.map((c) => (typeof c === "number" ? candidate(c) : c))
  const seen = new Set<number>()
  for (const c of all) {
    if (seen.has(c.id)) throw new RangeError(`Testing.view: worker ${c.id} is offered twice`)
    seen.add(c.id)
  }
  return viewOf(all)
}
