/**
 * A worker script for bench/frame-ab.ts: answers a text with itself (a
 * 1 KiB string each way). Run with `--conditions=effect-worker-pool-source`.
 */
import { Schema } from "effect"
import { Runner } from "effect-worker-pool"

Runner.run({ request: Schema.String, response: Schema.String, handler: (text) => text })
