/**
 * The dispatch policies that the simulator and the benchmarks compare: the one
 * list to extend when a policy is added to `DispatchPolicy`.
 *
 * To add a policy, add an entry below, e.g.
 * `{ label: "MyPolicy", policy: DispatchPolicy.MyPolicy }`; a policy that
 * takes options is given here already configured, and its label says how.
 * Both `npm run sim` and `npm run bench` pick it up (the simulator's requests
 * are numbers: the request index). `unlisted()` names every policy exported by
 * `DispatchPolicy` that is missing here, and both commands warn about it.
 */
import { DispatchPolicy } from "effect-worker-pool"

export interface PolicyEntry {
  /** The name shown in tables and charts (unique). */
  readonly label: string
  readonly policy: DispatchPolicy.DispatchPolicy<any, any>
}

export const policies: ReadonlyArray<PolicyEntry> = [
  { label: "RoundRobin", policy: DispatchPolicy.RoundRobin },
  { label: "Random", policy: DispatchPolicy.Random },
  { label: "LeastLoaded", policy: DispatchPolicy.LeastLoaded },
  { label: "LeastLoadedRandom", policy: DispatchPolicy.LeastLoadedRandom },
  { label: "PowerOfTwoChoices", policy: DispatchPolicy.PowerOfTwoChoices },
  { label: "PeakEwma", policy: DispatchPolicy.PeakEwma() },
  { label: "ShortestExpectedDelay", policy: DispatchPolicy.ShortestExpectedDelay() },
  { label: "WorkPulling", policy: DispatchPolicy.WorkPulling },
  // Every request its own key: stickiness has nothing to win here; the row
  // shows what routing by key alone does to latency.
  { label: "ConsistentHash (key: request)", policy: DispatchPolicy.ConsistentHash({ key: (n: number) => n }) }
]

const isPolicy = (value: unknown): value is DispatchPolicy.DispatchPolicy =>
  typeof value === "object" &&
  value !== null &&
  typeof (value as { name?: unknown }).name === "string" &&
  typeof (value as { select?: unknown }).select === "function"

/**
 * Policies exported by `DispatchPolicy` that are not in {@link policies}: the
 * policy values not listed, and the policy constructors (capitalised
 * functions, such as a policy that takes options) whose policies' names are
 * not listed.
 */
export const unlisted = (): ReadonlyArray<string> => {
  const listed = new Set(policies.map((entry) => entry.policy))
  const names = new Set(policies.map((entry) => entry.policy.name))
  return Object.entries(DispatchPolicy)
    .filter(([name, value]) =>
      isPolicy(value) ? !listed.has(value) : typeof value === "function" && /^[A-Z]/.test(name) && !names.has(name)
    )
    .map(([name, value]) => (isPolicy(value) ? name : `${name}(...)`))
    .sort()
}

/** The full-scan least-loaded policy, the baseline of the hung-worker goal. */
export const fullScanLeastLoaded = "LeastLoaded"

/** The baseline of the slowdown goal: the default policy sends a slow worker no more than this one does. */
export const slowBaseline = "PeakEwma"
