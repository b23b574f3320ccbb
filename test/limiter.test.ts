/**
 * The adaptive concurrency limit (src/internal/limiter.ts) as a pure
 * function of its samples: bounded, it grows while latency stays near the
 * no-load latency and only then, it backs off when latency grows with load
 * and at once on a crash or a timeout, and the same samples give the same
 * decisions.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import * as Limiter from "../src/internal/limiter.ts"

/** One answer as a test draws it: its latency, the requests held when it ended, whether it failed, and the time since the last. */
const Answer = Schema.Struct({
  millis: Schema.Number.check(Schema.isBetween({ minimum: 0, maximum: 10_000 })),
  inFlight: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 200 })),
  failed: Schema.Boolean,
  gap: Schema.Number.check(Schema.isBetween({ minimum: 0, maximum: 5_000 }))
})
const Answers = Schema.Array(Answer).check(Schema.isMaxLength(300))
const Max = Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 128 }))
/** A no-load latency, in milliseconds. */
const NoLoad = Schema.Number.check(Schema.isBetween({ minimum: 0, maximum: 2_000 }))

/** Feeds `answers` to a fresh limiter of `max`, checking `each` after every one. */
const run = (
  max: number,
  answers: ReadonlyArray<typeof Answer.Type>,
  each: (limiter: Limiter.Limiter, before: number, answer: typeof Answer.Type) => void = () => {}
) => {
  const limiter = Limiter.make(Limiter.settings(max))
  let now = 0
  for (const answer of answers) {
    now += answer.gap
    const before = limiter.limit
    Limiter.sample(limiter, { millis: answer.millis, inFlight: answer.inFlight, failed: answer.failed, now })
    each(limiter, before, answer)
  }
  return limiter
}

/** Answers alone on the worker (nothing else in flight) at `millis`: they give the no-load latency. */
const alone = (millis: number, n: number) =>
  Array.from({ length: n }, () => ({ millis, inFlight: 1, failed: false, gap: millis }))

describe("the adaptive limit", () => {
  it("starts at 1: one request at a time until answers return", () => {
    const limiter = Limiter.make(Limiter.settings(64))
    assert.strictEqual(limiter.limit, 1)
    assert.strictEqual(Limiter.slots(limiter), 1)
    assert.isTrue(limiter.slowStart)
  })

  it.effect.prop(
    "is always within [1, max], whatever the answers",
    [Max, Answers],
    ([max, answers]) =>
      Effect.sync(() => {
        run(max, answers, (limiter) => {
          assert.isAtLeast(limiter.limit, 1)
          assert.isAtMost(limiter.limit, max)
          assert.isTrue(Number.isInteger(Limiter.slots(limiter)))
        })
      }),
    { arbitrary: { runs: 300 } }
  )

  it.effect.prop(
    "grows to max under constant latency, when the worker uses it, in max - 1 answers (slow start)",
    [Max, NoLoad],
    ([max, millis]) =>
      Effect.sync(() => {
        const limiter = Limiter.make(Limiter.settings(max))
        for (let i = 0; i < max - 1; i++) {
          Limiter.sample(limiter, { millis, inFlight: Limiter.slots(limiter), failed: false, now: i * millis })
        }
        assert.strictEqual(limiter.limit, max)
        assert.strictEqual(Limiter.slots(limiter), max)
      }),
    { arbitrary: { runs: 200 } }
  )

  it.effect.prop(
    "never grows while latency is far above the no-load latency",
    [Max, NoLoad, Answers],
    ([max, noLoad, answers]) =>
      Effect.sync(() => {
        // The no-load latency first (answers alone), then answers under load at least twice as slow.
        const far = answers.map((a) => ({ ...a, millis: 2 * noLoad + 2 + a.millis, inFlight: 1 + a.inFlight }))
        run(max, [...alone(noLoad, 5), ...far], (limiter, before, answer) => {
          if (answer.millis > 2 * noLoad + 1) assert.isAtMost(limiter.limit, before)
        })
      }),
    { arbitrary: { runs: 300 } }
  )

  it.effect.prop(
    "a crash or a timeout backs off: the limit halves (down to 1), and slow start ends",
    [Max, Answers, Answer],
    ([max, answers, answer]) =>
      Effect.sync(() => {
        const limiter = run(max, answers)
        const before = limiter.limit
        Limiter.sample(limiter, { millis: answer.millis, inFlight: answer.inFlight, failed: true, now: 1e9 })
        assert.strictEqual(limiter.limit, Math.max(1, before / 2))
        assert.isFalse(limiter.slowStart)
      }),
    { arbitrary: { runs: 300 } }
  )

  it.effect.prop(
    "the same answers give the same decisions",
    [Max, Answers],
    ([max, answers]) =>
      Effect.sync(() => {
        const limits = (each: Array<number>) => run(max, answers, (limiter) => each.push(limiter.limit))
        const first: Array<number> = []
        const second: Array<number> = []
        assert.deepStrictEqual(limits(first), limits(second))
        assert.deepStrictEqual(first, second)
      }),
    { arbitrary: { runs: 100 } }
  )

  it("does not grow while the worker uses less than half of it", () => {
    const limiter = Limiter.make(Limiter.settings(64))
    for (let i = 0; i < 9; i++)
      Limiter.sample(limiter, { millis: 10, inFlight: Limiter.slots(limiter), failed: false, now: i * 10 })
    assert.strictEqual(limiter.limit, 10)
    // One request at a time from now on: the limit stays.
    for (let i = 0; i < 50; i++) Limiter.sample(limiter, { millis: 10, inFlight: 1, failed: false, now: 100 + i * 10 })
    assert.strictEqual(limiter.limit, 10)
  })

  it("backs off when latency grows with load, at most once per round trip, then grows again by about one per round trip", () => {
    const limiter = Limiter.make(Limiter.settings(64))
    let now = 0
    const answer = (millis: number, inFlight: number) => {
      now += 1
      return Limiter.sample(limiter, { millis, inFlight, failed: false, now })
    }
    // Slow start to 16 at 10 ms.
    while (limiter.limit < 16) answer(10, Limiter.slots(limiter))
    assert.strictEqual(limiter.limit, 16)
    // Latency triples under that load: the average crosses 1.2 × 10 + 1 ms after a few answers, and the limit shrinks.
    let answers = 0
    while (limiter.limit === 16 && answers < 10) {
      answer(30, 16)
      answers++
    }
    assert.isBelow(limiter.limit, 16)
    assert.isFalse(limiter.slowStart)
    const cut = limiter.limit
    // Within the same round trip (the average latency, about 14 ms), it does not shrink again.
    answer(30, 16)
    assert.strictEqual(limiter.limit, cut)
    // Back to 10 ms: once the average is near again, it grows by 1 / limit per answer.
    for (let i = 0; i < 20; i++) answer(10, Limiter.slots(limiter))
    const grown = limiter.limit
    answer(10, Limiter.slots(limiter))
    assert.approximately(limiter.limit, grown + 1 / grown, 1e-9)
  })

  it("follows a worker whose own speed changed: answers alone move the no-load latency", () => {
    const limiter = Limiter.make(Limiter.settings(8))
    for (const a of alone(10, 3)) Limiter.sample(limiter, { ...a, now: 0 })
    assert.approximately(limiter.baseline!, 10, 1e-9)
    // Five times slower, alone: the no-load latency rises toward 50 ms.
    for (let i = 0; i < 60; i++) Limiter.sample(limiter, { millis: 50, inFlight: 1, failed: false, now: 50 * i })
    assert.isAbove(limiter.baseline!, 45)
    // Answers under load do not move it, the fast ones no more than the slow ones.
    const before = limiter.baseline!
    Limiter.sample(limiter, { millis: 20, inFlight: 4, failed: false, now: 3_020 })
    Limiter.sample(limiter, { millis: 90, inFlight: 4, failed: false, now: 3_110 })
    assert.strictEqual(limiter.baseline!, before)
  })
})
