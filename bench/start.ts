/**
 * Start and replacement latency of the thread and subprocess kinds, beside a
 * bare spawn-to-first-message of each transport.
 *
 * - Start: from `Worker.fromKind` to the worker being `Healthy` (it returns
 *   then) and to its first answer.
 * - Bare spawn: a plain `worker_threads` Worker (a plain `node` child) that
 *   answers one message (one line) with the echo script; and the same echo
 *   after loading this library, the part of a start that is loading code.
 * - Replacement: a pool of 1 worker with default options; the worker dies
 *   (its handler calls `process.exit`, or, for a subprocess, `kill -9` from
 *   outside); then the time to the crash being noticed, to the replacement
 *   being `Healthy`, and to its first successful answer. With default
 *   options (the pool keeps a spare, ready by the time the worker dies), and
 *   with `spares: 0` (a restart after the first backoff delay, then a start).
 *
 * All in the same interleaved rounds. Goal: a replacement answers at most
 * 20 ms after a bare spawn of its transport would have.
 */
import * as ChildProcess from "node:child_process"
import { once } from "node:events"
import * as WorkerThreads from "node:worker_threads"
import { NodeServices } from "@effect/platform-node"
import { Effect, Fiber, References, Schedule, Stream } from "effect"
import { Subprocess, Thread, Worker, WorkerId, WorkerPool } from "effect-worker-pool"
import { interleave, type Measure, type Spread, spread } from "./rounds.ts"
import { exitRequest, Probe, pidRequest } from "./workers/schemas.ts"

/** The goal: a replacement's first answer comes at most this many ms after a bare spawn's. */
export const replacementSlackMillis = 20

const script = (name: string) => new URL(`./workers/${name}`, import.meta.url)
const probe = script("probe.ts")
const options = { request: Probe, response: Probe }

/** The kinds, with default options but for what the script needs to load the library from source. */
const makeKind = (kind: "thread" | "subprocess") =>
  kind === "thread"
    ? Thread.make(probe, options)
    : Subprocess.node(probe, { ...options, execArgv: ["--conditions=effect-worker-pool-source"] })

/** A bare thread running `name`: milliseconds from `new Worker` to its answer to one message. */
const bareThread = async (name: string): Promise<number> => {
  const start = performance.now()
  const thread = new WorkerThreads.Worker(script(name))
  const answer = once(thread, "message")
  thread.postMessage([0, 1, 2])
  await answer
  const elapsed = performance.now() - start
  await thread.terminate()
  return elapsed
}

/** A bare child running `name`: milliseconds from `spawn` to its answer to one line. */
const bareChild = async (name: string): Promise<number> => {
  const start = performance.now()
  const child = ChildProcess.spawn(
    process.execPath,
    ["--conditions=effect-worker-pool-source", script(name).pathname],
    {
      stdio: ["pipe", "pipe", "inherit"]
    }
  )
  const answer = once(child.stdout, "data")
  child.stdin.write(`${JSON.stringify({ id: 0, a: 1, b: 2 })}\n`)
  await answer
  const elapsed = performance.now() - start
  const exited = once(child, "exit")
  child.stdin.end()
  await exited
  return elapsed
}

/** The crashes are on purpose: the library's log lines about them are left out. */
const quiet = Effect.provideService(References.MinimumLogLevel, "None")

/** Milliseconds from `Worker.fromKind` to `Healthy`, and to the first answer. */
interface Start {
  readonly healthy: number
  readonly answered: number
}

const kindStart = (kind: "thread" | "subprocess"): Promise<Start> =>
  Effect.runPromise(
    Effect.gen(function* () {
      const start = performance.now()
      const worker = yield* Worker.fromKind(WorkerId.make(0), makeKind(kind))
      const healthy = performance.now() - start
      const state = (yield* worker.health).state
      if (state !== "Healthy") return yield* Effect.die(new Error(`the ${kind} worker did not start: ${state}`))
      yield* worker.dispatch(1)
      return { healthy, answered: performance.now() - start }
    }).pipe(Effect.scoped, Effect.provide(NodeServices.layer), quiet)
  )

/** How a worker dies. */
export type Death = "process.exit" | "kill -9"

/** Milliseconds from the death to its being noticed, to the replacement being `Healthy`, and to its first answer. */
export interface Replacement {
  readonly noticed: number
  readonly healthy: number
  readonly answered: number
}

const replacement = (kind: "thread" | "subprocess", death: Death, withSpare: boolean): Promise<Replacement> =>
  Effect.runPromise(
    Effect.gen(function* () {
      const made = makeKind(kind)
      const pool = yield* WorkerPool.make({
        size: 1,
        spares: withSpare ? 1 : 0,
        worker: (id) => Worker.fromKind(id, made)
      })
      if ((yield* pool.dispatch(1)) !== 2) return yield* Effect.die(new Error("wrong answer"))
      // A pool that has been running: its spare (if any) is ready.
      yield* pool.spares.pipe(
        Effect.repeat({
          until: (spares) => spares.every((s) => s.state === "Ready"),
          schedule: Schedule.spaced("5 millis")
        })
      )
      const pid = death === "kill -9" ? yield* pool.dispatch(pidRequest) : 0
      let start = 0
      let noticed = 0
      const healthyAgain = yield* Effect.forkChild(
        pool.changes.pipe(
          Stream.tap(() =>
            Effect.sync(() => {
              if (noticed === 0) noticed = performance.now() - start
            })
          ),
          Stream.filter(([, health]) => health.state === "Healthy"),
          Stream.runHead,
          Effect.map(() => performance.now() - start)
        )
      )
      yield* Effect.yieldNow
      start = performance.now()
      if (death === "kill -9") process.kill(pid, "SIGKILL")
      else yield* Effect.exit(pool.dispatch(exitRequest))
      const healthy = yield* Fiber.join(healthyAgain).pipe(
        Effect.timeoutOrElse({
          duration: "30 seconds",
          orElse: () => Effect.die(new Error(`the ${kind} worker was not replaced within 30 s after ${death}`))
        })
      )
      if ((yield* pool.dispatch(2)) !== 3) return yield* Effect.die(new Error("wrong answer"))
      return { noticed, healthy, answered: performance.now() - start }
    }).pipe(Effect.scoped, Effect.provide(NodeServices.layer), quiet)
  )

/** One start row: what started, and its milliseconds to `Healthy` (kinds only) and to the first answer. */
export interface StartRow {
  readonly name: string
  readonly healthy: Spread | undefined
  readonly answered: Spread
}

/** One replacement row, and the goal's figure: its first answer minus the bare spawn's, per round. */
export interface ReplacementRow {
  readonly kind: "thread" | "subprocess"
  readonly death: Death
  readonly withSpare: boolean
  readonly noticed: Spread
  readonly healthy: Spread
  readonly answered: Spread
  readonly overBare: Spread
}

/** What the section measured. */
export interface StartResult {
  readonly starts: ReadonlyArray<StartRow>
  readonly replacements: ReadonlyArray<ReplacementRow>
}

/** The names of the bare spawns of each transport, as the start table shows them. */
export const bareSpawnName = {
  thread: "bare worker_thread, echo script",
  subprocess: "bare node child, echo script"
} as const

const replacementCases = (["thread", "subprocess"] as const).flatMap((kind) =>
  (kind === "thread" ? (["process.exit"] as const) : (["process.exit", "kill -9"] as const)).flatMap((death) =>
    [true, false].map((withSpare) => ({ kind, death, withSpare }))
  )
)

/** Measures every start and replacement, `rounds` interleaved rounds. */
export const measureStart = async (rounds: number): Promise<StartResult> => {
  const startMeasures: Array<[string, () => Promise<Start | number>]> = [
    ["effect-worker-pool thread kind", () => kindStart("thread")],
    ["effect-worker-pool subprocess kind", () => kindStart("subprocess")],
    [bareSpawnName.thread, () => bareThread("echo-thread.ts")],
    [bareSpawnName.subprocess, () => bareChild("echo-pipe.ts")],
    ["bare worker_thread, echo script after loading effect-worker-pool", () => bareThread("loaded.ts")],
    ["bare node child, echo script after loading effect-worker-pool", () => bareChild("loaded.ts")]
  ]
  const measures: Array<Measure<Start | number | Replacement>> = [
    ...startMeasures.map(([, measure]) => measure),
    ...replacementCases.map(
      ({ kind, death, withSpare }) =>
        () =>
          replacement(kind, death, withSpare)
    )
  ]
  const samples = await interleave(measures, rounds, (round) =>
    console.log(`start: round ${round + 1} of ${rounds} done`)
  )

  const answeredOf = (xs: ReadonlyArray<Start | number>) => xs.map((x) => (typeof x === "number" ? x : x.answered))
  const starts = startMeasures.map(([name], i) => {
    const xs = samples[i]! as ReadonlyArray<Start | number>
    const kind = xs.every((x) => typeof x !== "number")
    return {
      name,
      healthy: kind ? spread((xs as ReadonlyArray<Start>).map((x) => x.healthy)) : undefined,
      answered: spread(answeredOf(xs))
    }
  })
  const bare = {
    thread: answeredOf(samples[startMeasures.findIndex(([name]) => name === bareSpawnName.thread)]!),
    subprocess: answeredOf(samples[startMeasures.findIndex(([name]) => name === bareSpawnName.subprocess)]!)
  }
  const replacements = replacementCases.map((c, i) => {
    const xs = samples[startMeasures.length + i]! as ReadonlyArray<Replacement>
    return {
      ...c,
      noticed: spread(xs.map((x) => x.noticed)),
      healthy: spread(xs.map((x) => x.healthy)),
      answered: spread(xs.map((x) => x.answered)),
      overBare: spread(xs.map((x, round) => x.answered - bare[c.kind][round]!))
    }
  })
  for (const row of starts) console.log(`start ${row.name}: ${row.answered.median.toFixed(1)} ms to a first answer`)
  for (const row of replacements) {
    console.log(
      `replacement ${row.kind}, ${row.death}${row.withSpare ? "" : ", no spare"}: ${row.answered.median.toFixed(1)} ms (bare spawn + ${row.overBare.median.toFixed(1)} ms)`
    )
  }
  return { starts, replacements }
}
