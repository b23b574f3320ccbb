/**
 * A runner for the remote benchmark: serves {@link RemoteTask}s (`a + b`,
 * after waiting `wait` ms when it is not 0) on a free port of 127.0.0.1 and
 * writes `port <n>` to stdout once it listens. Run with
 * `--conditions=effect-worker-pool-source`.
 */
import { Effect, Schema } from "effect"
import { Remote } from "effect-worker-pool/remote"
import { RemoteTask } from "./schemas.ts"

Effect.runFork(
  Effect.scoped(
    Effect.gen(function* () {
      const runner = yield* Remote.listen({
        request: RemoteTask,
        response: Schema.Number,
        port: 0,
        handler: ({ a, b, wait }) => (wait === 0 ? Effect.succeed(a + b) : Effect.as(Effect.sleep(wait), a + b))
      })
      yield* Effect.sync(() => process.stdout.write(`port ${runner.port}\n`))
      return yield* Effect.never
    })
  )
)
