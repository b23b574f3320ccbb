/**
 * This library's worker script for the transfer benchmark: answers a buffer
 * with itself, moved back or copied as it came. Run with `--conditions=effect-worker-pool-source`.
 */
import { Runner } from "effect-worker-pool/child"
import { Buffers } from "./schemas.ts"

Runner.run({
  request: Buffers,
  response: Buffers,
  handler: (request) => request
})
