/**
 * The leak check: 1,000 pools made, loaded with a queue of waiting requests
 * and closed, one after another in one process (`leak-pools.ts`, run in a
 * child process with `--expose-gc` and a bounded heap, so that a leak that
 * exhausts it is reported, not fatal). Judged on the child's report: the
 * last 100 pools take at most 1.2 times the median time of the first 100;
 * the heap after a forced GC grows at most 10 MB from the 10th pool to the
 * last; no closed pool is still reachable; every close returned.
 */
import { spawn } from "node:child_process"
import { Effect } from "effect"
import type { Finding } from "./checks.ts"

export interface LeakOptions {
  readonly pools: number
  /** Requests each pool is loaded with. */
  readonly load: number
  readonly seed: number
  /** Real time the child may take before it is killed (and that reported). */
  readonly timeoutMillis: number
  /** The child's heap limit, in MB. */
  readonly heapMB: number
}

export interface LeakReport {
  readonly options: LeakOptions
  /** Real time of each pool, in order, in ms. */
  readonly millis: ReadonlyArray<number>
  /** Heap after a forced GC, after so many pools (0: at the start). */
  readonly heap: ReadonlyArray<{ readonly after: number; readonly bytes: number; readonly reachable: number }>
  /** Pools whose close did not return. */
  readonly unclosed: number
  /** Callers still waiting once their pool had closed. */
  readonly lost: number
  readonly completed: boolean
  /** How the child ended, when it did not finish. */
  readonly ended: string | undefined
  readonly elapsedMillis: number
  readonly findings: ReadonlyArray<Finding>
}

const median = (values: ReadonlyArray<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted.length === 0 ? NaN : sorted[Math.floor(sorted.length / 2)]!
}

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`

/** What the child's report shows. */
export const judgeLeak = (report: Omit<LeakReport, "findings">): Array<Finding> => {
  const findings: Array<Finding> = []
  const { millis, heap, options } = report
  const found = (invariant: string, message: string) => findings.push({ invariant, message })
  if (!report.completed) {
    found(
      "the leak check ends",
      `the child stopped after ${millis.length} of ${options.pools} pools: ${report.ended ?? "no reason"}${
        millis.length >= 20
          ? `; the last pools took ${millis
              .slice(-5)
              .map((m) => m.toFixed(0))
              .join(
                ", "
              )} ms against a median of ${median(millis.slice(0, Math.min(100, millis.length))).toFixed(1)} ms for the first ones`
          : ""
      }`
    )
  }
  const window = Math.min(100, Math.floor(millis.length / 10))
  if (window >= 10 && report.completed) {
    const first = median(millis.slice(0, window))
    const last = median(millis.slice(-window))
    if (last > 1.2 * first) {
      found(
        "pools keep flat time",
        `the last ${window} pools took a median of ${last.toFixed(2)} ms, over 1.2 times the ${first.toFixed(2)} ms of the first ${window}`
      )
    }
  }
  const base = heap.find((h) => h.after >= 10) ?? heap[0]
  const end = heap[heap.length - 1]
  if (base !== undefined && end !== undefined && end.after > base.after && report.completed) {
    const growth = end.bytes - base.bytes
    if (growth > 10e6) {
      found(
        "pools keep flat memory",
        `the heap after GC grew ${mb(growth)} from pool ${base.after} to pool ${end.after} (${mb(base.bytes)} to ${mb(end.bytes)}), over 10 MB`
      )
    }
  }
  if (end !== undefined && end.reachable > 0) {
    found(
      "closed pools are collected",
      `${end.reachable} of the ${end.after} pools closed are still reachable after a forced GC`
    )
  }
  if (report.unclosed > 0) found("close returns in time", `${report.unclosed} pools did not close within their drain`)
  if (report.lost > 0) found("one outcome", `${report.lost} callers still waited once their pool had closed`)
  return findings
}

/** Runs the leak check in a child process. */
export const runLeakCheck = (options: LeakOptions): Effect.Effect<LeakReport> =>
  Effect.callback<LeakReport>((resume) => {
    const began = performance.now()
    const millis: Array<number> = []
    const heap: Array<{ after: number; bytes: number; reachable: number }> = []
    let unclosed = 0
    let lost = 0
    let completed = false
    let failed: string | undefined
    const child = spawn(
      process.execPath,
      [
        "--expose-gc",
        `--max-old-space-size=${options.heapMB}`,
        "--conditions=effect-worker-pool-source",
        new URL("./leak-pools.ts", import.meta.url).pathname,
        "--pools",
        String(options.pools),
        "--load",
        String(options.load),
        "--seed",
        String(options.seed)
      ],
      { stdio: ["ignore", "pipe", "pipe"] }
    )
    let buffered = ""
    let stderr = ""
    child.stdout.setEncoding("utf8")
    child.stdout.on("data", (chunk: string) => {
      buffered += chunk
      let newline = buffered.indexOf("\n")
      while (newline !== -1) {
        const line = buffered.slice(0, newline)
        buffered = buffered.slice(newline + 1)
        newline = buffered.indexOf("\n")
        try {
          const m = JSON.parse(line)
          if (typeof m.pool === "number") {
            millis.push(m.millis)
            if (m.closed !== true) unclosed++
            lost += typeof m.lost === "number" ? m.lost : 0
          } else if (m.start === true) heap.push({ after: 0, bytes: m.heap, reachable: 0 })
          else if (typeof m.after === "number") heap.push({ after: m.after, bytes: m.heap, reachable: m.reachable })
          else if (m.done === true) completed = true
          else if (typeof m.failed === "string") failed = m.failed
        } catch {
          // Not a line of the report.
        }
      }
    })
    child.stderr.setEncoding("utf8")
    child.stderr.on("data", (chunk: string) => {
      stderr = (stderr + chunk).slice(-2000)
    })
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      child.kill("SIGKILL")
    }, options.timeoutMillis)
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      const ended = completed
        ? undefined
        : timedOut
          ? `killed after ${options.timeoutMillis} ms of real time`
          : (failed ??
            `exited with ${signal ?? `code ${code}`}${stderr.includes("heap out of memory") ? ": JavaScript heap out of memory" : ""}`)
      const partial = {
        options,
        millis,
        heap,
        unclosed,
        lost,
        completed,
        ended,
        elapsedMillis: performance.now() - began
      }
      resume(Effect.succeed({ ...partial, findings: judgeLeak(partial) }))
    })
    return Effect.sync(() => {
      clearTimeout(timer)
      child.kill("SIGKILL")
    })
  })
