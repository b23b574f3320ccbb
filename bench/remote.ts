/**
 * Remote workers: throughput through pools of 1, 2 and 3 remote workers, one
 * per runner process on loopback, on trivial tasks (`{ a, b } → a + b`) and
 * on tasks whose handler waits 1 ms first (I/O bound, each worker holding
 * 4 at once), 256 callers at a time;
 * and the time from `kill -9` of a runner to the `WorkerCrash` of a request
 * it held. Each round runs every variant once, in an order that alternates;
 * the speed-ups over one runner are taken within a round. The CPU time that
 * the client process and the runners spend per task says what limits the
 * trivial tasks.
 */
import * as ChildProcess from "node:child_process"
import { once } from "node:events"
import { Effect, Exit, Fiber, References, Schema, Scope } from "effect"
import { WorkerCrash } from "effect-worker-pool"
import { Remote } from "effect-worker-pool/remote"
import { processCpuMicros } from "./cpu.ts"
import { interleave, ratio, type Spread, spread } from "./rounds.ts"
import { RemoteTask } from "./workers/schemas.ts"

const runnerScript = new URL("./workers/remote-runner.ts", import.meta.url).pathname

/** How many callers wait on a pool at once. */
export const remoteCallers = 256

/** How long the I/O-bound handler waits, in ms. */
export const ioWaitMillis = 1

/**
 * Requests one remote worker holds at once on the I/O-bound tasks: few, so
 * that its rate is set by the wait (about 4 per 1.1 ms), not by the CPUs,
 * even with 3 runners on a machine of 2. The trivial tasks run at the
 * default (32).
 */
export const ioConcurrency = 4

/** The numbers of runners measured. */
export const runnerCounts = [1, 2, 3] as const

/** The two loads. */
export type Load = "trivial" | "io"

/** How many tasks per round and variant, and how many rounds. */
export interface RemoteSettings {
  readonly trivialTasks: number
  readonly ioTasks: number
  readonly rounds: number
  readonly crashRounds: number
}

/** One load through one number of runners. */
export interface RemoteRow {
  readonly load: Load
  readonly runners: number
  readonly rate: Spread
  /** Its tasks per second over those of one runner, per round. */
  readonly toOne: Spread
  /** CPU microseconds per task: the client process, and the runners together (undefined without /proc). */
  readonly clientCpu: Spread
  readonly runnerCpu: Spread | undefined
}

/** What the section measured. */
export interface RemoteResult {
  readonly rows: ReadonlyArray<RemoteRow>
  /** Milliseconds from `kill -9` of a runner to the `WorkerCrash` of a request it held. */
  readonly crash: Spread
}

/** The crashes are on purpose: the library's log lines about them are left out. */
const quiet = Effect.provideService(References.MinimumLogLevel, "None")

interface Runner {
  readonly port: number
  readonly child: ChildProcess.ChildProcess
}

/** Starts a runner process; resolves once it listens. */
const startRunner = async (): Promise<Runner> => {
  const child = ChildProcess.spawn(process.execPath, ["--conditions=effect-worker-pool-source", runnerScript], {
    stdio: ["ignore", "pipe", "inherit"]
  })
  let seen = ""
  for await (const chunk of child.stdout!) {
    seen += String(chunk)
    const match = /port (\d+)/.exec(seen)
    if (match !== null) return { port: Number(match[1]), child }
  }
  throw new Error(`the remote runner exited before listening (exit code ${child.exitCode})`)
}

const stopRunner = async (runner: Runner) => {
  if (runner.child.exitCode !== null || runner.child.signalCode !== null) return
  const exited = once(runner.child, "exit")
  runner.child.kill("SIGKILL")
  await exited
}

/** The CPU ms (user and system) a process has used so far, from /proc; `undefined` elsewhere. */
const processCpuMillis = (pid: number): number | undefined => {
  const micros = processCpuMicros(pid)
  return micros === undefined ? undefined : micros / 1000
}

const runnersCpu = (runners: ReadonlyArray<Runner>): number | undefined => {
  let total = 0
  for (const runner of runners) {
    const cpu = processCpuMillis(runner.child.pid!)
    if (cpu === undefined) return undefined
    total += cpu
  }
  return total
}

/** A pool of one remote worker per runner in `runners`, open until its scope closes. */
const openPool = (runners: ReadonlyArray<Runner>, scope: Scope.Scope, concurrency?: number) =>
  Effect.runPromise(
    Remote.pool({
      request: RemoteTask,
      response: Schema.Number,
      concurrency,
      addresses: runners.map((runner) => `127.0.0.1:${runner.port}`)
    }).pipe(Scope.provide(scope), quiet)
  )

/** `callers` fibers, each taking the next task and awaiting its answer until none is left. */
const drive = (
  dispatch: (task: typeof RemoteTask.Type) => Effect.Effect<number, unknown>,
  count: number,
  wait: number
) =>
  Effect.gen(function* () {
    let next = 0
    let wrong = 0
    const caller = Effect.gen(function* () {
      while (next < count) {
        const a = next++
        if ((yield* dispatch({ a, b: 1, wait })) !== a + 1) wrong++
      }
    })
    yield* Effect.all(
      Array.from({ length: remoteCallers }, () => caller),
      { concurrency: "unbounded", discard: true }
    )
    if (wrong > 0) throw new Error(`${wrong} wrong answers`)
  })

interface Sample {
  readonly rate: number
  readonly clientCpu: number
  readonly runnerCpu: number | undefined
}

/** Milliseconds from `kill -9` of a fresh runner to the `WorkerCrash` of the request it held. */
const crashLatency = async (): Promise<number> => {
  const runner = await startRunner()
  const scope = Scope.makeUnsafe()
  try {
    const remote = await openPool([runner], scope)
    const held = Effect.runFork(Effect.flip(remote.pool.dispatch({ a: 1, b: 1, wait: 60_000 })))
    // Until the request is on the connection.
    while ((await Effect.runPromise(remote.pool.health))[0]![1].inFlight === 0) {
      await new Promise((resolve) => setTimeout(resolve, 1))
    }
    await new Promise((resolve) => setTimeout(resolve, 20))
    const killed = performance.now()
    runner.child.kill("SIGKILL")
    const error = await Effect.runPromise(Fiber.join(held))
    const elapsed = performance.now() - killed
    if (!(error instanceof WorkerCrash) || error.reason._tag !== "ConnectionLost") {
      throw new Error(`kill -9 of a runner: expected WorkerCrash (ConnectionLost), got ${String(error)}`)
    }
    return elapsed
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
    await stopRunner(runner)
  }
}

/** Runs the section: three runner processes for the throughput rounds, a fresh one per crash round. */
export const measureRemote = async (settings: RemoteSettings): Promise<RemoteResult> => {
  const runners: Array<Runner> = []
  const scope = Scope.makeUnsafe()
  try {
    for (const _ of runnerCounts) runners.push(await startRunner())
    const variants: Array<{ readonly load: Load; readonly runners: number; readonly measure: () => Promise<Sample> }> =
      []
    for (const count of runnerCounts) {
      const used = runners.slice(0, count)
      for (const load of ["trivial", "io"] as const) {
        const remote = await openPool(used, scope, load === "io" ? ioConcurrency : undefined)
        const tasks = load === "trivial" ? settings.trivialTasks : settings.ioTasks
        const wait = load === "trivial" ? 0 : ioWaitMillis
        const run = (n: number) => Effect.runPromise(drive(remote.pool.dispatch, n, wait))
        await run(Math.max(500, Math.round(tasks / 10)))
        variants.push({
          load,
          runners: count,
          measure: async () => {
            const runnerStart = runnersCpu(used)
            const cpuStart = process.cpuUsage()
            const start = performance.now()
            await run(tasks)
            const elapsed = performance.now() - start
            const cpu = process.cpuUsage(cpuStart)
            const runnerEnd = runnersCpu(used)
            return {
              rate: (tasks * 1000) / elapsed,
              clientCpu: (cpu.user + cpu.system) / tasks,
              runnerCpu:
                runnerStart === undefined || runnerEnd === undefined
                  ? undefined
                  : ((runnerEnd - runnerStart) * 1000) / tasks
            }
          }
        })
      }
    }
    const samples = await interleave(
      variants.map((variant) => variant.measure),
      settings.rounds,
      (round) => console.log(`remote: round ${round + 1} of ${settings.rounds} done`)
    )
    const rateOf = (load: Load, count: number) =>
      samples[variants.findIndex((v) => v.load === load && v.runners === count)]!.map((s) => s.rate)
    const rows = variants.map((variant, i) => {
      const own = samples[i]!
      const runnerCpu = own.map((s) => s.runnerCpu)
      return {
        load: variant.load,
        runners: variant.runners,
        rate: spread(own.map((s) => s.rate)),
        toOne: ratio(rateOf(variant.load, variant.runners), rateOf(variant.load, 1)),
        clientCpu: spread(own.map((s) => s.clientCpu)),
        runnerCpu: runnerCpu.every((c) => c !== undefined) ? spread(runnerCpu as Array<number>) : undefined
      }
    })
    for (const row of rows) {
      console.log(
        `remote ${row.load}, ${row.runners} runner(s): ${Math.round(row.rate.median).toLocaleString("en-US")} tasks/s`
      )
    }
    const crashes: Array<number> = []
    for (let round = 0; round < settings.crashRounds; round++) crashes.push(await crashLatency())
    console.log(`remote: kill -9 → WorkerCrash in ${spread(crashes).median.toFixed(1)} ms (median)`)
    return { rows, crash: spread(crashes) }
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
    for (const runner of runners) await stopRunner(runner)
  }
}
