/**
 * The restart rules of one worker (src/internal/restart.ts), decision by
 * decision in virtual time: the backoff steps once per failure in a row and
 * starts over after an incarnation that served or stayed up long enough; the
 * budget counts restarts within its window at the time they happen.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Schedule } from "effect"
import { TestClock } from "effect/testing"
import { WorkerCrash } from "effect-worker-pool"
import { type RestartDecision, type RestartPolicy, restartTracker } from "../src/internal/restart.ts"

const crash = WorkerCrash.report("boom")

const policy = (overrides: Partial<RestartPolicy> = {}): RestartPolicy => ({
  schedule: Schedule.exponential("100 millis"),
  maxRestarts: Infinity,
  window: Duration.seconds(60),
  resetAfter: Duration.seconds(10),
  ...overrides
})

/** A decision in short: the delay and attempt of a restart, or why the worker retires. */
const short = (decision: RestartDecision) =>
  decision._tag === "Restart"
    ? `restart in ${Duration.toMillis(decision.delay)} ms (#${decision.attempt})`
    : decision.because

describe("the backoff", () => {
  it.effect("steps once per crash in a row", () =>
    Effect.gen(function* () {
      const tracker = yield* restartTracker(policy())
      const decisions: Array<string> = []
      for (let i = 0; i < 3; i++) {
        yield* tracker.started
        yield* TestClock.adjust("1 second")
        decisions.push(short(yield* tracker.next(crash, false)))
      }
      assert.deepStrictEqual(decisions, ["restart in 100 ms (#1)", "restart in 200 ms (#2)", "restart in 400 ms (#3)"])
    })
  )

  it.effect("starts over after an incarnation that answered a request", () =>
    Effect.gen(function* () {
      const tracker = yield* restartTracker(policy())
      yield* tracker.next(crash, false)
      yield* tracker.next(crash, false)
      assert.strictEqual(short(yield* tracker.next(crash, true)), "restart in 100 ms (#1)")
      assert.strictEqual(short(yield* tracker.next(crash, false)), "restart in 200 ms (#2)")
    })
  )

  it.effect("starts over after an incarnation that stayed up for resetAfter, not a millisecond less", () =>
    Effect.gen(function* () {
      const tracker = yield* restartTracker(policy({ resetAfter: Duration.seconds(10) }))
      yield* tracker.next(crash, false)
      yield* tracker.started
      yield* TestClock.adjust(Duration.millis(9_999))
      assert.strictEqual(short(yield* tracker.next(crash, false)), "restart in 200 ms (#2)")
      yield* tracker.started
      yield* TestClock.adjust("10 seconds")
      assert.strictEqual(short(yield* tracker.next(crash, false)), "restart in 100 ms (#1)")
    })
  )

  it.effect("an incarnation that never started does not reset it, however long ago the last one did", () =>
    Effect.gen(function* () {
      const tracker = yield* restartTracker(policy({ resetAfter: Duration.seconds(1) }))
      yield* tracker.started
      yield* tracker.next(crash, false)
      // The next start failed: no `started` since the crash.
      yield* TestClock.adjust("1 minute")
      assert.strictEqual(short(yield* tracker.next(crash, false)), "restart in 200 ms (#2)")
    })
  )

  it.effect("a schedule that ends retires the worker", () =>
    Effect.gen(function* () {
      const tracker = yield* restartTracker(policy({ schedule: Schedule.recurs(1) }))
      assert.strictEqual(short(yield* tracker.next(crash, false)), "restart in 0 ms (#1)")
      assert.strictEqual(short(yield* tracker.next(crash, false)), "its restart schedule is exhausted")
    })
  )
})

describe("the restart budget", () => {
  const budget = (
    maxRestarts: number,
    window: Duration.Input,
    schedule: Schedule.Schedule<unknown> = Schedule.spaced("1 second")
  ) => restartTracker(policy({ maxRestarts, window: Duration.fromInputUnsafe(window), schedule }))

  it.effect("retires a worker past maxRestarts within the window, naming the budget", () =>
    Effect.gen(function* () {
      const tracker = yield* budget(2, "1 minute")
      assert.strictEqual(short(yield* tracker.next(crash, false)), "restart in 1000 ms (#1)")
      assert.strictEqual(short(yield* tracker.next(crash, false)), "restart in 1000 ms (#2)")
      assert.strictEqual(
        short(yield* tracker.next(crash, false)),
        "its restart budget is exhausted: 2 restarts within 1m"
      )
    })
  )

  it.effect("counts a restart at the time it happens: after its delay", () =>
    Effect.gen(function* () {
      // Backoff 100 ms then 200 ms; a window of 200 ms. The first restart happens at 100 ms; a crash at 150 ms
      // restarts at 350 ms, when the first is 250 ms old: out of the window.
      const tracker = yield* budget(1, "200 millis", Schedule.exponential("100 millis"))
      assert.strictEqual(short(yield* tracker.next(crash, false)), "restart in 100 ms (#1)")
      yield* TestClock.adjust("150 millis")
      assert.strictEqual(short(yield* tracker.next(crash, false)), "restart in 200 ms (#2)")
    })
  )

  it.effect("a restart exactly one window old is out of it", () =>
    Effect.gen(function* () {
      const tracker = yield* budget(1, "1 second")
      // Restarts at 1 s, then (a crash at 1 s) at 2 s: exactly a window apart.
      yield* tracker.next(crash, false)
      yield* TestClock.adjust("1 second")
      assert.strictEqual(short(yield* tracker.next(crash, false)), "restart in 1000 ms (#2)")
      // At 2 s, one more (at 3 s) is a window after the one at 2 s, two after the one at 1 s.
      yield* TestClock.adjust("1 second")
      assert.strictEqual(short(yield* tracker.next(crash, false)), "restart in 1000 ms (#3)")
    })
  )

  it.effect("a restart less than a window old is in it", () =>
    Effect.gen(function* () {
      const tracker = yield* budget(1, "1 second")
      yield* tracker.next(crash, false)
      yield* TestClock.adjust(Duration.millis(999))
      assert.match(short(yield* tracker.next(crash, false)), /restart budget is exhausted/)
    })
  )

  it.effect("a restart that took a spare happens now, and is counted now", () =>
    Effect.gen(function* () {
      const tracker = yield* budget(1, "1 second")
      // At once (a spare), then a crash 999 ms later: a restart at 2 s is out of the window, one at once is not.
      assert.strictEqual(short(yield* tracker.next(crash, false, true)), "restart in 1000 ms (#1)")
      yield* TestClock.adjust(Duration.millis(999))
      assert.match(short(yield* tracker.next(crash, false, true)), /restart budget is exhausted/)
    })
  )

  it.effect("a restart that waits for its delay is counted after it, not at once", () =>
    Effect.gen(function* () {
      const tracker = yield* budget(1, "1 second")
      yield* tracker.next(crash, false, true)
      yield* TestClock.adjust(Duration.millis(999))
      // Counted at 1,999 ms: the one at 0 ms is out of the window by then.
      assert.strictEqual(short(yield* tracker.next(crash, false)), "restart in 1000 ms (#2)")
    })
  )

  it.effect("a restart that happened later than planned is counted when it happened", () =>
    Effect.gen(function* () {
      const tracker = yield* budget(1, "2 seconds")
      // Planned for 1 s; it happened at 5 s.
      yield* tracker.next(crash, false)
      yield* TestClock.adjust("5 seconds")
      yield* tracker.restarted
      yield* TestClock.adjust("200 millis")
      // A restart at 6.2 s is within a window of the one at 5 s (not of one at 1 s).
      assert.match(short(yield* tracker.next(crash, false)), /restart budget is exhausted/)
    })
  )

  it.effect("a restart that happens without a decision changes nothing", () =>
    Effect.gen(function* () {
      const tracker = yield* budget(1, "1 second")
      yield* tracker.restarted
      assert.strictEqual(short(yield* tracker.next(crash, false)), "restart in 1000 ms (#1)")
    })
  )
})
