/**
 * `node --conditions=effect-worker-pool-source bench/frame-ab.ts`: the
 * subprocess kind on the binary frame against JSON lines
 * (`EFFECT_WORKER_POOL_FRAME=json`), in one process, rounds interleaved.
 * Pools of 2 subprocess workers at `concurrency` 8, 256 callers: trivial
 * tasks `{ a, b } → a + b`, then a 1 KiB string answered with itself, then
 * a 64 KiB `Uint8Array` (a twentieth as many tasks). A
 * second pool on the binary frame is the A/A control; poolifier's
 * `FixedThreadPool` (task queue off) is the yardstick on the trivial
 * tasks. Prints tasks per second and the CPU per task in this process and
 * in its children (from /proc: Linux; poolifier's threads count in the
 * parent), medians of the rounds, and the median of the per-round ratios of
 * throughput, with their range.
 */
import { once } from "node:events"
import { readdirSync, readFileSync } from "node:fs"
import { parseArgs } from "node:util"
import { NodeServices } from "@effect/platform-node"
import { Effect, Exit, Schema, Scope } from "effect"
import { Protocol, Subprocess, Worker, WorkerPool } from "effect-worker-pool"
import { FixedThreadPool } from "poolifier"
import { interleave, median, ratio, timed } from "./rounds.ts"
import { drive } from "./wireVariant.ts"
import { Task } from "./workers/schemas.ts"
import type { Task as TaskType } from "./workers/task.ts"

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "9" },
    tasks: { type: "string", default: "40000" },
    callers: { type: "string", default: "256" }
  }
})
const rounds = Number(values.rounds)
const count = Number(values.tasks)
const callers = Number(values.callers)

interface Variant {
  readonly name: string
  /** Runs the round's tasks; resolves with how many answers were wrong. */
  readonly run: () => Promise<number>
  readonly close: () => Promise<void>
}

/** A pool of 2 subprocess workers on `script`, the frame as `frame` says. */
const subprocessPool = async <A, B>(
  name: string,
  frame: "v8" | "json",
  script: string,
  request: Schema.Codec<A, unknown>,
  response: Schema.Codec<B, unknown>,
  tasks: ReadonlyArray<A>,
  check: (task: A, answer: B) => boolean
): Promise<Variant> => {
  const before = process.env[Protocol.frameEnv]
  process.env[Protocol.frameEnv] = frame
  const kind = Subprocess.node(new URL(script, import.meta.url), {
    request: request as Schema.Codec<A, unknown, never, never>,
    response: response as Schema.Codec<B, unknown, never, never>,
    concurrency: 8,
    execArgv: ["--conditions=effect-worker-pool-source"]
  })
  if (before === undefined) delete process.env[Protocol.frameEnv]
  else process.env[Protocol.frameEnv] = before
  const scope = Scope.makeUnsafe()
  const pool = await Effect.runPromise(
    WorkerPool.make({ size: 2, worker: (id) => Worker.fromKind(id, kind) }).pipe(
      Scope.provide(scope),
      Effect.provide(NodeServices.layer)
    )
  )
  return {
    name,
    run: async () => {
      let next = 0
      let wrong = 0
      const caller = Effect.gen(function* () {
        while (next < tasks.length) {
          const task = tasks[next++]!
          if (!check(task, yield* pool.dispatch(task))) wrong++
        }
      })
      await Effect.runPromise(
        Effect.all(
          Array.from({ length: callers }, () => caller),
          { concurrency: "unbounded", discard: true }
        )
      )
      return wrong
    },
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

const poolifier = (tasks: ReadonlyArray<TaskType>): Variant => {
  const pool = new FixedThreadPool<TaskType, number>(2, new URL("./workers/poolifier.ts", import.meta.url).pathname, {
    enableTasksQueue: false
  })
  const threads = pool.workerNodes.map((node) => node.worker)
  const exited = Promise.all(threads.map((thread) => once(thread, "exit")))
  return {
    name: "poolifier FixedThreadPool, task queue off",
    run: () => drive((task) => pool.execute(task), tasks, callers),
    close: async () => {
      await Promise.race([pool.destroy(), exited])
      await Promise.all(threads.map((thread) => thread.terminate()))
    }
  }
}

/** CPU milliseconds (user and system) of this process's child processes so far, from /proc (Linux). */
const childrenCpu = (): number => {
  let ticks = 0
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue
    let stat: string
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8")
    } catch {
      continue
    }
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    if (Number(fields[1]) !== process.pid) continue
    ticks += Number(fields[11]) + Number(fields[12])
  }
  return ticks * 10
}

const ownCpu = (): number => {
  const usage = process.cpuUsage()
  return (usage.user + usage.system) / 1000
}

interface Sample {
  readonly perSecond: number
  /** CPU microseconds per task, in this process and in its children. */
  readonly parentCpu: number
  readonly childCpu: number
}

/** Interleaved rounds of `variants`; prints tasks per second and the ratios of `pairs` (indices into `variants`). */
const measure = async (
  title: string,
  variants: ReadonlyArray<Variant>,
  count: number,
  pairs: ReadonlyArray<readonly [number, number]>
) => {
  for (const variant of variants) await variant.run() // warm up
  const samples = await interleave(
    variants.map((variant) => async () => {
      let wrong = 0
      const parent = ownCpu()
      const children = childrenCpu()
      const ms = await timed(async () => {
        wrong = await variant.run()
      })
      if (wrong !== 0) throw new Error(`${variant.name}: ${wrong} wrong answers`)
      return {
        perSecond: (count / ms) * 1000,
        parentCpu: ((ownCpu() - parent) * 1000) / count,
        childCpu: ((childrenCpu() - children) * 1000) / count
      } satisfies Sample
    }),
    rounds
  )
  const rates = samples.map((xs) => xs.map((x) => x.perSecond))
  console.log(`\n${title}: ${count} tasks a round, ${callers} callers, ${rounds} rounds interleaved`)
  console.log("| variant | tasks/s (median) | CPU µs per task, parent | CPU µs per task, children |")
  console.log("| --- | ---: | ---: | ---: |")
  for (const [i, variant] of variants.entries()) {
    const parent = median(samples[i]!.map((x) => x.parentCpu)).toFixed(1)
    const child = median(samples[i]!.map((x) => x.childCpu)).toFixed(1)
    console.log(`| ${variant.name} | ${median(rates[i]!).toFixed(0)} | ${parent} | ${child} |`)
  }
  console.log("| ratio | median of per-round ratios | range |")
  console.log("| --- | ---: | --- |")
  for (const [a, b] of pairs) {
    const r = ratio(rates[a]!, rates[b]!)
    console.log(
      `| ${variants[a]!.name} / ${variants[b]!.name} | ${r.median.toFixed(3)} | ${r.low.toFixed(3)}–${r.high.toFixed(3)} |`
    )
  }
}

const trivial: ReadonlyArray<TaskType> = Array.from({ length: count }, (_, i) => ({ a: i, b: 1 }))
const sum = (task: TaskType, answer: number) => answer === task.a + task.b
const texts: ReadonlyArray<string> = Array.from({ length: count }, (_, i) => `${i}`.padEnd(1024, "x"))
const same = (text: string, answer: string) => answer === text

const run = async () => {
  const small = [
    await subprocessPool("binary frame", "v8", "./workers/sum.ts", Task, Schema.Number, trivial, sum),
    await subprocessPool("binary frame (A/A)", "v8", "./workers/sum.ts", Task, Schema.Number, trivial, sum),
    await subprocessPool("JSON lines", "json", "./workers/sum.ts", Task, Schema.Number, trivial, sum),
    poolifier(trivial)
  ]
  await measure("subprocess kind, concurrency 8, trivial tasks { a, b } → a + b", small, count, [
    [0, 2],
    [0, 1],
    [0, 3],
    [2, 3]
  ])
  for (const variant of small) await variant.close()

  const large = [
    await subprocessPool("binary frame", "v8", "./workers/echo-text.ts", Schema.String, Schema.String, texts, same),
    await subprocessPool(
      "binary frame (A/A)",
      "v8",
      "./workers/echo-text.ts",
      Schema.String,
      Schema.String,
      texts,
      same
    ),
    await subprocessPool("JSON lines", "json", "./workers/echo-text.ts", Schema.String, Schema.String, texts, same)
  ]
  await measure("subprocess kind, concurrency 8, a 1 KiB string each way", large, count, [
    [0, 2],
    [0, 1]
  ])
  for (const variant of large) await variant.close()

  const blobs: ReadonlyArray<Uint8Array> = Array.from({ length: count / 20 }, (_, i) =>
    new Uint8Array(64 * 1024).fill(i & 0xff)
  )
  const sameBytes = (bytes: Uint8Array, answer: Uint8Array) =>
    answer.length === bytes.length && answer[0] === bytes[0] && answer[answer.length - 1] === bytes[bytes.length - 1]
  const bytesVariants = [
    await subprocessPool(
      "binary frame",
      "v8",
      "./workers/echo-bytes.ts",
      Schema.Uint8Array,
      Schema.Uint8Array,
      blobs,
      sameBytes
    ),
    await subprocessPool(
      "binary frame (A/A)",
      "v8",
      "./workers/echo-bytes.ts",
      Schema.Uint8Array,
      Schema.Uint8Array,
      blobs,
      sameBytes
    ),
    await subprocessPool(
      "JSON lines",
      "json",
      "./workers/echo-bytes.ts",
      Schema.Uint8Array,
      Schema.Uint8Array,
      blobs,
      sameBytes
    )
  ]
  await measure("subprocess kind, concurrency 8, a 64 KiB Uint8Array each way", bytesVariants, blobs.length, [
    [0, 2],
    [0, 1]
  ])
  for (const variant of bytesVariants) await variant.close()
}

await run()
