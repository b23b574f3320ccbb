/**
 * This library's worker script for the start and replacement benchmark: it
 * answers `n + 1`, its process id, or exits (see `Probe` in schemas.ts).
 */
import { Runner } from "effect-worker-pool/child"
import { exitRequest, Probe, pidRequest } from "./schemas.ts"

Runner.run({
  request: Probe,
  response: Probe,
  handler: (n) => {
    if (n === exitRequest) process.exit(1)
    if (n === pidRequest) return process.pid
    return n + 1
  }
})
