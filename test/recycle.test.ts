/**
 * Recycling: a worker's incarnation is replaced after a number of requests or
 * an age, without failing a request: the replacement takes over while the old
 * incarnation still serves, and the old one finishes what it holds.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Deferred, Effect, Exit, Fiber, Metric, Random, Stream } from "effect"
import { TestClock } from "effect/testing"
import { PoolMetrics, Worker, type WorkerHealth, WorkerId, type WorkerKind, WorkerPool } from "effect-worker-pool"
import { metricValue } from "./fixtures/metrics.ts"
import * as S from "./fixtures/support.ts"

/**
 * An in-process kind that numbers its incarnations and counts the requests
 * each one ran; a request given a gate waits for it. `spare`: whether a pool
 * may keep spares of it. Its handler yields, as one that does any I/O does:
 * a recycle is the work of the worker's supervisor fiber, which runs when the
 * requests' fibers let it.
 */
const numbered = (spare: boolean) => {
  const served: Array<number> = []
  const kind: WorkerKind.WorkerKind<Deferred.Deferred<void> | undefined, number, never> = {
    name: "numbered",
    spare,
    spawn: Effect.sync(() => {
      const n = served.length
      served.push(0)
      return {
        run: (gate: Deferred.Deferred<void> | undefined) =>
          Effect.andThen(
            Effect.sync(() => served[n]!++),
            gate === undefined ? Effect.as(Effect.yieldNow, n) : Effect.as(Deferred.await(gate), n)
          ),
        exited: Effect.never
      }
    })
  }
  return { kind, served }
}

describe("recycling", () => {
  for (const spare of [true, false]) {
    it.live(
      `10,000 requests with a recycle every 100 fail none, and the counters add up (${spare ? "spares" : "fresh starts"})`,
      () =>
        Effect.gen(function* () {
          const { kind, served } = numbered(spare)
          const pool = yield* WorkerPool.make({
            name: "recycled",
            size: 4,
            worker: (id) => Worker.fromKind(id, kind, { maxInFlight: 2, recycle: { maxRequests: 100 } })
          })
          const recycles: Array<number> = []
          const watching = yield* Effect.forkChild(
            Stream.runForEach(pool.changes, ([id, health]) =>
              Effect.sync(() => {
                if (health.recycles !== undefined && health.recycles > (recycles[id] ?? 0))
                  recycles[id] = health.recycles
              })
            )
          )
          const results = yield* Effect.forEach(
            Array.from({ length: 10_000 }, () => undefined),
            () => Effect.exit(pool.dispatch(undefined)),
            { concurrency: 64 }
          )
          const failed = results.filter((exit) => exit._tag === "Failure")
          assert.strictEqual(failed.length, 0, `failed: ${JSON.stringify(failed.slice(0, 3))}`)

          const health = (yield* pool.health).map(([, h]) => h)
          const sum = (f: (h: (typeof health)[number]) => number) => health.reduce((n, h) => n + f(h), 0)
          assert.strictEqual(
            sum((h) => h.completed),
            10_000
          )
          assert.deepStrictEqual(
            [sum((h) => h.errored), sum((h) => h.crashes), sum((h) => h.restarts), sum((h) => h.inFlight)],
            [0, 0, 0, 0]
          )
          assert.isTrue(
            health.every((h) => h.state === "Healthy"),
            JSON.stringify(health.map((h) => h.state))
          )
          // Every request ran once, on one incarnation.
          assert.strictEqual(
            served.reduce((a, b) => a + b, 0),
            10_000
          )
          const recycled = sum((h) => h.recycles ?? 0)
          // At least one recycle per 100 requests a worker ran, but for the last ones of each worker.
          assert.isAtLeast(recycled, 10_000 / 100 - 4 * 2, `recycles: ${recycled}`)
          // A recycled incarnation ran its 100 requests first.
          const replaced = served.filter((n) => n >= 100).length
          assert.isAtLeast(replaced, recycled)
          assert.isTrue(
            health.every((h) => h.lastRecycle?.reason === "requests"),
            JSON.stringify(health.map((h) => h.lastRecycle))
          )

          // Shown in the metrics, with the reason, and in `changes`.
          const snapshot = yield* Metric.snapshot
          const attributes = { pool: "recycled", policy: "ShortestExpectedDelay", kind: "numbered" }
          assert.strictEqual(
            metricValue(snapshot, PoolMetrics.recycles, { ...attributes, reason: "requests" }),
            recycled
          )
          assert.strictEqual(metricValue(snapshot, PoolMetrics.recycles, { ...attributes, reason: "age" }), 0)
          assert.strictEqual(
            metricValue(snapshot, PoolMetrics.requests, {
              pool: "recycled",
              policy: "ShortestExpectedDelay",
              outcome: "Success"
            }),
            10_000
          )
          yield* Effect.yieldNow
          assert.strictEqual(
            recycles.reduce((a, b) => a + b, 0),
            recycled
          )
          yield* Fiber.interrupt(watching)
        }).pipe(Effect.scoped, Effect.provideService(Metric.MetricRegistry, new Map())),
      60_000
    )
  }

  it.effect("the replacement takes new requests while the recycled incarnation finishes the ones it holds", () =>
    Effect.gen(function* () {
      const { kind, served } = numbered(false)
      const worker = yield* Worker.fromKind(WorkerId.make(0), kind, { maxInFlight: 4, recycle: { maxRequests: 2 } })
      const pool = yield* WorkerPool.make<Deferred.Deferred<void> | undefined, number, never>({})
      yield* pool.add(worker)
      const gate = yield* Deferred.make<void>()
      // Two requests held by incarnation 0: the second makes it due.
      const held = yield* Effect.forEach([1, 2], () => Effect.forkChild(pool.dispatch(gate)), { concurrency: 1 })
      yield* Effect.yieldNow
      yield* Effect.yieldNow
      // The replacement serves new requests while they are held.
      assert.strictEqual(yield* pool.dispatch(undefined), 1)
      assert.strictEqual(yield* pool.dispatch(undefined), 1)
      const during = yield* worker.health
      assert.deepStrictEqual([during.state, during.inFlight, during.recycles], ["Healthy", 2, 1])
      yield* Deferred.succeed(gate, undefined)
      assert.deepStrictEqual(yield* Fiber.joinAll(held), [0, 0])
      assert.deepStrictEqual(served.slice(0, 2), [2, 2])
      const after = yield* worker.health
      assert.deepStrictEqual([after.completed, after.errored, after.crashes, after.restarts], [4, 0, 0, 0])
    }).pipe(Effect.scoped)
  )

  it.effect("a removal stops a recycled incarnation that still runs a request on its caller's fiber", () =>
    Effect.gen(function* () {
      const { kind, served } = numbered(false)
      // One slot: the request runs on its caller's fiber.
      const worker = yield* Worker.fromKind(WorkerId.make(0), kind, { maxInFlight: 1, recycle: { maxRequests: 1 } })
      const pool = yield* WorkerPool.make<Deferred.Deferred<void> | undefined, number, never>({})
      yield* pool.add(worker)
      const gate = yield* Deferred.make<void>()
      const held = yield* Effect.forkChild(pool.dispatch(gate))
      for (let i = 0; i < 100 && (yield* worker.health).recycles === undefined; i++) yield* Effect.yieldNow
      assert.strictEqual((yield* worker.health).recycles, 1)
      yield* pool.remove(WorkerId.make(0))
      assert.strictEqual(yield* pool.size, 0)
      // It is torn down inside the request, on the incarnation that took it; its caller goes on.
      const exit = yield* Fiber.await(held)
      assert.isFalse(Exit.hasInterrupts(exit))
      assert.isTrue(Exit.isFailure(exit) && Cause.findErrorOption(exit.cause)._tag === "Some")
      assert.deepStrictEqual(served, [1, 0])
      assert.strictEqual((yield* worker.health).state, "Stopped")
    }).pipe(Effect.scoped)
  )

  it.effect(
    "an age limit with jitter: each incarnation is recycled within the last jitter of maxAge, not together",
    () =>
      Effect.gen(function* () {
        const { kind } = numbered(false)
        const pool = yield* WorkerPool.make({
          size: 4,
          worker: (id) => Worker.fromKind(id, kind, { recycle: { maxAge: "10 minutes", ageJitter: 0.5 } })
        })
        const recycledAt = (health: ReadonlyArray<readonly [WorkerId, WorkerHealth]>) =>
          health.map(([, h]) => h.lastRecycle?.at)
        // Nothing before half the age.
        yield* TestClock.adjust("4 minutes")
        assert.deepStrictEqual(recycledAt(yield* pool.health), [undefined, undefined, undefined, undefined])
        // Minute by minute: each recycles once within [5, 10] minutes.
        for (let minute = 5; minute <= 10; minute++) yield* TestClock.adjust("1 minute")
        const health = yield* pool.health
        const at = recycledAt(health)
        for (const t of at) {
          assert.isDefined(t)
          assert.isAtLeast(t!, 5 * 60_000)
          assert.isAtMost(t!, 10 * 60_000)
        }
        assert.isTrue(new Set(at).size > 1, `all at once: ${JSON.stringify(at)}`)
        assert.isTrue(
          health.every(([, h]) => h.recycles === 1 && h.lastRecycle?.reason === "age" && h.state === "Healthy")
        )
        // It still serves.
        assert.isAtLeast(yield* pool.dispatch(undefined), 4)
      }).pipe(Effect.scoped, Random.withSeed("recycle-age"))
  )

  it.effect("invalid recycling options are refused with InvalidOptions", () =>
    Effect.gen(function* () {
      const { kind } = numbered(false)
      const reasonOf = (recycle: unknown) =>
        Effect.map(
          Effect.flip(Worker.fromKind(WorkerId.make(0), kind, { recycle: recycle as never })),
          (error) => `${error._tag}: ${error.reason}`
        )
      assert.strictEqual(yield* reasonOf(5), "InvalidOptions: recycle must be an object, got 5")
      assert.strictEqual(
        yield* reasonOf({ maxRequests: 0 }),
        "InvalidOptions: recycle.maxRequests must be a positive integer, got 0"
      )
      assert.strictEqual(
        yield* reasonOf({ maxAge: "-1 seconds" }),
        "InvalidOptions: recycle.maxAge must be a finite, non-negative duration, got -1 seconds"
      )
      assert.strictEqual(
        yield* reasonOf({ maxAge: 0 }),
        "InvalidOptions: recycle.maxAge must be at least 1 millisecond"
      )
      assert.strictEqual(
        yield* reasonOf({ maxAge: "1 hour", ageJitter: 1 }),
        "InvalidOptions: recycle.ageJitter must be below 1"
      )
      assert.strictEqual(
        yield* reasonOf({ maxAge: "1 hour", ageJitter: -0.1 }),
        "InvalidOptions: recycle.ageJitter must be within [0, 1], got -0.1"
      )
      // No limit given: never recycled.
      const worker = yield* Worker.fromKind(WorkerId.make(1), kind, { recycle: {} })
      for (let i = 0; i < 5; i++) yield* worker.dispatch(undefined)
      assert.strictEqual((yield* worker.health).recycles, undefined)
    }).pipe(Effect.scoped)
  )

  it.effect(
    "an in-process worker over its memory limit (by its probe) takes no new request until its replacement serves",
    () =>
      Effect.gen(function* () {
        const { kind, served } = numbered(false)
        let bytes = 10 * 1024 * 1024
        const worker = yield* Worker.fromKind(WorkerId.make(0), kind, {
          maxInFlight: 2,
          recycle: { maxMemoryMb: 64, memoryProbe: Effect.sync(() => bytes), memoryCheckInterval: "1 second" }
        })
        const pool = yield* WorkerPool.make<Deferred.Deferred<void> | undefined, number, never>({})
        yield* pool.add(worker)
        const gate = yield* Deferred.make<void>()
        const held = yield* Effect.forkChild(pool.dispatch(gate))
        yield* Effect.yieldNow
        // Over the limit: at the next reading, it is due, and its replacement takes over.
        bytes = 65 * 1024 * 1024
        yield* TestClock.adjust("1 second")
        const during = yield* worker.health
        assert.deepStrictEqual([during.state, during.recycles, during.lastRecycle?.reason], ["Healthy", 1, "memory"])
        bytes = 10 * 1024 * 1024
        assert.strictEqual(yield* pool.dispatch(undefined), 1)
        // The request the old incarnation held finishes there.
        yield* Deferred.succeed(gate, undefined)
        assert.strictEqual(yield* Fiber.join(held), 0)
        assert.deepStrictEqual(served.slice(0, 2), [1, 1])
        const after = yield* worker.health
        assert.deepStrictEqual([after.completed, after.errored, after.crashes], [2, 0, 0])
      }).pipe(Effect.scoped)
  )

  it.effect("a memory limit the worker cannot measure, or below a fresh worker's memory, is refused", () =>
    Effect.gen(function* () {
      const { kind } = numbered(false)
      const unmeasured = yield* Effect.flip(Worker.fromKind(WorkerId.make(0), kind, { recycle: { maxMemoryMb: 64 } }))
      assert.strictEqual(
        unmeasured.reason,
        "recycle.maxMemoryMb needs the worker's memory: a worker of kind numbered does not report it, give recycle.memoryProbe"
      )
      const tooSmall = yield* Effect.flip(
        Worker.fromKind(WorkerId.make(1), kind, {
          recycle: { maxMemoryMb: 1, memoryProbe: Effect.succeed(3 * 1024 * 1024) }
        })
      )
      assert.strictEqual(
        tooSmall.reason,
        "recycle.maxMemoryMb is 1.0 MB, below the 3.0 MB a fresh worker of kind numbered takes: it would be recycled without end"
      )
      assert.strictEqual(
        (yield* Effect.flip(Worker.fromKind(WorkerId.make(2), kind, { recycle: { maxMemoryMb: 0 } }))).reason,
        "recycle.maxMemoryMb must be a positive number, got 0"
      )
      assert.strictEqual(
        (yield* Effect.flip(
          Worker.fromKind(WorkerId.make(3), kind, { recycle: { maxMemoryMb: 8, memoryProbe: 5 as never } })
        )).reason,
        "recycle.memoryProbe must be an Effect, got 5"
      )
    }).pipe(Effect.scoped)
  )
})

describe("recycling out of process", () => {
  it.live(
    "a thread whose handler leaks 1 MB per request stays under 66 MB with a 64 MB limit, as its runner reports it",
    () =>
      S.live(() =>
        Effect.gen(function* () {
          const pool = yield* WorkerPool.make({
            size: 1,
            // A long silence limit: a busy 2-CPU machine may hold an idle thread back for a while.
            worker: (id) =>
              Worker.fromKind(id, S.thread({ silenceLimit: "30 seconds" }), { recycle: { maxMemoryMb: 64 } })
          })
          const reported: Array<number> = []
          for (let i = 0; i < 200; i++) {
            const answer = yield* pool.dispatch({ _tag: "Leak", megabytes: 1 })
            reported.push(answer.value!)
          }
          const max = Math.max(...reported) / (1024 * 1024)
          assert.isBelow(max, 66, `the thread reported ${max.toFixed(1)} MB`)
          const [[, health]] = yield* pool.health
          assert.strictEqual(health.completed, 200)
          assert.strictEqual(health.errored, 0)
          // 200 MB leaked, 64 at most each: at least 3 recycles.
          assert.isAtLeast(health.recycles ?? 0, 3)
          assert.strictEqual(health.lastRecycle?.reason, "memory")
        })
      ),
    120_000
  )

  it.live(
    "threads recycled every 100 requests under a steady load of 16 callers: 8 recycles, no failure, the counts add up",
    () =>
      S.live(() =>
        Effect.gen(function* () {
          const pool = yield* WorkerPool.make({
            size: 2,
            worker: (id) =>
              Worker.fromKind(id, S.thread({ concurrency: 4, silenceLimit: "30 seconds" }), {
                recycle: { maxRequests: 100 }
              })
          })
          // 16 callers, each sending requests one after another until told to stop.
          let stop = false
          const exits: Array<Exit.Exit<{ readonly thread: number }, unknown>> = []
          const caller = Effect.whileLoop({
            while: () => !stop,
            body: () => Effect.exit(pool.dispatch({ _tag: "Echo", value: 1 })),
            step: (exit) => exits.push(exit)
          })
          const callers = yield* Effect.forkChild(
            Effect.all(
              Array.from({ length: 16 }, () => caller),
              { concurrency: 16 }
            )
          )
          const recycles = Effect.map(pool.health, (all) => all.reduce((n, [, h]) => n + (h.recycles ?? 0), 0))
          // Each recycle starts a thread (or takes the spare): it takes a while on a busy machine.
          // ... and until 10 threads have answered: the last replacement may take over before it answers.
          const answered = () => new Set(exits.map((exit) => (exit._tag === "Success" ? exit.value.thread : -1))).size
          yield* S.eventuallyEffect(
            "8 recycles and 10 threads answering",
            Effect.map(recycles, (n) => n >= 8 && answered() >= 2 + 8),
            100
          )
          stop = true
          yield* Fiber.join(callers)

          const failed = exits.filter((exit) => exit._tag === "Failure")
          assert.strictEqual(failed.length, 0, `failed: ${JSON.stringify(failed.slice(0, 3))}`)
          const health = (yield* pool.health).map(([, h]) => h)
          assert.strictEqual(
            health.reduce((n, h) => n + h.completed, 0),
            exits.length
          )
          assert.deepStrictEqual(
            health.map((h) => [h.errored, h.crashes, h.restarts, h.inFlight]),
            [
              [0, 0, 0, 0],
              [0, 0, 0, 0]
            ]
          )
          const threads = new Set(exits.map((exit) => (exit._tag === "Success" ? exit.value.thread : -1)))
          // Each incarnation is a thread of its own: the 2 first ones, then one per recycle.
          assert.isAtLeast(threads.size, 2 + 8)
        })
      ),
    120_000
  )

  it.live(
    "a subprocess's memory limit below its fresh RSS is refused, one above it accepted",
    () =>
      S.live(() =>
        Effect.gen(function* () {
          const kind = S.subprocess()
          const error = yield* Effect.flip(Worker.fromKind(WorkerId.make(0), kind, { recycle: { maxMemoryMb: 2 } }))
          assert.match(
            error.reason,
            /^recycle\.maxMemoryMb is 2\.0 MB, below the \d+\.\d MB a fresh worker of kind subprocess takes: it would be recycled without end$/
          )
          // A limit above it is accepted, and the worker serves.
          const worker = yield* Worker.fromKind(WorkerId.make(1), kind, { recycle: { maxMemoryMb: 4096 } })
          const answer = yield* worker.dispatch({ _tag: "Leak", megabytes: 1 })
          assert.isAbove(answer.value!, 2 * 1024 * 1024)
          assert.strictEqual((yield* worker.health).recycles, undefined)
        })
      ),
    60_000
  )
})
