/**
 * A worker's health record (src/internal/health.ts): the counter each
 * outcome moves, the running requests in start order, whether the worker is
 * live or can come back in each state, and the public snapshot.
 */
import { assert, describe, it } from "@effect/vitest"
import type { WorkerState } from "effect-worker-pool"
import { HealthRecord } from "../src/internal/health.ts"
import { type Outcome, Request } from "../src/internal/request.ts"

const request = (startedAt: number) => {
  const r = new Request(
    0,
    { timeout: undefined, queueTimeoutMillis: Infinity, idempotent: false },
    undefined,
    undefined
  )
  r.startedAt = startedAt
  return r
}

const counters = (h: HealthRecord) => ({
  inFlight: h.inFlight,
  completed: h.completed,
  errored: h.errored,
  timeouts: h.timeouts,
  interrupted: h.interrupted,
  rejected: h.rejected,
  consecutiveFailures: h.consecutiveFailures
})

/** The counters after one request that ended with `outcome`, on a worker with 2 failures in a row before it. */
const stateAfter = (outcome: Outcome) => {
  const health = new HealthRecord()
  health.consecutiveFailures = 2
  const r = request(0)
  health.reserved()
  health.started(r)
  health.settled(r, outcome)
  return counters(health)
}

describe("the health record", () => {
  it("counts each outcome where it belongs", () => {
    const zero = { inFlight: 0, completed: 1, errored: 0, timeouts: 0, interrupted: 0, rejected: 0 }
    assert.deepStrictEqual(stateAfter("succeeded"), { ...zero, consecutiveFailures: 0 })
    assert.deepStrictEqual(stateAfter("domainError"), { ...zero, errored: 1, consecutiveFailures: 0 })
    assert.deepStrictEqual(stateAfter("rejected"), { ...zero, completed: 0, rejected: 1, consecutiveFailures: 2 })
    assert.deepStrictEqual(stateAfter("crashed"), { ...zero, errored: 1, consecutiveFailures: 3 })
    assert.deepStrictEqual(stateAfter("timedOut"), { ...zero, errored: 1, timeouts: 1, consecutiveFailures: 3 })
    assert.deepStrictEqual(stateAfter("torn"), { ...zero, errored: 1, consecutiveFailures: 2 })
    assert.deepStrictEqual(stateAfter("interrupted"), { ...zero, interrupted: 1, consecutiveFailures: 2 })
  })

  it("counts a slot from its reservation to its release or settlement", () => {
    const health = new HealthRecord()
    health.reserved()
    health.reserved()
    assert.strictEqual(health.inFlight, 2)
    health.released()
    assert.strictEqual(health.inFlight, 1)
  })

  it("keeps its running requests in start order, whichever ends first", () => {
    const health = new HealthRecord()
    const [a, b, c, d] = [request(10), request(20), request(30), request(40)]
    for (const r of [a, b, c, d]) {
      health.reserved()
      health.started(r)
    }
    assert.deepStrictEqual([...health.running()], [a, b, c, d])
    assert.strictEqual(health.oldestInFlightSince, 10)
    health.settled(b, "succeeded")
    assert.deepStrictEqual([...health.running()], [a, c, d])
    assert.deepStrictEqual([b.prev, b.next], [undefined, undefined])
    health.settled(a, "succeeded")
    assert.strictEqual(health.oldestInFlightSince, 30)
    health.settled(d, "succeeded")
    assert.deepStrictEqual([...health.running()], [c])
    const e = request(50)
    health.reserved()
    health.started(e)
    assert.deepStrictEqual([...health.running()], [c, e])
    health.settled(c, "succeeded")
    health.settled(e, "succeeded")
    assert.deepStrictEqual([[...health.running()], health.oldestInFlightSince, health.inFlight], [[], undefined, 0])
  })

  it("is live while Healthy or Ejected; can come back unless its last start failed, or it is over", () => {
    const states: Array<WorkerState> = ["Starting", "Healthy", "Ejected", "Restarting", "Retired", "Stopped"]
    const health = new HealthRecord()
    const row = (failedStarts: number) =>
      states.map((state) => {
        health.state = state
        health.failedStarts = failedStarts
        return `${state}:${health.isLive ? "live" : "-"}:${health.canComeBack ? "back" : "-"}`
      })
    assert.deepStrictEqual(row(0), [
      "Starting:-:back",
      "Healthy:live:back",
      "Ejected:live:back",
      "Restarting:-:back",
      "Retired:-:-",
      "Stopped:-:-"
    ])
    assert.deepStrictEqual(row(1), [
      "Starting:-:-",
      "Healthy:live:back",
      "Ejected:live:back",
      "Restarting:-:-",
      "Retired:-:-",
      "Stopped:-:-"
    ])
  })
})

describe("the snapshot", () => {
  it("has every counter, and no optional field that is not set", () => {
    const health = new HealthRecord()
    health.crashes = 1
    health.restarts = 2
    health.attempt = 3
    health.failedStarts = 4
    health.ejections = 5
    const snapshot = health.snapshot()
    assert.deepStrictEqual(snapshot, {
      state: "Starting",
      inFlight: 0,
      maxInFlight: 1,
      completed: 0,
      errored: 0,
      timeouts: 0,
      interrupted: 0,
      rejected: 0,
      crashes: 1,
      restarts: 2,
      attempt: 3,
      failedStarts: 4,
      consecutiveFailures: 0,
      ejections: 5
    })
    assert.deepStrictEqual(
      ["ejectedUntil", "oldestInFlightSince", "lastCrash", "retiredBecause"].filter((key) => key in snapshot),
      []
    )
  })

  it("has the optional fields that are set, and does not change with the record", () => {
    const health = new HealthRecord()
    health.state = "Ejected"
    health.ejectedUntil = 500
    health.lastCrash = { reason: "boom", at: 7 }
    health.retiredBecause = "its restart schedule is exhausted"
    health.reserved()
    health.started(request(42))
    const snapshot = health.snapshot()
    assert.deepStrictEqual(
      [
        snapshot.ejectedUntil,
        snapshot.oldestInFlightSince,
        snapshot.lastCrash,
        snapshot.retiredBecause,
        snapshot.inFlight
      ],
      [500, 42, { reason: "boom", at: 7 }, "its restart schedule is exhausted", 1]
    )
    health.inFlight = 9
    assert.strictEqual(snapshot.inFlight, 1)
  })
})
