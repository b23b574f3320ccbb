/**
 * Zero-copy buffers: a 16 MiB `Uint8Array` round trip through a thread
 * worker (a pool of 1, `Thread.make` with defaults, one per variant), its field marked
 * `Transferable.Uint8Array` (moved both ways) against a plain
 * `Schema.Uint8Array` (copied both ways), and the copy again as an A/A
 * control, in interleaved rounds. Each variant has a caller of its own: a
 * process (`transfer-caller.ts`, Node started without V8's memory reducer)
 * with its own pool, that makes the payload once and runs `trips` round
 * trips per round, each trip sending the buffer of the answer before it;
 * wall time per trip, from the dispatch to the answer. Beside it, the peak
 * of the caller's `process.memoryUsage().arrayBuffers` over a round, above
 * its level before the payload was made (after a full garbage collection),
 * as a multiple of the payload: read at the round's start and whenever an
 * answer is in hand (the request still held by the caller); a copy's
 * garbage counts until it is collected.
 *
 * Why so: a round trip's time is what a caller that keeps sending pays,
 * its own garbage included and no other variant's. Variants that share a
 * heap make a moved trip pay for the collection of the copies' garbage; a
 * full collection forced before each variant (to spare it that garbage)
 * and the memory reducer (which V8 runs in a heap that has been idle for
 * a few seconds, here while the other variants run their rounds) leave a
 * heap, the caller's and the thread's, with the smallest old-generation
 * limit V8 gives, its live size plus about 9 MB: V8 then starts marking
 * again as soon as a collection ends, and a moved trip pays a full
 * mark-compact of both heaps, nearly one a trip (10 to 60 ms a trip on a
 * busy 2-CPU machine, where a caller that keeps sending moves 16 MiB in
 * well under 1 ms, with no full collection in 3000 trips in a row).
 *
 * Goals: moved at least 10 × faster than copied, and a moved round trip's
 * `arrayBuffers` peak at most 1.25 × the payload.
 */
import * as ChildProcess from "node:child_process"
import { interleave, ratio, type Spread, spread } from "./rounds.ts"
import type { CallerCommand, CallerData, CallerReport } from "./transfer-caller.ts"

/** The payload: 16 MiB. */
export const transferBytes = 16 * 1024 * 1024

/** The goal: a moved round trip is at least this many times faster than a copied one. */
export const transferSpeedGoal = 10

/** The goal: a moved round trip's `arrayBuffers` peak is at most this multiple of the payload. */
export const transferMemoryGoal = 1.25

/** One variant's figures over the rounds. */
export interface TransferRow {
  readonly name: string
  /** Milliseconds per round trip. */
  readonly millis: Spread
  /** The `arrayBuffers` peak above the level before the payload, as a multiple of the payload. */
  readonly peak: Spread
}

/** What the section measured. */
export interface TransferResult {
  readonly rows: ReadonlyArray<TransferRow>
  /** Copied / moved time per trip, per round. */
  readonly speedup: Spread
  /** Copied (A/A) / copied time per trip, per round: the noise of the machine. */
  readonly control: Spread
}

export const movedName = "`Transferable.Uint8Array` (moved)"
export const copiedName = "`Schema.Uint8Array` (copied)"
export const controlName = "`Schema.Uint8Array` (copied, A/A)"

/** A caller process: `round` runs one round of its trips, `close` ends its pool and the process. */
interface Caller {
  readonly round: () => Promise<{ readonly millis: number; readonly peak: number }>
  readonly close: () => Promise<void>
}

/** Starts a caller of `tag` and waits until its pool and payload are made. */
const startCaller = (tag: CallerData["tag"], trips: number): Promise<Caller> => {
  const data: CallerData = { tag, trips, bytes: transferBytes }
  // This process's Node options (`--conditions=effect-worker-pool-source`), without V8's memory reducer.
  const child = ChildProcess.fork(new URL("./transfer-caller.ts", import.meta.url), [JSON.stringify(data)], {
    execArgv: [...process.execArgv, "--no-memory-reducer"],
    stdio: ["ignore", "inherit", "inherit", "ipc"]
  })
  // One command at a time: the report that comes next answers it.
  let waiting:
    | { readonly resolve: (report: CallerReport) => void; readonly reject: (error: unknown) => void }
    | undefined
  let failure: unknown
  const fail = (error: unknown) => {
    failure ??= error
    waiting?.reject(failure)
    waiting = undefined
  }
  child.on("message", (report: CallerReport) => {
    const next = waiting
    waiting = undefined
    next?.resolve(report)
  })
  child.on("error", fail)
  child.on("exit", (code, signal) => fail(new Error(`a ${tag} caller exited with ${signal ?? `code ${code}`}`)))
  const next = (command?: CallerCommand) =>
    new Promise<CallerReport>((resolve, reject) => {
      if (failure !== undefined) return reject(failure)
      waiting = { resolve, reject }
      if (command !== undefined) child.send(command)
    })
  return next().then(() => ({
    round: async () => {
      const report = await next({ _tag: "Round" })
      if (report._tag !== "Round") throw new Error(`a ${tag} caller answered a round with ${report._tag}`)
      return report
    },
    close: async () => {
      const exited = new Promise((resolve) => child.once("exit", resolve))
      try {
        await next({ _tag: "Close" })
      } finally {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill()
          await exited
        }
      }
    }
  }))
}

/** Runs the section: `rounds` interleaved rounds of `trips` round trips per variant. */
export const measureTransfer = async (rounds: number, trips: number): Promise<TransferResult> => {
  const callers: Array<Caller> = []
  try {
    // One at a time: a caller's start does not overlap another's.
    for (const tag of ["Moved", "Copied", "Copied"] as const) callers.push(await startCaller(tag, trips))
    const [moved, copied, control] = callers.map((caller) => caller.round)
    // A warm-up round, not counted.
    for (const round of [moved!, copied!, control!]) await round()
    const [movedSamples, copiedSamples, controlSamples] = await interleave([moved!, copied!, control!], rounds)
    const millisOf = (samples: ReadonlyArray<{ readonly millis: number }>) => samples.map((s) => s.millis)
    const row = (name: string, samples: ReadonlyArray<{ readonly millis: number; readonly peak: number }>) => ({
      name,
      millis: spread(millisOf(samples)),
      peak: spread(samples.map((s) => s.peak))
    })
    return {
      rows: [row(movedName, movedSamples!), row(copiedName, copiedSamples!), row(controlName, controlSamples!)],
      speedup: ratio(millisOf(copiedSamples!), millisOf(movedSamples!)),
      control: ratio(millisOf(controlSamples!), millisOf(copiedSamples!))
    }
  } finally {
    for (const caller of callers) await caller.close()
  }
}
