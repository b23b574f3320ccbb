/**
 * Every way a request is refused or ends without a worker's answer, as the
 * pool accounts for it: its caller's error, the `requests` metric under its
 * outcome, the time it waited in the queue, and what the pool logs when no
 * worker is left. In virtual time.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Logger, Metric, References, Schedule, Scope } from "effect"
import { TestClock } from "effect/testing"
import { DispatchPolicy, PoolMetrics, Worker, WorkerCrash, type WorkerId, WorkerPool } from "effect-worker-pool"
import * as T from "./support.ts"

const name = "accounted"
const pool = { pool: name, policy: "RoundRobin" }

/** A series of the registry: a counter's count, or a histogram's count and sum. */
const series = (
  snapshots: ReadonlyArray<Metric.Metric.Snapshot>,
  metric: Metric.Metric<any, any>,
  attributes: Record<string, string>
) =>
  snapshots.find(
    (s) =>
      s.id === metric.id &&
      Object.keys(attributes).length === Object.keys(s.attributes ?? {}).length &&
      Object.entries(attributes).every(([key, value]) => s.attributes?.[key] === value)
  )

const requests = (snapshots: ReadonlyArray<Metric.Metric.Snapshot>, outcome: string): number => {
  const found = series(snapshots, PoolMetrics.requests, { ...pool, outcome })
  return found?.type === "Counter" ? Number(found.state.count) : 0
}

const queueWait = (snapshots: ReadonlyArray<Metric.Metric.Snapshot>) => {
  const found = series(snapshots, PoolMetrics.queueWait, pool)
  return found?.type === "Histogram" ? { count: found.state.count, sum: found.state.sum } : undefined
}

/** Runs `effect` with a metric registry of its own, in a scope of its own. */
const isolated = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  effect.pipe(Effect.scoped, Effect.provideService(Metric.MetricRegistry, new Map()))

/** A pool of `size` workers, named for its metrics, worker 0 first. */
const makePool = (size: number, options: Partial<WorkerPool.Options<T.Behaviour, number, any, any, never>> = {}) =>
  WorkerPool.make({
    name,
    policy: DispatchPolicy.RoundRobin,
    size,
    worker: (id) => Worker.make(id, T.handler, { restart: Schedule.spaced("1 second") }),
    ...options
  })

/** Forks a dispatch and lets it reach the pool. */
const fork = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const fiber = yield* Effect.forkChild(effect)
    yield* Effect.yieldNow
    return fiber
  })

describe("refusals, as the pool accounts for them", () => {
  it.effect("a request that waited, then timed out: QueueTimeout, and its wait is in the queue-wait histogram", () =>
    isolated(
      Effect.gen(function* () {
        const p = yield* makePool(1, { queueTimeout: "2 seconds" })
        const gate = yield* Deferred.make<number>()
        const running = yield* fork(p.dispatch(T.wait(gate)))
        const waiting = yield* fork(p.dispatch(T.ok(1)))
        yield* TestClock.adjust("2 seconds")
        assert.strictEqual(T.errorOf(yield* Fiber.await(waiting))?._tag, "QueueTimeout")
        const snapshot = yield* Metric.snapshot
        assert.strictEqual(requests(snapshot, "QueueTimeout"), 1)
        // The first request took a slot at once (0 ms), the second waited 2 s.
        assert.deepStrictEqual(queueWait(snapshot), { count: 2, sum: 2000 })
        yield* Deferred.succeed(gate, 0)
        yield* Fiber.join(running)
      })
    )
  )

  it.effect("a request that waited and was dropped for a newer one: PoolBusy, with its wait", () =>
    isolated(
      Effect.gen(function* () {
        const p = yield* makePool(1, { queueCapacity: 1, queueStrategy: "dropOldest" })
        const gate = yield* Deferred.make<number>()
        const running = yield* fork(p.dispatch(T.wait(gate)))
        const dropped = yield* fork(p.dispatch(T.ok(1)))
        yield* TestClock.adjust("300 millis")
        const newer = yield* fork(p.dispatch(T.ok(2)))
        assert.strictEqual(T.errorOf(yield* Fiber.await(dropped))?._tag, "PoolBusy")
        const snapshot = yield* Metric.snapshot
        assert.strictEqual(requests(snapshot, "PoolBusy"), 1)
        assert.deepStrictEqual(queueWait(snapshot), { count: 2, sum: 300 })
        yield* Deferred.succeed(gate, 0)
        assert.strictEqual(yield* Fiber.join(newer), 2)
        yield* Fiber.join(running)
      })
    )
  )

  it.effect("a request that waited and left: counted Interrupted, with its wait", () =>
    isolated(
      Effect.gen(function* () {
        const p = yield* makePool(1)
        const gate = yield* Deferred.make<number>()
        const running = yield* fork(p.dispatch(T.wait(gate)))
        const leaving = yield* fork(p.dispatch(T.ok(1)))
        yield* TestClock.adjust("700 millis")
        yield* Fiber.interrupt(leaving)
        const snapshot = yield* Metric.snapshot
        assert.strictEqual(requests(snapshot, "Interrupted"), 1)
        assert.deepStrictEqual(queueWait(snapshot), { count: 2, sum: 700 })
        yield* Deferred.succeed(gate, 0)
        yield* Fiber.join(running)
      })
    )
  )

  it.effect("a request served after a wait: its wait is what it waited", () =>
    isolated(
      Effect.gen(function* () {
        const p = yield* makePool(1)
        const gate = yield* Deferred.make<number>()
        const running = yield* fork(p.dispatch(T.wait(gate)))
        const waiting = yield* fork(p.dispatch(T.ok(1)))
        yield* TestClock.adjust("1500 millis")
        yield* Deferred.succeed(gate, 0)
        yield* Fiber.join(running)
        assert.strictEqual(yield* Fiber.join(waiting), 1)
        const snapshot = yield* Metric.snapshot
        assert.strictEqual(requests(snapshot, "Success"), 2)
        assert.deepStrictEqual(queueWait(snapshot), { count: 2, sum: 1500 })
      })
    )
  )

  it.effect(
    "a policy that throws: the request it was asked to place dies (Defect), on a free slot or from the queue",
    () =>
      isolated(
        Effect.gen(function* () {
          const throwing = DispatchPolicy.make<undefined, T.Behaviour>({
            name: "RoundRobin",
            initial: () => undefined,
            select: ({ request, state, view }) => {
              if (request !== undefined && request._tag === "Domain") throw new Error("the policy broke")
              return { worker: view.at(0).id, state }
            }
          })
          const p = yield* makePool(1, { policy: throwing })
          const placed = yield* Effect.exit(p.dispatch(T.domain))
          assert.isTrue(Exit.isFailure(placed) && T.errorOf(placed) === undefined, "a defect, not an error")

          const gate = yield* Deferred.make<number>()
          const running = yield* fork(p.dispatch(T.wait(gate)))
          const queued = yield* fork(p.dispatch(T.domain))
          const behind = yield* fork(p.dispatch(T.ok(5)))
          yield* Deferred.succeed(gate, 0)
          yield* Fiber.join(running)
          const served = yield* Fiber.await(queued)
          assert.isTrue(Exit.isFailure(served) && T.errorOf(served) === undefined, "a defect, not an error")
          // The request behind it is served.
          assert.strictEqual(yield* Fiber.join(behind), 5)
          const snapshot = yield* Metric.snapshot
          assert.strictEqual(requests(snapshot, "Defect"), 2)
          assert.strictEqual(requests(snapshot, "Success"), 2)
          assert.strictEqual(yield* p.queued, 0)
        })
      )
  )

  it.effect("a pool that shuts down: a request that comes during the drain, and one still waiting after it", () =>
    isolated(
      Effect.gen(function* () {
        const scope = yield* Scope.make()
        // Without a timeout, the running request runs on its caller's fiber.
        const p = yield* makePool(1, {
          drain: "1 second",
          worker: (id) => Worker.make(id, T.handler, { restart: Schedule.spaced("1 second"), maxInFlight: 1 })
        }).pipe(Scope.provide(scope))
        const gate = yield* Deferred.make<number>()
        const running = yield* fork(p.dispatch(T.wait(gate)))
        const waiting = yield* fork(p.dispatch(T.ok(1)))
        const closing = yield* fork(Scope.close(scope, Exit.void))
        const late = yield* Effect.exit(p.dispatch(T.ok(2)))
        assert.strictEqual(T.errorOf(late)?._tag, "PoolShutdown")
        yield* TestClock.adjust("1 second")
        yield* Fiber.join(closing)
        const cut = T.errorOf(yield* Fiber.await(waiting))
        assert.strictEqual(cut?._tag, "PoolShutdown")
        // The request running on its caller's fiber is cut inside the request: its caller gets PoolShutdown.
        assert.strictEqual(T.errorOf(yield* Fiber.await(running))?._tag, "PoolShutdown")
        const snapshot = yield* Metric.snapshot
        // The late one, the one cut from the queue and the one cut while it ran; nobody interrupted.
        assert.deepStrictEqual([requests(snapshot, "PoolShutdown"), requests(snapshot, "Interrupted")], [3, 0])
      })
    )
  )

  it.effect("no worker that can serve or come back: WorkerCrash at once, counted, for new and waiting requests", () =>
    isolated(
      Effect.gen(function* () {
        const p = yield* WorkerPool.make({
          name,
          policy: DispatchPolicy.RoundRobin,
          size: 1,
          worker: (id) => Worker.make(id, T.handler, { maxRestarts: 0 })
        })
        const gate = yield* Deferred.make<number>()
        const crashing = yield* fork(p.dispatch(T.wait(gate)))
        const waiting = yield* fork(p.dispatch(T.ok(1)))
        yield* Deferred.fail(gate, WorkerCrash.report("lost the engine") as never)
        yield* Fiber.await(crashing)
        assert.strictEqual(T.errorOf(yield* Fiber.await(waiting))?._tag, "WorkerCrash")
        const refused = T.errorOf(yield* Effect.exit(p.dispatch(T.ok(2))))
        assert.strictEqual(refused?._tag, "WorkerCrash")
        const snapshot = yield* Metric.snapshot
        assert.strictEqual(requests(snapshot, "WorkerCrash"), 3)
      })
    )
  )
})

/** Runs `effect` with a logger that keeps the pool's lines about its workers: level, message, reason. */
const poolLog = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const lines: Array<string> = []
    const logger = Logger.make<unknown, void>(({ fiber, logLevel, message }) => {
      const text = String(Array.isArray(message) ? message[0] : message)
      if (!text.startsWith("the pool")) return
      const annotations = fiber.getRef(References.CurrentLogAnnotations) as Record<string, unknown>
      lines.push(`${logLevel}: ${text} (${String(annotations.reason)})`)
    })
    yield* effect.pipe(Effect.provideService(Logger.CurrentLoggers, new Set([logger])))
    return lines
  })

describe("the pool's log when no worker is left", () => {
  it.effect("every worker retired: one error, with the reason, however many requests are refused", () =>
    Effect.gen(function* () {
      const lines = yield* poolLog(
        Effect.gen(function* () {
          const p = yield* WorkerPool.make({
            size: 2,
            worker: (id) => Worker.make(id, T.handler, { maxRestarts: 0 })
          })
          yield* Effect.exit(p.dispatch(T.crash))
          yield* Effect.exit(p.dispatch(T.crash))
          yield* Effect.exit(p.dispatch(T.ok(1)))
          yield* Effect.exit(p.dispatch(T.ok(2)))
        }).pipe(Effect.scoped)
      )
      assert.strictEqual(lines.length, 1)
      assert.match(lines[0]!, /^Error: the pool has no worker that can serve or come back \(.*2 Retired.*\)$/)
    })
  )

  it.effect("every worker removed (stopped): said at debug level only, and nothing when the pool closes", () =>
    Effect.gen(function* () {
      const lines = yield* poolLog(
        Effect.gen(function* () {
          const p = yield* WorkerPool.make({ size: 2, worker: (id) => Worker.make(id, T.handler) })
          for (const [id] of yield* p.health) yield* p.remove(id as WorkerId)
          yield* Effect.yieldNow
        }).pipe(Effect.scoped, Effect.provideService(References.MinimumLogLevel, "Debug"))
      )
      assert.isTrue(lines.length <= 1)
      for (const line of lines) assert.match(line, /^Debug: /)
    })
  )
})
