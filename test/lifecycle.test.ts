/**
 * The production lifecycle: restart budgets, backoff reset, ejection and
 * probes, timeouts, the admission queue, retries, and the drain at shutdown.
 * Time is TestClock's.
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Deferred, Duration, Effect, Exit, Fiber, Option, Schedule, Scope } from "effect"
import { TestClock } from "effect/testing"
import {
  DispatchPolicy,
  type DomainError,
  NoWorker,
  PoolShutdown,
  RequestTimeout,
  Worker,
  WorkerCrash,
  WorkerId,
  type WorkerKind,
  WorkerPool
} from "effect-worker-pool"
import * as T from "./support.ts"

/** Requests that take virtual time: `Sleep(ms)` answers after `ms`. */
type Job = { readonly _tag: "Sleep"; readonly millis: number } | T.Behaviour
const sleep = (millis: number): Job => ({ _tag: "Sleep", millis })
const jobHandler = (job: Job) =>
  job._tag === "Sleep" ? Effect.as(Effect.sleep(job.millis), job.millis) : T.handler(job)

const stateOf = (worker: Worker.Worker<any, any, any>) => Effect.map(worker.health, (h) => h.state)

describe("restart budget", () => {
  it.effect("by default a worker is never retired: it is restarted after every crash", () =>
    Effect.gen(function* () {
      const worker = yield* Worker.make(WorkerId.make(0), T.handler)
      for (let restart = 1; restart <= 50; restart++) {
        yield* Effect.flip(worker.dispatch(T.crash))
        yield* TestClock.adjust("15 seconds") // longer than the longest delay
        const h = yield* worker.health
        assert.deepStrictEqual([h.state, h.restarts], ["Healthy", restart])
      }
    })
  )

  it.effect("a budget of 5 restarts a minute retires a worker at its 6th crash, and says why", () =>
    Effect.gen(function* () {
      const worker = yield* Worker.make(WorkerId.make(0), T.handler, { maxRestarts: 5 })
      for (let restart = 1; restart <= 5; restart++) {
        yield* Effect.flip(worker.dispatch(T.crash))
        yield* TestClock.adjust("5 seconds") // longer than any of the first delays
        const h = yield* worker.health
        assert.deepStrictEqual([h.state, h.restarts, h.attempt], ["Healthy", restart, restart])
      }
      yield* Effect.flip(worker.dispatch(T.crash))
      const h = yield* worker.health
      assert.strictEqual(h.state, "Retired")
      assert.strictEqual(h.retiredBecause, "its restart budget is exhausted: 5 restarts within 1m")
      assert.strictEqual(h.lastCrash?.reason, "engine failed")
      yield* TestClock.adjust("1 hour")
      assert.deepStrictEqual([(yield* worker.health).state, (yield* worker.health).restarts], ["Retired", 5])
    })
  )

  it.effect("counts only the restarts inside the window", () =>
    Effect.gen(function* () {
      const worker = yield* Worker.make(WorkerId.make(0), T.handler, {
        restart: Schedule.spaced("1 second"),
        maxRestarts: 2,
        restartWindow: "10 seconds"
      })
      // Restarts at 1 s and 7 s, then the next would be at 13 s: the one at
      // 1 s has left the window, so it goes ahead.
      yield* Effect.flip(worker.dispatch(T.crash))
      yield* TestClock.adjust("6 seconds")
      yield* Effect.flip(worker.dispatch(T.crash))
      yield* TestClock.adjust("6 seconds")
      yield* Effect.flip(worker.dispatch(T.crash))
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual([yield* stateOf(worker), (yield* worker.health).restarts], ["Healthy", 3])
      // The next crash would make three restarts within 10 s.
      yield* Effect.flip(worker.dispatch(T.crash))
      assert.strictEqual(yield* stateOf(worker), "Retired")
    })
  )

  it.effect("the backoff grows with each crash and resets after the worker stayed up long enough", () =>
    Effect.gen(function* () {
      const worker = yield* Worker.make(WorkerId.make(0), T.handler, {
        restart: Schedule.exponential("100 millis"),
        resetBackoffAfter: "30 seconds",
        maxRestarts: Infinity
      })
      const restartDelay = Effect.gen(function* () {
        yield* Effect.flip(worker.dispatch(T.crash))
        let waited = 0
        while ((yield* stateOf(worker)) !== "Healthy") {
          yield* TestClock.adjust("50 millis")
          waited += 50
        }
        return waited
      })
      assert.strictEqual(yield* restartDelay, 100)
      assert.strictEqual(yield* restartDelay, 200)
      assert.strictEqual(yield* restartDelay, 400)
      yield* TestClock.adjust("30 seconds")
      assert.strictEqual(yield* restartDelay, 100)
      assert.strictEqual((yield* worker.health).attempt, 1)
    })
  )

  it.effect(
    "an incarnation that answered a request restarts after the first delay: a poison request costs one short restart",
    () =>
      Effect.gen(function* () {
        const worker = yield* Worker.make(WorkerId.make(0), T.handler, { restart: Schedule.exponential("100 millis") })
        /** Crashes the worker, then returns how long it took to be back. */
        const restartDelay = Effect.gen(function* () {
          yield* Effect.flip(worker.dispatch(T.crash))
          let waited = 0
          while ((yield* stateOf(worker)) !== "Healthy") {
            yield* TestClock.adjust("50 millis")
            waited += 50
          }
          return waited
        })
        // Crashes in a row, with nothing answered in between: the delay grows.
        assert.deepStrictEqual([yield* restartDelay, yield* restartDelay, yield* restartDelay], [100, 200, 400])
        // An answer in between (a response, or a domain error): back to the first delay.
        assert.strictEqual(yield* worker.dispatch(T.ok(1)), 1)
        assert.strictEqual(yield* restartDelay, 100)
        yield* Effect.flip(worker.dispatch(T.domain))
        assert.strictEqual(yield* restartDelay, 100)
        assert.strictEqual((yield* worker.health).attempt, 1)
      })
  )

  it.effect("a worker that can never start is retried ever more slowly, never in a storm, and never retired", () =>
    Effect.gen(function* () {
      let starts = 0
      const worker = yield* Worker.makeScoped(
        WorkerId.make(0),
        Effect.suspend(() => {
          starts++
          return Effect.fail("cannot load the model")
        })
      )
      const h0 = yield* worker.health
      assert.deepStrictEqual([h0.state, h0.failedStarts], ["Restarting", 1])
      yield* TestClock.adjust("3 seconds")
      assert.isAtMost(starts, 8, "at most 8 starts in the first 3 s")
      yield* TestClock.adjust("10 minutes")
      const h = yield* worker.health
      assert.strictEqual(h.state, "Restarting")
      assert.strictEqual(h.failedStarts, starts)
      // Capped at 10 s (+20 % jitter): 10 minutes hold at least 50 more starts.
      assert.isAtLeast(starts, 50)
    })
  )

  it.effect("a pool whose workers are all retired fails at once and says why", () =>
    Effect.gen(function* () {
      const pool = yield* WorkerPool.make({
        size: 2,
        worker: (id) => Worker.make(id, T.handler, { maxRestarts: 0 })
      })
      yield* Effect.flip(pool.dispatch(T.crash))
      yield* Effect.flip(pool.dispatch(T.crash))
      const refused = yield* Effect.flip(pool.dispatch(T.ok(1)))
      assert.deepStrictEqual(
        refused,
        new WorkerCrash({
          reason: new NoWorker({
            message:
              "no worker available: none of the 2 workers can take a request or is coming back (2 Retired (its restart budget is exhausted: 0 restarts within 1m))"
          })
        })
      )
    })
  )
})

describe("timeouts", () => {
  it.effect("count run time only, interrupt the work, and count against the worker", () =>
    Effect.gen(function* () {
      const interrupted = yield* Deferred.make<void>()
      const pool = yield* WorkerPool.make({
        size: 1,
        timeout: "2 seconds",
        worker: (id) =>
          Worker.make(id, (job: Job) =>
            jobHandler(job).pipe(Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined)))
          )
      })
      // The second request waits 1.5 s in the queue, then runs 1.5 s: in time.
      const first = yield* Effect.forkChild(pool.dispatch(sleep(1500)))
      const second = yield* Effect.forkChild(pool.dispatch(sleep(1500)))
      yield* Effect.yieldNow
      assert.strictEqual(yield* pool.queued, 1)
      yield* TestClock.adjust("3 seconds")
      assert.deepStrictEqual([yield* Fiber.join(first), yield* Fiber.join(second)], [1500, 1500])

      const slow = yield* Effect.forkChild(pool.dispatch(sleep(5000)))
      yield* TestClock.adjust("2 seconds")
      const exit = yield* Fiber.await(slow)
      assert.deepStrictEqual(exit, Exit.fail(new RequestTimeout({ workerId: WorkerId.make(0), timeoutMillis: 2000 })))
      yield* Deferred.await(interrupted)
      const [[, h]] = yield* pool.health
      assert.deepStrictEqual(
        [h.state, h.inFlight, h.completed, h.errored, h.timeouts, h.consecutiveFailures],
        ["Healthy", 0, 3, 1, 1, 1]
      )
    })
  )

  it.effect("a per-request timeout overrides the pool's", () =>
    Effect.gen(function* () {
      const pool = yield* WorkerPool.make({
        size: 1,
        timeout: "1 second",
        worker: (id) => Worker.make(id, jobHandler)
      })
      const fiber = yield* Effect.forkChild(pool.dispatch(sleep(3000), { timeout: "5 seconds" }))
      yield* TestClock.adjust("3 seconds")
      assert.strictEqual(yield* Fiber.join(fiber), 3000)
    })
  )

  it.effect("a kind that cannot stop wedged work is torn down and replaced", () =>
    Effect.gen(function* () {
      const released: Array<number> = []
      let incarnations = 0
      const wedging: WorkerKind.WorkerKind<Job, number, DomainError> = {
        name: "wedging",
        spawn: Effect.gen(function* () {
          const n = ++incarnations
          yield* Effect.addFinalizer(() => Effect.sync(() => released.push(n)))
          return { run: (job: Job) => jobHandler(job), exited: Effect.never, restartOnTimeout: true }
        })
      }
      const worker = yield* Worker.fromKind(WorkerId.make(0), wedging, { restart: Schedule.spaced("1 second") })
      const exit = yield* Effect.forkChild(worker.dispatch(sleep(60_000), { timeout: "1 second" })).pipe(
        Effect.tap(() => TestClock.adjust("1 second")),
        Effect.flatMap(Fiber.await)
      )
      assert.deepStrictEqual(exit, Exit.fail(new RequestTimeout({ workerId: WorkerId.make(0), timeoutMillis: 1000 })))
      const h = yield* worker.health
      assert.deepStrictEqual([h.state, h.crashes, h.timeouts], ["Restarting", 1, 1])
      assert.strictEqual(h.lastCrash?.reason, "a request ran past its 1000 ms timeout: the worker is wedged")
      assert.deepStrictEqual(released, [1])
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* worker.dispatch(sleep(0)), 0)
      assert.strictEqual(incarnations, 2)
    })
  )
})

describe("ejection", () => {
  /** Worker 0 times out while `failing` is on; the others always answer. */
  const makeFlaky = (size: number, options?: WorkerPool.EjectionOptions) =>
    Effect.gen(function* () {
      let failing = true
      const pool = yield* WorkerPool.make({
        policy: DispatchPolicy.RoundRobin,
        size,
        timeout: "1 second",
        ejection: options,
        worker: (id) =>
          Worker.make(id, (n: number) => (id === 0 && failing ? Effect.never : Effect.succeed(n)), {
            maxInFlight: 10
          })
      })
      const timeOut = (n: number) =>
        Effect.gen(function* () {
          const fiber = yield* Effect.forkChild(pool.dispatch(n))
          yield* TestClock.adjust("1 second")
          return yield* Fiber.await(fiber)
        })
      return { pool, timeOut, heal: () => (failing = false) }
    })

  const workerHealth = (pool: WorkerPool.WorkerPool<number, number, never>, id: number) =>
    Effect.map(pool.health, (all) => all.find(([wid]) => wid === id)![1])

  it.effect("ejects after 5 consecutive failures, probes once when due, and readmits on success", () =>
    Effect.gen(function* () {
      const { pool, timeOut, heal } = yield* makeFlaky(1)
      for (let i = 0; i < 4; i++) yield* timeOut(i)
      assert.strictEqual((yield* workerHealth(pool, 0)).state, "Healthy")
      yield* timeOut(4)
      const ejected = yield* workerHealth(pool, 0)
      assert.deepStrictEqual([ejected.state, ejected.ejections, ejected.consecutiveFailures], ["Ejected", 1, 5])
      // 30 s, jittered by ±20 %; the clock stands at 5 s.
      const penalty = ejected.ejectedUntil! - 5000
      assert.isAtLeast(penalty, 24_000)
      assert.isAtMost(penalty, 36_000)

      // Not due yet: the only worker is ejected, so the pool is in panic and
      // still routes to it rather than refusing.
      assert.isTrue(Option.isSome(yield* pool.select))

      heal()
      yield* TestClock.adjust(Duration.millis(penalty))
      assert.strictEqual(yield* pool.dispatch(7), 7) // the probe
      const readmitted = yield* workerHealth(pool, 0)
      assert.deepStrictEqual(
        [readmitted.state, readmitted.ejectedUntil, readmitted.consecutiveFailures],
        ["Healthy", undefined, 0]
      )
    })
  )

  it.effect("a failed probe ejects again for longer", () =>
    Effect.gen(function* () {
      const { pool, timeOut } = yield* makeFlaky(2, { maxEjectedShare: 0.5 })
      // Round robin alternates: ten requests give worker 0 five timeouts.
      for (let i = 0; i < 10; i++) yield* timeOut(i)
      const first = yield* workerHealth(pool, 0)
      assert.strictEqual(first.state, "Ejected")
      // While ejected, worker 0 gets nothing.
      for (let i = 0; i < 4; i++) assert.strictEqual(yield* pool.dispatch(i), i)
      assert.strictEqual((yield* workerHealth(pool, 1)).completed, 9)

      yield* TestClock.adjust(Duration.millis(first.ejectedUntil! - (yield* Clock.currentTimeMillis)))
      // Due: the next request is its probe, and it fails.
      const probe = yield* timeOut(100)
      assert.isTrue(Exit.isFailure(probe))
      const second = yield* workerHealth(pool, 0)
      assert.deepStrictEqual([second.state, second.ejections], ["Ejected", 2])
      const now = yield* Clock.currentTimeMillis
      assert.isAtLeast(second.ejectedUntil! - now, 48_000, "the second ejection in a row lasts 2 × 30 s ± 20 %")
      assert.isAtMost(second.ejectedUntil! - now, 72_000)
    })
  )

  it.effect("never ejects more than the allowed share of workers", () =>
    Effect.gen(function* () {
      // Workers 0 and 1 both fail; of 4 workers at most max(1, 10 %) = 1 is ejected.
      const pool = yield* WorkerPool.make({
        policy: DispatchPolicy.LeastLoaded,
        size: 4,
        timeout: "1 second",
        worker: (id) => Worker.make(id, (n: number) => (id < 2 ? Effect.never : Effect.succeed(n)))
      })
      for (let i = 0; i < 12; i++) {
        const fibers = yield* Effect.forEach([0, 1], () => Effect.forkChild(pool.dispatch(i)))
        yield* TestClock.adjust("1 second")
        yield* Fiber.awaitAll(fibers)
      }
      const states = (yield* pool.health).map(([, h]) => h.state)
      assert.strictEqual(states.filter((s) => s === "Ejected").length, 1)
    })
  )

  it.effect("in panic, ejected workers take traffic rather than the pool refusing it", () =>
    Effect.gen(function* () {
      const { pool, timeOut } = yield* makeFlaky(2, { maxEjectedShare: 1, consecutiveFailures: 1 })
      yield* timeOut(0) // worker 0 ejected; 1 of 2 healthy is not below 50 %
      assert.strictEqual((yield* workerHealth(pool, 0)).state, "Ejected")
      assert.strictEqual(Option.getOrThrow(yield* pool.select).id, 1)
      assert.strictEqual(Option.getOrThrow(yield* pool.select).id, 1)
    })
  )

  it.effect("can be turned off", () =>
    Effect.gen(function* () {
      const pool = yield* WorkerPool.make({
        size: 1,
        timeout: "1 second",
        ejection: false,
        worker: (id) => Worker.make(id, (_: number) => Effect.never)
      })
      for (let i = 0; i < 10; i++) {
        const fiber = yield* Effect.forkChild(pool.dispatch(i))
        yield* TestClock.adjust("1 second")
        yield* Fiber.await(fiber)
      }
      const [[, h]] = yield* pool.health
      assert.deepStrictEqual([h.state, h.consecutiveFailures, h.ejections], ["Healthy", 10, 0])
    })
  )
})

describe("pool defaults", () => {
  it.effect(
    "the drain lasts 10 seconds, the queue holds 1024 requests, and an idempotent request is retried once",
    () =>
      Effect.gen(function* () {
        const scope = yield* Scope.make()
        let calls = 0
        const pool = yield* WorkerPool.make({
          policy: DispatchPolicy.RoundRobin,
          size: 3,
          worker: (id) =>
            Worker.make(id, (job: Job) =>
              job._tag === "Crash" ? Effect.sync(() => calls++).pipe(Effect.andThen(T.handler(job))) : jobHandler(job)
            )
        }).pipe(Scope.provide(scope))

        // Retried once, not twice: two calls, two crashes.
        yield* Effect.flip(pool.dispatch(T.crash, { idempotent: true }))
        assert.strictEqual(calls, 2)

        const running = yield* Effect.forEach([1, 2, 3], () => Effect.forkChild(pool.dispatch(sleep(60_000))))
        const queued = yield* Effect.forEach(Array.from({ length: 1025 }), () =>
          Effect.forkChild(pool.dispatch(sleep(0)))
        )
        yield* Effect.yieldNow
        assert.strictEqual(yield* pool.queued, 1024)

        const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
        yield* TestClock.adjust("9999 millis")
        assert.isUndefined(closing.pollUnsafe(), "still draining")
        yield* TestClock.adjust("1 milli")
        yield* Fiber.join(closing)
        // The running ones run on fibers of their workers (an adaptive limit, the
        // default): the deadline interrupts them, and they fail with PoolShutdown.
        for (const fiber of running) assert.instanceOf(T.errorOf(yield* Fiber.await(fiber)), PoolShutdown)
        for (const fiber of queued) assert.instanceOf(T.errorOf(yield* Fiber.await(fiber)), PoolShutdown)
      })
  )
})

describe("ShortestExpectedDelay and failing workers", () => {
  /** Two workers, one slot each; a "hang" request never answers. */
  const makeTwo = WorkerPool.make({
    policy: DispatchPolicy.ShortestExpectedDelay(),
    size: 2,
    timeout: "1 second",
    ejection: false,
    drain: 0,
    worker: (id) => Worker.make(id, (job: Job | "hang") => (job === "hang" ? Effect.never : jobHandler(job)))
  })
  const inFlightOf = (pool: WorkerPool.WorkerPool<Job | "hang", number>) =>
    Effect.map(pool.health, (all) => all.map(([, h]) => h.inFlight))

  /**
   * Occupies one worker with `sleep(busyMillis)` and times a request out on
   * the other; returns the fiber of the first and the index of the worker
   * whose request failed.
   */
  const failOne = (pool: WorkerPool.WorkerPool<Job | "hang", number>, busyMillis: number) =>
    Effect.gen(function* () {
      const busy = yield* Effect.forkChild(pool.dispatch(sleep(busyMillis), { timeout: "10 seconds" }))
      yield* Effect.yieldNow
      const busyWorker = (yield* inFlightOf(pool)).indexOf(1)
      const hung = yield* Effect.forkChild(pool.dispatch("hang"))
      yield* Effect.yieldNow
      assert.deepStrictEqual(yield* inFlightOf(pool), [1, 1])
      yield* TestClock.adjust("1 second")
      assert.instanceOf(T.errorOf(yield* Fiber.await(hung)), RequestTimeout)
      return { busy, busyWorker, failed: 1 - busyWorker }
    })

  it.effect("a worker whose last request timed out is skipped while another is free", () =>
    Effect.gen(function* () {
      const pool = yield* makeTwo
      const { busy, busyWorker } = yield* failOne(pool, 500)
      yield* Fiber.join(busy)
      // Both are idle; the other failed last, so this one takes the next ones.
      const expected = busyWorker === 0 ? [1, 0] : [0, 1]
      for (let i = 0; i < 5; i++) {
        const fiber = yield* Effect.forkChild(pool.dispatch(sleep(10)))
        yield* Effect.yieldNow
        assert.deepStrictEqual(yield* inFlightOf(pool), expected)
        yield* TestClock.adjust("10 millis")
        yield* Fiber.join(fiber)
      }
    })
  )

  it.effect("rather than use it, a request waits for a busy worker that did not fail", () =>
    Effect.gen(function* () {
      const pool = yield* makeTwo
      const { busy, busyWorker } = yield* failOne(pool, 1500)
      const expected = busyWorker === 0 ? [1, 0] : [0, 1]
      // The failed worker is free; the other is busy for 500 ms more.
      const next = yield* Effect.forkChild(pool.dispatch(sleep(100)))
      yield* Effect.yieldNow
      assert.deepStrictEqual(yield* inFlightOf(pool), expected)
      assert.strictEqual(yield* pool.queued, 1)
      yield* TestClock.adjust("500 millis")
      yield* Fiber.join(busy)
      yield* Effect.yieldNow
      assert.deepStrictEqual(yield* inFlightOf(pool), expected)
      yield* TestClock.adjust("100 millis")
      assert.strictEqual(yield* Fiber.join(next), 100)
    })
  )
})
