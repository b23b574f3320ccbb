/** The machine a figure was produced on, as docs must state it. */
import { readFileSync } from "node:fs"
import { availableParallelism } from "node:os"

export interface Machine {
  readonly cpus: number
  readonly cpuModel: string
  readonly node: string
  readonly platform: string
}

export const machine = (): Machine => {
  let cpuModel = "unknown"
  try {
    const line = readFileSync("/proc/cpuinfo", "utf8")
      .split("\n")
      .find((l) => l.startsWith("model name"))
    if (line !== undefined) cpuModel = line.slice(line.indexOf(":") + 1).trim()
  } catch {
    // Not Linux: leave the model unknown.
  }
  return {
    cpus: availableParallelism(),
    cpuModel,
    node: process.version,
    platform: `${process.platform}-${process.arch}`
  }
}

export const describeMachine = (m: Machine): string =>
  `${m.cpus} CPUs (nproc), ${m.cpuModel}, Node ${m.node}, ${m.platform}`
