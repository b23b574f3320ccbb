/**
 * A dispatch policy is user code too: one that throws from `onResult` (its
 * learning) must not cost a request its outcome, nor the pool its counts or
 * its close. A policy that throws from `select` fails the request it was
 * asked to place (see test/refusal-accounting.test.ts), and `pool.select`
 * dies with what it threw.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Logger, Option, Scope } from "effect"
import { DispatchPolicy, Worker, WorkerPool } from "effect-worker-pool"
import * as T from "./support.ts"

/** LeastLoaded, with an `onResult` that throws. */
const forgetful = DispatchPolicy.make<undefined, T.Behaviour>({
  name: "Forgetful",
  initial: () => undefined,
  select: (input) => DispatchPolicy.LeastLoaded.select(input),
  onResult: () => {
    throw new Error("the policy could not learn")
  }
})

describe("a policy whose onResult throws", () => {
  for (const [path, options] of [
    ["on its caller's fiber", {}],
    ["on a fiber of the worker (a timeout)", { timeout: "1 minute" }]
  ] as const) {
    it.effect(
      `${path}: every request gets its outcome, the counts stay exact, close returns, one error is logged`,
      () =>
        Effect.gen(function* () {
          const errors: Array<string> = []
          const logger = Logger.make<unknown, void>(({ logLevel, message }) => {
            if (logLevel === "Error") errors.push(String(Array.isArray(message) ? message[0] : message))
          })
          yield* Effect.gen(function* () {
            const scope = yield* Scope.make()
            const pool = yield* WorkerPool.make({
              policy: forgetful,
              size: 2,
              worker: (id) => Worker.make(id, T.handler),
              ...options
            }).pipe(Scope.provide(scope))
            const exits = yield* Effect.forEach([T.ok(1), T.domain, T.ok(3), T.crash, T.ok(5)], (b) =>
              Effect.exit(pool.dispatch(b))
            )
            assert.deepStrictEqual(
              exits.map((exit) => (Exit.isSuccess(exit) ? exit.value : T.errorOf(exit)?._tag)),
              [1, "DomainError", 3, "WorkerCrash", 5]
            )
            const completed = (yield* pool.health).reduce((n, [, h]) => n + h.completed, 0)
            assert.strictEqual(completed, 5)
            // Nothing is left admitted: the close does not wait for a drain (no time passes here).
            yield* Scope.close(scope, Exit.void)
          }).pipe(Effect.provideService(Logger.CurrentLoggers, new Set([logger])))
          assert.deepStrictEqual(errors, [
            "dispatch policy Forgetful threw from onResult: it keeps its state, and the pool goes on (said once)"
          ])
        })
    )
  }
})

describe("a policy whose select throws", () => {
  it.effect("pool.select dies with what the policy threw, logs nothing, and the pool goes on", () =>
    Effect.gen(function* () {
      const thrown = new Error("the policy could not choose")
      let throwing = true
      const moody = DispatchPolicy.make<undefined, T.Behaviour>({
        name: "Moody",
        initial: () => undefined,
        select: (input) => {
          if (throwing) throw thrown
          return DispatchPolicy.LeastLoaded.select(input)
        }
      })
      const logged: Array<string> = []
      const logger = Logger.make<unknown, void>(({ message }) => {
        logged.push(String(Array.isArray(message) ? message[0] : message))
      })
      yield* Effect.gen(function* () {
        const pool = yield* WorkerPool.make({ policy: moody, size: 2, worker: (id) => Worker.make(id, T.handler) })
        const exit = yield* Effect.exit(pool.select)
        assert.isTrue(Exit.isFailure(exit))
        assert.strictEqual(Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined, thrown)
        throwing = false
        const picked = yield* pool.select
        assert.isTrue(Option.isSome(picked))
        assert.strictEqual(yield* pool.dispatch(T.ok(4)), 4)
      }).pipe(Effect.scoped, Effect.provideService(Logger.CurrentLoggers, new Set([logger])))
      assert.deepStrictEqual(
        logged.filter((line) => line.includes("defect")),
        []
      )
    })
  )
})
