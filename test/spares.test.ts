/**
 * Spares: incarnations started ahead and handed to a crashed worker of their
 * kind, so that it is back at once instead of after a restart delay and a
 * start.
 */
import { execFileSync } from "node:child_process"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Schedule } from "effect"
import { TestClock } from "effect/testing"
import {
  type DomainError,
  type InvalidOptions,
  type InvalidRequest,
  Worker,
  WorkerCrash,
  type WorkerKind,
  WorkerPool
} from "effect-worker-pool"
import type { Answer, Job } from "./fixtures/jobs.ts"
import * as S from "./fixtures/support.ts"

/** An in-process kind that allows spares and numbers its incarnations; "crash" crashes one. */
const numbered = () => {
  let started = 0
  let failing = false
  const kind: WorkerKind.WorkerKind<string, number, never> = {
    name: "numbered",
    spare: true,
    spawn: Effect.suspend(() => {
      if (failing) return Effect.fail("cannot start")
      const n = ++started
      return Effect.succeed({
        run: (request: string) => (request === "crash" ? Effect.fail(WorkerCrash.report("boom")) : Effect.succeed(n)),
        exited: Effect.never
      })
    })
  }
  return { kind, started: () => started, fail: (on: boolean) => (failing = on) }
}

describe("spares", () => {
  it.effect("a crashed worker takes a ready spare at once, and a new spare is started in the background", () =>
    Effect.gen(function* () {
      const { kind, started } = numbered()
      const pool = yield* WorkerPool.make({
        size: 1,
        worker: (id) => Worker.fromKind(id, kind, { restart: Schedule.spaced("1 hour") })
      })
      yield* Effect.yieldNow
      assert.strictEqual(started(), 2, "the worker's incarnation and a spare")
      assert.deepStrictEqual(
        (yield* pool.spares).map((s) => [s.kind, s.state, s.starts]),
        [["numbered", "Ready", 1]]
      )
      assert.strictEqual(yield* pool.dispatch("which"), 1)

      yield* Effect.flip(pool.dispatch("crash"))
      // No restart delay (an hour here): the spare took over.
      const [[, health]] = yield* pool.health
      assert.deepStrictEqual([health.state, health.restarts, health.crashes], ["Healthy", 1, 1])
      assert.strictEqual(yield* pool.dispatch("which"), 2)

      // The next spare starts after the first backoff delay (about 100 ms).
      assert.deepStrictEqual(
        (yield* pool.spares).map((s) => s.state),
        ["Starting"]
      )
      yield* TestClock.adjust("150 millis")
      assert.deepStrictEqual(
        (yield* pool.spares).map((s) => [s.state, s.starts]),
        [["Ready", 2]]
      )
      assert.strictEqual(started(), 3)
    })
  )

  it.effect("a restart on a spare counts toward the restart budget at the time it happens", () =>
    Effect.gen(function* () {
      const { kind } = numbered()
      const pool = yield* WorkerPool.make({
        size: 1,
        worker: (id) =>
          Worker.fromKind(id, kind, {
            maxRestarts: 3,
            restartWindow: "5 seconds",
            // Growing delays (1 s, 10 s, 100 s, 1000 s): budgeted at now + delay, the restarts
            // would spread far apart and fall out of the window.
            restart: Schedule.exponential("1 second", 10)
          })
      })
      yield* Effect.yieldNow
      const states: Array<string> = []
      for (let i = 0; i < 4; i++) {
        yield* Effect.flip(pool.dispatch("crash"))
        const [[, health]] = yield* pool.health
        states.push(`${health.state} ${health.restarts}`)
        // A second: the next spare is ready long before (its keeper waits about 100 ms).
        yield* TestClock.adjust("1 second")
      }
      // Three restarts on spares within 3 s; the fourth crash exceeds 3 restarts within 5 s.
      assert.deepStrictEqual(states, ["Healthy 1", "Healthy 2", "Healthy 3", "Retired 3"])
    })
  )

  it.effect("no spare is started for a kind whose workers cannot start, and `spares: 0` turns them off", () =>
    Effect.gen(function* () {
      const broken = numbered()
      broken.fail(true)
      const pool = yield* WorkerPool.make({ size: 1, worker: (id) => Worker.fromKind(id, broken.kind) })
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(
        (yield* pool.spares).map((s) => [s.state, s.starts]),
        [["Starting", 0]]
      )

      const off = numbered()
      const none = yield* WorkerPool.make({ size: 2, spares: 0, worker: (id) => Worker.fromKind(id, off.kind) })
      yield* Effect.yieldNow
      assert.deepStrictEqual(yield* none.spares, [])
      assert.strictEqual(off.started(), 2)
    })
  )

  it.effect("a spare that dies before it is used is ended, said so, and replaced after the backoff", () =>
    Effect.gen(function* () {
      let started = 0
      const exits: Array<Deferred.Deferred<WorkerCrash>> = []
      const kind: WorkerKind.WorkerKind<string, number, never> = {
        name: "mortal",
        spare: true,
        spawn: Effect.gen(function* () {
          const n = ++started
          const exited = yield* Deferred.make<WorkerCrash>()
          exits[n] = exited
          return {
            run: (request: string) =>
              request === "crash" ? Effect.fail(WorkerCrash.report("boom")) : Effect.succeed(n),
            exited: Deferred.await(exited)
          }
        })
      }
      const pool = yield* WorkerPool.make({
        size: 1,
        worker: (id) => Worker.fromKind(id, kind, { restart: Schedule.spaced("1 hour") })
      })
      yield* Effect.yieldNow
      assert.deepStrictEqual(
        (yield* pool.spares).map((s) => [s.state, s.starts]),
        [["Ready", 1]]
      )
      // Incarnation 2, the spare, dies on its own.
      yield* Deferred.succeed(exits[2]!, WorkerCrash.report("the spare died"))
      yield* Effect.yieldNow
      const [dead] = yield* pool.spares
      assert.deepStrictEqual([dead!.state, dead!.lastFailure], ["Starting", "a spare died before it was used"])
      assert.strictEqual(started, 2, "not restarted before the backoff")
      yield* TestClock.adjust("150 millis")
      assert.deepStrictEqual(
        (yield* pool.spares).map((s) => [s.state, s.starts, s.failedStarts]),
        [["Ready", 2, 0]]
      )
      // The crashed worker takes the new spare, incarnation 3.
      yield* Effect.flip(pool.dispatch("crash"))
      assert.strictEqual(yield* pool.dispatch("which"), 3)
    })
  )

  it.effect("a spare that cannot start shows why, and is tried again once a worker of its kind has started", () =>
    Effect.gen(function* () {
      const { fail, kind, started } = numbered()
      const pool = yield* WorkerPool.make({
        size: 1,
        worker: (id) => Worker.fromKind(id, kind, { restart: Schedule.spaced("1 second") })
      })
      yield* Effect.yieldNow
      fail(true)
      // The worker takes the ready spare; the next one fails to start after the backoff.
      yield* Effect.flip(pool.dispatch("crash"))
      yield* TestClock.adjust("150 millis")
      const [failed] = yield* pool.spares
      assert.deepStrictEqual([failed!.state, failed!.starts, failed!.failedStarts], ["Restarting", 2, 1])
      assert.match(failed!.lastFailure!, /cannot start/)
      // No worker of the kind has started since: no more spare starts, however long.
      yield* TestClock.adjust("1 minute")
      assert.strictEqual((yield* pool.spares)[0]!.starts, 2)

      // The kind works again; the worker crashes and is restarted by its schedule (no spare is ready).
      fail(false)
      yield* Effect.flip(pool.dispatch("crash"))
      const before = started()
      yield* TestClock.adjust("1 second")
      assert.strictEqual(started(), before + 1, "the worker restarted")
      // Then the spare, after its backoff.
      yield* TestClock.adjust("10 seconds")
      const [back] = yield* pool.spares
      assert.deepStrictEqual([back!.state, back!.failedStarts], ["Ready", 0])
      assert.strictEqual(started(), before + 2)
    })
  )

  it.effect("a spare serves only the workers made with its kind value", () =>
    Effect.gen(function* () {
      const first = numbered()
      const other = numbered()
      const pool = yield* WorkerPool.make<string, number, never>({})
      yield* pool.add(yield* Worker.fromKind(0 as never, first.kind, { restart: Schedule.spaced("1 second") }))
      yield* pool.add(yield* Worker.fromKind(1 as never, other.kind, { restart: Schedule.spaced("1 second") }))
      yield* Effect.yieldNow
      assert.strictEqual(first.started(), 2)
      assert.strictEqual(other.started(), 1)
    })
  )
})

/** The live child processes of this process. */
const children = (): Array<number> =>
  execFileSync("ps", ["-o", "pid=,stat=", "--ppid", String(process.pid)], { encoding: "utf8" })
    .split("\n")
    .map((line) => line.trim().split(/\s+/))
    .filter(([pid, stat]) => pid !== undefined && pid !== "" && !stat?.startsWith("Z"))
    .map(([pid]) => Number(pid))
    .filter((pid) => pid !== undefined && S.isAlive(pid))

describe("spares of real processes", () => {
  it.live(
    "with default options, the replacement of a crashed subprocess worker is the spare, already running",
    () =>
      S.live(() =>
        Effect.gen(function* () {
          const kind = S.subprocess()
          const pool = yield* WorkerPool.make<Job, Answer, DomainError | InvalidRequest, InvalidOptions>({
            size: 1,
            worker: (id) => Worker.fromKind(id, kind)
          })
          yield* S.eventuallyEffect(
            "the spare is ready",
            Effect.map(pool.spares, (spares) => spares.every((s) => s.state === "Ready"))
          )
          const { pid } = yield* pool.dispatch({ _tag: "Echo", value: 1 })
          const before = children()
          assert.strictEqual(before.length, 2, "the worker's process and the spare's")
          const spare = before.find((p) => p !== pid)!
          const exit = yield* Effect.exit(pool.dispatch({ _tag: "Exit", code: 3 }))
          assert.isTrue(Exit.isFailure(exit))
          const next = yield* pool.dispatch({ _tag: "Echo", value: 2 })
          assert.strictEqual(next.pid, spare, "the spare's process answers")
        })
      ),
    { timeout: 60_000 }
  )
})
