/**
 * The three ways a request runs on a worker (on its caller's fiber, on a
 * fiber of the incarnation, through `submit`), at the edges each has: a
 * handler that interrupts itself, a kind that fails its own requests when it
 * dies (and so runs them on their callers' fibers), a stop that cuts a
 * request, a removal that lets one finish. In virtual time.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Schedule, Scope } from "effect"
import {
  Defect,
  DispatchPolicy,
  DomainError,
  type InvalidOptions,
  PoolShutdown,
  Worker,
  WorkerCrash,
  WorkerId,
  type WorkerKind,
  WorkerPool
} from "effect-worker-pool"
import * as T from "./support.ts"

const restart = Schedule.spaced("1 second")

/** A handler that interrupts itself on "interrupt", answers the number of a request otherwise. */
const selfInterrupting = (request: string) =>
  request === "interrupt" ? Effect.interrupt : Effect.succeed(request.length)

const interruptedItself = (id: number) =>
  new WorkerCrash({ reason: new Defect({ message: "the handler was interrupted" }), workerId: WorkerId.make(id) })

const counts = (health: { readonly crashes: number; readonly completed: number; readonly inFlight: number }) => [
  health.crashes,
  health.completed,
  health.inFlight
]

describe("a handler that interrupts itself", () => {
  for (const [where, maxInFlight, timeout] of [
    ["on its caller's fiber (one slot)", 1, undefined],
    ["on a fiber of the worker (several slots)", 2, undefined],
    ["on a fiber of the worker (a timeout)", 1, "1 minute"]
  ] as const) {
    it.effect(`${where}: a WorkerCrash (Defect), and the worker is restarted`, () =>
      Effect.gen(function* () {
        const pool = yield* WorkerPool.make({
          size: 1,
          worker: (id) => Worker.make(id, selfInterrupting, { maxInFlight, restart })
        })
        const exit = yield* Effect.exit(pool.dispatch("interrupt", { timeout }))
        assert.deepStrictEqual(exit, Exit.fail(interruptedItself(0)))
        const [[, health]] = yield* pool.health
        assert.deepStrictEqual([...counts(health), health.state], [1, 1, 0, "Restarting"])
      })
    )
  }

  it.effect("on Worker.dispatch: the same crash", () =>
    Effect.gen(function* () {
      const worker = yield* Worker.make(WorkerId.make(4), selfInterrupting, { restart })
      assert.deepStrictEqual(yield* Effect.exit(worker.dispatch("interrupt")), Exit.fail(interruptedItself(4)))
      assert.deepStrictEqual(counts(yield* worker.health), [1, 1, 0])
    })
  )
})

describe("a kind that fails its own requests when it dies (settlesOnDeath, no submit)", () => {
  /** Its requests run on their callers' fibers; "bad" is a domain error, "crash" crashes the incarnation. */
  const settling: WorkerKind.WorkerKind<string, number, DomainError> = {
    name: "settling",
    spawn: Effect.succeed({
      run: (request: string) =>
        request === "bad"
          ? Effect.fail(new DomainError({ reason: "bad request" }))
          : request === "crash"
            ? Effect.fail(WorkerCrash.report("the child died"))
            : Effect.succeed(request.length),
      exited: Effect.never,
      settlesOnDeath: true
    })
  }

  it.effect("in a pool: answers, domain errors and crashes, counted", () =>
    Effect.gen(function* () {
      const pool = yield* WorkerPool.make<string, number, DomainError, InvalidOptions>({
        policy: DispatchPolicy.RoundRobin,
        size: 1,
        worker: (id) => Worker.fromKind(id, settling, { restart })
      })
      assert.strictEqual(yield* pool.dispatch("four"), 4)
      assert.strictEqual(T.errorOf(yield* Effect.exit(pool.dispatch("bad")))?._tag, "DomainError")
      assert.strictEqual(T.errorOf(yield* Effect.exit(pool.dispatch("crash")))?._tag, "WorkerCrash")
      const [[, health]] = yield* pool.health
      assert.deepStrictEqual([health.completed, health.errored, health.crashes, health.inFlight], [3, 2, 1, 0])
    })
  )

  it.effect("through Worker.dispatch: the same", () =>
    Effect.gen(function* () {
      const worker = yield* Worker.fromKind(WorkerId.make(0), settling, { restart })
      assert.strictEqual(yield* worker.dispatch("three"), 5)
      assert.strictEqual(T.errorOf(yield* Effect.exit(worker.dispatch("bad")))?._tag, "DomainError")
      assert.strictEqual(T.errorOf(yield* Effect.exit(worker.dispatch("crash")))?._tag, "WorkerCrash")
      const health = yield* worker.health
      assert.deepStrictEqual([health.completed, health.errored, health.crashes, health.inFlight], [3, 2, 1, 0])
    })
  )
})

describe("a stop", () => {
  it.effect("past the drain, a request running on a fiber of its worker fails with PoolShutdown", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const pool = yield* WorkerPool.make({
        size: 1,
        drain: 0,
        worker: (id) => Worker.make(id, T.handler, { maxInFlight: 2 })
      }).pipe(Scope.provide(scope))
      const gate = yield* Deferred.make<number>()
      const running = yield* Effect.forkChild(pool.dispatch(T.wait(gate)))
      yield* Effect.yieldNow
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual(
        yield* Fiber.await(running),
        Exit.fail(new PoolShutdown({ reason: "the pool shut down before the request finished" }))
      )
      const [[, health]] = yield* pool.health
      assert.deepStrictEqual([health.state, health.inFlight, health.crashes], ["Stopped", 0, 0])
    })
  )

  it.effect("a removal fails a request running on its caller's fiber, inside the request, and the worker stops", () =>
    Effect.gen(function* () {
      const pool = yield* WorkerPool.make<T.Behaviour, number, any>({})
      const worker = yield* Worker.make(WorkerId.make(0), T.handler, { maxInFlight: 1 })
      yield* pool.add(worker)
      const gate = yield* Deferred.make<number>()
      const running = yield* Effect.forkChild(pool.dispatch(T.wait(gate)))
      yield* Effect.yieldNow
      yield* pool.remove(worker.id)
      assert.strictEqual(yield* pool.size, 0)
      const exit = yield* Fiber.await(running)
      assert.isFalse(Exit.hasInterrupts(exit), "its caller goes on")
      assert.strictEqual(T.reasonOf(T.errorOf(exit)!), "worker 0 stopped: it was removed from the pool")
      const health = yield* worker.health
      assert.deepStrictEqual([health.state, health.inFlight, health.interrupted, health.crashes], ["Stopped", 0, 0, 0])
    })
  )
})
