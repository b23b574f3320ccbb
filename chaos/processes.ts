/**
 * What this process has started, read from the operating system: its live
 * descendant processes and its worker threads. Linux reads `/proc`; other
 * systems read `ps` for processes and cannot count threads.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"

interface Entry {
  readonly pid: number
  readonly ppid: number
  /** Dead, waiting to be reaped by its parent. */
  readonly zombie: boolean
}

/** One `/proc/<pid>/stat`, or `undefined` when the process is gone. */
const procEntry = (pid: number): Entry | undefined => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    // The command name, in parentheses, may hold spaces: the fields follow its last ")".
    const [state, ppid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return { pid, ppid: Number(ppid), zombie: state === "Z" || state === "X" }
  } catch {
    return undefined
  }
}

const hasProc = fs.existsSync("/proc/self/stat")

/** Every process of the machine. */
const processTable = (): Array<Entry> => {
  if (hasProc) {
    return fs
      .readdirSync("/proc")
      .filter((name) => /^\d+$/.test(name))
      .map((name) => procEntry(Number(name)))
      .filter((entry) => entry !== undefined)
  }
  const ps = spawnSync("ps", ["-A", "-o", "pid=,ppid=,stat="], { encoding: "utf8" })
  return ps.stdout
    .split("\n")
    .map((line) => line.trim().split(/\s+/))
    .filter(([pid]) => pid !== undefined && pid !== "" && Number(pid) !== ps.pid)
    .map(([pid, ppid, stat]) => ({ pid: Number(pid), ppid: Number(ppid), zombie: stat?.startsWith("Z") === true }))
}

/** The live (not zombie) descendants of `root`: its children, theirs, and so on. */
export const liveDescendants = (root: number = process.pid): Array<number> => {
  const children = new Map<number, Array<Entry>>()
  for (const entry of processTable()) children.set(entry.ppid, [...(children.get(entry.ppid) ?? []), entry])
  const found: Array<number> = []
  const visit = (pid: number) => {
    for (const child of children.get(pid) ?? []) {
      if (!child.zombie) found.push(child.pid)
      visit(child.pid)
    }
  }
  visit(root)
  return found
}

/** Whether process `pid` is still in the process table: alive, or dead and not yet reaped by its parent. */
export const exists = (pid: number): boolean =>
  hasProc ? procEntry(pid) !== undefined : processTable().some((entry) => entry.pid === pid)

/** The live (not zombie) children of this process. */
export const liveChildren = (): Array<number> =>
  processTable()
    .filter((entry) => entry.ppid === process.pid && !entry.zombie)
    .map((entry) => entry.pid)

/**
 * How many worker threads this process runs now (Node names their OS threads
 * `WorkerThread`), or `undefined` where that cannot be read.
 */
export const workerThreads = (): number | undefined => {
  if (!hasProc) return undefined
  let count = 0
  for (const task of fs.readdirSync("/proc/self/task")) {
    try {
      if (fs.readFileSync(`/proc/self/task/${task}/comm`, "utf8").trim() === "WorkerThread") count++
    } catch {
      // The thread ended while the list was read.
    }
  }
  return count
}
