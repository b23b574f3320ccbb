/**
 * A pool of workers under load: child processes by default (`--kind`), or
 * threads, fibers, or remote workers on runner processes that the demo
 * starts on loopback.
 *
 * Callers send requests to the pool for a few seconds. Some requests are bad
 * and the worker answers them with a `DomainError`; now and then a request
 * crashes its worker, which takes the other requests it holds down with it.
 * Each worker's supervisor restarts it, and a live table shows the health of
 * every worker. At the end the demo checks that every request got exactly
 * one outcome.
 *
 *   npm start
 *   npm start -- --workers 8 --policy round-robin --crash-rate 0.05
 *   npm start -- --kind remote
 *   npm start -- --help
 */
import * as ChildProcess from "node:child_process"
import * as Net from "node:net"
import { fileURLToPath } from "node:url"
// The module alone: the package index would also load HTTP, sockets and more.
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Clock, Duration, Effect, Exit, Random, References, Schedule, Schema, type Scope } from "effect"
import type { InvalidRequest, WorkerHealth, WorkerId } from "effect-worker-pool"
import { DispatchPolicy, DomainError, Subprocess, Thread, Worker, WorkerCrash, WorkerPool } from "effect-worker-pool"
import { Remote } from "effect-worker-pool/remote"
import { type Flags, type PolicyName, parseFlags, usage } from "./flags.ts"
import { healthTable, latestCrash, terminalArea } from "./table.ts"

/**
 * The work: the square root of a number; a negative number is a bad request.
 * With probability `crashRate` the worker crashes instead, half the time by
 * failing with `WorkerCrash`, half the time by throwing (a defect).
 */
const squareRoot = (crashRate: number) => (n: number) =>
  Effect.gen(function* () {
    // Some milliseconds of work, so that requests overlap.
    yield* Effect.sleep(Duration.millis(yield* Random.nextIntBetween(5, 50)))
    const roll = yield* Random.next
    if (roll < crashRate / 2) {
      return yield* WorkerCrash.report("lost its connection to the database")
    }
    if (roll < crashRate) {
      return yield* Effect.sync((): never => {
        throw new Error("index out of range")
      })
    }
    if (n < 0) return yield* new DomainError({ reason: `${n} has no real square root` })
    return Math.sqrt(n)
  })

/**
 * How each worker is supervised and loaded in this demo:
 *
 * - a crashed worker is restarted after 50 ms, then 100 ms, then every
 *   200 ms, however often it crashes (no restart budget), so that restarts
 *   show within seconds;
 * - it holds up to 4 requests at once, so that a crash takes the requests
 *   it holds down with it.
 */
/** Requests a worker holds at once. */
const slots = 4

const workerOptions: Worker.WorkerOptions = {
  restart: Schedule.exponential("50 millis").pipe(
    Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, Duration.millis(200))))
  ),
  maxRestarts: Infinity,
  maxInFlight: slots
}

/**
 * The workers of the pool, by `--kind`. Child processes and threads run
 * examples/demo-worker.ts, the same work with real crashes: the script calls
 * `process.exit`, is killed with SIGKILL, or throws. A child holds as many
 * requests as its worker's `maxInFlight`.
 */
/** The dispatch policy of each `--policy` name. */
const policies: Record<PolicyName, DispatchPolicy.DispatchPolicy<any, number>> = {
  "shortest-expected-delay": DispatchPolicy.ShortestExpectedDelay(),
  "least-loaded": DispatchPolicy.LeastLoaded,
  "round-robin": DispatchPolicy.RoundRobin,
  "power-of-two-choices": DispatchPolicy.PowerOfTwoChoices,
  "peak-ewma": DispatchPolicy.PeakEwma(),
  random: DispatchPolicy.Random
}

const runnerScript = fileURLToPath(new URL("./demo-runner.ts", import.meta.url))

/** A port of 127.0.0.1 that was free a moment ago. */
const freePort = Effect.callback<number>((resume) => {
  const server = Net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as Net.AddressInfo
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** Starts examples/demo-runner.ts on `port`; succeeds once it listens. */
const spawnRunner = (port: number, crashRate: number) =>
  Effect.callback<ChildProcess.ChildProcess, Error>((resume) => {
    const child = ChildProcess.spawn(
      process.execPath,
      [
        "--conditions=effect-worker-pool-source",
        runnerScript,
        "--port",
        String(port),
        "--crash-rate",
        String(crashRate)
      ],
      { stdio: ["ignore", "pipe", "ignore"] }
    )
    let settled = false
    let seen = ""
    const onData = (chunk: string) => {
      seen += chunk
      if (settled || !seen.includes("remote runner listening")) return
      settled = true
      // What it logs from now on is not shown: the table is.
      child.stdout!.off("data", onData).resume()
      resume(Effect.succeed(child))
    }
    child.stdout!.setEncoding("utf8").on("data", onData)
    child.once("exit", (code) => {
      if (settled) return
      settled = true
      resume(Effect.fail(new Error(`the runner on port ${port} exited before it listened (code ${code})`)))
    })
    return Effect.sync(() => child.kill("SIGKILL"))
  })

/** Completes when `child` has exited. */
const exitOf = (child: ChildProcess.ChildProcess) =>
  Effect.callback<void>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
    child.once("exit", () => resume(Effect.void))
  })

/**
 * One runner process per worker, each on a port of its own, started and
 * listening before the pool is made. A runner that exits (it crashed) is
 * started again on its port, as a service manager would; its worker
 * reconnects. They are killed when the scope closes, after the pool.
 */
const startRunners = (flags: Flags): Effect.Effect<ReadonlyArray<string>, Error, Scope.Scope> =>
  Effect.forEach(
    Array.from({ length: flags.workers }),
    () =>
      Effect.gen(function* () {
        const port = yield* freePort
        let current = yield* spawnRunner(port, flags.crashRate)
        yield* Effect.addFinalizer(() => Effect.sync(() => current.kill("SIGKILL")))
        const keep = Effect.gen(function* () {
          while (true) {
            yield* exitOf(current)
            current = yield* spawnRunner(port, flags.crashRate)
          }
        })
        yield* Effect.forkScoped(keep)
        return `127.0.0.1:${port}`
      }),
    { concurrency: "unbounded" }
  )

const makeWorker = (flags: Flags, addresses: ReadonlyArray<string>) => {
  const script = new URL("./demo-worker.ts", import.meta.url)
  const crashRate = ["--crash-rate", String(flags.crashRate)]
  const wire = {
    request: Schema.Number,
    response: Schema.Number,
    concurrency: slots
  }
  return (id: WorkerId) => {
    switch (flags.kind) {
      case "in-process":
        return Worker.make<number, number, DomainError | InvalidRequest>(id, squareRoot(flags.crashRate), workerOptions)
      case "thread":
        return Worker.fromKind(id, Thread.make(script, { ...wire, argv: crashRate }), workerOptions)
      case "remote":
        return Worker.fromKind(id, Remote.make(addresses[id]!, wire), workerOptions)
      case "subprocess":
        // The script imports this package from its source, like the demo.
        return Worker.fromKind(
          id,
          Subprocess.node(script, {
            ...wire,
            execArgv: ["--conditions=effect-worker-pool-source"],
            args: crashRate
          }),
          workerOptions
        )
    }
  }
}

/** What the callers saw, counted from the `Exit` of each dispatch. */
interface Tally {
  issued: number
  succeeded: number
  domainErrors: number
  /** The worker crashed while it held the request, or the pool had no worker that could take it. */
  crashed: number
  /** Of `crashed`: no worker could take it now or come back, so the pool refused it. */
  noWorkerUp: number
  /** The pool's other errors (a timeout, a full queue, a shutdown), which this demo never provokes. */
  other: number
}

/**
 * Runs the load for `flags.durationSeconds` and returns the tally and the
 * final health of the workers. `draw`, when given, is called a few times a
 * second with the current table. The pool lives in this effect's scope: it
 * is shut down when the effect returns.
 */
const runLoad = Effect.fn("runLoad")(function* (flags: Flags, draw: ((text: string) => void) | undefined) {
  const addresses = flags.kind === "remote" ? yield* startRunners(flags) : []
  const pool = yield* WorkerPool.make({
    policy: policies[flags.policy],
    size: flags.workers,
    worker: makeWorker(flags, addresses),
    // Passive ejection takes a worker whose requests keep failing out of
    // rotation for 30 s or more; this demo is about crashes and restarts.
    ejection: false
  })
  const tally: Tally = {
    issued: 0,
    succeeded: 0,
    domainErrors: 0,
    crashed: 0,
    noWorkerUp: 0,
    other: 0
  }
  const duration = Duration.seconds(flags.durationSeconds)
  const start = yield* Clock.currentTimeMillis
  const deadline = start + Duration.toMillis(duration)

  const caller = Effect.gen(function* () {
    while ((yield* Clock.currentTimeMillis) < deadline) {
      // A pause between requests, as a real client would make.
      yield* Effect.sleep(Duration.millis(yield* Random.nextIntBetween(0, 100)))
      const bad = (yield* Random.next) < flags.errorRate
      const n = yield* Random.nextIntBetween(1, 1000)
      tally.issued++
      const exit = yield* Effect.exit(pool.dispatch(bad ? -n : n))
      if (Exit.isSuccess(exit)) {
        tally.succeeded++
        continue
      }
      // Anything but a typed error (a defect, an interruption) is not one of
      // the outcomes a dispatch promises: it is not counted, so it shows as lost.
      const error = Exit.findErrorOption(exit)
      if (error._tag === "None") continue
      switch (error.value._tag) {
        case "DomainError":
          tally.domainErrors++
          break
        case "WorkerCrash":
          tally.crashed++
          // A crash that names no worker: the pool had none up to offer.
          if (error.value.workerId === undefined) tally.noWorkerUp++
          break
        default:
          tally.other++
      }
    }
  })

  if (draw !== undefined) {
    const frame = Effect.gen(function* () {
      const elapsed = ((yield* Clock.currentTimeMillis) - start) / 1000
      const health = yield* pool.health
      draw(view(`${elapsed.toFixed(1)} s of ${flags.durationSeconds} s, ${tally.issued} requests`, health))
    })
    // Forked in the scope: it stops when the pool does.
    yield* frame.pipe(Effect.repeat(Schedule.spaced("200 millis")), Effect.forkScoped)
  }

  // Every caller stops at the deadline once its last request has ended. A
  // request that never ended would hang the demo, so after a grace period
  // the callers are interrupted, and such a request is counted as lost. The
  // grace is long enough for a request that waits for a worker to restart.
  const callers = Effect.forEach(Array.from({ length: flags.concurrency }), () => caller, {
    concurrency: "unbounded",
    discard: true
  })
  yield* Effect.timeoutOption(callers, Duration.sum(duration, Duration.seconds(15)))

  return { tally, health: yield* pool.health }
}, Effect.scoped)

/** A title, the health table, and the latest crash. */
const view = (title: string, health: ReadonlyArray<readonly [WorkerId, WorkerHealth]>): string =>
  [title, "", healthTable(health), "", latestCrash(health) ?? "no crash"].join("\n")

/** Prints the summary; returns whether every check passed. */
const report = (tally: Tally, health: ReadonlyArray<readonly [WorkerId, WorkerHealth]>): boolean => {
  const lost = tally.issued - (tally.succeeded + tally.domainErrors + tally.crashed + tally.other)
  console.log(
    `\nrequests ${tally.issued}, succeeded ${tally.succeeded}, domain errors ${tally.domainErrors}, ` +
      `crashed ${tally.crashed}, lost ${lost}`
  )
  if (tally.crashed > 0) {
    console.log(
      `(of the crashed, ${tally.crashed - tally.noWorkerUp} were on a worker when it crashed ` +
        `and ${tally.noWorkerUp} were refused: no worker could take them or come back)`
    )
  }
  // Cross-check with the workers' own counters: nothing is left in flight,
  // and they saw as many successes as the callers did.
  const busy = health.filter(([, h]) => h.inFlight !== 0).map(([id]) => id)
  const workerSuccesses = health.reduce((sum, [, h]) => sum + h.completed - h.errored - h.interrupted, 0)
  const problems: Array<string> = []
  if (lost !== 0) problems.push(`${lost} requests got no outcome`)
  if (tally.other !== 0) problems.push(`${tally.other} requests failed with a timeout, a full queue or a shutdown`)
  if (busy.length > 0) problems.push(`workers ${busy.join(", ")} still hold requests`)
  if (workerSuccesses !== tally.succeeded) {
    problems.push(`the workers counted ${workerSuccesses} successes, the callers ${tally.succeeded}`)
  }
  for (const problem of problems) console.error(`FAILED: ${problem}`)
  return problems.length === 0
}

const demo = Effect.fn("demo")(function* (flags: Flags) {
  console.log(
    `${flags.workers} ${flags.kind} workers (${flags.policy}), ${flags.concurrency} callers for ${flags.durationSeconds} s, ` +
      `crash rate ${flags.crashRate}, error rate ${flags.errorRate}\n`
  )
  // On a terminal the table is redrawn in place; in a log only the final one is printed.
  const screen = process.stdout.isTTY ? terminalArea(process.stdout) : undefined
  const { tally, health } = yield* runLoad(flags, screen?.draw)
  const final = view("final health", health)
  if (screen !== undefined) screen.draw(final)
  else console.log(final)
  if (!report(tally, health)) process.exitCode = 1
})

const parsed = parseFlags(process.argv.slice(2))
if (parsed._tag === "Help") {
  console.log(usage)
} else if (parsed._tag === "Invalid") {
  console.error(`${parsed.message}\n\nRun with --help to see the flags.`)
  process.exitCode = 2
} else {
  const program = demo(parsed.flags).pipe(
    // The pool logs a warning for every crash: keep them from scrolling the table away.
    Effect.provideService(References.MinimumLogLevel, "Error"),
    // Spawns the child processes of subprocess workers.
    Effect.provide(NodeServices.layer)
  )
  NodeRuntime.runMain(program)
}
