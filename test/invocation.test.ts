/**
 * Calling a runner's handler (src/internal/invocation.ts), the one module
 * behind the child's runner and the remote runner: whatever the handler
 * does (throws, returns a value, a promise, an Effect), its end comes back
 * once, as one Exit; a cancel interrupts an Effect's fiber, or aborts a
 * promise's signal, and the promise's late result is then an interruption.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Deferred, Effect, Exit, Schema } from "effect"
import { DomainError } from "effect-worker-pool"
import * as Invocation from "../src/internal/invocation.ts"
import type { Handler } from "../src/Runner.ts"

/** Calls `handler` on `request`; resolves with every exit it reported, once the handler has stopped. */
const call = <Resp>(
  handler: Handler<number, Resp>,
  request = 1,
  cancel = false
): Effect.Effect<{ readonly exits: ReadonlyArray<Exit.Exit<Resp, unknown>>; readonly ran: boolean }> =>
  Effect.gen(function* () {
    const exits: Array<Exit.Exit<Resp, unknown>> = []
    const services = yield* Effect.context<never>()
    const invocation = Invocation.invoke(handler, request, 7, Effect.runForkWith(services), (exit) => {
      exits.push(exit)
    })
    if (invocation !== undefined) {
      if (cancel) invocation.cancel()
      yield* invocation.stopped
    }
    return { exits, ran: invocation !== undefined }
  })

describe("Invocation.invoke", () => {
  it.effect("a plain value is a success at once", () =>
    Effect.gen(function* () {
      const { exits, ran } = yield* call((n) => n + 1)
      assert.isFalse(ran)
      assert.deepStrictEqual(exits, [Exit.succeed(2)])
    })
  )

  it.effect("a throw is a failure with what was thrown, at once", () =>
    Effect.gen(function* () {
      const thrown = new DomainError({ reason: "no" })
      const { exits, ran } = yield* call(() => {
        throw thrown
      })
      assert.isFalse(ran)
      assert.deepStrictEqual(exits, [Exit.fail(thrown)])
    })
  )

  it.effect("a promise settles into a success or a failure", () =>
    Effect.gen(function* () {
      const resolved = yield* call(async (n) => n * 3, 5)
      assert.deepStrictEqual(resolved.exits, [Exit.succeed(15)])
      const rejection = new Error("rejected")
      const rejected = yield* call(() => Promise.reject(rejection))
      assert.deepStrictEqual(rejected.exits, [Exit.fail(rejection)])
    })
  )

  it.effect("a cancelled promise is aborted, and whatever it settles with is an interruption", () =>
    Effect.gen(function* () {
      let aborted: unknown
      const { exits } = yield* call(
        (_, { signal }) =>
          new Promise<number>((resolve) => {
            signal.addEventListener("abort", () => {
              aborted = signal.reason
              resolve(1)
            })
          }),
        1,
        true
      )
      assert.match(String(aborted), /the request was cancelled/)
      assert.strictEqual(exits.length, 1)
      assert.isTrue(Exit.isFailure(exits[0]!) && Cause.hasInterruptsOnly(exits[0].cause))
    })
  )

  it.effect("the handler's context carries the request's id", () =>
    Effect.gen(function* () {
      const { exits } = yield* call((_, { id }) => id)
      assert.deepStrictEqual(exits, [Exit.succeed(7)])
    })
  )

  it.effect("an Effect runs in a fiber of its own; its exit is the handler's", () =>
    Effect.gen(function* () {
      const failure = new DomainError({ reason: "bad input" })
      const succeeded = yield* call((n) => Effect.as(Effect.yieldNow, n))
      assert.deepStrictEqual(succeeded.exits, [Exit.succeed(1)])
      const failed = yield* call(() => Effect.andThen(Effect.yieldNow, Effect.fail(failure)))
      assert.deepStrictEqual(failed.exits, [Exit.fail(failure)])
      const died = yield* call(() => Effect.andThen(Effect.yieldNow, Effect.die("boom")))
      assert.isTrue(Exit.isFailure(died.exits[0]!) && Cause.hasDies(died.exits[0].cause))
    })
  )

  it.effect("a cancelled Effect is interrupted: its finalizers run before it counts as stopped", () =>
    Effect.gen(function* () {
      const started = yield* Deferred.make<void>()
      const finalized = yield* Deferred.make<void>()
      const exits: Array<Exit.Exit<number, unknown>> = []
      const services = yield* Effect.context<never>()
      const invocation = Invocation.invoke<number, number, DomainError, never>(
        () =>
          Deferred.succeed(started, undefined).pipe(
            Effect.andThen(Effect.never),
            Effect.ensuring(Deferred.succeed(finalized, undefined))
          ),
        1,
        1,
        Effect.runForkWith(services),
        (exit) => {
          exits.push(exit)
        }
      )
      assert.isDefined(invocation)
      assert.isDefined(invocation!.fiber)
      yield* Deferred.await(started)
      invocation!.cancel()
      yield* invocation!.stopped
      assert.isTrue(yield* Deferred.isDone(finalized))
      assert.strictEqual(exits.length, 1)
      assert.isTrue(Exit.isFailure(exits[0]!) && Cause.hasInterruptsOnly(exits[0].cause))
    })
  )

  it.effect.prop(
    "a plain value or a promise of it comes back once, as it was",
    { value: Schema.Number, promise: Schema.Boolean },
    ({ value, promise }) =>
      Effect.gen(function* () {
        const { exits } = yield* call(() => (promise ? Promise.resolve(value) : value))
        assert.strictEqual(exits.length, 1)
        assert.isTrue(Exit.isSuccess(exits[0]!) && Object.is(exits[0].value, value))
      })
  )
})
