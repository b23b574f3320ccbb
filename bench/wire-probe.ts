/**
 * `node --conditions=effect-worker-pool-source bench/wire-probe.ts`: the speed of the out-of-process
 * kinds on the wire, `{ a, b } → a + b`.
 *
 * - `start`: from spawn to the runner's `Ready`, per kind (median of
 *   `--starts` starts, one at a time).
 * - `run`: tasks per second through `incarnation.run` directly, on two
 *   incarnations, `--callers` callers taking turns between them.
 * - `pool`: tasks per second through a `WorkerPool` of two workers.
 *
 * Each figure is the median of `--rounds` rounds of `--tasks` tasks, for
 * each kind and each `concurrency` of `--concurrency` (a list), with the
 * kinds interleaved round by round. Besides tasks per second, each round
 * reports the CPU time spent per task (µs): by this process (its threads
 * included), and by this process and its child processes together (Linux),
 * which a busy machine disturbs less than the wall clock.
 */
import * as fs from "node:fs"
import { parseArgs } from "node:util"
import { NodeServices } from "@effect/platform-node"
import { Effect, Exit, Schema, Scope } from "effect"
import { Subprocess, Thread, Worker, WorkerPool } from "effect-worker-pool"

const { values } = parseArgs({
  options: {
    tasks: { type: "string", default: "20000" },
    callers: { type: "string", default: "256" },
    rounds: { type: "string", default: "5" },
    starts: { type: "string", default: "7" },
    concurrency: { type: "string", default: "1,8,64" },
    kinds: { type: "string", default: "thread,subprocess" },
    via: { type: "string", default: "run,pool" },
    only: { type: "string", default: "start,throughput" }
  }
})
const tasks = Number(values.tasks)
const callers = Number(values.callers)
const rounds = Number(values.rounds)
const starts = Number(values.starts)
const concurrencies = values.concurrency.split(",").map(Number)
const kindNames = values.kinds.split(",") as Array<"thread" | "subprocess">
const vias = values.via.split(",") as Array<"run" | "pool">
const only = values.only.split(",")

const script = new URL("./wire-worker.ts", import.meta.url)
const Request = Schema.Struct({ a: Schema.Number, b: Schema.Number })
type Request = typeof Request.Type

const makeKind = (name: "thread" | "subprocess", concurrency: number) =>
  name === "thread"
    ? Thread.make(script, {
        execArgv: ["--conditions=effect-worker-pool-source"],
        request: Request,
        response: Schema.Number,
        concurrency
      })
    : Subprocess.node(script, {
        execArgv: ["--conditions=effect-worker-pool-source"],
        request: Request,
        response: Schema.Number,
        concurrency
      })

const median = (xs: ReadonlyArray<number>) => {
  const sorted = [...xs].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

const runtime = <A, E>(effect: Effect.Effect<A, E, NodeServices.NodeServices | Scope.Scope>, scope: Scope.Scope) =>
  Effect.runPromise(effect.pipe(Scope.provide(scope), Effect.provide(NodeServices.layer)) as Effect.Effect<A, E>)

/** CPU time (µs) of this process, its threads included. */
const ownCpu = () => {
  const usage = process.cpuUsage()
  return usage.user + usage.system
}

/** CPU time (µs) of the child processes of this process that are alive now, from /proc (0 elsewhere). */
const childrenCpu = (): number => {
  if (process.platform !== "linux") return 0
  let total = 0
  try {
    for (const task of fs.readdirSync("/proc/self/task")) {
      const children = fs.readFileSync(`/proc/self/task/${task}/children`, "utf8").trim()
      for (const pid of children === "" ? [] : children.split(" ")) {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
        // utime and stime, in clock ticks (100 per second).
        total += ((Number(fields[11]) + Number(fields[12])) * 1e6) / 100
      }
    }
  } catch {
    // A child that exited meanwhile.
  }
  return total
}

interface Sample {
  readonly perSecond: number
  readonly ownMicros: number
  readonly allMicros: number
}

/** `callers` fibers share `tasks` calls of `call`: tasks per second, and CPU µs per task. */
const drive = async (call: (request: Request, turn: number) => Effect.Effect<number, unknown>): Promise<Sample> => {
  let next = 0
  const caller = Effect.gen(function* () {
    while (next < tasks) {
      const i = next++
      const sum = yield* call({ a: i, b: 1 }, i)
      if (sum !== i + 1) throw new Error(`bad sum ${sum} for ${i}`)
    }
  })
  const own0 = ownCpu()
  const children0 = childrenCpu()
  const t0 = performance.now()
  await Effect.runPromise(
    Effect.forEach(
      Array.from({ length: callers }, () => caller),
      (c) => c,
      { concurrency: "unbounded", discard: true }
    ) as Effect.Effect<void>
  )
  const elapsed = performance.now() - t0
  const own = ownCpu() - own0
  return {
    perSecond: (tasks * 1000) / elapsed,
    ownMicros: own / tasks,
    allMicros: (own + childrenCpu() - children0) / tasks
  }
}

type Setup = {
  readonly call: (request: Request, turn: number) => Effect.Effect<number, unknown>
  readonly close: () => Promise<void>
}

const setup = async (name: "thread" | "subprocess", concurrency: number, via: "run" | "pool"): Promise<Setup> => {
  const scope = Scope.makeUnsafe()
  const kind = makeKind(name, concurrency)
  const close = () => Effect.runPromise(Scope.close(scope, Exit.void))
  if (via === "run") {
    const incarnations = await runtime(Effect.all([kind.spawn, kind.spawn] as const), scope)
    return { call: (request, turn) => incarnations[turn & 1]!.run(request), close }
  }
  const pool = await runtime(WorkerPool.make({ size: 2, worker: (id) => Worker.fromKind(id, kind as any) }), scope)
  return { call: (request) => pool.dispatch(request) as Effect.Effect<number, unknown>, close }
}

if (only.includes("start")) {
  for (const name of kindNames) {
    const times: Array<number> = []
    for (let i = 0; i < starts; i++) {
      const scope = Scope.makeUnsafe()
      const t0 = performance.now()
      await runtime(makeKind(name, 1).spawn, scope)
      times.push(performance.now() - t0)
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
    console.log(
      `start ${name}: median ${median(times).toFixed(0)} ms, min ${Math.min(...times).toFixed(0)} ms (${times.map((t) => t.toFixed(0)).join(" ")})`
    )
  }
}

if (only.includes("throughput")) {
  for (const via of vias) {
    for (const concurrency of concurrencies) {
      const setups = new Map<string, Setup>()
      for (const name of kindNames) setups.set(name, await setup(name, concurrency, via))
      const samples = new Map<string, Array<Sample>>(kindNames.map((n) => [n, []]))
      for (const name of kindNames) await drive(setups.get(name)!.call) // warm-up
      for (let r = 0; r < rounds; r++) {
        for (const name of r % 2 === 0 ? kindNames : [...kindNames].reverse()) {
          samples.get(name)!.push(await drive(setups.get(name)!.call))
        }
      }
      for (const name of kindNames) {
        const xs = samples.get(name)!
        const rates = xs.map((x) => x.perSecond)
        console.log(
          `${via} ${name} concurrency ${concurrency}: median ${median(rates).toFixed(0)} tasks/s, max ${Math.max(...rates).toFixed(0)}; ` +
            `CPU per task ${median(xs.map((x) => x.ownMicros)).toFixed(1)} µs here, ${median(xs.map((x) => x.allMicros)).toFixed(1)} µs with child processes`
        )
        await setups.get(name)!.close()
      }
    }
  }
}
