/**
 * The demo's runner, for remote workers: the same work as the demo's other
 * workers, the square root of a number, served on a port of 127.0.0.1 with
 * real crashes. With probability `--crash-rate` a request crashes, in one of
 * three ways picked at random:
 *
 * - the handler fails with `WorkerCrash` (the runner goes on; its client
 *   reconnects);
 * - the handler throws (a defect, the same);
 * - the runner process exits: every request on its connections fails with
 *   `WorkerCrash` (`ConnectionLost`), and the demo, standing for a service
 *   manager, starts it again on the same port, where its worker reconnects.
 *
 *   node --conditions=effect-worker-pool-source examples/demo-runner.ts --port 7400 --crash-rate 0.02
 *
 * It drains on SIGTERM: it finishes the requests it holds, then exits.
 */
import { Duration, Effect, Random, Schema } from "effect"
import { DomainError, WorkerCrash } from "effect-worker-pool"
import { Remote } from "effect-worker-pool/remote"

/** The number after `flag` in the arguments, else `fallback`. */
const argument = (flag: string, fallback: number): number => {
  const at = process.argv.indexOf(flag)
  const value = at === -1 ? fallback : Number(process.argv[at + 1])
  return Number.isFinite(value) ? value : fallback
}
const crashRate = Math.min(1, Math.max(0, argument("--crash-rate", 0)))

Effect.runFork(
  Remote.serve({
    request: Schema.Number,
    response: Schema.Number,
    port: argument("--port", 0),
    handler: (n) =>
      Effect.gen(function* () {
        // Some milliseconds of work, so that requests overlap.
        yield* Effect.sleep(Duration.millis(yield* Random.nextIntBetween(5, 50)))
        const roll = yield* Random.next
        if (roll < crashRate / 3) {
          return yield* WorkerCrash.report("lost its connection to the database")
        }
        if (roll < (2 * crashRate) / 3) {
          return yield* Effect.sync((): never => {
            throw new Error("index out of range")
          })
        }
        if (roll < crashRate) process.exit(1)
        if (n < 0) return yield* new DomainError({ reason: `${n} has no real square root` })
        return Math.sqrt(n)
      })
  })
)
