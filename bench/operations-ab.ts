/**
 * What a group costs over the single form: interleaved rounds in one
 * process, the single form (`request`/`response`/`handler`) against a
 * one-operation group (`Summing`, the same handler) called through its
 * client, with an A/A control (a second single-form pool). Rows: in-process
 * dispatch (4 workers, defaults; one caller, and 64 callers), and the thread
 * and subprocess kinds (2 workers, `concurrency` 8, 8 callers), as
 * `npm run bench`'s rows have them. Prints the medians over the rounds of
 * per-round ratios of time per request: group / single and single' / single.
 * Out of process, beside the wall time, the CPU time of the process and its
 * workers (threads and child processes, read from `/proc` on Linux: see
 * cpu.ts), steadier on a shared machine.
 *
 * node --conditions=effect-worker-pool-source bench/operations-ab.ts [rounds] [in-process|thread|subprocess]
 */
import { NodeServices } from "@effect/platform-node"
import { Effect, Exit, Schema, Scope } from "effect"
import { Operation, Subprocess, Thread, Worker, WorkerPool } from "effect-worker-pool"
import { readCpu } from "./cpu.ts"
import { cpuTimed, interleave, median, ratio, timed as wallTimed } from "./rounds.ts"
import { Summing, Task } from "./workers/schemas.ts"
import { add } from "./workers/task.ts"

const rounds = Number(process.argv[2] ?? 10)
const single = new URL("./workers/sum.ts", import.meta.url)
const group = new URL("./workers/sum-group.ts", import.meta.url)
const execArgv = ["--conditions=effect-worker-pool-source"]
const scope = Scope.makeUnsafe()
const run = <A, E>(effect: Effect.Effect<A, E, Scope.Scope | NodeServices.NodeServices>) =>
  Effect.runPromise(effect.pipe(Scope.provide(scope), Effect.provide(NodeServices.layer)))

type Call = (task: typeof Task.Type) => Effect.Effect<number, unknown>

/** The CPU milliseconds of this process and its workers (`undefined` where `/proc` cannot tell). */
const allCpu = (): number | undefined => {
  const reading = readCpu()
  return reading === undefined ? undefined : (reading.parent + reading.workers + reading.helpers) / 1000
}

/**
 * Milliseconds for `tasks` requests from `callers` fibers, each taking the next task: the process's CPU time in
 * process (steadier on a shared machine), the wall time out of process (the workers' CPU is elsewhere), with the
 * CPU time of the process and its workers beside it.
 */
const timed = (call: Call, tasks: number, callers: number, cpu: boolean) => async (): Promise<Times> => {
  let next = 0
  const caller = Effect.gen(function* () {
    while (next < tasks) {
      const i = next++
      if ((yield* call({ a: i, b: 1 })) !== i + 1) throw new Error("wrong answer")
    }
  })
  const all = Effect.all(
    Array.from({ length: callers }, () => caller),
    { concurrency: "unbounded" }
  )
  if (cpu) return { time: await cpuTimed(() => Effect.runPromise(all)), cpu: undefined }
  const before = allCpu()
  const time = await wallTimed(() => Effect.runPromise(all))
  const after = allCpu()
  return { time, cpu: before === undefined || after === undefined ? undefined : after - before }
}

/** What one run measured: its time, and out of process the CPU time of the process and its workers. */
interface Times {
  readonly time: number
  readonly cpu: number | undefined
}

/** The three variants of a row: single, single again (A/A), group. */
const row = async (
  name: string,
  makeSingle: () => Promise<Call>,
  makeGroup: () => Promise<Call>,
  tasks: number,
  callers: number,
  cpu: boolean
) => {
  const variants = [await makeSingle(), await makeSingle(), await makeGroup()].map((call) =>
    timed(call, tasks, callers, cpu)
  )
  for (const v of variants) await v() // warm up
  const [a, a2, b] = await interleave(variants, rounds)
  const f = (x: number) => x.toFixed(3)
  const ratios = (of: (times: Times) => number) => {
    const aa = ratio(a2!.map(of), a!.map(of))
    const ab = ratio(b!.map(of), a!.map(of))
    const micros = (median(a!.map(of)) * 1000) / tasks
    return `single ${micros.toFixed(2)} µs/request   group/single ${f(ab.median)} [${f(ab.low)}, ${f(ab.high)}]   A/A ${f(aa.median)} [${f(aa.low)}, ${f(aa.high)}]`
  }
  console.log(`${name.padEnd(36)} ${ratios((t) => t.time)}`)
  if (a!.every((t) => t.cpu !== undefined))
    console.log(`${"  CPU, process and workers".padEnd(36)} ${ratios((t) => t.cpu!)}`)
}

const inProcess = {
  single: () =>
    run(
      Effect.map(
        WorkerPool.make({
          size: 4,
          worker: (id) => Worker.make(id, (t: typeof Task.Type) => Effect.sync(() => add(t)))
        }),
        (pool): Call => pool.dispatch
      )
    ),
  group: () =>
    run(
      Effect.gen(function* () {
        const pool = yield* WorkerPool.make({
          size: 4,
          worker: (id) => Worker.fromGroup(id, Summing, { Sum: (t) => Effect.sync(() => add(t)) })
        })
        const client = yield* WorkerPool.client(pool, Summing)
        return client.Sum as Call
      })
    )
}

const outOfProcess = (kind: "thread" | "subprocess") => {
  const make = (script: URL, schemas: object) =>
    kind === "thread"
      ? Thread.make(script, { ...(schemas as any), concurrency: 8, execArgv })
      : Subprocess.node(script, { ...(schemas as any), concurrency: 8, execArgv })
  return {
    single: () =>
      run(
        Effect.map(
          WorkerPool.make({
            size: 2,
            spares: 0,
            worker: (id) => Worker.fromKind(id, make(single, { request: Task, response: Schema.Number }))
          }),
          (pool): Call => pool.dispatch as Call
        )
      ),
    group: () =>
      run(
        Effect.gen(function* () {
          const schemas = yield* Effect.orDie(Operation.schemas(Summing))
          const pool = yield* WorkerPool.make({
            size: 2,
            spares: 0,
            worker: (id) => Worker.fromKind(id, make(group, schemas))
          })
          return (yield* WorkerPool.client(pool as never, Summing)).Sum as Call
        })
      )
  }
}

const only = process.argv[3]
if (only === undefined || only === "in-process") {
  await row("in process, 1 caller", inProcess.single, inProcess.group, 20_000, 1, true)
  await row("in process, 64 callers", inProcess.single, inProcess.group, 50_000, 64, true)
}
for (const kind of ["thread", "subprocess"] as const) {
  if (only !== undefined && only !== kind) continue
  const { single: s, group: g } = outOfProcess(kind)
  await row(`${kind}, concurrency 8, 8 callers`, s, g, 20_000, 8, false)
}
await Effect.runPromise(Scope.close(scope, Exit.void))
process.exit(0)
