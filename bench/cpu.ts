/**
 * Where a variant's CPU goes: the parent (the benchmark's main thread, read
 * with `process.threadCpuUsage`), the workers (the worker threads of this
 * process, which Node names `WorkerThread`, and its child processes, whole),
 * and the helper threads of this process (V8's garbage collection and
 * compilation, which serve the main thread and the worker threads alike).
 * Threads and children are read from `/proc` (Linux). A worker that is idle
 * while another variant runs costs next to nothing, so the difference of two
 * readings around a variant's run is that variant's. Elsewhere than on Linux
 * there is no reading.
 */
import { execFileSync } from "node:child_process"
import { readdirSync, readFileSync } from "node:fs"

/** CPU time spent so far, in microseconds. */
export interface CpuReading {
  readonly parent: number
  readonly workers: number
  readonly helpers: number
}

/** Clock ticks per second of `/proc`'s times. */
const ticksPerSecond = (() => {
  try {
    const value = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim())
    return value > 0 ? value : 100
  } catch {
    return 100
  }
})()

/** User and system time in a `/proc/.../stat` line, in ticks (its own, without the children it reaped). */
const ticksOf = (stat: string): number => {
  // The command name, in parentheses, may hold spaces: fields are counted after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return Number(fields[11]) + Number(fields[12])
}

const read = (path: string): string | undefined => {
  try {
    return readFileSync(path, "utf8")
  } catch {
    // A thread or a child that ended between the listing and the read.
    return undefined
  }
}

/** The CPU time (user and system) process `pid` has used so far, in microseconds; `undefined` where `/proc` cannot tell. */
export const processCpuMicros = (pid: number): number | undefined => {
  const stat = read(`/proc/${pid}/stat`)
  return stat === undefined ? undefined : (ticksOf(stat) * 1_000_000) / ticksPerSecond
}

/** The CPU time of the parent and of its workers so far, or `undefined` where `/proc` cannot tell. */
export const readCpu = (): CpuReading | undefined => {
  let tasks: Array<string>
  try {
    tasks = readdirSync("/proc/self/task")
  } catch {
    return undefined
  }
  let others = 0
  let workers = 0
  const children = new Set<string>()
  for (const task of tasks) {
    const stat = read(`/proc/self/task/${task}/stat`)
    if (stat === undefined) continue
    const ticks = ticksOf(stat)
    if (read(`/proc/self/task/${task}/comm`)?.trim() === "WorkerThread") workers += ticks
    else others += ticks
    for (const pid of read(`/proc/self/task/${task}/children`)?.split(" ") ?? []) if (pid !== "") children.add(pid)
  }
  for (const pid of children) {
    const stat = read(`/proc/${pid}/stat`)
    if (stat !== undefined) workers += ticksOf(stat)
  }
  const micros = 1_000_000 / ticksPerSecond
  const main = process.threadCpuUsage()
  const parent = main.user + main.system
  // The main thread's own figure is exact; the helpers are the rest of this process outside its worker threads.
  return { parent, workers: workers * micros, helpers: Math.max(0, others * micros - parent) }
}

/** Microseconds of CPU per task between two readings. */
export const perTask = (
  before: CpuReading | undefined,
  after: CpuReading | undefined,
  tasks: number
): CpuReading | undefined =>
  before === undefined || after === undefined
    ? undefined
    : {
        parent: (after.parent - before.parent) / tasks,
        workers: (after.workers - before.workers) / tasks,
        // The helpers are a difference of a coarse and an exact figure: a short run may read a little below 0.
        helpers: Math.max(0, after.helpers - before.helpers) / tasks
      }
