/**
 * The worker of `bench/wire.ts`: adds two numbers. It imports only what a
 * child needs: `effect/Schema` and `effect-worker-pool/child`.
 */
import * as Schema from "effect/Schema"
import { Runner } from "effect-worker-pool/child"

Runner.run({
  request: Schema.Struct({ a: Schema.Number, b: Schema.Number }),
  response: Schema.Number,
  handler: ({ a, b }) => a + b
})
