/**
 * Zero-copy buffers: a 16 MiB `Uint8Array` round trip through a thread
 * worker (a pool of 1, `Thread.make` with defaults, one per variant), its field marked
 * `Transferable.Uint8Array` (moved both ways) against a plain
 * `Schema.Uint8Array` (copied both ways), and the copy again as an A/A
 * control, in interleaved rounds. Each round runs `trips` round trips per
 * variant, one after the other, reusing the answer's buffer for the next
 * trip; wall time per trip. Before each variant's trips, both the worker
 * and the benchmark run a full garbage collection, so that no variant pays
 * for the garbage of the one before. Beside it, the peak of the process's
 * `process.memoryUsage().arrayBuffers` over the variant's trips, above its
 * level before the payload was made (after a full garbage collection), as a
 * multiple of the payload: read when the payload is made and when each
 * answer is in hand (the request still held by the caller).
 *
 * Goals: moved at least 10 × faster than copied, and a moved round trip's
 * `arrayBuffers` peak at most 1.25 × the payload.
 */
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import { Effect, Exit, Scope } from "effect"
import { Thread, Worker, WorkerPool } from "effect-worker-pool"
import { interleave, ratio, type Spread, spread } from "./rounds.ts"
import { Buffers } from "./workers/schemas.ts"

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

/** A full garbage collection, without starting Node with `--expose-gc`. */
const collectGarbage = (() => {
  setFlagsFromString("--expose-gc")
  return runInNewContext("gc") as () => void
})()

const arrayBuffers = () => process.memoryUsage().arrayBuffers

/** Runs the section: `rounds` interleaved rounds of `trips` round trips per variant. */
export const measureTransfer = async (rounds: number, trips: number): Promise<TransferResult> => {
  const scope = Scope.makeUnsafe()
  const kind = Thread.make(new URL("./workers/buffer.ts", import.meta.url), { request: Buffers, response: Buffers })
  // A pool per variant: a thread's heap sees one way of sending only.
  const makePool = () =>
    Effect.runPromise(
      WorkerPool.make({ size: 1, spares: 0, worker: (id) => Worker.fromKind(id, kind) }).pipe(Scope.provide(scope))
    )
  try {
    const pools = { Moved: await makePool(), Copied: await makePool(), Control: await makePool() }
    const variant =
      (tag: "Moved" | "Copied", pool = pools[tag]) =>
      async (): Promise<{ readonly millis: number; readonly peak: number }> => {
        // Neither side starts with the garbage of the variant before.
        await Effect.runPromise(pool.dispatch({ _tag: "Collect" }))
        collectGarbage()
        const base = arrayBuffers()
        let bytes = new Uint8Array(transferBytes).fill(7)
        let peak = arrayBuffers()
        const start = performance.now()
        for (let trip = 0; trip < trips; trip++) {
          const answer = await Effect.runPromise(pool.dispatch({ _tag: tag, bytes }))
          peak = Math.max(peak, arrayBuffers())
          if (answer._tag === "Collect" || answer.bytes.byteLength !== transferBytes) {
            throw new Error(`a ${tag} answer lost its bytes`)
          }
          bytes = answer.bytes as Uint8Array<ArrayBuffer>
        }
        const millis = (performance.now() - start) / trips
        return { millis, peak: (peak - base) / transferBytes }
      }
    // A warm-up round, not counted.
    await variant("Moved")()
    await variant("Copied")()
    await variant("Copied", pools.Control)()
    const [moved, copied, control] = await interleave(
      [variant("Moved"), variant("Copied"), variant("Copied", pools.Control)],
      rounds
    )
    const millisOf = (samples: ReadonlyArray<{ readonly millis: number }>) => samples.map((s) => s.millis)
    const row = (name: string, samples: ReadonlyArray<{ readonly millis: number; readonly peak: number }>) => ({
      name,
      millis: spread(millisOf(samples)),
      peak: spread(samples.map((s) => s.peak))
    })
    return {
      rows: [row(movedName, moved!), row(copiedName, copied!), row(controlName, control!)],
      speedup: ratio(millisOf(copied!), millisOf(moved!)),
      control: ratio(millisOf(control!), millisOf(copied!))
    }
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
}
