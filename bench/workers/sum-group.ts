/**
 * The throughput benchmark's worker script as a one-operation group (see
 * bench/operations-ab.ts): `Sum({ a, b }) → a + b`, the handler of
 * workers/sum.ts. Run with `--conditions=effect-worker-pool-source`.
 */
import { Runner } from "effect-worker-pool/child"
import { Summing } from "./schemas.ts"
import { add } from "./task.ts"

Runner.run({ group: Summing, handlers: { Sum: add } })
