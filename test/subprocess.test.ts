/**
 * Subprocess workers with real processes: answers, domain errors, crashes of
 * every kind, cancellation, and no process left behind.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Schedule, Schema, Scope } from "effect"
import {
  Defect,
  DomainError,
  InvalidOptions,
  InvalidRequest,
  Protocol,
  Reported,
  Subprocess,
  Thread,
  Worker,
  WorkerCrash,
  WorkerId,
  WorkerPool
} from "effect-worker-pool"
import { Answer, Job } from "./fixtures/jobs.ts"
import * as S from "./fixtures/support.ts"
import * as T from "./support.ts"

const id = WorkerId.make(0)

/** A worker on the test script, with its own scope. */
const makeWorker = (options: Parameters<typeof S.subprocess>[0] = {}, workerOptions = {}) =>
  Worker.fromKind(id, S.subprocess(options), { ...S.restartAtOnce, ...workerOptions }).pipe(Effect.tap(S.started))

describe("Subprocess workers", { timeout: 30_000, concurrent: true }, () => {
  it.live("answer requests and carry domain errors intact; the worker stays up; stderr goes to the logger", () =>
    S.live((logs) =>
      Effect.gen(function* () {
        const worker = yield* makeWorker()
        const first = yield* worker.dispatch({ _tag: "Echo", value: 41 })
        assert.strictEqual(first.value, 41)
        assert.notStrictEqual(first.pid, process.pid)

        const domain = yield* Effect.flip(worker.dispatch({ _tag: "Domain", reason: "negative input" }))
        assert.deepStrictEqual(domain, new DomainError({ reason: "negative input" }))
        assert.instanceOf(domain, DomainError)
        const rejected = yield* Effect.flip(worker.dispatch({ _tag: "Reject", reason: "thrown by an async handler" }))
        assert.deepStrictEqual(rejected, new DomainError({ reason: "thrown by an async handler" }))

        // A stray console.log goes to stderr, which is logged.
        const logged = yield* worker.dispatch({ _tag: "Log", text: "written with console.log" })
        assert.strictEqual(logged.text, "written with console.log")
        yield* logs.waitFor(/^written with console\.log$/)

        const again = yield* worker.dispatch({ _tag: "Echo", value: 1 })
        assert.strictEqual(again.pid, first.pid, "the same process served every request")
        const health = yield* worker.health
        assert.deepStrictEqual(
          [health.state, health.completed, health.errored, health.crashes, health.inFlight],
          ["Healthy", 5, 2, 0, 0]
        )
      })
    )
  )

  it.live(
    "hold several requests per process up to `concurrency`, matched by id; refuse one too large for the wire",
    () =>
      S.live(() =>
        Effect.gen(function* () {
          const worker = yield* makeWorker({ concurrency: 4, maxLineBytes: 1024 })
          const values = Array.from({ length: 40 }, (_, i) => i)
          const answers = yield* Effect.forEach(values, (value) => worker.dispatch({ _tag: "Echo", value }), {
            concurrency: "unbounded"
          })
          assert.deepStrictEqual(
            answers.map((a) => a.value),
            values
          )
          assert.strictEqual(new Set(answers.map((a) => a.pid)).size, 1)
          assert.strictEqual((yield* worker.health).inFlight, 0)

          // Never sent: the worker stays up.
          const refused = yield* Effect.flip(worker.dispatch({ _tag: "Garbage", text: "z".repeat(2000) }))
          assert.instanceOf(refused, InvalidRequest)
          assert.match(
            refused.reason,
            /^the request is at least \d+ bytes on the wire, over the limit of 1024 \(maxLineBytes\)$/
          )
          const health = yield* worker.health
          // It never reached the handler: rejected, neither completed nor errored.
          assert.deepStrictEqual(
            [health.state, health.crashes, health.completed, health.errored, health.rejected, health.inFlight],
            ["Healthy", 0, 40, 0, 1, 0]
          )
          assert.strictEqual((yield* worker.dispatch({ _tag: "Echo", value: 1 })).pid, answers[0]!.pid)
        })
      )
  )

  it.live("a defect in the handler crashes the worker; a new process serves the next request", () =>
    S.live(() =>
      Effect.gen(function* () {
        const worker = yield* makeWorker()
        const { pid } = yield* worker.dispatch({ _tag: "Echo", value: 0 })
        const crash = S.crashOf(yield* Effect.flip(worker.dispatch({ _tag: "Throw" })))
        assert.deepStrictEqual(crash.reason, new Defect({ message: "defect: TypeError: thrown in handler" }))
        yield* S.gone([pid], pid)
        yield* S.healthy(worker)
        const next = yield* worker.dispatch({ _tag: "Echo", value: 2 })
        assert.strictEqual(next.value, 2)
        assert.notStrictEqual(next.pid, pid)

        const reported = S.crashOf(yield* Effect.flip(worker.dispatch({ _tag: "Crash", reason: "engine lost" })))
        assert.deepStrictEqual(reported.reason, new Reported({ message: "engine lost" }))
        const health = yield* S.healthy(worker)
        assert.deepStrictEqual([health.crashes, health.restarts, health.inFlight], [2, 2, 0])
      })
    )
  )

  it.live("process.exit mid-request fails every request in flight with the exit code and the last stderr lines", () =>
    S.live((logs) =>
      Effect.gen(function* () {
        const worker = yield* makeWorker({ concurrency: 3 }, { maxInFlight: 3 })
        const { pid } = yield* worker.dispatch({ _tag: "Echo", value: 0 })
        const waiting = yield* Effect.forEach([0, 1], () => Effect.forkChild(worker.dispatch({ _tag: "Wait" })))
        yield* logs.waitFor(/^started 2$/)
        yield* logs.waitFor(/^started 3$/)
        const exit = S.crashOf(yield* Effect.flip(worker.dispatch({ _tag: "Exit", code: 3 })))
        assert.match(exit.reason.message, new RegExp(`^process ${pid} exited with code 3; last stderr: .*started 4$`))
        for (const fiber of waiting) {
          const failed = T.errorOf(yield* Fiber.await(fiber))
          assert.instanceOf(failed, WorkerCrash)
          assert.strictEqual(failed.reason, exit.reason, "every request in flight gets the same crash")
        }
        yield* S.gone([pid], pid)
        yield* S.healthy(worker)
        assert.strictEqual((yield* worker.dispatch({ _tag: "Echo", value: 5 })).value, 5)
        const health = yield* worker.health
        assert.deepStrictEqual([health.inFlight, health.completed, health.errored, health.crashes], [0, 5, 3, 1])
      })
    )
  )

  it.live("an uncaught exception in the child is a crash whose reason quotes it", () =>
    S.live(() =>
      Effect.gen(function* () {
        const worker = yield* makeWorker()
        const { pid } = yield* worker.dispatch({ _tag: "Echo", value: 0 })
        const crash = S.crashOf(yield* Effect.flip(worker.dispatch({ _tag: "AsyncThrow" })))
        assert.match(
          crash.reason.message,
          new RegExp(`^process ${pid} exited with code 1; last stderr: .*Error: async boom`)
        )
        assert.deepInclude(crash.reason, { _tag: "Exited", code: 1 })
        yield* S.gone([pid], pid)
        yield* S.healthy(worker)
        assert.strictEqual((yield* worker.dispatch({ _tag: "Echo", value: 1 })).value, 1)
      })
    )
  )

  it.live("kill -9 from outside fails the request in flight with the signal", () =>
    S.live((logs) =>
      Effect.gen(function* () {
        const worker = yield* makeWorker()
        const { pid } = yield* worker.dispatch({ _tag: "Echo", value: 0 })
        const waiting = yield* Effect.forkChild(worker.dispatch({ _tag: "Wait" }))
        yield* logs.waitFor(/^started 2$/)
        process.kill(pid, "SIGKILL")
        const crash = T.errorOf(yield* Fiber.await(waiting))
        assert.instanceOf(crash, WorkerCrash)
        assert.match(crash.reason.message, new RegExp(`^process ${pid} was killed by SIGKILL`))
        assert.deepInclude(crash.reason, { _tag: "Killed", signal: "SIGKILL" })
        yield* S.healthy(worker)
        assert.strictEqual((yield* worker.dispatch({ _tag: "Echo", value: 1 })).value, 1)
      })
    )
  )

  it.live("a broken pipe fails the requests in flight; the process is replaced", () =>
    S.live((logs) =>
      Effect.gen(function* () {
        const worker = yield* makeWorker({ concurrency: 2 }, { maxInFlight: 2 })
        const { pid } = yield* worker.dispatch({ _tag: "Echo", value: 0 })
        const deaf = yield* Effect.forkChild(worker.dispatch({ _tag: "CloseStdin" }))
        yield* logs.waitFor(/^started 2$/)
        // This one cannot be written: the child closed its end of the pipe.
        const crash = S.crashOf(yield* Effect.flip(worker.dispatch({ _tag: "Echo", value: 1 })))
        assert.match(crash.reason.message, new RegExp(`^broken pipe: could not write to process ${pid}: `))
        assert.strictEqual(crash.reason._tag, "ProtocolFault")
        assert.strictEqual(S.crashOf(T.errorOf(yield* Fiber.await(deaf))).reason, crash.reason)
        yield* S.gone([pid], pid)
        yield* S.healthy(worker)
        assert.strictEqual((yield* worker.dispatch({ _tag: "Echo", value: 2 })).value, 2)
      })
    )
  )

  it.live("a cancel interrupts the handler; the worker stays up and keeps its process", () =>
    S.live((logs) =>
      Effect.gen(function* () {
        const worker = yield* makeWorker()
        const { pid } = yield* worker.dispatch({ _tag: "Echo", value: 0 })

        const effectHandler = yield* Effect.forkChild(worker.dispatch({ _tag: "Wait" }))
        yield* logs.waitFor(/^started 2$/)
        assert.isTrue(
          Exit.hasInterrupts(yield* Fiber.interrupt(effectHandler).pipe(Effect.andThen(Fiber.await(effectHandler))))
        )
        yield* logs.waitFor(/^interrupted 2$/)

        const asyncHandler = yield* Effect.forkChild(worker.dispatch({ _tag: "WaitSignal" }))
        yield* logs.waitFor(/^started 3$/)
        yield* Fiber.interrupt(asyncHandler)
        yield* logs.waitFor(/^aborted 3$/)

        // Cancels that overtake their requests are acknowledged too.
        for (let i = 0; i < 5; i++) {
          const hasty = yield* Effect.forkChild(worker.dispatch({ _tag: "Wait" }))
          yield* Effect.yieldNow
          yield* Fiber.interrupt(hasty)
        }

        // The slot is free again once the child has acknowledged the cancel.
        const next = yield* worker.dispatch({ _tag: "Echo", value: 4 })
        assert.strictEqual(next.pid, pid)
        const health = yield* worker.health
        assert.deepStrictEqual([health.state, health.interrupted, health.crashes], ["Healthy", 7, 0])
      })
    )
  )

  it.live("a child that ignores a cancel past the grace period is killed and replaced", () =>
    S.live((logs) =>
      Effect.gen(function* () {
        const worker = yield* makeWorker({ cancelGrace: "200 millis" })
        const { pid } = yield* worker.dispatch({ _tag: "Echo", value: 0 })
        const stubborn = yield* Effect.forkChild(worker.dispatch({ _tag: "IgnoreCancel" }))
        yield* logs.waitFor(/^started 2$/)
        yield* Fiber.interrupt(stubborn)
        yield* S.gone([pid], pid)
        const health = yield* S.healthy(worker)
        assert.strictEqual(health.lastCrash?.reason, `process ${pid} ignored the cancel of request 2 for 200 ms`)
        assert.deepStrictEqual([health.interrupted, health.crashes, health.inFlight], [1, 1, 0])
        const next = yield* worker.dispatch({ _tag: "Echo", value: 1 })
        assert.notStrictEqual(next.pid, pid)
      })
    )
  )

  it.live("a request past its timeout gets SIGTERM, then SIGKILL after the grace period; the process is replaced", () =>
    S.live(() =>
      Effect.gen(function* () {
        const worker = yield* makeWorker({ killGrace: "300 millis" })
        const { pid } = yield* worker.dispatch({ _tag: "Echo", value: 0 })
        const hung = yield* Effect.flip(worker.dispatch({ _tag: "Hang" }, { timeout: "300 millis" }))
        assert.strictEqual(hung._tag, "RequestTimeout")
        yield* S.gone([pid], pid)
        yield* S.healthy(worker)

        // This one ignores SIGTERM: only SIGKILL ends it.
        const second = yield* worker.dispatch({ _tag: "Echo", value: 0 })
        const stubborn = yield* Effect.flip(worker.dispatch({ _tag: "IgnoreTerm" }, { timeout: "300 millis" }))
        assert.strictEqual(stubborn._tag, "RequestTimeout")
        yield* S.gone([second.pid], second.pid)
        yield* S.healthy(worker)
        assert.strictEqual((yield* worker.dispatch({ _tag: "Echo", value: 7 })).value, 7)
        const health = yield* worker.health
        assert.deepStrictEqual([health.timeouts, health.crashes, health.inFlight], [2, 2, 0])
      })
    )
  )

  it.live(
    "stop with requests in flight: each fails with WorkerCrash, and no process survives, grandchildren included",
    () =>
      S.live((logs) =>
        Effect.gen(function* () {
          const scope = yield* Scope.make()
          const worker = yield* makeWorker({ concurrency: 3, killGrace: "200 millis" }, { maxInFlight: 3 }).pipe(
            Scope.provide(scope)
          )
          const { pid, child } = yield* worker.dispatch({ _tag: "Spawn" })
          assert.isTrue(S.isAlive(child!))
          assert.includeMembers(S.processGroup(pid), [pid, child!])
          const waiting = yield* Effect.forEach([0, 1], () => Effect.forkChild(worker.dispatch({ _tag: "Wait" })))
          yield* logs.waitFor(/^started 3$/)
          yield* Scope.close(scope, Exit.void)
          for (const fiber of waiting) assert.instanceOf(T.errorOf(yield* Fiber.await(fiber)), WorkerCrash)
          // Closing the scope waited for the processes: nothing is left, at once.
          assert.deepStrictEqual(S.processGroup(pid), [])
          assert.isFalse(S.isAlive(pid))
          assert.isFalse(S.isAlive(child!))
        })
      )
  )

  it.live("a shutdown closes stdin and the child exits by itself, without a signal", () =>
    S.live(() =>
      Effect.gen(function* () {
        const scope = yield* Scope.make()
        // It ignores SIGTERM, and SIGTERM and SIGKILL would only come an hour after stdin closes: the
        // scope's close returns, within the test's timeout, only if the child left on its own.
        const worker = yield* makeWorker({
          env: { EWP_IGNORE_SIGTERM: "1" },
          killGrace: "1 hour",
          shutdownTimeout: "1 hour"
        }).pipe(Scope.provide(scope))
        const { pid } = yield* worker.dispatch({ _tag: "Echo", value: 0 })
        yield* Scope.close(scope, Exit.void)
        assert.isFalse(S.isAlive(pid))
      })
    )
  )

  it.live("the child gets an allowlist of the parent's environment, plus its own variables", () =>
    S.live(() =>
      Effect.gen(function* () {
        process.env.EWP_TEST_SECRET = "s3cret"
        yield* Effect.addFinalizer(() => Effect.sync(() => delete process.env.EWP_TEST_SECRET))
        const allowlisted = yield* makeWorker({ env: { EXTRA: "1" } })
        const { keys = [] } = yield* allowlisted.dispatch({ _tag: "Env" })
        assert.notInclude([...keys], "EWP_TEST_SECRET")
        assert.includeMembers([...keys], ["PATH", "EXTRA"])
        // The kind's own: the line limit, the heartbeat, Node's compile cache (the test sets it).
        const expected = [
          ...Subprocess.defaultInheritedEnv,
          "EXTRA",
          Protocol.maxLineBytesEnv,
          Protocol.heartbeatEnv,
          "NODE_COMPILE_CACHE"
        ]
        assert.isTrue(
          keys.every((key) => expected.includes(key)),
          keys.join()
        )

        const everything = yield* Worker.fromKind(WorkerId.make(1), S.subprocess({ inheritEnv: "all" }))
        const all = yield* everything.dispatch({ _tag: "Env" })
        assert.include([...(all.keys ?? [])], "EWP_TEST_SECRET")
      })
    )
  )

  it.live("a command that cannot start, or dies before it is ready, is a crash at start", () =>
    S.live(() =>
      Effect.gen(function* () {
        const missing = yield* Worker.fromKind(
          id,
          Subprocess.make({ command: "/nonexistent/worker", request: Job, response: Answer }),
          { maxRestarts: 0 }
        )
        const health = yield* S.reaches(missing, "Retired")
        assert.match(health.lastCrash?.reason ?? "", /^could not start \/nonexistent\/worker: /)

        const early = yield* Worker.fromKind(
          id,
          Subprocess.make({
            command: S.node,
            args: ["-e", "console.error('no model file'); process.exit(4)"],
            request: Job,
            response: Answer
          }),
          { maxRestarts: 0 }
        )
        assert.match(
          (yield* S.reaches(early, "Retired")).lastCrash?.reason ?? "",
          /^process \d+ exited with code 4; last stderr: no model file$/
        )

        const silent = yield* Worker.fromKind(
          id,
          Subprocess.make({
            command: S.node,
            args: ["-e", "setInterval(() => {}, 1000)"],
            startTimeout: "300 millis",
            request: Job,
            response: Answer
          }),
          { maxRestarts: 0 }
        )
        const reason = (yield* S.reaches(silent, "Retired")).lastCrash?.reason ?? ""
        const [, pid] = /^process (\d+) did not become ready within 300 ms$/.exec(reason) ?? []
        assert.isDefined(pid, reason)
        assert.isFalse(S.isAlive(Number(pid)))
      })
    )
  )

  it.live("a pool's requests wait out starts that miss their start timeout, and are refused after the third", () =>
    S.live(() =>
      Effect.gen(function* () {
        const pool = yield* WorkerPool.make({
          size: 1,
          worker: (id) =>
            Worker.fromKind(
              id,
              Subprocess.make({
                command: S.node,
                args: ["-e", "setInterval(() => {}, 1000)"],
                startTimeout: "300 millis",
                request: Job,
                response: Answer
              }),
              { restart: Schedule.spaced("10 millis") }
            )
        })
        const refused = yield* Effect.flip(pool.dispatch({ _tag: "Echo", value: 1 }))
        assert.instanceOf(refused, WorkerCrash)
        assert.match(
          refused.reason.message,
          /^no worker available: .*\(1 failing to start \(process \d+ did not become ready within 300 ms\)\)$/
        )
        const [[, health]] = yield* pool.health
        assert.isAtLeast(health!.failedStarts, 3)
      })
    )
  )

  it.live(
    "schemas that disagree: a request the child cannot decode is refused, a response the parent cannot decode is a crash",
    () =>
      S.live(() =>
        Effect.gen(function* () {
          const worker = yield* Worker.fromKind(
            id,
            Subprocess.node(S.workerScript, {
              nodePath: S.node,
              execArgv: ["--conditions=effect-worker-pool-source"],
              request: Schema.Union([Job, Schema.String]),
              response: Schema.String
            }),
            S.restartAtOnce
          )
          const refused = yield* Effect.flip(worker.dispatch("not a job"))
          assert.instanceOf(refused, InvalidRequest)
          assert.match(refused.reason, /^the worker could not decode the request: /)
          assert.deepStrictEqual([(yield* worker.health).state, (yield* worker.health).crashes], ["Healthy", 0])

          const crash = S.crashOf(yield* Effect.flip(worker.dispatch({ _tag: "Echo", value: 1 })))
          assert.match(
            crash.reason.message,
            /^protocol error: process \d+ sent a response that does not match its schema: /
          )
        })
      )
  )

  it.effect("invalid options are InvalidOptions in the error channel of fromKind, and nothing starts", () =>
    Effect.gen(function* () {
      const reasonOf = (options: Partial<Subprocess.Options<number, number, never>>) =>
        Effect.gen(function* () {
          const kind = Subprocess.make({ command: "node", request: Schema.Number, response: Schema.Number, ...options })
          assert.instanceOf(kind.invalid, InvalidOptions, "make returns a kind, it does not throw")
          const error = yield* Effect.flip(Worker.fromKind(WorkerId.make(0), kind))
          assert.instanceOf(error, InvalidOptions)
          return error.reason
        }).pipe(Effect.scoped)
      assert.strictEqual(yield* reasonOf({ concurrency: 0 }), "concurrency must be a positive integer, got 0")
      assert.strictEqual(yield* reasonOf({ maxLineBytes: -1 }), "maxLineBytes must be a positive integer, got -1")
      assert.strictEqual(
        yield* reasonOf({ cancelGrace: "soon" as never }),
        "cancelGrace must be a finite, non-negative duration, got soon"
      )
      assert.strictEqual(yield* reasonOf({ command: "" }), "command must be a program name")
      const thread = Thread.make(new URL("./fixtures/worker.ts", import.meta.url), {
        request: Schema.Number,
        response: Schema.Number,
        stderr: { logLevel: "Loud" as never }
      })
      assert.strictEqual(
        (yield* Effect.flip(Worker.fromKind(WorkerId.make(1), thread).pipe(Effect.scoped))).reason,
        'stderr.logLevel must be one of "Fatal", "Error", "Warn", "Info", "Debug", "Trace", "None", got Loud'
      )
    })
  )
})

describe("Subprocess liveness", { timeout: 30_000, concurrent: true }, () => {
  it.live("a stopped process (SIGSTOP) fails its request, which has no timeout, with WorkerCrash; it is killed", () =>
    S.live((logs) =>
      Effect.gen(function* () {
        const worker = yield* makeWorker()
        const { pid } = yield* worker.dispatch({ _tag: "Echo", value: 0 })
        const waiting = yield* Effect.forkChild(worker.dispatch({ _tag: "Wait" }))
        yield* logs.waitFor(/^started 2$/)
        process.kill(pid, "SIGSTOP")
        const crash = S.crashOf(T.errorOf(yield* Fiber.await(waiting)))
        assert.match(
          crash.reason.message,
          new RegExp(`^process ${pid} stopped responding for \\d+ ms: its process is stopped; it was killed`)
        )
        yield* S.gone([pid], pid)
        yield* S.healthy(worker)
        assert.strictEqual((yield* worker.dispatch({ _tag: "Echo", value: 1 })).value, 1)
      })
    )
  )

  it.live("a stopped process whose request times out is killed at once: the RequestTimeout comes at the timeout", () =>
    S.live((logs) =>
      Effect.gen(function* () {
        // SIGTERM cannot reach a stopped process, and SIGKILL would only come an hour after it: the
        // request's timeout, and the process's end, come within the test's timeout only if it is killed at once.
        const worker = yield* makeWorker({ killGrace: "1 hour" })
        const { pid } = yield* worker.dispatch({ _tag: "Echo", value: 0 })
        const waiting = yield* Effect.forkChild(worker.dispatch({ _tag: "Wait" }, { timeout: "1 second" }))
        yield* logs.waitFor(/^started 2$/)
        process.kill(pid, "SIGSTOP")
        const error = T.errorOf(yield* Fiber.await(waiting))
        assert.strictEqual(error?._tag, "RequestTimeout")
        yield* S.gone([pid], pid)
      })
    )
  )

  it.live("an idle child that blocks its event loop forever is found by its silence and replaced", () =>
    S.live(() =>
      Effect.gen(function* () {
        const worker = yield* makeWorker()
        const { pid } = yield* worker.dispatch({ _tag: "HangLater" })
        const health = yield* S.until(worker, "found the silent child", (h) => h.crashes === 1)
        assert.match(health.lastCrash?.reason ?? "", new RegExp(`^process ${pid} stopped responding: no heartbeat`))
        yield* S.gone([pid], pid)
        yield* S.healthy(worker)
        assert.notStrictEqual((yield* worker.dispatch({ _tag: "Echo", value: 1 })).pid, pid)
      })
    )
  )

  it.live("a child busy in a long synchronous request is trusted: its timeout ends it, not its silence", () =>
    S.live(() =>
      Effect.gen(function* () {
        const worker = yield* makeWorker({ heartbeatInterval: "20 millis", silenceLimit: "100 millis" })
        yield* worker.dispatch({ _tag: "Echo", value: 0 })
        const hung = yield* Effect.flip(worker.dispatch({ _tag: "Hang" }, { timeout: "1 second" }))
        assert.strictEqual(hung._tag, "RequestTimeout")
        const health = yield* S.healthy(worker)
        assert.deepStrictEqual([health.timeouts, health.crashes], [1, 1])
        assert.match(health.lastCrash?.reason ?? "", /ran past its 1000 ms timeout/)
      })
    )
  )

  it.live("a 50 MB request is refused with InvalidRequest without being serialised; the worker stays up", () =>
    S.live(() =>
      Effect.gen(function* () {
        const worker = yield* makeWorker()
        const { pid } = yield* worker.dispatch({ _tag: "Echo", value: 0 })
        const refused = yield* Effect.flip(worker.dispatch({ _tag: "Garbage", text: "z".repeat(50_000_000) }))
        assert.instanceOf(refused, InvalidRequest)
        assert.match(
          refused.reason,
          /^the request is at least 5000\d{4} bytes on the wire, over the limit of 1048576 \(maxLineBytes\)$/
        )
        assert.strictEqual((yield* worker.dispatch({ _tag: "Echo", value: 1 })).pid, pid)
      })
    )
  )

  it("invalid heartbeat options make a kind that carries InvalidOptions", () => {
    const make = (options: Partial<Subprocess.Options<number, number, never>>) =>
      Subprocess.make({ command: "node", request: Schema.Number, response: Schema.Number, ...options }).invalid
    assert.instanceOf(make({ heartbeatInterval: 0 }), InvalidOptions)
    assert.instanceOf(make({ heartbeatInterval: "1 second", silenceLimit: "1 second" }), InvalidOptions)
    assert.instanceOf(make({ silenceLimit: "forever" as never }), InvalidOptions)
    assert.isUndefined(make({}))
  })
})
