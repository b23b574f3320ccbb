/**
 * Peak-EWMA latency estimates (src/internal/latency.ts), number by number:
 * a peak replaces the estimate, a lower sample is blended in by the time
 * since the last one, an estimate decays while no sample comes, the age of
 * the oldest request in flight floors it, and a failure makes a worker
 * suspect for τ.
 */
import { assert, describe, it } from "@effect/vitest"
import { LatencyEstimates, type Measured } from "../src/internal/latency.ts"

const TAU = 1_000
const DEFAULT = 100

const idle = (id: number, inFlight = 0, oldestInFlightSince?: number): Measured => ({
  id,
  health: oldestInFlightSince === undefined ? { inFlight } : { inFlight, oldestInFlightSince }
})

const close = (actual: number, expected: number) => assert.approximately(actual, expected, 1e-9)

/** The estimate stored for worker 0 after its `samples`, each a latency and when it was measured, in order. */
const storedAfter = (...samples: ReadonlyArray<readonly [latency: number, at: number]>) => {
  const estimates = new LatencyEstimates(TAU, DEFAULT)
  for (const [latency, at] of samples) estimates.record(0, latency, at)
  return estimates.stored(0)
}

describe("a worker's estimate", () => {
  it("is its first sample, as it is", () => {
    const estimates = new LatencyEstimates(TAU, DEFAULT)
    estimates.record(3, 40, 1_000)
    assert.strictEqual(estimates.stored(3), 40)
    assert.strictEqual(estimates.stored(2), undefined)
    assert.strictEqual(estimates.estimate(idle(3), 1_000, false), 40)
  })

  it("jumps to a higher sample at once (the peak)", () => {
    assert.strictEqual(storedAfter([40, 0], [90, 5_000]), 90)
  })

  it("blends a lower sample in with weight 1 - exp(-Δt / τ)", () => {
    const w = Math.exp(-1)
    close(storedAfter([100, 0], [20, 1_000])!, 100 * w + 20 * (1 - w))
  })

  it("keeps the estimate for a lower sample at the same instant, and barely moves it microseconds later", () => {
    assert.strictEqual(storedAfter([100, 0], [20, 0]), 100)
    // 0.5 µs later: the series 1 - x + x²/2 stands for exp(-x).
    const x = 0.0005 / TAU
    close(storedAfter([100, 0], [20, 0], [20, 0.0005])!, 100 * (1 - x + (x * x) / 2) + 20 * (x - (x * x) / 2))
  })

  it("a sample stamped before the last one weighs nothing", () => {
    assert.strictEqual(storedAfter([100, 1_000], [20, 500]), 100)
  })

  it("decays while no sample comes", () => {
    const estimates = new LatencyEstimates(TAU, DEFAULT)
    estimates.record(0, 100, 0)
    close(estimates.estimate(idle(0), 2_000, false), 100 * Math.exp(-2))
    close(estimates.estimate(idle(0), 1, false), 100 * Math.exp(-1 / TAU))
    assert.strictEqual(estimates.estimate(idle(0), 0, false), 100)
  })

  it("the decay's cheap series agrees with exp where it takes over", () => {
    const estimates = new LatencyEstimates(TAU, DEFAULT)
    estimates.record(0, 1_000_000, 0)
    // Below x = 1e-3 the series is exact to x³/6: 1.2e-4 on a million at x = 9e-4; its x²/2 term is 0.4 there.
    for (const elapsed of [0.5, 0.9, 1, 1.5, 2]) {
      assert.approximately(estimates.estimate(idle(0), elapsed, false), 1_000_000 * Math.exp(-elapsed / TAU), 1e-3)
    }
  })

  it("is floored by the age of the oldest request in flight", () => {
    const estimates = new LatencyEstimates(TAU, DEFAULT)
    estimates.record(0, 10, 0)
    assert.strictEqual(estimates.estimate(idle(0, 1, 0), 500, false), 500)
    // A young request does not lower it.
    close(estimates.estimate(idle(0, 1, 499), 500, false), 10 * Math.exp(-0.5))
    // A worker never measured: the default, or the age of its oldest request.
    assert.strictEqual(estimates.estimate(idle(1, 1, 0), 5_000, false), 5_000)
  })
})

describe("a worker never measured", () => {
  it("is expected at the default, or at the others' average when asked", () => {
    const estimates = new LatencyEstimates(TAU, DEFAULT)
    assert.strictEqual(estimates.estimate(idle(9), 0, true), DEFAULT)
    estimates.record(0, 30, 0)
    estimates.record(1, 50, 0)
    assert.strictEqual(estimates.estimate(idle(9), 0, true), 40)
    assert.strictEqual(estimates.estimate(idle(9), 0, false), DEFAULT)
  })

  it("the average follows each estimate as it changes", () => {
    const estimates = new LatencyEstimates(TAU, DEFAULT)
    estimates.record(0, 30, 0)
    estimates.record(1, 50, 0)
    // A peak on 0: 30 → 70.
    estimates.record(0, 70, 0)
    assert.strictEqual(estimates.estimate(idle(9), 0, true), 60)
    // A lower sample on 1, a τ later: 50 → blended.
    estimates.record(1, 10, TAU)
    const w = Math.exp(-1)
    close(estimates.estimate(idle(9), 0, true), (70 + 50 * w + 10 * (1 - w)) / 2)
  })
})

describe("the expected delay", () => {
  it("is the estimate times the requests in flight plus one", () => {
    const estimates = new LatencyEstimates(TAU, DEFAULT)
    estimates.record(0, 30, 0)
    assert.strictEqual(estimates.delay(idle(0, 0), 0), 30)
    assert.strictEqual(estimates.delay(idle(0, 2), 0), 90)
    // Never measured: the average of the others.
    assert.strictEqual(estimates.delay(idle(1, 1), 0), 60)
  })
})

describe("a failure", () => {
  it("makes its worker suspect for τ, not a millisecond more", () => {
    const estimates = new LatencyEstimates(TAU, DEFAULT)
    assert.isFalse(estimates.suspect(0, 0))
    estimates.mark(0, true, 1_000)
    assert.isTrue(estimates.suspect(0, 1_000))
    assert.isTrue(estimates.suspect(0, 1_999))
    assert.isFalse(estimates.suspect(0, 2_000))
    assert.isFalse(estimates.suspect(1, 1_000))
  })

  it("is forgotten at the worker's next success, and only its own", () => {
    const estimates = new LatencyEstimates(TAU, DEFAULT)
    estimates.mark(0, true, 0)
    estimates.mark(1, true, 0)
    estimates.mark(0, false, 10)
    assert.isFalse(estimates.suspect(0, 10))
    assert.isTrue(estimates.suspect(1, 10))
    // A success of a worker that never failed changes nothing.
    estimates.mark(2, false, 10)
    assert.isTrue(estimates.suspect(1, 10))
  })
})
