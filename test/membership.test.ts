/**
 * What a pool tells about its members: why no worker can take a request
 * (the reason of its `WorkerCrash`), and the changes of each worker's state
 * on `changes`. In virtual time.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Schedule, Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import { DispatchPolicy, Worker, WorkerCrash, WorkerId, type WorkerKind, WorkerPool } from "effect-worker-pool"
import * as T from "./support.ts"

/** A kind that cannot start. */
const broken: WorkerKind.WorkerKind<T.Behaviour, number, never> = {
  name: "broken",
  spawn: Effect.fail("no such script")
}

describe("why no worker can take a request", () => {
  it.effect("each worker's state, with why it retired or why it fails to start, counted by label", () =>
    Effect.gen(function* () {
      const pool = yield* WorkerPool.make<T.Behaviour, number, any>({ policy: DispatchPolicy.LeastLoaded })
      yield* pool.add(yield* Worker.make(WorkerId.make(0), T.handler, { maxRestarts: 0 }))
      yield* pool.add(yield* Worker.make(WorkerId.make(1), T.handler, { restart: Schedule.recurs(0) }))
      yield* pool.add(yield* Worker.make(WorkerId.make(2), T.handler, { maxRestarts: 0 }))
      yield* pool.add(yield* Worker.fromKind(WorkerId.make(3), broken, { restart: Schedule.spaced("1 second") }))
      for (let i = 0; i < 3; i++) yield* Effect.exit(pool.dispatch(T.crash))

      const refused = T.errorOf(yield* Effect.exit(pool.dispatch(T.ok(1))))
      assert.instanceOf(refused, WorkerCrash)
      const message = T.reasonOf(refused!)
      const budget = message.match(/\d+ Retired \((its restart budget is exhausted: [^)]*)\)/)
      assert.isNotNull(budget, message)
      assert.strictEqual(
        message,
        "no worker available: none of the 4 workers can take a request or is coming back (" +
          `2 Retired (${budget![1]}), 1 Retired (its restart schedule is exhausted), ` +
          "1 failing to start (start failed: no such script))"
      )
    })
  )

  it.effect("an empty pool says so", () =>
    Effect.gen(function* () {
      const pool = yield* WorkerPool.make<T.Behaviour, number, any>({})
      const refused = T.errorOf(yield* Effect.exit(pool.dispatch(T.ok(1))))
      assert.strictEqual(T.reasonOf(refused!), "no worker available: the pool is empty")
    })
  )
})

describe("changes", () => {
  it.effect("publishes each change of a worker's state or restart attempt, once, and nothing for requests", () =>
    Effect.gen(function* () {
      const pool = yield* WorkerPool.make({
        policy: DispatchPolicy.RoundRobin,
        size: 2,
        worker: (id) => Worker.make(id, T.handler, { restart: Schedule.spaced("1 second") }),
        ejection: false
      })
      const seen: Array<string> = []
      yield* Effect.forkChild(
        Stream.runForEach(pool.changes, ([id, health]) =>
          Effect.sync(() => seen.push(`${id} ${health.state} ${health.attempt} ${health.ejectedUntil ?? "-"}`))
        )
      )
      yield* Effect.yieldNow
      // Worker 1 crashes (round robin), and restarts after a second; requests that answer change nothing.
      yield* pool.dispatch(T.ok(1))
      yield* Effect.exit(pool.dispatch(T.crash))
      yield* TestClock.adjust("1 second")
      for (let i = 0; i < 4; i++) yield* pool.dispatch(T.ok(i))
      yield* Effect.yieldNow
      assert.deepStrictEqual(seen, ["1 Restarting 0 -", "1 Restarting 1 -", "1 Starting 1 -", "1 Healthy 1 -"])
    })
  )
})

describe("joining and leaving", () => {
  it.effect("a worker of another pool is refused, and stays with its pool", () =>
    Effect.gen(function* () {
      const first = yield* WorkerPool.make<T.Behaviour, number, any>({})
      const second = yield* WorkerPool.make<T.Behaviour, number, any>({})
      const worker = yield* Worker.make(WorkerId.make(0), T.handler)
      yield* first.add(worker)
      const exit = yield* Effect.exit(second.add(worker))
      const defect = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined
      assert.instanceOf(defect, TypeError)
      assert.strictEqual((defect as TypeError).message, "worker 0 belongs to another pool")
      assert.deepStrictEqual([yield* first.size, yield* second.size], [1, 0])
      assert.strictEqual(yield* first.dispatch(T.ok(3)), 3)
    })
  )

  it.effect("a worker added to a pool that shut down is stopped, and never joins", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const pool = yield* WorkerPool.make<T.Behaviour, number, any>({}).pipe(Scope.provide(scope))
      yield* Scope.close(scope, Exit.void)
      const worker = yield* Worker.make(WorkerId.make(5), T.handler)
      yield* pool.add(worker)
      assert.strictEqual(yield* pool.size, 0)
      assert.strictEqual((yield* worker.health).state, "Stopped")
    })
  )

  it.effect("a removed worker is never picked again, and the pool refuses at once when none is left", () =>
    Effect.gen(function* () {
      const pool = yield* WorkerPool.make({
        policy: DispatchPolicy.RoundRobin,
        size: 2,
        worker: (id) => Worker.make(id, T.handler)
      })
      yield* pool.remove(WorkerId.make(0))
      const ids: Array<number> = []
      for (let i = 0; i < 4; i++) {
        const selected = yield* pool.select
        if (selected._tag === "Some") ids.push(selected.value.id)
        yield* pool.dispatch(T.ok(i))
      }
      assert.deepStrictEqual(ids, [1, 1, 1, 1])
      yield* pool.remove(WorkerId.make(1))
      const refused = T.errorOf(yield* Effect.exit(pool.dispatch(T.ok(9))))
      assert.strictEqual(T.reasonOf(refused!), "no worker available: the pool is empty")
    })
  )
})
