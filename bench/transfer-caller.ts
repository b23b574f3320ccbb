/**
 * A caller of the transfer benchmark (`bench/transfer.ts`), run in a process
 * of its own (forked, with an IPC channel, without V8's memory reducer: see
 * there why), so that its variant pays for its own garbage and no other's:
 * it makes a pool of 1 thread worker (`Thread.make` with defaults,
 * `bench/workers/buffer.ts`), runs a full garbage collection, reads its
 * `arrayBuffers` level and makes the 16 MiB payload, then runs a round of
 * `trips` round trips (`Moved` or `Copied`, from its argument) each time it
 * is asked, the payload going on from answer to answer. A round's figures:
 * the wall time from each dispatch to its answer, per trip, and the peak of
 * `process.memoryUsage().arrayBuffers` (this process's), read at the round's
 * start and whenever an answer is in hand, above the level before the
 * payload, as a multiple of the payload.
 */
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import { Effect, Exit, Scope } from "effect"
import { Thread, Worker, WorkerPool } from "effect-worker-pool"
import { Buffers } from "./workers/schemas.ts"

/** What the benchmark tells a caller. */
export type CallerCommand = { readonly _tag: "Round" } | { readonly _tag: "Close" }

/** What a caller answers: `Ready` once its pool and payload are made, a round's figures, `Closed`. */
export type CallerReport =
  | { readonly _tag: "Ready" }
  | { readonly _tag: "Round"; readonly millis: number; readonly peak: number }
  | { readonly _tag: "Closed" }

/** How a caller is started. */
export interface CallerData {
  readonly tag: "Moved" | "Copied"
  readonly trips: number
  readonly bytes: number
}

const { tag, trips, bytes: payloadBytes } = JSON.parse(process.argv[2]!) as CallerData
const report = (message: CallerReport) => process.send!(message)

/** A full garbage collection, without starting Node with `--expose-gc`. */
const collectGarbage = (() => {
  setFlagsFromString("--expose-gc")
  return runInNewContext("gc") as () => void
})()

const arrayBuffers = () => process.memoryUsage().arrayBuffers

const scope = Scope.makeUnsafe()
const kind = Thread.make(new URL("./workers/buffer.ts", import.meta.url), { request: Buffers, response: Buffers })
const pool = await Effect.runPromise(
  WorkerPool.make({ size: 1, spares: 0, worker: (id) => Worker.fromKind(id, kind) }).pipe(Scope.provide(scope))
)

// Once, before the payload: the level it is measured above.
collectGarbage()
const base = arrayBuffers()
let bytes = new Uint8Array(payloadBytes).fill(7)

const round = async (): Promise<CallerReport> => {
  let peak = arrayBuffers()
  let millis = 0
  for (let trip = 0; trip < trips; trip++) {
    const start = performance.now()
    const answer = await Effect.runPromise(pool.dispatch({ _tag: tag, bytes }))
    millis += performance.now() - start
    peak = Math.max(peak, arrayBuffers())
    if (answer.bytes.byteLength !== payloadBytes) throw new Error(`a ${tag} answer lost its bytes`)
    bytes = answer.bytes as Uint8Array<ArrayBuffer>
  }
  return { _tag: "Round", millis: millis / trips, peak: (peak - base) / payloadBytes }
}

process.on("message", (command: CallerCommand) => {
  // A failed round rejects: the process fails, and the benchmark with it.
  if (command._tag === "Round") round().then(report)
  else {
    Effect.runPromise(Scope.close(scope, Exit.void)).then(() => {
      process.send!({ _tag: "Closed" } satisfies CallerReport, () => process.disconnect())
    })
  }
})
// Without its benchmark (closed, or gone), a caller ends.
process.on("disconnect", () => process.exit(0))
report({ _tag: "Ready" })
