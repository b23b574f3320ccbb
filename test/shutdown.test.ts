/**
 * Shutdown: the pool stops admitting, drains within its deadline, cuts what
 * is left with a typed outcome, and leaves no fiber running. Also the stream
 * of health changes.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, type Duration, Effect, Exit, Fiber, Logger, References, Schedule, Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import {
  DispatchPolicy,
  type DomainError,
  type InvalidOptions,
  PoolShutdown,
  Worker,
  WorkerId,
  WorkerPool
} from "effect-worker-pool"
import * as T from "./support.ts"

describe("shutdown", () => {
  it.effect("lets admitted requests finish within the drain deadline and refuses new ones", () =>
    Effect.gen(function* () {
      const fibers = yield* T.countFibers
      const scope = yield* Scope.make()
      const gate = yield* Deferred.make<number>()
      const { pool, admitted } = yield* fibers.track(
        Effect.gen(function* () {
          const pool = yield* WorkerPool.make({
            size: 2,
            drain: "5 seconds",
            worker: (id) => Worker.make(id, T.handler)
          }).pipe(Scope.provide(scope))
          const admitted = yield* Effect.forEach([1, 2, 3], () => Effect.forkChild(pool.dispatch(T.wait(gate))))
          yield* Effect.yieldNow
          return { pool, admitted }
        })
      )
      assert.strictEqual(yield* pool.queued, 1)
      const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
      yield* Effect.yieldNow
      assert.deepStrictEqual(
        yield* Effect.flip(pool.dispatch(T.ok(1))),
        new PoolShutdown({ reason: "the pool is shutting down: it admits no new request" })
      )
      yield* TestClock.adjust("4 seconds")
      assert.isUndefined(closing.pollUnsafe(), "still draining")
      yield* Deferred.succeed(gate, 8)
      yield* Fiber.join(closing)
      assert.deepStrictEqual(yield* Effect.forEach(admitted, Fiber.join), [8, 8, 8])
      assert.strictEqual(fibers.active(), 0)
      assert.deepStrictEqual(
        (yield* pool.health).map(([, h]) => h.state),
        ["Stopped", "Stopped"]
      )
    })
  )

  it.effect("after the deadline, queued and running requests fail with PoolShutdown and no fiber is left", () =>
    afterTheDeadline({ timeout: "1 hour" }, (exit) =>
      assert.deepStrictEqual(
        T.errorOf(exit),
        new PoolShutdown({ reason: "the pool shut down before the request finished" })
      )
    )
  )

  it.effect(
    "after the deadline, a request running on its caller's fiber (no timeout) fails with PoolShutdown, and its caller goes on",
    () =>
      afterTheDeadline({}, (exit) => {
        assert.isFalse(Exit.hasInterrupts(exit))
        assert.deepStrictEqual(
          T.errorOf(exit),
          new PoolShutdown({ reason: "the pool shut down before the request finished" })
        )
      })
  )

  it.effect("an idle pool closes at once", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      yield* WorkerPool.make({ size: 3, worker: (id) => Worker.make(id, T.handler) }).pipe(Scope.provide(scope))
      yield* Scope.close(scope, Exit.void)
    })
  )

  for (const path of ["its caller's fiber", "a fiber of its worker"] as const) {
    const warnings: Array<string> = []
    const logger = Logger.make<unknown, void>(({ logLevel, message, fiber }) => {
      if (logLevel !== "Warn") return
      const annotations = fiber.getRef(References.CurrentLogAnnotations)
      warnings.push(`${String(message)} ${JSON.stringify(annotations)}`)
    })
    it.effect(`a close held by a handler that cannot be interrupted (on ${path}) says which one it waits for`, () =>
      Effect.gen(function* () {
        const scope = yield* Scope.make()
        const gate = yield* Deferred.make<void>()
        const pool = yield* WorkerPool.make({
          size: 1,
          worker: (id) => Worker.make(id, (_: number) => Effect.uninterruptible(Deferred.await(gate))),
          drain: "1 second"
        }).pipe(Scope.provide(scope))
        const stuck = yield* Effect.forkChild(
          path === "its caller's fiber" ? pool.dispatch(1) : pool.dispatch(1, { timeout: "1 hour" })
        )
        yield* Effect.yieldNow
        const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
        yield* TestClock.adjust("1 second")
        assert.deepStrictEqual(warnings, [], "no word before the notice time")
        yield* TestClock.adjust("1 second")
        assert.strictEqual(warnings.length, 1)
        assert.match(
          warnings[0]!,
          /^closing waits for requests whose handlers cannot be interrupted \{"workerId":0,"requests":"\d+"\}$/
        )
        assert.isUndefined(closing.pollUnsafe(), "the close waits for the handler")
        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(closing)
        assert.isDefined(yield* Fiber.await(stuck))
        assert.strictEqual(warnings.length, 1)
      }).pipe(Effect.provideService(Logger.CurrentLoggers, new Set([logger])))
    )
  }
})

/**
 * Four requests on three workers (two made by the pool, one added by hand),
 * the pool closed, the drain deadline passed: the queued one fails with
 * `PoolShutdown`, each running one as `cut` checks, every resource is
 * released and no fiber is left.
 */
const afterTheDeadline = (
  options: { readonly timeout?: Duration.Input | undefined },
  cut: (exit: Exit.Exit<number, WorkerPool.DispatchError<DomainError>>) => void
) =>
  Effect.gen(function* () {
    const fibers = yield* T.countFibers
    const released: Array<number> = []
    const scope = yield* Scope.make()
    const gate = yield* Deferred.make<number>()
    const { pool, admitted } = yield* fibers.track(
      Effect.gen(function* () {
        const pool = yield* WorkerPool.make<T.Behaviour, number, DomainError, InvalidOptions>({
          policy: DispatchPolicy.RoundRobin,
          size: 2,
          drain: "5 seconds",
          ...options,
          worker: (id) =>
            Worker.makeScoped(
              id,
              Effect.as(
                Effect.addFinalizer(() => Effect.sync(() => released.push(id))),
                T.handler
              ),
              // A request without a timeout runs on its caller's fiber (whatever the worker's limit).
              { restart: Schedule.spaced("1 second") }
            )
        }).pipe(Scope.provide(scope))
        // Worker 1 is added by hand: the pool owns it too.
        yield* pool.add(yield* Worker.make(WorkerId.make(9), T.handler, { maxInFlight: 1 }))
        const admitted = yield* Effect.forEach([1, 2, 3, 4], () => Effect.forkChild(pool.dispatch(T.wait(gate))))
        yield* Effect.yieldNow
        return { pool, admitted }
      })
    )
    assert.strictEqual(yield* pool.queued, 1)
    const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
    yield* TestClock.adjust("5 seconds")
    yield* Fiber.join(closing)
    const exits = yield* Effect.forEach(admitted, Fiber.await)
    for (const exit of exits.slice(0, 3)) cut(exit)
    assert.deepStrictEqual(
      T.errorOf(exits[3]!),
      new PoolShutdown({ reason: "the pool shut down before the request started" })
    )
    assert.strictEqual(fibers.active(), 0)
    assert.deepStrictEqual(
      released.toSorted((a, b) => a - b),
      [0, 1]
    )
    const health = yield* pool.health
    assert.deepStrictEqual(
      health.map(([id, h]) => [id, h.state, h.inFlight, h.completed]),
      [
        [0, "Stopped", 0, 1],
        [1, "Stopped", 0, 1],
        [9, "Stopped", 0, 1]
      ]
    )
    // Cut by the pool, they count as errored; cut with their callers' fibers, as interrupted.
    const errored = health.reduce((n, [, h]) => n + h.errored, 0)
    const interrupted = health.reduce((n, [, h]) => n + h.interrupted, 0)
    assert.deepStrictEqual(
      [errored, interrupted],
      exits.slice(0, 3).every((exit) => Exit.hasInterrupts(exit)) ? [0, 3] : [3, 0]
    )
  })

describe("health changes", () => {
  it.effect("a stream follows every change of state: crash, restart attempt, start, stop", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const pool = yield* WorkerPool.make({
        size: 1,
        worker: (id) => Worker.make(id, T.handler, { restart: Schedule.spaced("1 second") })
      }).pipe(Scope.provide(scope))
      const collected = yield* Effect.forkChild(Stream.runCollect(pool.changes))
      yield* Effect.yieldNow
      yield* Effect.flip(pool.dispatch(T.crash))
      yield* TestClock.adjust("1 second")
      yield* Scope.close(scope, Exit.void)
      const events = yield* Fiber.join(collected)
      assert.deepStrictEqual(
        events.map(([id, h]) => `${id}:${h.state}:${h.attempt}`),
        ["0:Restarting:0", "0:Restarting:1", "0:Starting:1", "0:Healthy:1", "0:Stopped:1"]
      )
      assert.strictEqual(events[0]![1].lastCrash?.reason, "engine failed")
    })
  )
})
