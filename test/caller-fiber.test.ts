/**
 * A request on its caller's fiber, on an in-process worker that holds
 * several requests at once (the adaptive default, or a fixed limit above 1):
 * when another request crashes the incarnation, the restart tears it down
 * inside the request. It fails with `WorkerCrash` (counted as `torn`), its
 * caller's fiber goes on, the restart waits for it no longer than for a
 * request on a fiber of the worker, and a shutdown after it ends. A handler
 * that cannot be interrupted holds the restart until it ends, and says so.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Deferred, Effect, Exit, Fiber, Logger, References, Schedule, Schema, Scope } from "effect"
import { TestClock } from "effect/testing"
import { DomainError, PoolShutdown, Worker, WorkerCrash, type WorkerHealth, WorkerPool } from "effect-worker-pool"
import * as CallerFiber from "../src/internal/callerFiber.ts"
import * as FiberFrames from "../src/internal/fiberFrames.ts"
import * as T from "./support.ts"

/** The crash the test handler's `Crash` request reports. */
const engineFailed = (error: unknown) =>
  error instanceof WorkerCrash && error.reason.message === "engine failed" && error.workerId === 0

/** Whether `fiber` is interrupted now (Effect keeps an interruption on the fiber until it ends). */
const interruptedNow = (fiber: Fiber.Fiber<unknown, unknown>): boolean =>
  (fiber as unknown as { readonly _interruptedCause: unknown })._interruptedCause !== undefined

/** The limit of the pool's one worker now. */
const limitOf = (pool: { readonly health: Effect.Effect<ReadonlyArray<readonly [unknown, WorkerHealth]>> }) =>
  Effect.map(pool.health, (workers) => workers[0]![1].maxInFlight ?? 1)

/**
 * One pool of one worker that holds at least 6 requests at once: `adaptive`
 * (the default: the pool fills the limit with requests of 100 ms, answered
 * at the same time, until slow start has raised it), or a fixed limit of 6.
 */
const onePool = (adaptive: boolean) =>
  Effect.gen(function* () {
    const pool = yield* WorkerPool.make({
      size: 1,
      drain: 0,
      worker: (id) =>
        Worker.make(id, T.handler, { restart: Schedule.spaced("1 second"), ...(adaptive ? {} : { maxInFlight: 6 }) })
    })
    for (let round = 0; round < 10 && (yield* limitOf(pool)) < 6; round++) {
      const gate = yield* Deferred.make<number>()
      const limit = yield* limitOf(pool)
      const fibers = yield* Effect.forEach(Array.from({ length: limit }), () =>
        Effect.forkChild(pool.dispatch(T.wait(gate)))
      )
      yield* Effect.yieldNow
      yield* TestClock.adjust("100 millis")
      yield* Deferred.succeed(gate, 0)
      yield* Fiber.joinAll(fibers)
    }
    assert.isAtLeast(yield* limitOf(pool), 6, "the limit holds every request of the test")
    return pool
  })

/** One worker of 4 slots whose handler waits for a `Wait` request's gate in an uninterruptible region. */
const maskingPool = WorkerPool.make({
  size: 1,
  worker: (id) =>
    Worker.make(
      id,
      (request: T.Behaviour) =>
        request._tag === "Wait" ? Effect.uninterruptible(Deferred.await(request.gate)) : T.handler(request),
      { restart: Schedule.spaced("1 second"), maxInFlight: 4 }
    )
})

describe("a request on its caller's fiber, torn down by another request's crash", () => {
  it.effect("the Effect runtime keeps a fiber's interruption where a teardown can clear it (else: fiber path)", () =>
    Effect.gen(function* () {
      // When this fails, the fast path is off: every in-process request runs on a fiber of its worker.
      const fiber = yield* Effect.forkChild(Effect.never)
      assert.isTrue(CallerFiber.canTearDown(fiber))
      assert.isTrue(CallerFiber.hasInterruptFields(fiber))
      assert.isFalse(CallerFiber.hasInterruptFields({} as never))
      assert.isFalse(CallerFiber.hasInterruptFields({ _interruptedCause: undefined } as never))
      assert.isFalse(CallerFiber.hasInterruptFields({ _deferredInterrupt: false } as never))
      yield* Fiber.interrupt(fiber)
    })
  )

  it.effect("frames pushed on the caller's fiber act as the effects that make them (else: wrapping effects)", () =>
    Effect.gen(function* () {
      // When this fails, a dispatch wraps its handler in effects again (slower, the same outcomes).
      const fiber = yield* Effect.forkChild(Effect.never)
      assert.isTrue(FiberFrames.canPush(fiber))
      assert.isTrue(FiberFrames.hasStack(fiber))
      assert.isFalse(FiberFrames.hasStack({} as never))
      assert.isFalse(FiberFrames.hasStack({ _stack: "not an array" } as never))
      // A run's frame also hands a success on to the next frame itself.
      assert.isTrue(FiberFrames.canPushRun(fiber))
      assert.isTrue(FiberFrames.hasRunLoop(fiber))
      assert.isFalse(FiberFrames.hasRunLoop({ _stack: [] } as never))
      assert.isFalse(FiberFrames.hasRunLoop({ _stack: [], getCont: () => undefined } as never))
      assert.isFalse(FiberFrames.hasRunLoop({ _stack: [], yieldWith: () => undefined } as never))
      assert.isFalse(FiberFrames.hasRunLoop({ getCont: () => undefined, yieldWith: () => undefined } as never))
      yield* Fiber.interrupt(fiber)
      // An exit frame sees how what it wraps ends, called on its frame (it reads what the frame is about).
      const seen: Array<readonly [string, Exit.Exit<unknown, unknown>]> = []
      const passed = yield* Effect.withFiber((self) => {
        FiberFrames.pushOnExit(self, "outer", function (exit: Exit.Exit<unknown, unknown>) {
          seen.push([this.about, exit])
          return undefined
        })
        return Effect.succeed("ok")
      })
      assert.strictEqual(passed, "ok")
      assert.deepStrictEqual(seen, [["outer", Exit.succeed("ok")]])
      // An exit frame sees an interruption of what it wraps, and its fiber's parent sees the fiber interrupted.
      const gate = yield* Deferred.make<void>()
      const interrupted = yield* Effect.forkChild(
        Effect.withFiber((self) => {
          FiberFrames.pushOnExit(self, "interrupted", function (exit: Exit.Exit<unknown, unknown>) {
            seen.push([this.about, exit])
            return undefined
          })
          return Effect.andThen(Deferred.succeed(gate, undefined), Effect.never)
        })
      )
      yield* Deferred.await(gate)
      yield* Fiber.interrupt(interrupted)
      assert.strictEqual(seen.length, 2)
      assert.strictEqual(seen[1]![0], "interrupted")
      assert.isTrue(Exit.hasInterrupts(seen[1]![1]))
    })
  )

  describe("a run's frame (one frame: its end judged where it cannot be interrupted, then what a failure's caller sees)", () => {
    /** Whether the fiber running this is interruptible now. */
    const interruptibleNow = Effect.withFiber((self) =>
      Effect.succeed((self as unknown as { readonly interruptible: boolean }).interruptible)
    )
    type Seen = Array<readonly [string, unknown]>
    /** A success's value, an interruption, or a failure's error. */
    const shown = (exit: Exit.Exit<unknown, unknown>): unknown =>
      Exit.isSuccess(exit) ? exit.value : Cause.hasInterrupts(exit.cause) ? "interrupted" : Cause.squash(exit.cause)
    /** Runs `body` under a run's frame about `about`; `failed` gives what a failure's caller sees. */
    const underRun = <A, E>(
      seen: Seen,
      body: Effect.Effect<A, E>,
      failed: (exit: Exit.Exit<unknown, unknown>) => Effect.Effect<unknown, unknown>,
      ended?: Effect.Effect<void>
    ) =>
      Effect.withFiber((self) => {
        assert.isTrue(FiberFrames.canPushRun(self))
        FiberFrames.pushRun(
          self,
          "run",
          function (exit) {
            seen.push([`ended ${this.about}`, shown(exit)])
            return ended
          },
          function (exit) {
            seen.push([`failed ${this.about}`, shown(exit)])
            return failed(exit)
          }
        )
        return body
      })

    it("its keys are those the run loop calls an exit frame by, and its restoring frame restores", () => {
      const keys = FiberFrames.findRunKeys()!
      assert.isDefined(keys)
      assert.isTrue(keys.success.endsWith("/successCont"))
      assert.isTrue(keys.failure.endsWith("/failureCont"))
      assert.isTrue(keys.always.endsWith("/ensureCont"))
      const fiber = { interruptible: false, _interruptedCause: undefined, _stack: [] }
      ;(keys.restore as Record<string, (fiber: unknown) => unknown>)[keys.always]!(fiber)
      assert.isTrue(fiber.interruptible)
      // A runtime laid out otherwise: no keys (the engine wraps effects instead).
      const called = (pushes: number) => (fiber: { interruptible: boolean; _stack: Array<unknown> }) => {
        fiber.interruptible = false
        for (let i = 0; i < pushes; i++) fiber._stack.push({})
      }
      const proto = (always: unknown, extra: Record<string, unknown> = {}) => ({
        "x/successCont": () => undefined,
        "x/failureCont": () => undefined,
        "x/ensureCont": always,
        ...extra
      })
      assert.isDefined(FiberFrames.findRunKeys(proto(called(1))))
      assert.isUndefined(FiberFrames.findRunKeys(proto(called(0))))
      assert.isUndefined(FiberFrames.findRunKeys(proto(called(2))))
      assert.isUndefined(FiberFrames.findRunKeys(proto((fiber: { _stack: Array<unknown> }) => fiber._stack.push({}))))
      assert.isUndefined(FiberFrames.findRunKeys(proto("not a function")))
      assert.isUndefined(
        FiberFrames.findRunKeys(
          proto(() => {
            throw new Error("no")
          })
        )
      )
      for (const missing of ["x/successCont", "x/failureCont"]) {
        assert.isUndefined(FiberFrames.findRunKeys(proto(called(1), { [missing]: undefined })))
      }
    })

    it.effect("a success in its caller's uninterruptible region leaves the region as it was", () =>
      Effect.gen(function* () {
        const [value, after] = yield* Effect.uninterruptible(
          Effect.gen(function* () {
            const value = yield* underRun([], Effect.succeed(1), () => Effect.die("not called"))
            return [value, yield* interruptibleNow] as const
          })
        )
        assert.deepStrictEqual([value, after], [1, false])
        assert.isTrue(yield* interruptibleNow)
      })
    )

    it.effect("a success passes through, judged once; a failure becomes what `failed` gives", () =>
      Effect.gen(function* () {
        const seen: Seen = []
        assert.strictEqual(yield* underRun(seen, Effect.succeed(1), () => Effect.die("not called")), 1)
        assert.deepStrictEqual(seen, [["ended run", 1]])
        const caught = yield* underRun(seen, Effect.fail("bad"), () => Effect.succeed("seen"))
        assert.strictEqual(caught, "seen")
        assert.deepStrictEqual(seen.slice(1), [
          ["ended run", "bad"],
          ["failed run", "bad"]
        ])
        // `failed` may give the failure back as it is.
        const exit = yield* Effect.exit(underRun(seen, Effect.fail("again"), (exit) => exit))
        assert.isTrue(Exit.isFailure(exit) && Cause.squash(exit.cause) === "again")
      })
    )

    it.effect("its end is judged where the fiber cannot be interrupted; what follows runs as its caller does", () =>
      Effect.gen(function* () {
        const seen: Seen = []
        const during = yield* Effect.exit(
          underRun(
            seen,
            Effect.fail("bad"),
            () => interruptibleNow,
            Effect.flatMap(interruptibleNow, (i) => Effect.sync(() => seen.push(["during", i])))
          )
        )
        // `ended`'s effect ran uninterruptibly; a retry (anything more than an outcome) runs interruptibly again.
        assert.deepStrictEqual(seen, [
          ["ended run", "bad"],
          ["during", false],
          ["failed run", "bad"]
        ])
        assert.isTrue(Exit.isSuccess(during) && during.value === true)
        // In a caller's own uninterruptible region, it stays so.
        const masked = yield* Effect.uninterruptible(underRun([], Effect.fail("bad"), () => interruptibleNow))
        assert.isFalse(masked)
        // The same without an effect of `ended`.
        assert.isTrue(yield* underRun([], Effect.fail("bad"), () => interruptibleNow))
        // A success leaves its caller interruptible.
        yield* underRun([], Effect.void, () => Effect.void)
        assert.isTrue(yield* interruptibleNow)
      })
    )

    it.effect("an interrupted caller leaves: its end is judged, and `failed` is not asked", () =>
      Effect.gen(function* () {
        const seen: Seen = []
        const gate = yield* Deferred.make<void>()
        const fiber = yield* Effect.forkChild(
          underRun(seen, Effect.andThen(Deferred.succeed(gate, undefined), Effect.never), () =>
            Effect.succeed("stayed")
          )
        )
        yield* Deferred.await(gate)
        yield* Fiber.interrupt(fiber)
        assert.isTrue(Exit.hasInterrupts(yield* Fiber.await(fiber)))
        assert.deepStrictEqual(seen, [["ended run", "interrupted"]])
      })
    )

    it.effect(
      "a run that succeeds while its caller holds an interruption not acted on: the caller leaves at once",
      () =>
        Effect.gen(function* () {
          const seen: Seen = []
          let wentOn = false
          // The interruption is held as Effect's runtime holds one it has not acted on yet.
          const holding = Effect.withFiber((self) => {
            ;(self as unknown as { _interruptedCause: unknown })._interruptedCause = Cause.interrupt(-1)
            return Effect.succeed(1)
          })
          const fiber = yield* Effect.forkChild(
            Effect.andThen(
              underRun(seen, holding, () => Effect.die("not called")),
              Effect.sync(() => {
                wentOn = true
              })
            )
          )
          assert.isTrue(Exit.hasInterrupts(yield* Fiber.await(fiber)))
          assert.deepStrictEqual(seen, [["ended run", 1]])
          assert.isFalse(wentOn)
        })
    )

    it.effect("an `ended` that throws fails its caller with the defect", () =>
      Effect.gen(function* () {
        const exit = yield* Effect.exit(
          Effect.withFiber((self) => {
            FiberFrames.pushRun(
              self,
              "run",
              (): undefined => {
                throw new Error("judge broke")
              },
              (exit) => exit
            )
            return Effect.succeed(1)
          })
        )
        assert.isTrue(Exit.isFailure(exit) && Cause.hasDies(exit.cause))
      })
    )
  })

  describe("clearing a teardown's interruption", () => {
    /** A fiber's interruption fields, as Effect's runtime keeps them. */
    const fiberHolding = (cause: Cause.Cause<never> | undefined) =>
      ({ _interruptedCause: cause, _deferredInterrupt: cause !== undefined }) as unknown as Fiber.Fiber<
        unknown,
        unknown
      >
    const fields = (fiber: Fiber.Fiber<unknown, unknown>) => fiber as unknown as Record<string, unknown>
    const by = CallerFiber.tearerId()

    it("tearers have ids of their own, below every fiber's, never the same twice", () => {
      const next = CallerFiber.tearerId()
      assert.isBelow(by, 0)
      assert.strictEqual(next, by - 1)
    })

    it("resume clears a fiber interrupted by the teardown alone, and only then", () => {
      const torn = fiberHolding(Cause.interrupt(by))
      assert.isTrue(CallerFiber.isInterrupted(torn))
      assert.isTrue(CallerFiber.resume(torn, Cause.interrupt(by), by))
      assert.isUndefined(fields(torn)._interruptedCause)
      assert.isFalse(fields(torn)._deferredInterrupt)
      assert.isFalse(CallerFiber.isInterrupted(torn))
      // What the handler ended with is not the teardown's interruption alone: the caller does not go on.
      for (const cause of [
        Cause.empty,
        Cause.fail("bad"),
        Cause.interrupt(7),
        Cause.combine(Cause.interrupt(by), Cause.interrupt(7)),
        Cause.combine(Cause.interrupt(by), Cause.fail("bad"))
      ]) {
        const fiber = fiberHolding(Cause.interrupt(by))
        assert.isFalse(CallerFiber.resume(fiber, cause, by), Cause.pretty(cause))
        assert.isTrue(CallerFiber.isInterrupted(fiber))
      }
      // Someone else interrupted the caller too: it leaves interrupted.
      const both = fiberHolding(Cause.combine(Cause.interrupt(by), Cause.interrupt(7)))
      assert.isFalse(CallerFiber.resume(both, Cause.interrupt(by), by))
      assert.isTrue(CallerFiber.isInterrupted(both))
    })

    it("forget clears the teardown's interruption only when it is the only one", () => {
      const torn = fiberHolding(Cause.interrupt(by))
      CallerFiber.forget(torn, by)
      assert.isFalse(CallerFiber.isInterrupted(torn))
      assert.isFalse(fields(torn)._deferredInterrupt)
      for (const held of [Cause.interrupt(7), Cause.combine(Cause.interrupt(by), Cause.interrupt(7))]) {
        const fiber = fiberHolding(held)
        CallerFiber.forget(fiber, by)
        assert.strictEqual(fields(fiber)._interruptedCause, held)
        assert.isTrue(fields(fiber)._deferredInterrupt)
      }
      const untouched = fiberHolding(undefined)
      CallerFiber.forget(untouched, by)
      assert.isFalse(CallerFiber.isInterrupted(untouched))
    })
  })

  for (const adaptive of [true, false]) {
    const limit = adaptive ? "an adaptive limit" : "a fixed limit of 4"
    it.effect(`fails with WorkerCrash, and its caller goes on (${limit})`, () =>
      Effect.gen(function* () {
        const pool = yield* onePool(adaptive)
        const gate = yield* Deferred.make<number>()
        const after = yield* Deferred.make<void>()
        const caller = yield* Effect.forkChild(
          Effect.gen(function* () {
            const exit = yield* Effect.exit(pool.dispatch(T.wait(gate)))
            // The caller goes on: it can wait, and it is not interrupted.
            yield* Deferred.await(after)
            return exit
          })
        )
        yield* Effect.yieldNow
        const [[, running]] = yield* pool.health
        assert.strictEqual(running.inFlight, 1)
        const crashed = yield* Effect.exit(pool.dispatch(T.crash))
        assert.isTrue(engineFailed(T.errorOf(crashed)))
        yield* Deferred.succeed(after, undefined)
        const exit = yield* Fiber.join(caller)
        assert.isFalse(Exit.hasInterrupts(exit), "only the request was interrupted")
        assert.isTrue(engineFailed(T.errorOf(exit)), "the crash that took it down")
        assert.isFalse(interruptedNow(caller))
        const [[, health]] = yield* pool.health
        assert.deepStrictEqual([health.crashes, health.inFlight, health.state], [1, 0, "Restarting"])
        // The restart did not wait for the gate: the worker serves after its delay.
        yield* TestClock.adjust("1 second")
        assert.strictEqual(yield* pool.dispatch(T.ok(7)), 7)
      }).pipe(Effect.scoped)
    )
  }

  it.effect("a recycled incarnation that a request crashes while it finishes its requests tears the others down", () =>
    Effect.gen(function* () {
      const pool = yield* WorkerPool.make({
        size: 1,
        worker: (id) => Worker.make(id, T.handler, { maxInFlight: 4, recycle: { maxRequests: 2 } })
      })
      const held = yield* Deferred.make<number>()
      const crashing = yield* Deferred.make<number>()
      const first = yield* Effect.forkChild(pool.dispatch(T.wait(held)))
      const second = yield* Effect.forkChild(pool.dispatch(T.wait(crashing)))
      for (let i = 0; i < 100 && (yield* pool.health)[0]![1].recycles === undefined; i++) yield* Effect.yieldNow
      assert.strictEqual((yield* pool.health)[0]![1].recycles, 1, "its replacement took over")
      yield* Deferred.fail(crashing, WorkerCrash.report("engine failed") as never)
      assert.isTrue(engineFailed(T.errorOf(yield* Fiber.await(second))))
      const exit = yield* Fiber.await(first)
      assert.isFalse(Exit.hasInterrupts(exit), "its caller goes on")
      assert.strictEqual(T.errorOf(exit)?._tag, "WorkerCrash")
      // The replacement serves.
      assert.strictEqual(yield* pool.dispatch(T.ok(5)), 5)
    }).pipe(Effect.scoped)
  )

  it.effect("a request on its caller's fiber, a later one that crashes, then shutdown: one outcome each", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const pool = yield* onePool(true).pipe(Scope.provide(scope))
      const gate = yield* Deferred.make<number>()
      const first = yield* Effect.forkChild(pool.dispatch(T.wait(gate)))
      const second = yield* Effect.forkChild(pool.dispatch(T.wait(gate)))
      yield* Effect.yieldNow
      assert.isTrue(engineFailed(T.errorOf(yield* Effect.exit(pool.dispatch(T.crash)))))
      // Shutdown while the worker restarts: it ends, and so does every request.
      yield* Scope.close(scope, Exit.void)
      for (const fiber of [first, second]) {
        const exit = yield* Fiber.await(fiber)
        assert.isTrue(engineFailed(T.errorOf(exit)))
        assert.isFalse(interruptedNow(fiber))
      }
      const [[, health]] = yield* pool.health
      assert.deepStrictEqual([health.state, health.inFlight, health.crashes], ["Stopped", 0, 1])
    })
  )

  it.effect("a caller interrupted by its parent as its request is torn down leaves interrupted", () => {
    const gate = Deferred.makeUnsafe<number>()
    return Effect.gen(function* () {
      const pool = yield* maskingPool
      // Both interruptions wait for the end of the handler's uninterruptible region.
      const caller = yield* Effect.forkChild(pool.dispatch(T.wait(gate)))
      // A caller that cannot be interrupted at all.
      const masked = yield* Effect.forkChild(Effect.uninterruptible(pool.dispatch(T.wait(gate))))
      yield* Effect.yieldNow
      caller.interruptUnsafe()
      // Its caller hears of the crash once the incarnation is gone: after the handlers end.
      const crashing = yield* Effect.forkChild(pool.dispatch(T.crash))
      yield* Effect.yieldNow
      yield* Deferred.succeed(gate, 1)
      const exit = yield* Fiber.await(caller)
      assert.isTrue(Exit.hasInterrupts(exit), "its parent's interruption stands")
      assert.isUndefined(T.errorOf(exit))
      // One whose caller cannot be interrupted ends with its own answer, and its caller is not left interrupted.
      assert.deepStrictEqual(yield* Fiber.await(masked), Exit.succeed(1))
      assert.isFalse(interruptedNow(masked))
      assert.isTrue(engineFailed(T.errorOf(yield* Fiber.await(crashing))))
      const [[, health]] = yield* pool.health
      assert.deepStrictEqual([health.crashes, health.completed, health.inFlight], [1, 3, 0])
    }).pipe(Effect.ensuring(Deferred.succeed(gate, 0)), Effect.scoped)
  })

  it.effect("a request that fails as its caller is interrupted counts as interrupted, and its caller leaves", () =>
    Effect.gen(function* () {
      // The handler has its caller interrupted (the interruption waits for the end of its uninterruptible
      // region), then fails with a domain error: the failure's frame is skipped, and the request's end is an
      // interruption, not a domain error.
      const callerOf = yield* Deferred.make<Fiber.Fiber<unknown, unknown>>()
      const pool = yield* WorkerPool.make({
        size: 1,
        worker: (id) =>
          Worker.make(id, (_: number) =>
            Effect.uninterruptible(
              Effect.gen(function* () {
                const caller = yield* Deferred.await(callerOf)
                caller.interruptUnsafe()
                return yield* Effect.fail(new DomainError({ reason: "bad" }))
              })
            )
          )
      })
      const caller = yield* Effect.forkChild(pool.dispatch(1))
      yield* Deferred.succeed(callerOf, caller)
      const exit = yield* Fiber.await(caller)
      assert.isTrue(Exit.hasInterrupts(exit), "its caller leaves interrupted")
      const [[, health]] = yield* pool.health
      assert.deepStrictEqual([health.completed, health.interrupted, health.errored, health.inFlight], [1, 1, 0, 0])
      // The pool serves on.
      yield* Deferred.succeed(callerOf, yield* Effect.forkChild(Effect.never))
      assert.instanceOf(T.errorOf(yield* Effect.exit(pool.dispatch(2))), DomainError)
    }).pipe(Effect.scoped)
  )

  it.effect("a handler that cannot be interrupted holds the restart until it ends, and says so", () => {
    const warnings: Array<string> = []
    const logger = Logger.make<unknown, void>(({ logLevel, message, fiber }) => {
      if (logLevel !== "Warn" || !String(message).startsWith("closing waits")) return
      warnings.push(`${String(message)} ${JSON.stringify(fiber.getRef(References.CurrentLogAnnotations))}`)
    })
    const gate = Deferred.makeUnsafe<number>()
    return Effect.gen(function* () {
      const pool = yield* maskingPool
      const stuck = yield* Effect.forkChild(pool.dispatch(T.wait(gate)))
      yield* Effect.yieldNow
      // Its caller hears of the crash once the incarnation is gone: after the handler ends.
      const crashing = yield* Effect.forkChild(pool.dispatch(T.crash))
      yield* Effect.yieldNow
      assert.deepStrictEqual(warnings, [], "no word before the notice time")
      yield* TestClock.adjust("1 second")
      assert.strictEqual(warnings.length, 1)
      assert.match(
        warnings[0]!,
        /^closing waits for requests whose handlers cannot be interrupted \{"workerId":0,"requests":"\d+"\}$/
      )
      const [[, held]] = yield* pool.health
      assert.deepStrictEqual([held.state, held.inFlight], ["Restarting", 1], "the restart waits")
      yield* Deferred.succeed(gate, 1)
      // Interrupted as it left its uninterruptible region: torn, its caller goes on.
      const exit = yield* Fiber.await(stuck)
      assert.isTrue(engineFailed(T.errorOf(exit)))
      assert.isFalse(interruptedNow(stuck))
      assert.isTrue(engineFailed(T.errorOf(yield* Fiber.await(crashing))))
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* pool.dispatch(T.ok(3)), 3)
    }).pipe(
      // A failed assertion must not leave the pool's close waiting for the handler.
      Effect.ensuring(Deferred.succeed(gate, 0)),
      Effect.scoped,
      Effect.provideService(Logger.CurrentLoggers, new Set([logger]))
    )
  })
})

describe("caller-fiber requests, a crash, then shutdown (property)", () => {
  /** Requests that wait (on callers' fibers), then one that crashes, more that wait, and a shutdown past the drain. */
  const Plan = Schema.Struct({
    before: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 4 })),
    after: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 3 })),
    adaptive: Schema.Boolean,
    drainMillis: Schema.Literals([0, 100])
  })
  it.effect.prop(
    "every request has one typed outcome, no caller is left interrupted, and the shutdown ends",
    [Plan],
    ([plan]) =>
      Effect.gen(function* () {
        const scope = yield* Scope.make()
        const pool = yield* onePool(plan.adaptive).pipe(Scope.provide(scope))
        const gate = yield* Deferred.make<number>()
        const fibers: Array<Fiber.Fiber<Exit.Exit<number, unknown>>> = []
        const fork = () => Effect.forkChild(Effect.exit(pool.dispatch(T.wait(gate))))
        for (let i = 0; i < plan.before; i++) fibers.push(yield* fork())
        yield* Effect.yieldNow
        assert.isTrue(engineFailed(T.errorOf(yield* Effect.exit(pool.dispatch(T.crash)))))
        for (let i = 0; i < plan.after; i++) fibers.push(yield* fork())
        yield* Effect.yieldNow
        const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
        yield* TestClock.adjust(plan.drainMillis)
        yield* TestClock.adjust("1 second")
        yield* Fiber.join(closing)
        for (const fiber of fibers) {
          const exit = yield* Fiber.join(fiber)
          const error = T.errorOf(exit)
          assert.isFalse(Exit.hasInterrupts(exit))
          assert.isTrue(engineFailed(error) || error instanceof PoolShutdown || error instanceof WorkerCrash)
          assert.isFalse(interruptedNow(fiber))
        }
        const [[, health]] = yield* pool.health
        assert.deepStrictEqual([health.state, health.inFlight], ["Stopped", 0])
      }),
    { timeout: 60_000, arbitrary: { runs: 40 } }
  )
})
