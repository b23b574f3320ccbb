/**
 * What the operating system says of a process: whether it is stopped
 * (`SIGSTOP`, `SIGTSTP`, a debugger), which no message from it can tell.
 */
import * as fs from "node:fs"
import type { ProcessState } from "./client.ts"

/**
 * The state of process `pid`: `"stopped"` when Linux's `/proc/<pid>/stat`
 * says `T` (stopped) or `t` (stopped by a tracer), `"running"` for any other
 * state, `"unknown"` where there is no `/proc` (other platforms) or the
 * process is gone.
 */
export const processState = (pid: number): ProcessState => {
  if (globalThis.process.platform !== "linux") return "unknown"
  let stat: string
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, "latin1")
  } catch {
    return "unknown"
  }
  // "pid (comm) S ...": the command may hold spaces and parentheses.
  const state = stat.charAt(stat.lastIndexOf(")") + 2)
  return state === "T" || state === "t" ? "stopped" : state === "" ? "unknown" : "running"
}

/** Whether process `pid` exists and is not a zombie (dead, waiting to be reaped). */
export const isAlive = (pid: number): boolean => {
  if (globalThis.process.platform === "linux") {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, "latin1")
      const state = stat.charAt(stat.lastIndexOf(")") + 2)
      return state !== "Z" && state !== "X"
    } catch {
      return false
    }
  }
  try {
    globalThis.process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

/** Sends `signal` to the process group led by `pid` when `group`, else to `pid`; never throws. */
export const signal = (pid: number, group: boolean, name: NodeJS.Signals): void => {
  try {
    globalThis.process.kill(group ? -pid : pid, name)
  } catch {
    // Gone already.
  }
}
