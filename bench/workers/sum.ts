/**
 * This library's worker script for the throughput benchmark, for threads and
 * subprocesses alike: `{ a, b } → a + b`. Run with `--conditions=effect-worker-pool-source`.
 */
import { Schema } from "effect"
import { Runner } from "effect-worker-pool/child"
import { Task } from "./schemas.ts"
import { add } from "./task.ts"

Runner.run({ request: Task, response: Schema.Number, handler: add })
