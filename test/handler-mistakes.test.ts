/**
 * A handler that does not give an Effect (it throws before it returns one,
 * its error's constructor throws, it returns a plain value, a Promise or
 * nothing) crashes its worker like any defect: the caller gets a typed
 * `WorkerCrash` whose reason says which mistake it was, the slot is freed,
 * the worker restarts on its schedule and serves the next request, and the
 * pool closes. On every path a request can take: its caller's fiber, the
 * queue, a worker with several slots, a timeout, and `Worker.dispatch`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, type Duration, Effect, Exit, Fiber, Schedule, Schema, Scope } from "effect"
import { Rpc, RpcGroup } from "effect/rpc"
import { TestClock } from "effect/testing"
import { type InvalidOptions, Worker, WorkerCrash, WorkerId, WorkerPool } from "effect-worker-pool"

class Invalid extends Schema.TaggedError<Invalid>()("Invalid", { code: Schema.Int }) {}

/** A group of one operation, whose handler makes the mistake when asked. */
const Jobs = RpcGroup.make(Rpc.make("Run", { payload: { mistake: Schema.Boolean }, success: Schema.Number }))

type Job = { readonly _tag: "Ok"; readonly value: number } | { readonly _tag: "Mistake" } | { readonly _tag: "Hold" }

interface Mistake {
  readonly name: string
  readonly make: () => unknown
  readonly message: RegExp
}

const mistakes: ReadonlyArray<Mistake> = [
  {
    name: "a synchronous throw",
    make: () => {
      throw new TypeError("bad argument")
    },
    message: /^defect: HandlerMistake: the handler threw before it returned an Effect: TypeError: bad argument$/
  },
  {
    name: "a throwing error constructor",
    make: () => Effect.fail(new Invalid({ code: 1.5 })),
    message: /^defect: HandlerMistake: the handler threw before it returned an Effect: /
  },
  {
    name: "a plain value",
    make: () => 42,
    message: /^defect: HandlerMistake: the handler returned a number \(42\), not an Effect$/
  },
  {
    name: "a Promise",
    make: () => Promise.reject(new Error("rejected later")),
    message: /^defect: HandlerMistake: the handler returned a Promise, not an Effect/
  },
  {
    name: "undefined",
    make: () => undefined,
    message: /^defect: HandlerMistake: the handler returned undefined, not an Effect$/
  }
]

const handler =
  (mistake: Mistake, gate: Deferred.Deferred<void>) =>
  (job: Job): Effect.Effect<number> => {
    switch (job._tag) {
      case "Ok":
        return Effect.succeed(job.value)
      case "Hold":
        return Effect.as(Deferred.await(gate), 0)
      case "Mistake":
        return mistake.make() as Effect.Effect<number>
    }
  }

const restart = { restart: Schedule.spaced("100 millis") }

/** The crash a mistake gave its caller: typed, with a `Defect` reason that names the mistake. */
const assertCrash = (exit: Exit.Exit<unknown, unknown>, mistake: Mistake) => {
  assert.isTrue(Exit.isFailure(exit), "the mistake did not fail")
  const error = Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail") : undefined
  assert.isDefined(error, `not a typed failure: ${String(exit)}`)
  const crash = (error as { readonly error: unknown }).error
  assert.instanceOf(crash, WorkerCrash)
  assert.strictEqual((crash as WorkerCrash).reason._tag, "Defect")
  assert.match((crash as WorkerCrash).reason.message, mistake.message)
}

/** After the crash: the slot is free, the worker restarts and serves, and closing the pool returns. */
const assertRecovers = (pool: WorkerPool.WorkerPool<Job, number, never>, scope: Scope.Closeable) =>
  Effect.gen(function* () {
    const [[, crashed]] = yield* pool.health
    assert.deepStrictEqual([crashed.inFlight, crashed.crashes], [0, 1])
    yield* TestClock.adjust("100 millis")
    assert.strictEqual(yield* pool.dispatch({ _tag: "Ok", value: 7 }), 7)
    const [[, health]] = yield* pool.health
    assert.deepStrictEqual([health.state, health.inFlight, health.restarts], ["Healthy", 0, 1])
    yield* Scope.close(scope, Exit.void)
  })

const poolOf = (mistake: Mistake, options: { readonly maxInFlight?: number; readonly timeout?: Duration.Input } = {}) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const gate = yield* Deferred.make<void>()
    const pool = yield* WorkerPool.make<Job, number, never, InvalidOptions>({
      size: 1,
      worker: (id) => Worker.make(id, handler(mistake, gate), { ...restart, maxInFlight: options.maxInFlight ?? 1 }),
      ...(options.timeout === undefined ? {} : { timeout: options.timeout })
    }).pipe(Scope.provide(scope))
    return { pool, scope, gate }
  })

describe("a handler that does not give an Effect", () => {
  for (const mistake of mistakes) {
    describe(mistake.name, () => {
      it.effect("on its caller's fiber: a typed crash; the worker restarts and serves", () =>
        Effect.gen(function* () {
          const { pool, scope } = yield* poolOf(mistake)
          assertCrash(yield* Effect.exit(pool.dispatch({ _tag: "Mistake" })), mistake)
          yield* assertRecovers(pool, scope)
        })
      )

      it.effect("served from the queue: a typed crash; the request behind it is served after the restart", () =>
        Effect.gen(function* () {
          const { pool, scope, gate } = yield* poolOf(mistake)
          const held = yield* Effect.forkChild(pool.dispatch({ _tag: "Hold" }))
          yield* Effect.yieldNow
          const queued = yield* Effect.forkChild(pool.dispatch({ _tag: "Mistake" }))
          const behind = yield* Effect.forkChild(pool.dispatch({ _tag: "Ok", value: 3 }))
          yield* Effect.yieldNow
          assert.strictEqual(yield* pool.queued, 2)
          yield* Deferred.succeed(gate, undefined)
          assert.strictEqual(yield* Fiber.join(held), 0)
          assertCrash(yield* Fiber.await(queued), mistake)
          yield* TestClock.adjust("100 millis")
          assert.strictEqual(yield* Fiber.join(behind), 3)
          yield* assertRecovers(pool, scope)
        })
      )

      it.effect("on a worker with several slots: a typed crash; the others it held go down with it", () =>
        Effect.gen(function* () {
          const { pool, scope } = yield* poolOf(mistake, { maxInFlight: 2 })
          const held = yield* Effect.forkChild(pool.dispatch({ _tag: "Hold" }))
          yield* Effect.yieldNow
          assertCrash(yield* Effect.exit(pool.dispatch({ _tag: "Mistake" })), mistake)
          const torn = yield* Fiber.await(held)
          assert.strictEqual((Exit.isFailure(torn) && torn.cause.reasons[0]?._tag) || "", "Fail")
          yield* assertRecovers(pool, scope)
        })
      )

      it.effect("with a timeout: a typed crash, not a timeout", () =>
        Effect.gen(function* () {
          const { pool, scope } = yield* poolOf(mistake, { timeout: "1 second" })
          assertCrash(yield* Effect.exit(pool.dispatch({ _tag: "Mistake" })), mistake)
          yield* assertRecovers(pool, scope)
        })
      )

      it.effect("on Worker.dispatch: a typed crash; the worker restarts and serves", () =>
        Effect.gen(function* () {
          const gate = yield* Deferred.make<void>()
          const worker = yield* Worker.make(WorkerId.make(0), handler(mistake, gate), restart)
          assertCrash(yield* Effect.exit(worker.dispatch({ _tag: "Mistake" })), mistake)
          const crashed = yield* worker.health
          assert.deepStrictEqual([crashed.inFlight, crashed.crashes], [0, 1])
          yield* TestClock.adjust("100 millis")
          assert.strictEqual(yield* worker.dispatch({ _tag: "Ok", value: 1 }), 1)
        }).pipe(Effect.scoped)
      )

      it.effect("in an operation of a group: the same typed crash; the worker restarts and serves", () =>
        Effect.gen(function* () {
          const pool = yield* WorkerPool.make({
            size: 1,
            worker: (id) =>
              Worker.fromGroup(
                id,
                Jobs,
                {
                  Run: ({ mistake: made }) => (made ? (mistake.make() as Effect.Effect<number>) : Effect.succeed(7))
                },
                restart
              )
          })
          const client = yield* WorkerPool.client(pool, Jobs)
          assertCrash(yield* Effect.exit(client.Run({ mistake: true })), mistake)
          const [[, crashed]] = yield* pool.health
          assert.deepStrictEqual([crashed.inFlight, crashed.crashes], [0, 1])
          yield* TestClock.adjust("100 millis")
          assert.strictEqual(yield* client.Run({ mistake: false }), 7)
          const [[, health]] = yield* pool.health
          assert.deepStrictEqual([health.state, health.inFlight, health.restarts], ["Healthy", 0, 1])
        }).pipe(Effect.scoped)
      )
    })
  }
})

describe("what the crash says a handler returned instead of an Effect", () => {
  const returned: ReadonlyArray<readonly [string, unknown, string]> = [
    ["a short string", "done", 'a string ("done")'],
    ["a long string, cut at 40 characters", "x".repeat(41), `a string ("${"x".repeat(40)}…")`],
    ["a string of 40 characters, whole", "y".repeat(40), `a string ("${"y".repeat(40)}")`],
    ["a boolean", true, "a boolean (true)"],
    ["a bigint", 12n, "a bigint (12)"],
    ["a function", () => 1, "a function"],
    ["a symbol", Symbol("s"), "a symbol"],
    ["null", null, "null"],
    ["an array", [1, 2], "an array"],
    ["an object", { value: 1 }, "an object"],
    // biome-ignore lint/suspicious/noThenProperty: a handler's return value that merely looks like a Promise
    ["an object whose then is not a function", { then: 1 }, "an object"]
  ]
  for (const [name, value, said] of returned) {
    it.effect(name, () =>
      Effect.gen(function* () {
        const worker = yield* Worker.make(WorkerId.make(0), (_: string) => value as Effect.Effect<number>, restart)
        const exit = yield* Effect.exit(worker.dispatch("go"))
        const error = Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail") : undefined
        const crash = (error as { readonly error: WorkerCrash } | undefined)?.error
        assert.strictEqual(crash?.reason.message, `defect: HandlerMistake: the handler returned ${said}, not an Effect`)
      }).pipe(Effect.scoped)
    )
  }
})
