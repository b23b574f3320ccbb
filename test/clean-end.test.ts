/**
 * An incarnation that ends cleanly (its `exited` gives `Stopped`, as a
 * draining runner does) is not a crash: the worker leaves selection at once,
 * the requests it holds run to their end, no crash and no failure in a row
 * is counted, and it starts again after the schedule's first delay, which is
 * not counted as a restart either.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Schedule } from "effect"
import { TestClock } from "effect/testing"
import { type DomainError, Reported, Stopped, Worker, WorkerCrash, WorkerId, type WorkerKind } from "effect-worker-pool"
import * as T from "./support.ts"

/** A kind whose incarnations end cleanly when their `stop` is completed. */
const stoppable = () => {
  const stops: Array<Deferred.Deferred<void>> = []
  const kind: WorkerKind.WorkerKind<T.Behaviour, number, DomainError> = {
    name: "stoppable",
    concurrency: 4,
    spawn: Effect.sync(() => {
      const stop = Deferred.makeUnsafe<void>()
      stops.push(stop)
      return {
        // A negative answer is a crash, found once the request is done.
        run: (request: T.Behaviour) =>
          Effect.flatMap(T.handler(request), (n) =>
            n < 0 ? Effect.fail(WorkerCrash.report("late crash")) : Effect.succeed(n)
          ),
        exited: Deferred.await(stop).pipe(
          Effect.as(new WorkerCrash({ reason: new Stopped({ message: "it says it stops" }) }))
        )
      }
    })
  }
  return { kind, stopLatest: Effect.suspend(() => Deferred.succeed(stops[stops.length - 1]!, undefined)) }
}

/** Lets the forked fibers of the worker run. */
const settle = Effect.forEach(Array.from({ length: 10 }), () => Effect.yieldNow, { discard: true })

describe("A clean end of an incarnation", () => {
  it.effect("lets its requests finish, counts no crash, and starts again after the first delay", () =>
    Effect.gen(function* () {
      const { kind, stopLatest } = stoppable()
      const worker = yield* Worker.fromKind(WorkerId.make(0), kind, {
        restart: Schedule.exponential("100 millis")
      })
      // Two crashes in a row: the backoff is at its third step (400 ms).
      yield* Effect.flip(worker.dispatch(T.crash))
      yield* TestClock.adjust("100 millis")
      yield* Effect.flip(worker.dispatch(T.crash))
      yield* TestClock.adjust("200 millis")
      const before = yield* worker.health
      assert.strictEqual(before.state, "Healthy")
      assert.strictEqual(before.crashes, 2)
      assert.strictEqual(before.attempt, 2)

      const gate = yield* Deferred.make<number>()
      const held = yield* Effect.forkChild(worker.dispatch(T.wait(gate)))
      const timed = yield* Effect.forkChild(worker.dispatch(T.wait(gate), { timeout: "1 hour" }))
      yield* settle
      yield* stopLatest
      yield* settle

      const ended = yield* worker.health
      assert.strictEqual(ended.state, "Restarting")
      assert.strictEqual(ended.inFlight, 2)
      assert.strictEqual(ended.crashes, 2, "a clean end is no crash")
      assert.strictEqual(ended.consecutiveFailures, 2, "nor a failure in a row")
      assert.strictEqual(ended.lastCrash?.reason, "engine failed")
      const refused = yield* Effect.flip(worker.dispatch(T.ok(1)))
      assert.strictEqual(T.reasonOf(refused), "worker 0 is not available (Restarting)")

      // What it held is answered; then it starts again after the first delay, not the fourth.
      yield* Deferred.succeed(gate, 7)
      assert.deepStrictEqual(yield* Fiber.await(held), Exit.succeed(7))
      assert.deepStrictEqual(yield* Fiber.await(timed), Exit.succeed(7))
      yield* settle
      yield* TestClock.adjust("99 millis")
      assert.strictEqual((yield* worker.health).state, "Restarting")
      yield* TestClock.adjust("1 milli")
      const after = yield* worker.health
      assert.strictEqual(after.state, "Healthy")
      // A start again, not a restart: the restarts and the backoff are as they were.
      assert.strictEqual(after.restarts, 2)
      assert.strictEqual(after.attempt, 2)
      assert.strictEqual(after.crashes, 2)
      assert.strictEqual(after.completed, 4)
      assert.strictEqual(yield* worker.dispatch(T.ok(3)), 3)
    })
  )

  it.effect("a request that crashes after the end fails with its own reason, counted as no crash", () =>
    Effect.gen(function* () {
      const { kind, stopLatest } = stoppable()
      const worker = yield* Worker.fromKind(WorkerId.make(0), kind, { restart: Schedule.spaced("1 second") })
      const [fine, bad] = [yield* Deferred.make<number>(), yield* Deferred.make<number>()]
      const held = yield* Effect.forkChild(worker.dispatch(T.wait(fine)))
      const crashing = yield* Effect.forkChild(worker.dispatch(T.wait(bad)))
      yield* settle
      yield* stopLatest
      yield* settle
      yield* Deferred.succeed(bad, -1)
      yield* Deferred.succeed(fine, 1)
      assert.deepStrictEqual(yield* Fiber.await(held), Exit.succeed(1))
      assert.deepStrictEqual(
        yield* Fiber.await(crashing),
        Exit.fail(new WorkerCrash({ reason: new Reported({ message: "late crash" }), workerId: WorkerId.make(0) }))
      )
      const health = yield* worker.health
      assert.strictEqual(health.crashes, 0)
      assert.strictEqual(health.lastCrash, undefined)
      assert.strictEqual(health.inFlight, 0)
      yield* TestClock.adjust("1 second")
      assert.strictEqual((yield* worker.health).state, "Healthy")
    })
  )
})
