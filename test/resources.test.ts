import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Schedule, Scope } from "effect"
import { TestClock } from "effect/testing"
import { DispatchPolicy, Worker, WorkerId, WorkerPool } from "effect-worker-pool"
import * as T from "./support.ts"

/**
 * A worker whose initialiser acquires a numbered resource per incarnation and
 * records every acquisition and release.
 */
const makeTracked = Effect.gen(function* () {
  const events: Array<string> = []
  let incarnation = 0
  const worker = yield* Worker.makeScoped(
    WorkerId.make(0),
    Effect.gen(function* () {
      const n = yield* Effect.acquireRelease(
        Effect.sync(() => {
          incarnation++
          events.push(`acquire ${incarnation}`)
          return incarnation
        }),
        (n) => Effect.sync(() => events.push(`release ${n}`))
      )
      return (request: T.Behaviour) =>
        // The resource must still be held while a request runs.
        Effect.suspend(() => {
          if (events.includes(`release ${n}`)) return Effect.die(new Error(`resource ${n} used after release`))
          return T.handler(request)
        })
    }),
    { restart: Schedule.spaced("1 second") }
  )
  return { worker, events }
})

describe("Worker resources", () => {
  it.effect("are released exactly once per incarnation: on crash, before restart, and at shutdown", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const { worker, events } = yield* makeTracked.pipe(Scope.provide(scope))
      assert.deepStrictEqual(events, ["acquire 1"])

      yield* Effect.flip(worker.dispatch(T.crash))
      assert.deepStrictEqual(events, ["acquire 1", "release 1"], "released on crash, before the restart delay")

      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(events, ["acquire 1", "release 1", "acquire 2"])

      yield* Effect.flip(worker.dispatch(T.die))
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* worker.dispatch(T.ok(5)), 5)

      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual(events, ["acquire 1", "release 1", "acquire 2", "release 2", "acquire 3", "release 3"])
    })
  )

  it.effect("are released after the requests still running on the incarnation have been stopped", () =>
    Effect.gen(function* () {
      const { worker, events } = yield* makeTracked
      const gate = yield* Deferred.make<number>()
      const waiting = yield* Effect.forkChild(worker.dispatch(T.wait(gate)))
      yield* Effect.yieldNow
      yield* Effect.flip(worker.dispatch(T.crash))
      const exit = yield* Fiber.await(waiting)
      assert.isTrue(Exit.isFailure(exit))
      assert.deepStrictEqual(events, ["acquire 1", "release 1"])
    })
  )

  it.effect("of every worker are released when the pool's scope closes", () =>
    Effect.gen(function* () {
      const released: Array<number> = []
      const scope = yield* Scope.make()
      const pool = yield* WorkerPool.make({
        policy: DispatchPolicy.RoundRobin,
        size: 3,
        worker: (id) =>
          Worker.makeScoped(
            id,
            Effect.acquireRelease(Effect.succeed(T.handler), () => Effect.sync(() => released.push(id)))
          )
      }).pipe(Scope.provide(scope))
      assert.strictEqual(yield* pool.dispatch(T.ok(1)), 1)
      assert.deepStrictEqual(released, [])
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual(
        released.toSorted((a, b) => a - b),
        [0, 1, 2]
      )
    })
  )
})
