/**
 * Production load on real workers: poison requests must not fail the healthy
 * ones, a mass kill must not fail the requests that wait, and a worker that
 * can never start must be refused at once and retried without a storm.
 * Every pool here runs with the library's default options.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Option, Schema } from "effect"
import type { ChildProcessSpawner } from "effect/process"
import { TestClock } from "effect/testing"
import {
  type DomainError,
  type InvalidOptions,
  type InvalidRequest,
  Subprocess,
  Worker,
  WorkerCrash,
  type WorkerId,
  WorkerPool
} from "effect-worker-pool"
import type { Answer, Job } from "./fixtures/jobs.ts"
import * as S from "./fixtures/support.ts"
import * as T from "./support.ts"

type Kind = "in-process" | "thread" | "subprocess"

/** The test worker in each kind, with default options (short grace periods only, so kills stay quick). */
const workerOf = (kind: Kind) => (id: WorkerId) => {
  switch (kind) {
    case "in-process":
      return Worker.make<Job, Answer, DomainError | InvalidRequest>(id, (job: Job) =>
        job._tag === "Echo"
          ? Effect.succeed<Answer>({ pid: process.pid, thread: 0, value: job.value })
          : job._tag === "Exit"
            ? Effect.fail(WorkerCrash.report(`exited with code ${job.code}`))
            : Effect.die(new TypeError("thrown in handler"))
      )
    case "thread":
      return Worker.fromKind(id, S.thread())
    case "subprocess":
      return Worker.fromKind(id, S.subprocess())
  }
}

/** Every 10th request is poison: half of them exit the worker's process, half throw. */
const jobOf = (i: number): Job =>
  i % 10 !== 9 ? { _tag: "Echo", value: i } : i % 20 === 19 ? { _tag: "Exit", code: 3 } : { _tag: "Throw" }

describe("poison requests under load, default options", () => {
  for (const kind of ["in-process", "thread", "subprocess"] as const) {
    it.live(
      `${kind}: 300 requests from 8 callers, every 10th crashing its worker: the 270 healthy ones succeed`,
      () =>
        S.live(() =>
          Effect.gen(function* () {
            const pool = yield* WorkerPool.make<
              Job,
              Answer,
              DomainError | InvalidRequest,
              InvalidOptions,
              ChildProcessSpawner.ChildProcessSpawner
            >({ size: 2, worker: workerOf(kind) })
            const exits = yield* Effect.forEach(
              Array.from({ length: 300 }, (_, i) => i),
              (i) => Effect.exit(pool.dispatch(jobOf(i))),
              { concurrency: 8 }
            )
            const healthy = exits.filter((_, i) => i % 10 !== 9)
            const poison = exits.filter((_, i) => i % 10 === 9)
            const failedHealthy = healthy.filter(Exit.isFailure).map((exit) => String(T.errorOf(exit)))
            assert.deepStrictEqual(failedHealthy, [], "every healthy request succeeds")
            healthy.forEach((exit, n) => {
              assert.strictEqual(Exit.isSuccess(exit) && exit.value.value, Math.floor(n / 9) * 10 + (n % 9))
            })
            assert.strictEqual(poison.length, 30)
            for (const exit of poison) {
              const crash = S.crashOf(T.errorOf(exit))
              assert.isDefined(crash.workerId, "a crash of its own worker, not a refusal")
            }
            const health = yield* pool.health
            assert.isTrue(
              health.every(([, h]) => h.state !== "Retired"),
              "no worker is retired"
            )
            assert.strictEqual(
              health.reduce((n, [, h]) => n + h.crashes, 0),
              30
            )
          })
        ),
      // 30 threads or processes started again: the subprocess run takes 13 s on an idle 2-vCPU machine, more on a busy one.
      { timeout: 90_000 }
    )
  }
})

describe("a mass kill", () => {
  it.live(
    "4 subprocess workers each running a request, 100 waiting; all killed at once: the 4 fail, the 100 succeed",
    () =>
      S.live((logs) =>
        Effect.gen(function* () {
          const pool = yield* WorkerPool.make<
            Job,
            Answer,
            DomainError | InvalidRequest,
            InvalidOptions,
            ChildProcessSpawner.ChildProcessSpawner
          >({
            size: 4,
            worker: workerOf("subprocess")
          })
          // Four at once take one worker each (one slot per worker): their answers name the processes.
          const pids = (yield* Effect.forEach([1, 2, 3, 4], (value) => pool.dispatch({ _tag: "Echo", value }), {
            concurrency: "unbounded"
          })).map((answer) => answer.pid)
          assert.strictEqual(new Set(pids).size, 4)
          const running = yield* Effect.forEach([1, 2, 3, 4], () => Effect.forkChild(pool.dispatch({ _tag: "Wait" })))
          // Each is its process's second request.
          yield* S.eventually("the four have started", () => logs.lines.filter((l) => l === "started 2").length === 4)
          const waiting = yield* Effect.forEach(
            Array.from({ length: 100 }, (_, i) => i),
            (value) => Effect.forkChild(pool.dispatch({ _tag: "Echo", value }))
          )
          yield* S.eventuallyEffect(
            "100 requests wait",
            Effect.map(pool.queued, (n) => n === 100)
          )
          for (const pid of pids) process.kill(pid, "SIGKILL")
          for (const fiber of running) {
            const crash = S.crashOf(T.errorOf(yield* Fiber.await(fiber)))
            assert.match(crash.reason.message, /killed by SIGKILL/)
            assert.strictEqual(crash.reason._tag, "Killed")
          }
          const answers = yield* Effect.forEach(waiting, Fiber.join)
          assert.deepStrictEqual(
            answers.map((a) => a.value),
            Array.from({ length: 100 }, (_, i) => i)
          )
          assert.isTrue(
            answers.every((a) => !pids.includes(a.pid)),
            "served by the replacements"
          )
        })
      ),
    { timeout: 60_000 }
  )
})

describe("a worker that can never start", () => {
  it.live(
    "is refused at once, with the reason, and is started at most 8 times in its first 3 s",
    () =>
      S.live(() =>
        Effect.gen(function* () {
          const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ewp-never-"))
          /** A kind whose process writes the time to `log` and exits with code 7, before it is ready. */
          const neverStarts = (log: string) =>
            Subprocess.make({
              command: S.node,
              args: [
                "-e",
                `require("node:fs").appendFileSync(${JSON.stringify(log)}, Date.now() + "\\n"); process.exit(7)`
              ],
              request: Schema.Number,
              response: Schema.Number
            })

          // At once: on a clock that never moves (a TestClock nobody adjusts), no restart delay and no
          // queue timeout can pass, so the dispatch ends only if the pool refuses without waiting.
          const frozenLog = path.join(dir, "frozen")
          const frozen = yield* WorkerPool.make({
            size: 1,
            worker: (id) => Worker.fromKind(id, neverStarts(frozenLog))
          }).pipe(Effect.provide(TestClock.layer()))
          const refused = yield* Effect.flip(frozen.dispatch(1))
          const crash = S.crashOf(refused)
          assert.isUndefined(crash.workerId)
          assert.match(
            crash.reason.message,
            /^no worker available: .*failing to start \(process \d+ exited with code 7/
          )
          assert.isTrue(Option.isNone(yield* frozen.select))

          // On the real clock, its restarts back off.
          const log = path.join(dir, "starts")
          const pool = yield* WorkerPool.make({ size: 1, worker: (id) => Worker.fromKind(id, neverStarts(log)) })
          const startsIn = (file: string) =>
            fs
              .readFileSync(file, "utf8")
              .split("\n")
              .filter((line) => line !== "")
              .map(Number)
          // The 6th start comes about 3.1 s after the first (100, 200, 400, 800, 1600 ms apart).
          yield* S.eventually("six starts", () => startsIn(log).length >= 6, 30)
          const all = startsIn(log)
          assert.isAtMost(all.filter((at) => at - all[0]! <= 3000).length, 8)
          const [[, health]] = yield* pool.health
          assert.notStrictEqual(health.state, "Retired")
          assert.isAtLeast(health.failedStarts, 5)
          // Meanwhile the frozen pool's clock never moved: its worker was started once, never again.
          assert.strictEqual(startsIn(frozenLog).length, 1)
        })
      ),
    { timeout: 60_000 }
  )
})

describe("a cancel the child does not confirm", () => {
  it.live(
    "keeps the child's slot taken: requests meanwhile go to the other worker, and none fails",
    () =>
      S.live((logs) =>
        Effect.gen(function* () {
          const pool = yield* WorkerPool.make<Job, Answer, DomainError | InvalidRequest, InvalidOptions>({
            size: 2,
            worker: (id) => Worker.fromKind(id, S.subprocess({ cancelGrace: "1 second" }))
          })
          const pids = (yield* Effect.forEach([1, 2], (value) => pool.dispatch({ _tag: "Echo", value }), {
            concurrency: "unbounded"
          })).map((answer) => answer.pid)
          const stubborn = yield* Effect.forkChild(pool.dispatch({ _tag: "IgnoreCancel" }))
          yield* S.eventually("the stubborn request started", () => logs.lines.some((l) => l === "started 2"))
          yield* Fiber.interrupt(stubborn)
          const held = (yield* pool.health).filter(([, h]) => h.inFlight === 1)
          assert.strictEqual(held.length, 1, "the cancelled request still holds its slot")
          // While the child holds on to it, every request goes to the other process.
          const answers = yield* Effect.forEach(
            Array.from({ length: 20 }, (_, i) => i),
            (value) => pool.dispatch({ _tag: "Echo", value })
          )
          const busy = answers[0]!.pid
          assert.isTrue(pids.includes(busy))
          assert.isTrue(answers.every((a) => a.pid === busy))
          // Past the grace period, the child is killed and replaced; nobody saw its crash.
          const [[, h0], [, h1]] = yield* S.eventuallyEffect(
            "the stubborn child is replaced",
            Effect.map(pool.health, (all) => all.every(([, h]) => h.inFlight === 0 && h.state === "Healthy"))
          ).pipe(Effect.andThen(pool.health))
          assert.strictEqual(h0!.crashes + h1!.crashes, 1)
          assert.strictEqual(h0!.interrupted + h1!.interrupted, 1)
          assert.strictEqual(h0!.errored + h1!.errored, 0)
        })
      ),
    { timeout: 60_000 }
  )
})
