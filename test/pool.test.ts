import { assert, describe, it } from "@effect/vitest"
import { Cause, Context, Deferred, Effect, Exit, Fiber, Layer, Option, Schedule } from "effect"
import { TestClock } from "effect/testing"
import {
  DispatchPolicy,
  DomainError,
  DuplicateWorkerId,
  InvalidOptions,
  NoWorker,
  Reported,
  StartFailed,
  Stopped,
  UnknownWorkerId,
  Worker,
  WorkerCrash,
  WorkerId,
  WorkerPool
} from "effect-worker-pool"
import * as T from "./support.ts"

const restart = { restart: Schedule.spaced("1 second") }
const makePool = (size: number, policy: DispatchPolicy.DispatchPolicy = DispatchPolicy.RoundRobin, maxInFlight = 1) =>
  WorkerPool.make({ policy, size, worker: (id) => Worker.make(id, T.handler, { ...restart, maxInFlight }) })

const pickIds = (pool: WorkerPool.WorkerPool<T.Behaviour, number>, n: number) =>
  Effect.forEach(Array.from({ length: n }), () =>
    Effect.map(pool.select, (w) => Option.getOrUndefined(Option.map(w, (worker) => worker.id as number)))
  )

describe("WorkerPool routing", () => {
  it.effect("routes around a crashed worker at once and takes it back after its restart", () =>
    Effect.gen(function* () {
      const pool = yield* makePool(3)
      assert.strictEqual(yield* pool.dispatch(T.ok(0)), 0) // worker 0
      const crash = yield* Effect.flip(pool.dispatch(T.crash)) // worker 1
      assert.deepStrictEqual(
        crash,
        new WorkerCrash({ reason: new Reported({ message: "engine failed" }), workerId: WorkerId.make(1) })
      )
      assert.deepStrictEqual(yield* pickIds(pool, 4), [2, 0, 2, 0])

      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(yield* pickIds(pool, 3), [1, 2, 0])
    })
  )

  it.effect("a crash fails only the requests of the crashed worker", () =>
    Effect.gen(function* () {
      const pool = yield* makePool(2, DispatchPolicy.RoundRobin, 2)
      const gate = yield* Deferred.make<number>()
      const onWorker0 = yield* Effect.forkChild(pool.dispatch(T.wait(gate)))
      const onWorker1 = yield* Effect.forkChild(pool.dispatch(T.wait(gate)))
      yield* Effect.yieldNow
      // The next pick is worker 0: crash it.
      yield* Effect.flip(pool.dispatch(T.crash))
      const exit0 = yield* Fiber.await(onWorker0)
      assert.deepStrictEqual(
        exit0,
        Exit.fail(new WorkerCrash({ reason: new Reported({ message: "engine failed" }), workerId: WorkerId.make(0) }))
      )
      yield* Deferred.succeed(gate, 42)
      assert.strictEqual(yield* Fiber.join(onWorker1), 42)
      const health = yield* pool.health
      assert.deepStrictEqual(
        health.map(([id, h]) => [id, h.state, h.errored, h.completed]),
        [
          [0, "Restarting", 2, 2],
          [1, "Healthy", 0, 1]
        ]
      )
    })
  )

  it.effect("a request that finds every worker restarting waits for the first one back", () =>
    Effect.gen(function* () {
      const pool = yield* makePool(2)
      yield* Effect.flip(pool.dispatch(T.crash))
      yield* Effect.flip(pool.dispatch(T.crash))
      assert.isTrue(Option.isNone(yield* pool.select))
      const waiting = yield* Effect.forkChild(pool.dispatch(T.ok(1)))
      yield* Effect.yieldNow
      assert.strictEqual(yield* pool.queued, 1)
      assert.isUndefined(waiting.pollUnsafe(), "it waits rather than fail")
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* Fiber.join(waiting), 1)
      assert.strictEqual(yield* pool.queued, 0)
    })
  )

  it.effect("a pool whose every worker fails to start refuses at once, and says why", () =>
    Effect.gen(function* () {
      const pool = yield* WorkerPool.make({
        size: 2,
        worker: (id) => Worker.makeScoped(id, Effect.fail("no model file"), restart)
      })
      const refused = yield* Effect.flip(pool.dispatch(T.ok(1)))
      assert.deepStrictEqual(
        refused,
        new WorkerCrash({
          reason: new NoWorker({
            message:
              "no worker available: none of the 2 workers can take a request or is coming back (2 failing to start (start failed: no model file))"
          })
        })
      )
    })
  )

  it.effect("requests wait out starts that only missed their start timeout, up to the third in a row", () =>
    Effect.gen(function* () {
      // Each start of worker `id` past `slowStarts` succeeds; the ones before miss their start timeout.
      const slowPool = (slowStarts: number) => {
        let starts = 0
        return WorkerPool.make({
          size: 1,
          worker: (id) =>
            Worker.makeScoped(
              id,
              Effect.suspend(() =>
                ++starts <= slowStarts
                  ? Effect.fail(
                      new WorkerCrash({
                        reason: new StartFailed({ message: `start ${starts} did not become ready`, timeoutMillis: 10 })
                      })
                    )
                  : Effect.succeed(T.handler)
              ),
              restart
            )
        })
      }
      // Two slow starts, then a ready one: the request waits for it and is served.
      const served = yield* Effect.scoped(
        Effect.gen(function* () {
          const pool = yield* slowPool(2)
          const fiber = yield* Effect.forkChild(pool.dispatch(T.ok(7)))
          yield* TestClock.adjust("1 second")
          yield* TestClock.adjust("1 second")
          return yield* Fiber.join(fiber)
        })
      )
      assert.strictEqual(served, 7)
      // Three slow starts in a row: nobody waits any longer.
      const refused = yield* Effect.scoped(
        Effect.gen(function* () {
          const pool = yield* slowPool(3)
          const fiber = yield* Effect.forkChild(Effect.flip(pool.dispatch(T.ok(7))))
          yield* TestClock.adjust("1 second")
          yield* TestClock.adjust("1 second")
          return yield* Fiber.join(fiber)
        })
      )
      assert.deepStrictEqual(
        refused,
        new WorkerCrash({
          reason: new NoWorker({
            message:
              "no worker available: none of the 1 workers can take a request or is coming back (1 failing to start (start 3 did not become ready))"
          })
        })
      )
    })
  )

  it.effect("least loaded spreads concurrent requests", () =>
    Effect.gen(function* () {
      const pool = yield* makePool(3, DispatchPolicy.LeastLoaded, 3)
      const gate = yield* Deferred.make<number>()
      const fibers = yield* Effect.forEach(Array.from({ length: 7 }), () =>
        Effect.forkChild(pool.dispatch(T.wait(gate)))
      )
      yield* Effect.yieldNow
      const inFlight = (yield* pool.health).map(([, h]) => h.inFlight)
      assert.deepStrictEqual(inFlight, [3, 2, 2])
      yield* Deferred.succeed(gate, 1)
      yield* Fiber.joinAll(fibers)
    })
  )

  it.effect("a policy that picks a worker it was not offered is reported as a defect naming it", () =>
    Effect.gen(function* () {
      const broken = DispatchPolicy.make({
        name: "Broken",
        initial: () => undefined,
        select: ({ state }) => ({ worker: WorkerId.make(7), state })
      })
      const pool = yield* makePool(2, broken)
      const exit = yield* Effect.exit(pool.dispatch(T.ok(1)))
      assert.isTrue(Exit.hasDies(exit))
      assert.include(
        String(Exit.isFailure(exit) && exit.cause),
        "dispatch policy Broken picked worker 7, which is not one it was offered"
      )
      assert.deepStrictEqual(
        (yield* pool.health).map(([, h]) => h.inFlight),
        [0, 0]
      )
    })
  )
})

describe("a dispatch's effect", () => {
  it.effect("may be run again, and twice at once: each run is a request of its own", () =>
    Effect.gen(function* () {
      let calls = 0
      const pool = yield* WorkerPool.make({
        size: 2,
        worker: (id) =>
          Worker.make(id, (n: number) =>
            Effect.suspend(() => {
              calls++
              // The first two runs fail with a domain error: a retry runs the same effect again.
              return calls <= 2 ? Effect.fail(new DomainError({ reason: `run ${calls}` })) : Effect.succeed(n * 10)
            })
          )
      })
      const once = pool.dispatch(4)
      assert.strictEqual(yield* Effect.retry(once, Schedule.recurs(2)), 40)
      assert.strictEqual(yield* once, 40)
      assert.deepStrictEqual(yield* Effect.all([once, once], { concurrency: 2 }), [40, 40])
      const health = yield* pool.health
      assert.deepStrictEqual(
        health.map(([, h]) => h.inFlight),
        [0, 0]
      )
      assert.strictEqual(
        health.reduce((n, [, h]) => n + h.completed, 0),
        6
      )
      assert.strictEqual(calls, 6)
    })
  )
})

describe("WorkerPool membership", () => {
  it.effect("add, remove, size and isEmpty", () =>
    Effect.gen(function* () {
      const pool = yield* WorkerPool.make<T.Behaviour, number>({})
      assert.strictEqual(pool.policy, "ShortestExpectedDelay")
      assert.isTrue(yield* pool.isEmpty)
      const w5 = yield* Worker.make(WorkerId.make(5), T.handler)
      const w2 = yield* Worker.make(WorkerId.make(2), T.handler)
      yield* pool.add(w5)
      yield* pool.add(w2)
      assert.strictEqual(yield* pool.size, 2)
      assert.deepStrictEqual(
        (yield* pool.health).map(([id]) => id),
        [2, 5]
      )

      const duplicate = yield* Effect.flip(pool.add(yield* Worker.make(WorkerId.make(2), T.handler)))
      assert.deepStrictEqual(duplicate, new DuplicateWorkerId({ workerId: WorkerId.make(2) }))

      yield* pool.remove(WorkerId.make(2))
      assert.strictEqual(yield* pool.size, 1)
      assert.strictEqual((yield* w2.health).state, "Stopped")
      const unknown = yield* Effect.flip(pool.remove(WorkerId.make(2)))
      assert.deepStrictEqual(unknown, new UnknownWorkerId({ workerId: WorkerId.make(2) }))
      assert.isFalse(yield* pool.isEmpty)
    })
  )

  it.effect(
    "remove takes a worker out and stops it; its request on its caller's fiber fails, and its caller goes on",
    () =>
      Effect.gen(function* () {
        const pool = yield* makePool(1)
        const removed = Option.getOrThrow(yield* pool.select)
        const gate = yield* Deferred.make<number>()
        const running = yield* Effect.forkChild(pool.dispatch(T.wait(gate)))
        yield* Effect.yieldNow
        assert.strictEqual((yield* removed.health).inFlight, 1)
        yield* pool.remove(WorkerId.make(0))
        assert.strictEqual(yield* pool.size, 0, "it leaves the pool at once")
        assert.strictEqual(
          T.reasonOf(yield* Effect.flip(pool.dispatch(T.ok(1)))),
          "no worker available: the pool is empty"
        )
        const exit = yield* Fiber.await(running)
        assert.isFalse(Exit.hasInterrupts(exit), "only the request was interrupted")
        assert.strictEqual(T.reasonOf(T.errorOf(exit)!), "worker 0 stopped: it was removed from the pool")
        const stopped = yield* removed.health
        assert.deepStrictEqual([stopped.state, stopped.inFlight, stopped.crashes], ["Stopped", 0, 0])
      })
  )

  it.effect("remove fails the requests a worker still runs on its fibers", () =>
    Effect.gen(function* () {
      const pool = yield* makePool(1, DispatchPolicy.RoundRobin, 2)
      const gate = yield* Deferred.make<number>()
      // A timeout puts it on a fiber of the worker (without one, it would run on its caller's fiber, to its end).
      const waiting = yield* Effect.forkChild(pool.dispatch(T.wait(gate), { timeout: "1 hour" }))
      yield* Effect.yieldNow
      yield* pool.remove(WorkerId.make(0))
      const exit = yield* Fiber.await(waiting)
      assert.deepStrictEqual(
        exit,
        Exit.fail(
          new WorkerCrash({
            reason: new Stopped({ message: "worker 0 stopped: it was removed from the pool" }),
            workerId: WorkerId.make(0)
          })
        )
      )
    })
  )

  it.effect("a worker the library did not make is refused, whatever its shape", () =>
    Effect.gen(function* () {
      const pool = yield* WorkerPool.make<number, number, never>({})
      const real = yield* Worker.make(WorkerId.make(0), (n: number) => Effect.succeed(n))
      const shape = {
        id: WorkerId.make(1),
        kind: "in-process",
        maxInFlight: 1,
        health: real.health,
        dispatch: (n: number) => Effect.succeed(n)
      }
      // @ts-expect-error the type is opaque: an object of the same shape is not a Worker
      const handMade: Worker.Worker<number, number, never> = shape
      assert.strictEqual(handMade.id, 1)
      // A forged brand does not help: the pool knows the workers it can drive.
      const forged: Worker.Worker<number, number, never> = { ...shape, [Worker.TypeId]: Worker.TypeId }
      const copied = { ...real, id: WorkerId.make(2) }
      for (const impostor of [forged, copied]) {
        const exit = yield* Effect.exit(pool.add(impostor))
        assert.isTrue(Exit.hasDies(exit))
        const defect = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined
        assert.instanceOf(defect, TypeError)
        assert.match((defect as TypeError).message, /was not made by Worker\.make, makeScoped or fromKind/)
      }
      assert.strictEqual(yield* pool.size, 0)
      yield* pool.add(real)
      assert.strictEqual(yield* pool.dispatch(7), 7)
    })
  )

  it.effect("invalid options are a typed error and start nothing", () =>
    Effect.gen(function* () {
      const fibers = yield* T.countFibers
      const worker = (id: WorkerId) => Worker.make(id, T.handler)
      const cases = [
        [{ size: -1, worker }, "size must be a non-negative integer, got -1"],
        [{ size: 1.5, worker }, "size must be a non-negative integer, got 1.5"],
        [{ size: 2 }, "size and worker must be given together"],
        [{ worker }, "size and worker must be given together"],
        [{ policy: {} as DispatchPolicy.DispatchPolicy }, "policy must have a name and a select function"]
      ] as const
      for (const [options, reason] of cases) {
        const error = yield* Effect.flip(fibers.track(WorkerPool.make(options)))
        assert.deepStrictEqual(error, new InvalidOptions({ reason }))
      }
      assert.strictEqual(fibers.started(), 0)
    })
  )
})

describe("WorkerPool.layer", () => {
  class Doubler extends Context.Service<Doubler, WorkerPool.WorkerPool<number, number, never>>()("test/Doubler") {
    static readonly layer = WorkerPool.layer(Doubler, {
      policy: DispatchPolicy.RoundRobin,
      size: 2,
      worker: (id) => Worker.make(id, (n: number) => Effect.succeed(n * 2))
    })
  }

  it.effect("provides the pool under a service key of the application's", () =>
    Effect.gen(function* () {
      const pool = yield* Doubler
      assert.strictEqual(yield* pool.dispatch(21), 42)
      assert.strictEqual(yield* pool.size, 2)
    }).pipe(Effect.provide(Doubler.layer))
  )

  it.effect("stops its workers when the layer is released", () =>
    Effect.gen(function* () {
      const fibers = yield* T.countFibers
      const pool = yield* fibers.track(
        Effect.scoped(Layer.build(Doubler.layer).pipe(Effect.map((context) => Context.get(context, Doubler))))
      )
      assert.strictEqual(fibers.active(), 0)
      assert.deepStrictEqual(
        (yield* pool.health).map(([, h]) => h.state),
        ["Stopped", "Stopped"]
      )
    })
  )
})
