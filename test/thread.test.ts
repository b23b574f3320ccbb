/**
 * Thread workers with real worker threads, running the same test script as
 * the subprocess tests.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Scope } from "effect"
import { Defect, DomainError, Thread, Worker, WorkerCrash, WorkerId } from "effect-worker-pool"
import { Answer, Job } from "./fixtures/jobs.ts"
import * as S from "./fixtures/support.ts"
import * as T from "./support.ts"

const id = WorkerId.make(0)

const makeWorker = (options: Parameters<typeof S.thread>[0] = {}, workerOptions = {}) =>
  Worker.fromKind(id, S.thread(options), { ...S.restartAtOnce, ...workerOptions }).pipe(Effect.tap(S.started))

describe("Thread workers", { timeout: 30_000 }, () => {
  it.live("answer requests, several at a time, and carry domain errors intact; see an allowlisted env", () =>
    S.live(() =>
      Effect.gen(function* () {
        process.env.EWP_TEST_SECRET = "s3cret"
        yield* Effect.addFinalizer(() => Effect.sync(() => delete process.env.EWP_TEST_SECRET))
        const worker = yield* makeWorker({ concurrency: 4, env: { EXTRA: "1" } }, { maxInFlight: 4 })
        const first = yield* worker.dispatch({ _tag: "Echo", value: 41 })
        assert.strictEqual(first.value, 41)
        assert.strictEqual(first.pid, process.pid)
        assert.isAbove(first.thread, 0)

        const values = Array.from({ length: 20 }, (_, i) => i)
        const answers = yield* Effect.forEach(values, (value) => worker.dispatch({ _tag: "Echo", value }), {
          concurrency: "unbounded"
        })
        assert.deepStrictEqual(
          answers.map((a) => a.value),
          values
        )
        assert.deepStrictEqual(
          yield* Effect.flip(worker.dispatch({ _tag: "Domain", reason: "negative" })),
          new DomainError({ reason: "negative" })
        )
        assert.deepStrictEqual(
          yield* Effect.flip(worker.dispatch({ _tag: "Reject", reason: "async" })),
          new DomainError({ reason: "async" })
        )
        // The thread's process.env is an allowlist of the parent's, plus its own variables.
        const keys = [...((yield* worker.dispatch({ _tag: "Env" })).keys ?? [])]
        assert.notInclude(keys, "EWP_TEST_SECRET")
        assert.include(keys, "EXTRA")

        assert.strictEqual((yield* worker.dispatch({ _tag: "Echo", value: 0 })).thread, first.thread)
        const health = yield* worker.health
        assert.deepStrictEqual([health.state, health.crashes, health.errored, health.inFlight], ["Healthy", 0, 2, 0])
      })
    )
  )

  it.live("a defect, process.exit and an uncaught exception each crash the thread; a new one takes over", () =>
    S.live((logs) =>
      Effect.gen(function* () {
        const worker = yield* makeWorker({ concurrency: 2 }, { maxInFlight: 2 })
        const threads = [(yield* worker.dispatch({ _tag: "Echo", value: 0 })).thread]

        const defect = S.crashOf(yield* Effect.flip(worker.dispatch({ _tag: "Throw" })))
        assert.deepStrictEqual(defect.reason, new Defect({ message: "defect: TypeError: thrown in handler" }))
        yield* S.healthy(worker)
        threads.push((yield* worker.dispatch({ _tag: "Echo", value: 0 })).thread)

        const waiting = yield* Effect.forkChild(worker.dispatch({ _tag: "Wait" }))
        yield* logs.waitFor(/^started 2$/)
        const exit = S.crashOf(yield* Effect.flip(worker.dispatch({ _tag: "Exit", code: 3 })))
        assert.match(exit.reason.message, new RegExp(`^thread ${threads[1]} exited with code 3`))
        assert.deepInclude(exit.reason, { _tag: "Exited", code: 3 })
        assert.strictEqual(S.crashOf(T.errorOf(yield* Fiber.await(waiting))).reason, exit.reason)
        yield* S.healthy(worker)
        threads.push((yield* worker.dispatch({ _tag: "Echo", value: 0 })).thread)

        const uncaught = S.crashOf(yield* Effect.flip(worker.dispatch({ _tag: "AsyncThrow" })))
        assert.match(uncaught.reason.message, new RegExp(`^thread ${threads[2]} threw Error: async boom`))
        assert.strictEqual(uncaught.reason._tag, "Defect")
        yield* S.healthy(worker)
        threads.push((yield* worker.dispatch({ _tag: "Echo", value: 0 })).thread)

        assert.strictEqual(new Set(threads).size, 4, `a new thread each time: ${threads}`)
        const health = yield* worker.health
        assert.deepStrictEqual([health.crashes, health.restarts, health.inFlight], [3, 3, 0])
      })
    )
  )

  it.live("a cancel interrupts the handler or aborts its signal; the thread stays", () =>
    S.live((logs) =>
      Effect.gen(function* () {
        const worker = yield* makeWorker()
        const { thread } = yield* worker.dispatch({ _tag: "Echo", value: 0 })
        const waiting = yield* Effect.forkChild(worker.dispatch({ _tag: "Wait" }))
        yield* logs.waitFor(/^started 2$/)
        yield* Fiber.interrupt(waiting)
        yield* logs.waitFor(/^interrupted 2$/)
        const signalled = yield* Effect.forkChild(worker.dispatch({ _tag: "WaitSignal" }))
        yield* logs.waitFor(/^started 3$/)
        yield* Fiber.interrupt(signalled)
        yield* logs.waitFor(/^aborted 3$/)
        // Cancels that overtake their requests are acknowledged too.
        for (let i = 0; i < 5; i++) {
          const hasty = yield* Effect.forkChild(worker.dispatch({ _tag: "Wait" }))
          yield* Effect.yieldNow
          yield* Fiber.interrupt(hasty)
        }
        assert.strictEqual((yield* worker.dispatch({ _tag: "Echo", value: 1 })).thread, thread)
        const health = yield* worker.health
        assert.deepStrictEqual([health.interrupted, health.crashes], [7, 0])
      })
    )
  )

  it.live("a thread that ignores a cancel, or hangs past a timeout, is terminated and replaced", () =>
    S.live((logs) =>
      Effect.gen(function* () {
        const worker = yield* makeWorker({ cancelGrace: "200 millis" })
        const first = (yield* worker.dispatch({ _tag: "Echo", value: 0 })).thread
        const stubborn = yield* Effect.forkChild(worker.dispatch({ _tag: "IgnoreCancel" }))
        yield* logs.waitFor(/^started 2$/)
        yield* Fiber.interrupt(stubborn)
        const health = yield* S.until(worker, "replaced", (h) => h.crashes === 1 && h.state === "Healthy")
        assert.strictEqual(health.lastCrash?.reason, `thread ${first} ignored the cancel of request 2 for 200 ms`)

        const second = (yield* worker.dispatch({ _tag: "Echo", value: 0 })).thread
        assert.notStrictEqual(second, first)
        const hung = yield* Effect.flip(worker.dispatch({ _tag: "Hang" }, { timeout: "300 millis" }))
        assert.strictEqual(hung._tag, "RequestTimeout")
        yield* S.healthy(worker)
        const third = (yield* worker.dispatch({ _tag: "Echo", value: 0 })).thread
        assert.notStrictEqual(third, second)
      })
    )
  )

  it.live("closing the worker with requests in flight fails each with WorkerCrash, quickly", () =>
    S.live((logs) =>
      Effect.gen(function* () {
        const scope = yield* Scope.make()
        const worker = yield* makeWorker({ concurrency: 3 }, { maxInFlight: 3 }).pipe(Scope.provide(scope))
        const waiting = yield* Effect.forEach([{ _tag: "Wait" }, { _tag: "IgnoreCancel" }] as const, (job) =>
          Effect.forkChild(worker.dispatch(job))
        )
        yield* logs.waitFor(/^started 1$/)
        yield* logs.waitFor(/^started 2$/)
        // This one blocks the thread's event loop.
        waiting.push(yield* Effect.forkChild(worker.dispatch({ _tag: "Hang" })))
        yield* Scope.close(scope, Exit.void)
        for (const fiber of waiting) assert.instanceOf(T.errorOf(yield* Fiber.await(fiber)), WorkerCrash)
        assert.strictEqual((yield* worker.health).state, "Stopped")
      })
    )
  )

  it.live("a script that cannot load is a crash at start", () =>
    S.live(() =>
      Effect.gen(function* () {
        const worker = yield* Worker.fromKind(
          id,
          Thread.make(new URL("./fixtures/no-such-worker.ts", import.meta.url), { request: Job, response: Answer }),
          { maxRestarts: 0 }
        )
        const health = yield* S.reaches(worker, "Retired")
        assert.match(health.lastCrash?.reason ?? "", /^thread \d+ threw .*no-such-worker/)
      })
    )
  )
})

describe("Thread workers and what they leave", { timeout: 30_000 }, () => {
  it.live("a process the thread started is stopped when the thread crashes, and when its scope closes", () =>
    S.live(() =>
      Effect.gen(function* () {
        const worker = yield* makeWorker({ killGrace: "200 millis" })
        const { child } = yield* worker.dispatch({ _tag: "Spawn" })
        assert.isTrue(S.isAlive(child!))
        assert.instanceOf(yield* Effect.flip(worker.dispatch({ _tag: "Exit", code: 3 })), WorkerCrash)
        yield* S.gone([child!])

        const scope = yield* Scope.make()
        const second = yield* makeWorker({ killGrace: "200 millis" }).pipe(Scope.provide(scope))
        const spawned = yield* second.dispatch({ _tag: "Spawn" })
        assert.isTrue(S.isAlive(spawned.child!))
        yield* Scope.close(scope, Exit.void)
        // Closing the scope waited for it: it is gone at once.
        assert.isFalse(S.isAlive(spawned.child!))
      })
    )
  )

  it.live("a flood of stderr lines is logged, or the number of lines dropped is", () =>
    S.live((logs) =>
      Effect.gen(function* () {
        const worker = yield* makeWorker()
        const lines = 20_000
        yield* worker.dispatch({ _tag: "Flood", lines })
        const accounted = () => {
          let logged = 0
          let dropped = 0
          for (const line of logs.lines) {
            if (/^flood \d+$/.test(line)) logged++
            const drop = /^(\d+) stderr lines dropped/.exec(line)
            if (drop !== null) dropped += Number(drop[1])
          }
          return logged + dropped
        }
        yield* S.eventually(`all ${lines} lines are accounted for`, () => accounted() === lines)
        assert.strictEqual(accounted(), lines)
      })
    )
  )

  it.live("an idle thread that blocks its event loop forever is found by its silence and replaced", () =>
    S.live(() =>
      Effect.gen(function* () {
        const worker = yield* makeWorker()
        const { thread } = yield* worker.dispatch({ _tag: "HangLater" })
        const health = yield* S.until(worker, "found the silent thread", (h) => h.crashes === 1)
        assert.match(health.lastCrash?.reason ?? "", new RegExp(`^thread ${thread} stopped responding: no heartbeat`))
        yield* S.healthy(worker)
        assert.notStrictEqual((yield* worker.dispatch({ _tag: "Echo", value: 1 })).thread, thread)
      })
    )
  )
})
