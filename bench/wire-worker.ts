/**
 * The worker of `bench/wire.ts`: adds two numbers.
 */
import { Schema } from "effect"
import { Runner } from "effect-worker-pool"

Runner.run({
  request: Schema.Struct({ a: Schema.Number, b: Schema.Number }),
  response: Schema.Number,
  handler: ({ a, b }) => a + b
})
