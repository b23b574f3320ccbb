/**
 * The dispatch policies as pure functions over views built by hand.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Option, Random, Schema } from "effect"
import { DispatchPolicy, Worker, type WorkerHealth, WorkerId, WorkerPool } from "effect-worker-pool"
import { Testing } from "effect-worker-pool/testing"
import * as T from "./support.ts"

/** Workers with these ids (distinct) and loads. */
const Loads = Schema.Array(
  Schema.Struct({
    id: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 2000 })),
    inFlight: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 6 }))
  })
).check(Schema.isMinLength(1), Schema.isMaxLength(64))

const viewOf = (loads: ReadonlyArray<{ readonly id: number; readonly inFlight: number }>) => {
  const unique = [...new Map(loads.map((l) => [l.id, l])).values()]
  return Testing.view(unique.map((l) => Testing.candidate(l.id, { inFlight: l.inFlight, maxInFlight: 10 })))
}

/** A seeded source of numbers in [0, 1) that records what it gave. */
const recording = (seed: number) => {
  let state = seed >>> 0 || 1
  const drawn: Array<number> = []
  const next = () => {
    state ^= state << 13
    state ^= state >>> 17
    state ^= state << 5
    const value = (state >>> 0) / 2 ** 32
    drawn.push(value)
    return value
  }
  return { next, drawn }
}

const Seed = Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 2 ** 31 - 1 }))

const everyPolicy = T.everyPolicy((request: string) => request)

describe("every policy", () => {
  for (const policy of everyPolicy) {
    it.effect.prop(
      `${policy.name} picks only workers the view offers, over many picks`,
      [Loads, Seed],
      ([loads, seed]) =>
        Effect.sync(() => {
          const view = viewOf(loads)
          const random = recording(seed)
          let state = policy.initial()
          for (let i = 0; i < 20; i++) {
            const selection = policy.select({ view, state, random: random.next, now: i, request: `key-${i}` })
            state = selection.state
            if (selection.worker === undefined) {
              assert.strictEqual(policy.name, "WorkPulling")
              assert.isTrue(
                view.toArray().every((c) => c.health.inFlight > 0),
                "work pulling waited with an idle worker"
              )
            } else {
              assert.isTrue(view.has(selection.worker), `${policy.name} picked ${selection.worker}`)
            }
          }
        }),
      { arbitrary: { runs: 200 } }
    )
  }
})

describe("RoundRobin", () => {
  it.effect.prop("visits every worker once per round, in id order", [Loads], ([loads]) =>
    Effect.sync(() => {
      const view = viewOf(loads)
      const ids = view.toArray().map((c) => c.id)
      let state = DispatchPolicy.RoundRobin.initial()
      const picks: Array<number> = []
      for (let i = 0; i < ids.length * 2; i++) {
        const selection = DispatchPolicy.RoundRobin.select({
          view,
          state,
          random: Math.random,
          now: 0,
          request: undefined
        })
        state = selection.state
        picks.push(selection.worker!)
      }
      assert.deepStrictEqual(picks, [...ids, ...ids])
    })
  )
})

describe("LeastLoaded", () => {
  it.effect.prop(
    "picks the fewest in flight, ties to the lowest id; the random variant any of the tied",
    [Loads, Seed],
    ([loads, seed]) =>
      Effect.sync(() => {
        const view = viewOf(loads)
        const all = view.toArray()
        const min = Math.min(...all.map((c) => c.health.inFlight))
        const tied = all.filter((c) => c.health.inFlight === min).map((c) => c.id)
        const input = { view, state: undefined, random: recording(seed).next, now: 0, request: undefined }
        assert.strictEqual(DispatchPolicy.LeastLoaded.select(input).worker, tied[0])
        const seen = new Set<number>()
        for (let i = 0; i < 200; i++) seen.add(DispatchPolicy.LeastLoadedRandom.select(input).worker!)
        for (const id of seen) assert.include(tied, id)
        if (tied.length > 1) assert.isAbove(seen.size, 1, "the random tie-break always chose the same worker")
      })
  )
})

describe("PowerOfTwoChoices", () => {
  it.effect.prop("never picks the more loaded of its two samples, which are distinct", [Loads, Seed], ([loads, seed]) =>
    Effect.sync(() => {
      const view = viewOf(loads)
      const random = recording(seed)
      const selection = DispatchPolicy.PowerOfTwoChoices.select({
        view,
        state: undefined,
        random: random.next,
        now: 0,
        request: undefined
      })
      if (view.size === 1) return assert.strictEqual(selection.worker, view.at(0).id)
      // Rebuild its two samples from the numbers it drew.
      const [r1, r2] = random.drawn
      const first = Math.floor(r1! * view.size)
      let second = Math.floor(r2! * (view.size - 1))
      if (second >= first) second++
      const a = view.at(first)
      const b = view.at(second)
      assert.notStrictEqual(a.id, b.id)
      assert.include([a.id, b.id], selection.worker)
      const picked = selection.worker === a.id ? a : b
      const other = picked === a ? b : a
      assert.isAtMost(picked.health.inFlight, other.health.inFlight)
    })
  )
})

describe("WorkPulling", () => {
  it("lets the request wait while no worker is idle", () => {
    const view = viewOf([
      { id: 0, inFlight: 1 },
      { id: 1, inFlight: 2 }
    ])
    const selection = DispatchPolicy.WorkPulling.select({
      view,
      state: undefined,
      random: Math.random,
      now: 0,
      request: undefined
    })
    assert.isUndefined(selection.worker)
  })
})

describe("PeakEwma", () => {
  const policy = DispatchPolicy.PeakEwma({ decay: "10 seconds", defaultRtt: "100 millis" })
  const twoWorkers = (h0: Partial<WorkerHealth>, h1: Partial<WorkerHealth>) =>
    Testing.view([Testing.candidate(0, { ...h0, maxInFlight: 10 }), Testing.candidate(1, { ...h1, maxInFlight: 10 })])

  it("prefers the worker with the lower latency estimate", () => {
    let state = policy.initial()
    state = policy.onResult!(state, { worker: WorkerId.make(0), millis: 500, failed: false, now: 0 })
    state = policy.onResult!(state, { worker: WorkerId.make(1), millis: 20, failed: false, now: 0 })
    const view = twoWorkers({}, {})
    const picks = new Set<number>()
    for (let i = 0; i < 50; i++) {
      picks.add(policy.select({ view, state, random: Math.random, now: 1, request: undefined }).worker!)
    }
    assert.deepStrictEqual([...picks], [1])
  })

  it("takes a higher sample at once (the peak) and forgets it slowly", () => {
    let state = policy.initial()
    state = policy.onResult!(state, { worker: WorkerId.make(0), millis: 10, failed: false, now: 0 })
    state = policy.onResult!(state, { worker: WorkerId.make(0), millis: 1000, failed: false, now: 1 })
    assert.strictEqual(state.stored(0), 1000)
    state = policy.onResult!(state, { worker: WorkerId.make(0), millis: 10, failed: false, now: 10_001 })
    // One time constant later, the old peak keeps a weight of 1/e.
    assert.closeTo(state.stored(0)!, 1000 / Math.E + 10 * (1 - 1 / Math.E), 1e-6)
  })

  it("does not send traffic to a hung worker whose estimate has decayed", () => {
    let state = policy.initial()
    // Worker 0 was fast a long time ago, then its request hung 60 s ago.
    state = policy.onResult!(state, { worker: WorkerId.make(0), millis: 5, failed: false, now: 0 })
    state = policy.onResult!(state, { worker: WorkerId.make(1), millis: 50, failed: false, now: 119_000 })
    const now = 120_000
    const view = twoWorkers({ inFlight: 1, oldestInFlightSince: now - 60_000 }, {})
    for (let i = 0; i < 20; i++) {
      assert.strictEqual(policy.select({ view, state, random: Math.random, now, request: undefined }).worker, 1)
    }
  })
})

describe("ShortestExpectedDelay", () => {
  const policy = DispatchPolicy.ShortestExpectedDelay()

  /** Workers with these ids (distinct), loads and measured latencies. */
  const Measured = Schema.Array(
    Schema.Struct({
      id: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 2000 })),
      inFlight: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 6 })),
      millis: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1000 }))
    })
  ).check(Schema.isMinLength(2), Schema.isMaxLength(64))

  /**
   * A view of the workers and a state that measured each once, at time 0:
   * at time 0 a worker's estimate is its one sample, so its expected delay
   * is `millis × (inFlight + 1)`.
   */
  const measured = (
    workers: ReadonlyArray<{ readonly id: number; readonly inFlight: number; readonly millis: number }>
  ) => {
    const unique = [...new Map(workers.map((w) => [w.id, w])).values()]
    let state = policy.initial()
    for (const w of unique) {
      state = policy.onResult!(state, { worker: WorkerId.make(w.id), millis: w.millis, failed: false, now: 0 })
    }
    const view = Testing.view(unique.map((w) => Testing.candidate(w.id, { inFlight: w.inFlight, maxInFlight: 10 })))
    const delay = new Map(unique.map((w) => [w.id, w.millis * (w.inFlight + 1)]))
    return { view, state, delay, size: unique.length }
  }

  it.effect.prop(
    "never picks the worker of the highest expected delay while another is eligible",
    [Measured, Seed],
    ([workers, seed]) =>
      Effect.sync(() => {
        const { view, state, delay, size } = measured(workers)
        if (size < 2) return
        const delays = [...delay.values()].sort((a, b) => b - a)
        // Only a worker strictly slower than every other is singled out.
        if (delays[0] === delays[1]) return
        const worst = [...delay].find(([, d]) => d === delays[0])![0]
        const random = recording(seed)
        for (let i = 0; i < 100; i++) {
          const { worker } = policy.select({ view, state, random: random.next, now: 0, request: undefined })
          assert.notStrictEqual(worker, worst, `picked ${worst}, whose expected delay is the highest of ${size}`)
        }
      }),
    { arbitrary: { runs: 500 } }
  )

  it.effect.prop(
    "in a view of at most four, picks a worker of least expected delay, any of those tied",
    [Measured.check(Schema.isMaxLength(4)), Seed],
    ([workers, seed]) =>
      Effect.sync(() => {
        const { view, state, delay } = measured(workers)
        const least = Math.min(...delay.values())
        const tied = [...delay].filter(([, d]) => d === least).map(([id]) => id)
        const random = recording(seed)
        const seen = new Set<number>()
        for (let i = 0; i < 100; i++) {
          seen.add(policy.select({ view, state, random: random.next, now: 0, request: undefined }).worker!)
        }
        for (const id of seen) assert.include(tied, id)
        if (tied.length > 1) assert.isAbove(seen.size, 1, "the tie-break always chose the same worker")
      })
  )

  it("with a slow worker idle and the others busy, weighs it against two other workers", () => {
    // Worker 0 is alone at the lowest load, so both least-loaded draws name
    // it; its expected delay (500) is above every other's (2 × 100).
    const state = measured([
      { id: 0, inFlight: 0, millis: 500 },
      ...Array.from({ length: 11 }, (_, i) => ({ id: i + 1, inFlight: 1, millis: 100 }))
    ])
    // Draws that would name the same worker twice for the other two.
    for (const r of [0, 0.04, 0.5, 0.99]) {
      const { worker } = policy.select({
        view: state.view,
        state: state.state,
        random: () => r,
        now: 0,
        request: undefined
      })
      assert.notStrictEqual(worker, 0)
    }
  })
})

describe("what a learning policy is told", () => {
  // Known defect of the pool, kept as an expected failure until it is fixed:
  // on Effect's own clock the pool stamps a request's start and end with the
  // time read once per event-loop turn, so an in-process handler's
  // synchronous work is not in the latency a policy learns, and a request
  // that ends in the turn it started in is learnt as 0 ms. A worker that
  // computes five times longer then looks as fast as the others to
  // ShortestExpectedDelay and PeakEwma alike. When the pool times such a
  // request with the clock read when it starts and when it ends, this test
  // fails: make it a plain `it`. The handler spins for 5 ms of wall time, so
  // the check holds on any machine, however slow.
  for (const maxInFlight of [1, 4]) {
    it(`an in-process handler's synchronous work is in the latency its policy learns (maxInFlight ${maxInFlight})`, async () => {
      const samples: Array<number> = []
      const spy = DispatchPolicy.make({
        name: "Spy",
        initial: () => undefined,
        select: ({ view, state }) => ({ worker: view.at(0).id, state }),
        onResult: (state, result) => {
          samples.push(result.millis)
          return state
        }
      })
      const spin = Effect.sync(() => {
        const end = Date.now() + 5
        while (Date.now() < end) {
          // computing
        }
        return 0
      })
      await Effect.runPromise(
        Effect.scoped(
          Effect.gen(function* () {
            const pool = yield* WorkerPool.make({
              policy: spy,
              size: 1,
              worker: (id) => Worker.make(id, (_: number) => spin, { maxInFlight })
            })
            // Three runs in one turn of the event loop: the first is timed exactly; the
            // others, whose time the pool did not read, teach the policy nothing (never a false 0).
            for (let i = 0; i < 3; i++) yield* pool.dispatch(i)
          })
        )
      )
      assert.isAtLeast(samples.length, 1)
      for (const millis of samples) assert.isAtLeast(millis, 5)
    })
  }
})

describe("ConsistentHash", () => {
  const policy = DispatchPolicy.ConsistentHash({ key: (request: string) => request })
  const Keys = Schema.Array(Schema.String).check(Schema.isMinLength(1), Schema.isMaxLength(50))

  it.effect.prop(
    "sends equal keys to the same worker while the membership is unchanged",
    [Loads, Keys],
    ([loads, keys]) =>
      Effect.sync(() => {
        const view = viewOf(loads)
        let state = policy.initial()
        const owner = new Map<string, number>()
        for (const key of [...keys, ...keys]) {
          const selection = policy.select({ view, state, random: Math.random, now: 0, request: key })
          state = selection.state
          const previous = owner.get(key)
          if (previous !== undefined) assert.strictEqual(selection.worker, previous)
          owner.set(key, selection.worker!)
        }
      })
  )

  it("moves only about 1/n of the keys when a worker joins", () => {
    const members = (n: number) => Testing.view(Array.from({ length: n }, (_, i) => i))
    const owners = (view: DispatchPolicy.WorkerView) => {
      let state = policy.initial()
      return (key: string) => {
        const selection = policy.select({ view, state, random: Math.random, now: 0, request: key })
        state = selection.state
        return selection.worker
      }
    }
    const inEight = owners(members(8))
    const inNine = owners(members(9))
    const ownerOf = (view: "eight" | "nine", key: string) => (view === "eight" ? inEight(key) : inNine(key))
    const eight = "eight" as const
    const nine = "nine" as const
    const keys = Array.from({ length: 20_000 }, (_, i) => `user-${i}`)
    const moved = keys.filter((key) => ownerOf(eight, key) !== ownerOf(nine, key)).length / keys.length
    // Ideal: 1/9 ≈ 0.111 move, all to the new worker.
    assert.isAbove(moved, 0.07)
    assert.isBelow(moved, 0.16)
    for (const key of keys.slice(0, 2000)) {
      const before = ownerOf(eight, key)
      const after = ownerOf(nine, key)
      if (before !== after) assert.strictEqual(after, 8)
    }
  })
})

describe("seeded runs", () => {
  it.effect("reproduce the same picks with the same seed", () =>
    Effect.gen(function* () {
      const picks = (seed: string) =>
        Effect.scoped(
          Effect.gen(function* () {
            const pool = yield* WorkerPool.make({
              policy: DispatchPolicy.PowerOfTwoChoices,
              size: 16,
              worker: (id) => Worker.make(id, (n: number) => Effect.succeed(n), { maxInFlight: 4 })
            })
            const ids: Array<number> = []
            for (let i = 0; i < 50; i++) ids.push(Option.getOrThrow(yield* pool.select).id)
            return ids
          })
        ).pipe(Random.withSeed(seed))
      const first = yield* picks("seed-1")
      assert.deepStrictEqual(yield* picks("seed-1"), first)
      assert.notDeepEqual(yield* picks("seed-2"), first)
    })
  )
})
