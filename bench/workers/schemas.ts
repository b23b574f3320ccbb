/** The schemas this library's worker scripts and the benchmark agree on. */
import { Schema } from "effect"
import { Rpc, RpcGroup } from "effect/rpc"
import { Transferable } from "effect/workers"

/** A task on this library's wire: two numbers to add. */
export const Task = Schema.Struct({ a: Schema.Number, b: Schema.Number })

/** The same task as the one operation of a group: `Sum`, its payload a {@link Task}, its answer a number. */
export const Summing = RpcGroup.make(Rpc.make("Sum", { payload: Task, success: Schema.Number }))

/**
 * A request to the crash worker: a number `n ≥ 0` is answered with `n + 1`;
 * {@link exitRequest} makes the handler call `process.exit(1)`;
 * {@link pidRequest} is answered with the worker's process id.
 */
export const Probe = Schema.Number

/** Makes the handler call `process.exit(1)`. */
export const exitRequest = -1

/** Asks for the worker's process id. */
export const pidRequest = -2

/** A task for the remote runners: two numbers to add, after waiting `wait` ms (0: at once). */
export const RemoteTask = Schema.Struct({ a: Schema.Number, b: Schema.Number, wait: Schema.Number })

/**
 * A request of the transfer benchmark: a buffer that moves through the
 * thread's transfer list (`Moved`), or is copied (`Copied`); the worker
 * answers with the same buffer, the same way.
 */
export const Buffers = Schema.Union([
  Schema.TaggedStruct("Moved", { bytes: Transferable.Uint8Array }),
  Schema.TaggedStruct("Copied", { bytes: Schema.Uint8Array })
])
/** A task for the capacity benchmark: spend `cpuMicros` µs of CPU, then wait `waitMillis` ms, then answer `n`. */
export const LoadTask = Schema.Struct({ n: Schema.Number, cpuMicros: Schema.Number, waitMillis: Schema.Number })
