/**
 * The demo's worker script, for subprocess workers (and thread workers): the
 * same work as the demo's in-process handler, the square root of a number,
 * with real crashes. With probability `--crash-rate` a request crashes its
 * worker, in one of three ways picked at random:
 *
 * - the script calls `process.exit(1)`;
 * - the process is killed with `SIGKILL` (a thread, which shares the demo's
 *   process, exits instead);
 * - the handler throws (a defect).
 *
 * Every request the dead worker held fails with `WorkerCrash`, and its
 * supervisor starts a new process.
 *
 *   node --conditions=effect-worker-pool-source examples/demo-worker.ts --crash-rate 0.02
 *
 * It is started by the demo (see `Subprocess.node` in examples/demo.ts); run
 * by hand, it reads JSON lines such as `{"_tag":"Request","id":1,"payload":4}`
 * from stdin.
 */

import { isMainThread } from "node:worker_threads"
import { Duration, Effect, Random, Schema } from "effect"
import { DomainError, Runner } from "effect-worker-pool/child"

/** `--crash-rate <p>` from the arguments, else 0. */
const crashRate = (() => {
  const at = process.argv.indexOf("--crash-rate")
  const rate = at === -1 ? 0 : Number(process.argv[at + 1])
  return Number.isFinite(rate) && rate >= 0 && rate <= 1 ? rate : 0
})()

Runner.run({
  request: Schema.Number,
  response: Schema.Number,
  handler: (n) =>
    Effect.gen(function* () {
      // Some milliseconds of work, so that requests overlap.
      yield* Effect.sleep(Duration.millis(yield* Random.nextIntBetween(5, 50)))
      const roll = yield* Random.next
      if (roll < crashRate / 3) {
        console.error(`exiting in the middle of sqrt(${n})`)
        process.exit(1)
      }
      if (roll < (2 * crashRate) / 3) {
        console.error(`killed in the middle of sqrt(${n})`)
        if (isMainThread) process.kill(process.pid, "SIGKILL")
        else process.exit(137)
      }
      if (roll < crashRate) {
        return yield* Effect.sync((): never => {
          throw new Error("index out of range")
        })
      }
      if (n < 0) return yield* new DomainError({ reason: `${n} has no real square root` })
      return Math.sqrt(n)
    })
})
