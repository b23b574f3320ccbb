/**
 * The simulator on cases with known answers. Every run is seeded and in
 * virtual time, so each test is deterministic; none measures real time.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { DispatchPolicy } from "effect-worker-pool"
import { seedFor } from "../sim/jobs.ts"
import {
  libraryDefaults,
  oneSlot,
  policyMode,
  type Scenario,
  SERVICE_MILLIS,
  simulate,
  workload,
  workPulling
} from "../sim/model.ts"
import { policies, slowBaseline } from "../sim/policies.ts"
import { makeRng } from "../sim/random.ts"
import { capacityGoal, meetsSlowGoal } from "../sim/report.ts"
import { capacityScenarios, scenarios } from "../sim/scenarios.ts"

const scenario = (speeds: ReadonlyArray<number>, extra?: Partial<Scenario>): Scenario => ({
  id: "test",
  title: "test",
  description: "",
  speeds,
  loads: [],
  ...extra
})

const identical = scenario([1, 1, 1, 1, 1, 1, 1, 1])
const roundRobin = policyMode(DispatchPolicy.RoundRobin)

describe("simulator", () => {
  it("draws the same workload from the same seed, another from another seed", () => {
    const draw = (seed: number) => Array.from({ length: 5 }, makeRng(seed, 1))
    assert.deepStrictEqual(draw(7), draw(7))
    assert.notDeepEqual(draw(7), draw(8))
    assert.isTrue(draw(7).every((u) => u >= 0 && u < 1))
  })

  it.live(
    "one worker at utilisation 0.5 has the M/M/1 mean latency 1 / (μ − λ) = 2",
    () =>
      Effect.gen(function* () {
        const result = yield* simulate({
          scenario: scenario([1]),
          load: 0.5,
          mode: roundRobin,
          requests: 20_000,
          seed: 11
        })
        // 18,000 latencies after the 10 % warm-up. Successive latencies are
        // correlated, so the standard error of their mean is larger than
        // σ/√n = 2/√18000 ≈ 0.015: over 40 seeds (100 to 139) the mean was
        // 1.995 with a standard deviation of 0.039 (extremes 1.91 and 2.08).
        // 0.2 is five of those: the test fails for a wrong model (a policy
        // or a clock that loses a request's wait shifts the mean by far
        // more), not for an unlucky seed.
        assert.approximately(result.latency.mean, 2, 0.2)
        // Its latency is exponential with rate μ − λ = 0.5: within 1 s (10
        // units) with probability 1 − e^−5 ≈ 0.9933.
        assert.approximately(result.withinSecond, 1 - Math.exp(-5), 0.004)
        assert.strictEqual(result.sentToSlow, 0)
        assert.strictEqual(result.succeeded, 20_000)
        assert.strictEqual(result.lost, 0)
        assert.strictEqual(result.unplaced, 0)
      }),
    30_000
  )

  it.live("round robin gives identical workers with constant service times equal counts", () =>
    Effect.gen(function* () {
      const result = yield* simulate({
        scenario: scenario([1, 1, 1, 1], { service: "constant" }),
        load: 0.7,
        mode: roundRobin,
        requests: 400,
        seed: 3
      })
      assert.deepStrictEqual(result.served, [100, 100, 100, 100])
      assert.strictEqual(result.succeeded, 400)
      // Every request is served for exactly one unit, and some wait.
      assert.isAtLeast(result.latency.p50, 1)
      assert.isAbove(result.latency.max, 1)
    })
  )

  it.live(
    "the same seed reproduces the same report, with the pool's own randomness in play",
    () =>
      Effect.gen(function* () {
        const crash = scenarios.find((s) => s.id === "crash")!
        const spec = { scenario: crash, load: 0.8, mode: roundRobin, requests: 3_000, seed: 5 }
        const first = yield* simulate(spec)
        const second = yield* simulate(spec)
        const other = yield* simulate({ ...spec, seed: 6 })
        assert.deepStrictEqual(first, second)
        assert.notDeepEqual(first.latency, other.latency)
        assert.isAbove(first.failed, 0)
        assert.strictEqual(first.lost, 0)
      }),
    30_000
  )

  it.live(
    "work pulling is never worse than round robin at the p99, identical workers at 90 %",
    () =>
      Effect.gen(function* () {
        const spec = { scenario: identical, load: 0.9, requests: 10_000, seed: 9 }
        const pulled = yield* simulate({ ...spec, mode: workPulling })
        const rotated = yield* simulate({ ...spec, mode: roundRobin })
        assert.isAtMost(pulled.latency.p99, rotated.latency.p99)
        assert.strictEqual(pulled.lost + rotated.lost, 0)
      }),
    30_000
  )

  it.live("counts the requests routed to a worker while it runs below its base speed", () =>
    Effect.gen(function* () {
      const slowWhile = (fraction: number) => (fraction >= 1 / 3 && fraction < 2 / 3 ? 0.5 : 1)
      const spec = {
        scenario: scenario([1, 1], { service: "constant", drift: { worker: 0, factor: slowWhile } }),
        load: 0.4,
        mode: roundRobin,
        requests: 600,
        seed: 4
      }
      const result = yield* simulate(spec)
      // Round robin sends request i to worker i mod 2, at its arrival.
      const { arrivals } = workload(spec.scenario, spec.load, spec.requests, spec.seed)
      const span = arrivals[spec.requests - 1]!
      let expected = 0
      arrivals.forEach((t, i) => {
        if (i % 2 === 0 && slowWhile(t / span) < 1) expected++
      })
      assert.isAbove(expected, 50)
      assert.strictEqual(result.sentToSlow, expected)
      assert.strictEqual(result.span, span / SERVICE_MILLIS)
    })
  )

  it.live(
    "the slowdown goal: the default policy sends the worker that slows down at most 1.1 × what PeakEwma sends it",
    () =>
      Effect.gen(function* () {
        const slowdown = scenarios.find((s) => s.id === "slowdown")!
        const policy = (label: string) => policies.find((p) => p.label === label)!.policy
        const spec = { scenario: slowdown, load: 0.7, requests: 20_000, seed: seedFor(1, "slowdown", 0.7) }
        const byDefault = yield* simulate({ ...spec, mode: policyMode(policy("ShortestExpectedDelay")) })
        const baseline = yield* simulate({ ...spec, mode: policyMode(policy(slowBaseline)) })
        assert.isAbove(baseline.sentToSlow, 0)
        assert.isTrue(
          meetsSlowGoal([byDefault.sentToSlow, baseline.sentToSlow]),
          `the default sent the slow worker ${byDefault.sentToSlow} requests, ${slowBaseline} ${baseline.sentToSlow}`
        )
        assert.strictEqual(byDefault.lost + baseline.lost, 0)
      }),
    60_000
  )

  describe("adaptive concurrency: I/O-bound workers at 480 requests a second, with the defaults", () => {
    const capacity = (id: string) => capacityScenarios.find((s) => s.id === id)!
    const spec = (id: string) => ({ scenario: capacity(id), load: 4, requests: 20_000, seed: seedFor(1, id, 4) })

    for (const id of ["io", "io-slow", "io-hung"]) {
      it.live(
        `${id}: at least ${capacityGoal * 100} % answered within 1 s`,
        () =>
          Effect.gen(function* () {
            const result = yield* simulate({ ...spec(id), mode: libraryDefaults })
            assert.isAtLeast(result.withinSecond, capacityGoal, `${id}: ${result.withinSecond} within 1 s`)
            assert.isFalse(result.queue.grows)
            assert.strictEqual(result.lost, 0)
            assert.strictEqual(result.unplaced, 0)
            if (id === "io-slow") assert.isAbove(result.sentToSlow, 0, "the slow worker kept serving")
            if (id === "io-hung") assert.isAbove(result.timedOut, 0, "the hung worker's requests timed out")
          }),
        120_000
      )
    }

    it.live(
      "the old default, one slot per worker, fails it: its queue grows without bound",
      () =>
        Effect.gen(function* () {
          const result = yield* simulate({ ...spec("io"), requests: 1_000, mode: oneSlot })
          assert.isBelow(result.withinSecond, 0.5)
          assert.isTrue(result.queue.grows)
          assert.strictEqual(result.lost, 0)
        }),
      120_000
    )

    it.live(
      "the same seed gives the same decisions",
      () =>
        Effect.gen(function* () {
          const run = { ...spec("io-hung"), requests: 3_000, mode: libraryDefaults }
          assert.deepStrictEqual(yield* simulate(run), yield* simulate(run))
        }),
      120_000
    )
  })
})
