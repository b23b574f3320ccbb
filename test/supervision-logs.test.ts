/**
 * What a worker's supervisor logs over its life: each event once, at its
 * level, with the worker's id and kind and the reason. Operators read these
 * lines (docs/supervision.md): a crash is a warning, a retirement an error,
 * a clean end and a restart are news.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Logger, References, Schedule } from "effect"
import { TestClock } from "effect/testing"
import { Stopped, Worker, WorkerCrash, WorkerId, type WorkerKind } from "effect-worker-pool"

/** A log line as the tests compare it: level, message, and the annotations named in `keys`. */
const line = (level: string, message: string, annotations: Record<string, unknown>) => ({
  level,
  message,
  annotations
})

const keys = ["workerId", "workerKind", "reason", "attempt", "spare", "because"] as const

/** Runs `effect` with a logger that keeps every line above debug, with the annotations in `keys`. */
const logged = <A, E, R>(effect: (lines: Array<ReturnType<typeof line>>) => Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const lines: Array<ReturnType<typeof line>> = []
    const logger = Logger.make<unknown, void>(({ fiber, logLevel, message }) => {
      if (logLevel === "Debug" || logLevel === "Trace") return
      const all = fiber.getRef(References.CurrentLogAnnotations) as Record<string, unknown>
      const annotations: Record<string, unknown> = {}
      for (const key of keys) if (key in all) annotations[key] = all[key]
      lines.push(line(logLevel, String(Array.isArray(message) ? message[0] : message), annotations))
    })
    yield* effect(lines).pipe(Effect.provideService(Logger.CurrentLoggers, new Set([logger])))
    return lines
  })

/** A kind whose requests answer at once, and crash the incarnation when the request is "crash". */
const crashing: WorkerKind.WorkerKind<string, string, never> = {
  name: "crashing",
  spawn: Effect.succeed({
    run: (request: string) => (request === "crash" ? Effect.fail(WorkerCrash.report("boom")) : Effect.succeed(request)),
    exited: Effect.never
  })
}

const id = WorkerId.make(3)

describe("the supervisor's log", () => {
  it.effect("a crash: a warning with the reason, then the restart, with its attempt", () =>
    Effect.gen(function* () {
      const lines = yield* logged(() =>
        Effect.gen(function* () {
          const worker = yield* Worker.fromKind(id, crashing, { restart: Schedule.spaced("1 second") })
          yield* Effect.flip(worker.dispatch("crash"))
          yield* TestClock.adjust("1 second")
          assert.strictEqual(yield* worker.dispatch("after"), "after")
        })
      )
      assert.deepStrictEqual(lines, [
        line("Warn", "worker crashed", { workerId: 3, workerKind: "crashing", reason: "boom" }),
        line("Info", "worker restarting", { workerId: 3, workerKind: "crashing", attempt: 1, spare: false })
      ])
    })
  )

  it.effect("a worker that cannot start: a warning per failed start, then an error when it retires, and why", () =>
    Effect.gen(function* () {
      const broken: WorkerKind.WorkerKind<string, string, never> = {
        name: "broken",
        spawn: Effect.fail("no such script")
      }
      const lines = yield* logged(() =>
        Effect.gen(function* () {
          const worker = yield* Worker.fromKind(id, broken, {
            restart: Schedule.spaced("1 second"),
            maxRestarts: 1
          })
          yield* TestClock.adjust("1 second")
          const health = yield* worker.health
          assert.strictEqual(health.state, "Retired")
        })
      )
      const failed = line("Warn", "worker failed to start", {
        workerId: 3,
        workerKind: "broken",
        reason: lines[0]?.annotations.reason
      })
      assert.match(String(lines[0]?.annotations.reason), /no such script/)
      assert.deepStrictEqual(lines.slice(0, 3), [
        failed,
        line("Info", "worker restarting", { workerId: 3, workerKind: "broken", attempt: 1, spare: false }),
        failed
      ])
      assert.strictEqual(lines.length, 4)
      assert.deepStrictEqual([lines[3]!.level, lines[3]!.message], ["Error", "worker retired"])
      assert.deepStrictEqual(Object.keys(lines[3]!.annotations).sort(), ["because", "reason", "workerId", "workerKind"])
      assert.match(String(lines[3]!.annotations.because), /restart/)
    })
  )

  it.effect("a clean end (the incarnation says it stopped): news, not a warning; it starts again, not a restart", () =>
    Effect.gen(function* () {
      const ends: Array<Deferred.Deferred<WorkerCrash>> = []
      const stopping: WorkerKind.WorkerKind<string, string, never> = {
        name: "stopping",
        spawn: Effect.gen(function* () {
          const exited = yield* Deferred.make<WorkerCrash>()
          ends.push(exited)
          return { run: (request: string) => Effect.succeed(request), exited: Deferred.await(exited) }
        })
      }
      const lines = yield* logged(() =>
        Effect.gen(function* () {
          const worker = yield* Worker.fromKind(id, stopping, { restart: Schedule.spaced("1 second") })
          yield* Deferred.succeed(ends[0]!, new WorkerCrash({ reason: new Stopped({ message: "asked to stop" }) }))
          yield* TestClock.adjust("1 second")
          assert.strictEqual(yield* worker.dispatch("again"), "again")
          const health = yield* worker.health
          assert.deepStrictEqual([health.crashes, health.restarts, ends.length], [0, 0, 2])
        })
      )
      assert.deepStrictEqual(lines, [
        line("Info", "worker ended", { workerId: 3, workerKind: "stopping", reason: "asked to stop" }),
        line("Info", "worker starting again", { workerId: 3, workerKind: "stopping", spare: false })
      ])
    })
  )
})
