/**
 * The roster (src/internal/roster.ts): the workers a policy may pick, kept
 * one change at a time. Each of its queries is checked against a plain scan
 * over seeded random runs, on pools that span several 32-bit words.
 */
import { assert, describe, it } from "@effect/vitest"
import type { DispatchPolicy } from "effect-worker-pool"
import { WorkerId } from "effect-worker-pool"
import { Testing } from "effect-worker-pool/testing"
import { Roster } from "../src/internal/roster.ts"

/** A healthy worker's record with `inFlight` requests in flight. */
const health = (inFlight: number): DispatchPolicy.Candidate["health"] => Testing.health({ inFlight })

const candidates = (ids: ReadonlyArray<number>): Array<DispatchPolicy.Candidate> =>
  ids.map((id) => ({ id: WorkerId.make(id), health: health(0), maxInFlight: 4 }))

/** A seeded generator of numbers in [0, 1). */
const seeded = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

describe("the roster", () => {
  it("holds every member, none eligible until updated", () => {
    const roster = new Roster()
    assert.strictEqual(roster.membersVersion, 0)
    roster.reset(candidates([2, 5, 9]))
    assert.deepStrictEqual(
      roster.members.map((m) => m.id),
      [2, 5, 9]
    )
    assert.strictEqual(roster.membersVersion, 1)
    assert.deepStrictEqual(
      [roster.size, roster.has(WorkerId.make(5)), roster.eligibleRank(WorkerId.make(5)), roster.toArray()],
      [0, false, -1, []]
    )
    assert.deepStrictEqual(
      [roster.next(-1), roster.leastLoaded(), roster.leastLoaded(0.5)],
      [undefined, undefined, undefined]
    )
    roster.reset(candidates([1]))
    assert.strictEqual(roster.membersVersion, 2)
  })

  it("keeps a member's health current, eligible or not", () => {
    const roster = new Roster()
    roster.reset(candidates([0, 1]))
    roster.update(1, false, health(3))
    assert.strictEqual(roster.members[1]!.health.inFlight, 3)
    roster.update(1, true, health(2))
    assert.deepStrictEqual(
      [roster.at(0).id, roster.at(0).health.inFlight, roster.eligibleRank(WorkerId.make(1))],
      [1, 2, 1]
    )
    assert.strictEqual(roster.eligibleRank(WorkerId.make(7)), -1)
  })

  it("the next worker after an id wraps around, and after an unknown id is the next greater one", () => {
    const roster = new Roster()
    roster.reset(candidates([3, 10, 20, 40]))
    for (const rank of [0, 1, 2, 3]) roster.update(rank, true, health(0))
    const next = (after: number) => roster.next(after)?.id
    assert.deepStrictEqual(
      [next(-1), next(3), next(10), next(40), next(0), next(4), next(11), next(39), next(41), next(1_000)],
      [3, 10, 20, 3, 3, 10, 20, 40, 3, 3]
    )
    roster.update(1, false, health(0))
    assert.deepStrictEqual([next(3), next(4), next(10)], [20, 20, 20])
  })

  it("the least loaded: the lowest id among the fewest in flight, or one drawn among them", () => {
    const roster = new Roster()
    roster.reset(candidates([0, 1, 2, 3]))
    roster.update(0, true, health(2))
    roster.update(1, true, health(1))
    roster.update(2, true, health(1))
    roster.update(3, true, health(3))
    assert.strictEqual(roster.leastLoaded()?.id, 1)
    const drawn = new Set([0, 0.49, 0.5, 0.99].map((r) => roster.leastLoaded(r)?.id))
    assert.deepStrictEqual([...drawn].sort(), [WorkerId.make(1), WorkerId.make(2)])
    // The last at the lowest load leaves: the next load up.
    roster.update(1, true, health(2))
    roster.update(2, false, health(1))
    assert.strictEqual(roster.leastLoaded()?.id, 0)
    roster.update(0, false, health(2))
    roster.update(1, false, health(2))
    assert.strictEqual(roster.leastLoaded()?.id, 3)
    roster.update(3, false, health(3))
    assert.strictEqual(roster.leastLoaded(), undefined)
    // Back at a load seen before: its bucket is used again.
    roster.update(2, true, health(1))
    assert.strictEqual(roster.leastLoaded(0.7)?.id, 2)
  })

  for (const seed of [1, 2, 3, 4, 5, 6]) {
    it(`answers every query as a scan would (seed ${seed})`, () => {
      const random = seeded(seed)
      const size = 1 + Math.floor(random() * 90)
      const ids: Array<number> = []
      for (let id = 0; ids.length < size; id++) if (random() < 0.7) ids.push(id)
      const roster = new Roster()
      roster.reset(candidates(ids))
      const model = ids.map(() => ({ eligible: false, load: 0 }))
      for (let step = 0; step < 300; step++) {
        const rank = Math.floor(random() * size)
        const eligible = random() < 0.6
        const load = Math.floor(random() * 4)
        roster.update(rank, eligible, health(load))
        model[rank] = { eligible, load }

        const eligibleRanks = model.flatMap((m, r) => (m.eligible ? [r] : []))
        assert.strictEqual(roster.size, eligibleRanks.length)
        assert.deepStrictEqual(
          roster.toArray().map((c) => c.id),
          eligibleRanks.map((r) => ids[r])
        )
        const drawn = Array.from({ length: roster.size }, (_, i) => roster.at(i).id).sort((a, b) => a - b)
        assert.deepStrictEqual(
          drawn,
          eligibleRanks.map((r) => ids[r])
        )
        const probe = Math.floor(random() * (ids.at(-1)! + 2)) - 1
        const probeRank = ids.indexOf(probe)
        const isEligible = probeRank !== -1 && model[probeRank]!.eligible
        if (probe >= 0) {
          assert.strictEqual(roster.has(WorkerId.make(probe)), isEligible)
          assert.strictEqual(roster.eligibleRank(WorkerId.make(probe)), isEligible ? probeRank : -1)
        }
        const after = eligibleRanks.find((r) => ids[r]! > probe) ?? eligibleRanks[0]
        assert.strictEqual(roster.next(probe)?.id, after === undefined ? undefined : ids[after])
        const minLoad = Math.min(...eligibleRanks.map((r) => model[r]!.load))
        const least = eligibleRanks.filter((r) => model[r]!.load === minLoad).map((r) => ids[r])
        assert.strictEqual(roster.leastLoaded()?.id, least[0])
        const pick = roster.leastLoaded(random())?.id
        if (least.length === 0) assert.strictEqual(pick, undefined)
        else assert.include(least, pick)
      }
    })
  }
})
