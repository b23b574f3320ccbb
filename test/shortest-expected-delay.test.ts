/**
 * The default policy, `ShortestExpectedDelay`, pick by pick: which worker it
 * names in each case its rules distinguish (a small view and a large one;
 * ties; workers whose last request failed; a request that waits rather than
 * go to such a worker), with the random draws fixed, so that each case has
 * one right answer. The properties of `policies.test.ts` check the same rules
 * over random views.
 */
import { assert, describe, it } from "@effect/vitest"
import { DispatchPolicy, WorkerId } from "effect-worker-pool"
import { Testing } from "effect-worker-pool/testing"
import { Roster } from "../src/internal/roster.ts"

const policy = DispatchPolicy.ShortestExpectedDelay()

interface Spec {
  readonly id: number
  readonly inFlight?: number
  /** Its one measured latency, at time 0. */
  readonly millis: number
  /** Its last request failed (at time 0). */
  readonly failed?: boolean
}

/** The policy's state after one result per worker, at time 0 (so that each estimate is its sample). */
const stateOf = (workers: ReadonlyArray<Spec>) => {
  let state = policy.initial()
  for (const w of workers) {
    state = policy.onResult!(state, {
      worker: WorkerId.make(w.id),
      millis: w.millis,
      failed: w.failed === true,
      now: 0
    })
  }
  return state
}

const viewOf = (workers: ReadonlyArray<Spec>) =>
  Testing.view(workers.map((w) => Testing.candidate(w.id, { inFlight: w.inFlight ?? 0, maxInFlight: 10 })))

/** Draws that come from `values`, in order, then repeat the last. */
const draws = (...values: ReadonlyArray<number>) => {
  let i = 0
  const random = () => values[Math.min(i++, values.length - 1)]!
  return { random, count: () => i }
}

/** The worker the policy names for `workers`, at time 1, with these draws. */
const pick = (workers: ReadonlyArray<Spec>, ...values: ReadonlyArray<number>) =>
  policy.select({
    view: viewOf(workers),
    state: stateOf(workers),
    random: draws(...values).random,
    now: 1,
    request: undefined
  }).worker

describe("ShortestExpectedDelay, in a view of at most four", () => {
  it("names the one worker of least expected delay (latency × (in flight + 1)), whatever the draws", () => {
    const workers = [
      { id: 0, millis: 100 },
      { id: 1, millis: 30, inFlight: 1 },
      { id: 2, millis: 50 },
      { id: 3, millis: 40, inFlight: 2 }
    ]
    // Expected delays: 100, 60, 50, 120.
    for (const r of [0, 0.3, 0.99]) assert.strictEqual(pick(workers, r), 2)
  })

  it("breaks a tie among some of the workers by a draw, in the view's order", () => {
    const workers = [
      { id: 4, millis: 200 },
      { id: 5, millis: 100 },
      { id: 6, millis: 300 },
      { id: 7, millis: 100 }
    ]
    assert.strictEqual(pick(workers, 0.1), 5)
    assert.strictEqual(pick(workers, 0.49), 5)
    assert.strictEqual(pick(workers, 0.5), 7)
    assert.strictEqual(pick(workers, 0.99), 7)
  })

  it("breaks a tie among all of them by a draw", () => {
    const workers = [0, 1, 2].map((id) => ({ id, millis: 10 }))
    assert.deepStrictEqual(
      [0, 0.34, 0.67, 0.99].map((r) => Number(pick(workers, r))),
      [0, 1, 2, 2]
    )
  })

  it("passes over a worker whose last request failed, however fast it looks", () => {
    const workers = [
      { id: 0, millis: 1, failed: true },
      { id: 1, millis: 500 },
      { id: 2, millis: 900 }
    ]
    for (const r of [0, 0.5, 0.99]) assert.strictEqual(pick(workers, r), 1)
  })

  it("when every worker offered failed, and no other can be waited for: the one of least delay among them", () => {
    const workers = [
      { id: 0, millis: 70, failed: true },
      { id: 1, millis: 20, failed: true },
      { id: 2, millis: 40, failed: true }
    ]
    for (const r of [0, 0.5, 0.99]) assert.strictEqual(pick(workers, r), 1)
  })
})

describe("ShortestExpectedDelay, in a larger view", () => {
  /** Six workers of equal latency; worker 5 alone did not fail. */
  const six = Array.from({ length: 6 }, (_, id) => ({ id, millis: 10, failed: id !== 5 }))

  it("weighs four candidates: two of the least loaded, two drawn among all", () => {
    // Worker 9 is the fastest but the most loaded: only a draw among all can name it.
    const workers = [...Array.from({ length: 9 }, (_, id) => ({ id, millis: 100 })), { id: 9, millis: 1, inFlight: 3 }]
    // Draws: the first of two among all (0.95: the tenth, worker 9), the second, then the least loaded twice.
    assert.strictEqual(pick(workers, 0.95, 0, 0, 0), 9)
    // No draw names it: one of the least loaded.
    assert.notStrictEqual(pick(workers, 0, 0.5, 0, 0.5), 9)
  })

  it("when every candidate failed, looks at every worker of a view of at most eight for one that did not", () => {
    // The candidates drawn (workers 0 and 1) failed; worker 5 did not.
    assert.strictEqual(pick(six, 0, 0, 0, 0, 0), 5)
  })

  it("breaks a tie among the workers found that way by a draw", () => {
    const workers = [...six.slice(0, 5), { id: 5, millis: 10 }, { id: 6, millis: 10 }]
    // Four candidates from draws of 0: workers 0 and 1, which failed. Then the look at all seven.
    assert.strictEqual(pick(workers, 0, 0, 0, 0, 0.2), 6)
    assert.strictEqual(pick(workers, 0, 0, 0, 0, 0.7), 5)
  })

  it("in a view of more than eight, draws eight more workers at random for one that did not fail", () => {
    const workers = Array.from({ length: 12 }, (_, id) => ({ id, millis: 10, failed: id !== 11 }))
    // The four candidates (0, 1, 0, 0), then draws 0, 0.5 (worker 6), 0.95 (worker 11).
    assert.strictEqual(pick(workers, 0, 0, 0, 0, 0, 0.5, 0.95), 11)
    // Eight draws that never name worker 11: the best of the failed ones (all equal: the first met).
    assert.strictEqual(pick(workers, 0, 0, 0, 0, 0.5), 0)
  })
})

describe("ShortestExpectedDelay, when every worker it may pick failed", () => {
  /**
   * A pool's own view: workers 0-2 eligible (their last requests failed),
   * worker 3 `busy` (no free slot, so not offered) and healthy.
   */
  const withBusy = (busyFailed: boolean, busyState: "Healthy" | "Restarting" = "Healthy") => {
    const roster = new Roster()
    const health = (inFlight: number, state: string) => Testing.health({ inFlight, state: state as never })
    const members = [0, 1, 2, 3].map((id) => ({
      id: WorkerId.make(id),
      maxInFlight: 1,
      health: id === 3 ? health(1, busyState) : health(0, "Healthy")
    }))
    roster.reset(members)
    members.forEach((m, rank) => {
      roster.update(rank, m.id !== 3, m.health)
    })
    const state = stateOf([
      { id: 0, millis: 30, failed: true },
      { id: 1, millis: 10, failed: true },
      { id: 2, millis: 20, failed: true },
      { id: 3, millis: 500, failed: busyFailed }
    ])
    return policy.select({ view: roster, state, random: () => 0, now: 1, request: undefined }).worker
  }

  it("lets the request wait for a busy worker that did not fail, rather than send it to one that did", () => {
    assert.isUndefined(withBusy(false))
  })

  it("sends it to the failed worker of least delay when the busy one failed too, or is not healthy", () => {
    assert.strictEqual(withBusy(true), 1)
    assert.strictEqual(withBusy(false, "Restarting"), 1)
  })
})

describe("the built-in policies' names", () => {
  it("are the names the metrics and the docs use", () => {
    assert.deepStrictEqual(
      [
        DispatchPolicy.RoundRobin,
        DispatchPolicy.LeastLoaded,
        DispatchPolicy.LeastLoadedRandom,
        DispatchPolicy.Random,
        DispatchPolicy.PowerOfTwoChoices,
        DispatchPolicy.WorkPulling,
        DispatchPolicy.PeakEwma(),
        DispatchPolicy.ShortestExpectedDelay(),
        DispatchPolicy.ConsistentHash({ key: (request: string) => request })
      ].map((p) => p.name),
      [
        "RoundRobin",
        "LeastLoaded",
        "LeastLoadedRandom",
        "Random",
        "PowerOfTwoChoices",
        "WorkPulling",
        "PeakEwma",
        "ShortestExpectedDelay",
        "ConsistentHash"
      ]
    )
  })
})
