/**
 * `ScriptPool`: a pool of one worker script from one set of options, as a
 * service with its layer, over real threads and real processes.
 */
import { availableParallelism } from "node:os"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Metric, Option } from "effect"
import {
  DispatchPolicy,
  DomainError,
  type InvalidRequest,
  PoolMetrics,
  ScriptPool,
  type WorkerPool
} from "effect-worker-pool"
import { Answer, Job } from "./fixtures/jobs.ts"
import * as S from "./fixtures/support.ts"

const contract = { request: Job, response: Answer }
const fast = { startTimeout: "20 seconds", cancelGrace: "2 seconds", shutdownTimeout: "1 second" } as const

/** The test worker's script on threads: its schemas, the source condition, short grace periods. */
const threadScript = {
  thread: S.workerScript,
  execArgv: ["--conditions=effect-worker-pool-source"],
  ...contract,
  ...fast
}

class Threads extends ScriptPool.Service<Threads>()("test/Threads", {
  ...threadScript,
  size: 2,
  policy: DispatchPolicy.RoundRobin,
  concurrency: 2,
  maxInFlight: 1,
  restart: S.restartAtOnce.restart
}) {}

class Processes extends ScriptPool.Service<Processes>()("test/Processes", {
  subprocess: S.workerScript,
  nodePath: S.node,
  execArgv: ["--conditions=effect-worker-pool-source"],
  ...contract,
  ...fast,
  killGrace: "1 second",
  size: 2,
  timeout: "1 second"
}) {}

describe("ScriptPool", { timeout: 60_000 }, () => {
  it.live(
    "Service: a thread pool from a script and its schemas, its options passed to the kind, workers and pool",
    () =>
      S.live(() =>
        Effect.gen(function* () {
          const pool = yield* Threads
          // The service is the pool of the script, with its errors.
          const typed: WorkerPool.WorkerPool<Job, Answer, DomainError | InvalidRequest> = pool
          assert.strictEqual(typed, pool)

          assert.strictEqual(yield* pool.size, 2)
          assert.strictEqual(pool.policy, "RoundRobin")
          const worker = Option.getOrThrow(yield* pool.select)
          assert.strictEqual(worker.kind, "thread")
          assert.strictEqual(worker.maxInFlight, 1)

          const first = yield* pool.dispatch({ _tag: "Echo", value: 1 })
          const second = yield* pool.dispatch({ _tag: "Echo", value: 2 })
          assert.deepStrictEqual([first.value, second.value], [1, 2])
          assert.strictEqual(first.pid, process.pid)
          assert.notStrictEqual(first.thread, second.thread)

          assert.deepStrictEqual(
            yield* Effect.flip(pool.dispatch({ _tag: "Domain", reason: "negative" })),
            new DomainError({ reason: "negative" })
          )
          const crash = yield* Effect.flip(pool.dispatch({ _tag: "Exit", code: 3 }))
          assert.strictEqual(crash._tag, "WorkerCrash")
          assert.match(crash.message, /exited with code 3/)
          // Requests go on; the crashed worker is replaced.
          assert.strictEqual((yield* pool.dispatch({ _tag: "Echo", value: 3 })).value, 3)

          // One kind for every worker: the pool keeps a spare of it.
          assert.deepStrictEqual(
            (yield* pool.spares).map((s) => s.kind),
            ["thread"]
          )
        }).pipe(Effect.provide(Threads.layer))
      )
  )

  it.live("Service: a subprocess pool; the pool's timeout applies, and its processes end with the layer", () =>
    S.live(() =>
      Effect.gen(function* () {
        const pids = yield* Effect.gen(function* () {
          const pool = yield* Processes
          assert.strictEqual(yield* pool.size, 2)
          const answers = yield* Effect.forEach(
            [1, 2],
            (value) => pool.dispatch({ _tag: "Echo", value }).pipe(Effect.map((a) => a.pid)),
            { concurrency: "unbounded" }
          )
          assert.notInclude(answers, process.pid)
          const timeout = yield* Effect.flip(pool.dispatch({ _tag: "Hang" }))
          assert.strictEqual(timeout._tag, "RequestTimeout")
          assert.deepStrictEqual(
            yield* Effect.flip(pool.dispatch({ _tag: "Domain", reason: "bad" })),
            new DomainError({ reason: "bad" })
          )
          return answers
        }).pipe(Effect.provide(Processes.layer))
        yield* S.gone(pids)
      })
    )
  )

  it.live("make: the size defaults to the number of CPUs", () =>
    S.live(() =>
      Effect.gen(function* () {
        const pool = yield* ScriptPool.make({
          ...threadScript,
          spares: 0
        })
        assert.strictEqual(yield* pool.size, availableParallelism())
        assert.strictEqual((yield* pool.dispatch({ _tag: "Echo", value: 7 })).value, 7)
      })
    )
  )

  it.live("make: the pool's name and metrics options reach the pool, not the kind", () =>
    S.live(() =>
      Effect.gen(function* () {
        const pool = yield* ScriptPool.make({
          ...threadScript,
          size: 1,
          spares: 0,
          policy: DispatchPolicy.RoundRobin,
          name: "scripted",
          metrics: { workerId: true }
        })
        assert.strictEqual((yield* pool.dispatch({ _tag: "Echo", value: 1 })).value, 1)
        // The series of the run time carry the pool's name, and the worker's id as `metrics` asks.
        const series = (yield* Metric.snapshot).filter((s) => s.id === PoolMetrics.runTime.id)
        assert.deepStrictEqual(
          series.map((s) => s.attributes),
          [{ pool: "scripted", policy: "RoundRobin", kind: "thread", worker_id: "0" }]
        )
      }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))
    )
  )

  it.live("invalid options of the kind, of a worker or of the pool fail the layer with InvalidOptions", () =>
    S.live(() =>
      Effect.gen(function* () {
        const reasonOf = (options: ScriptPool.Options<Job, Answer>) =>
          ScriptPool.make(options).pipe(
            Effect.flip,
            Effect.map((e) => `${e._tag}: ${e.reason}`)
          )
        assert.strictEqual(
          yield* reasonOf({ thread: S.workerScript, ...contract, concurrency: 0 }),
          "InvalidOptions: concurrency must be a positive integer, got 0"
        )
        assert.strictEqual(
          yield* reasonOf({ subprocess: S.workerScript, ...contract, queueCapacity: -1 }),
          "InvalidOptions: queueCapacity must be a non-negative integer, got -1"
        )
        assert.strictEqual(
          yield* reasonOf({ subprocess: S.workerScript, ...contract, maxInFlight: 0 }),
          'InvalidOptions: maxInFlight must be a positive integer, "adaptive" or { adaptive: { max } }, got 0'
        )
        assert.strictEqual(
          yield* reasonOf(contract as unknown as ScriptPool.Options<Job, Answer>),
          "InvalidOptions: give the script as thread or as subprocess"
        )

        class Broken extends ScriptPool.Service<Broken>()("test/Broken", {
          thread: S.workerScript,
          ...contract,
          size: -1
        }) {}
        const error = yield* Effect.flip(Layer.build(Broken.layer))
        assert.strictEqual(error.reason, "size must be a non-negative integer, got -1")
      })
    )
  )
})
