/**
 * A worker script for bench/frame-ab.ts: answers bytes with themselves (a
 * 64 KiB `Uint8Array` each way; base64 on JSON lines, raw in a binary frame).
 * Run with `--conditions=effect-worker-pool-source`.
 */
import { Schema } from "effect"
import { Runner } from "effect-worker-pool"

Runner.run({ request: Schema.Uint8Array, response: Schema.Uint8Array, handler: (bytes) => bytes })
