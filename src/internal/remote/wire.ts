/**
 * What a remote client and its runner say to each other over `effect/rpc`:
 * the rpc group (`Run` for one request, `Events` for what the runner tells
 * its clients unasked, `Stream`, `Ack` and `Cancel` for a streamed
 * operation), the outcome of a request as it crosses the wire, the
 * fingerprint of the schemas both sides must share, and the framing with its
 * size limit.
 *
 * A streamed call is one `Stream` rpc whose elements are the chunks of the
 * handler's stream (`Chunk`) and then its outcome, the last element. The
 * window is the client's: the runner sends at most `window` chunks the
 * client has not acknowledged (`Ack`, as its caller reads them), so the rpc
 * layer's own acknowledgements are off on both sides (they hold one chunk in
 * flight, and the client's rpc layer would stop reading the whole connection
 * while its caller does not read). A caller that leaves sends `Cancel`: the
 * runner interrupts the handler, then ends the rpc stream without an
 * outcome, which confirms the cancel.
 *
 * Requests and answers travel as JSON values encoded by the user's schemas
 * on each side (`Schema.toCodecJson`), so the rpc layer carries them as
 * `Schema.Unknown` and a schema mismatch is caught before the first request
 * by comparing fingerprints, not by a stream of decode errors.
 */
import { createHash } from "node:crypto"
import { Rpc, RpcGroup, RpcSerialization } from "effect/rpc"
import * as Schema from "effect/Schema"
import type { TraceContext } from "../../Protocol.ts"
import type { Codec } from "../codec.ts"

/** The version of this protocol a client speaks. */
export const protocolVersion = 2

/**
 * The oldest version a runner admits: a client of protocol 1 (before streams)
 * uses only `Run` and `Events`, which have not changed, so runners can be
 * upgraded before their clients.
 */
export const oldestProtocolVersion = 1

/** The request was answered (its response, encoded). */
export const Success = Schema.TaggedStruct("Success", { value: Schema.Unknown })
/** The handler failed with a domain error (encoded by the error schema). */
export const Failure = Schema.TaggedStruct("Failure", { error: Schema.Unknown })
/** The runner could not decode the request. */
export const Rejected = Schema.TaggedStruct("Rejected", { reason: Schema.String })
/** The handler reported a crash or died; `reason` is its message. */
export const Crash = Schema.TaggedStruct("Crash", { reason: Schema.String })
/** The runner's per-request deadline passed; the handler was interrupted. */
export const Deadline = Schema.TaggedStruct("Deadline", { timeoutMillis: Schema.Number })

/** How one request ended on the runner. */
export const Outcome = Schema.Union([Success, Failure, Rejected, Crash, Deadline])
export type Outcome = typeof Outcome.Type

/**
 * What the runner tells a client unasked: `Draining`, it finishes what it
 * holds and takes nothing new; `Idle`, it closes the connection, which
 * carried no request for its `idleTimeout`.
 */
export const Notice = Schema.Literals(["Draining", "Idle"])

/** One request: its payload is the request as its schema encodes it to JSON. */
export const Run = Rpc.make("Run", { payload: Schema.Unknown, success: Outcome })

/** What the runner tells a client unasked, for as long as the connection lives. */
export const Events = Rpc.make("Events", { success: Notice, stream: true })

/** A chunk of a streamed call: the handler's elements, encoded by the response schema (`{ _tag, value: [...] }`). */
export const Chunk = Schema.TaggedStruct("Chunk", { value: Schema.Unknown })

/** What a streamed call's rpc stream carries: its chunks, then its outcome. */
export const Part = Schema.Union([Chunk, Success, Failure, Rejected, Crash, Deadline])
export type Part = typeof Part.Type

/**
 * One streamed call: `request` as in `Run`; `stream`, the client's id of it
 * on its connection (what `Ack` and `Cancel` name); `window`, the chunks the
 * runner may send that the client has not acknowledged.
 */
export const StreamRun = Rpc.make("Stream", {
  payload: { request: Schema.Unknown, stream: Schema.Number, window: Schema.Number },
  success: Part,
  stream: true
})

/** The caller of stream `stream` read `n` more chunks: the runner may send as many more. */
export const Ack = Rpc.make("Ack", { payload: { stream: Schema.Number, n: Schema.Number } })

/** The caller of stream `stream` left: the runner interrupts its handler and ends its rpc stream. */
export const Cancel = Rpc.make("Cancel", { payload: { stream: Schema.Number } })

/** The rpc group a remote client and its runner share. */
export const Group = RpcGroup.make(Run, Events, StreamRun, Ack, Cancel)

/**
 * The header that carries a traced request's span to the runner, in the W3C
 * `traceparent` form (`00-<trace id>-<span id>-<flags>`). A header rather
 * than a field of `Run`, so a runner that does not read it answers as before.
 */
export const traceHeader = "traceparent"

/** `trace` as a `traceparent` value. */
export const traceParent = (trace: TraceContext): string =>
  `00-${trace.traceId}-${trace.spanId}-${trace.sampled ? "01" : "00"}`

/** The trace context of a `traceparent` value; `undefined` for a missing or malformed one (the request runs untraced). */
export const parseTraceParent = (value: string | undefined): TraceContext | undefined => {
  if (value === undefined) return undefined
  const parts = value.split("-")
  if (parts.length !== 4 || parts[0] !== "00") return undefined
  const [, traceId, spanId, flags] = parts as [string, string, string, string]
  if (traceId === "" || spanId === "" || (flags !== "00" && flags !== "01")) return undefined
  return { traceId, spanId, sampled: flags === "01" }
}

/** JSON lines, with no line (request or answer) longer than `maxFrameBytes`. */
export const serialization = (maxFrameBytes: number): RpcSerialization.RpcSerialization["Service"] =>
  RpcSerialization.makeNdjson({ maxBufferSize: maxFrameBytes })

/**
 * A digest of the request, response and error schemas (as JSON Schema) and
 * of the protocol version (`version`, the client's): equal on both sides
 * when they speak the same schemas.
 */
export const fingerprint = (
  request: Codec<any>,
  response: Codec<any>,
  error: Codec<any>,
  version: number = protocolVersion
): string => {
  const document = (schema: Codec<any>) => {
    try {
      return Schema.toJsonSchemaDocument(schema)
    } catch {
      // A schema without a JSON Schema form: its AST's description stands in.
      return String(schema.ast)
    }
  }
  return createHash("sha256")
    .update(JSON.stringify([version, document(request), document(response), document(error)]))
    .digest("hex")
}
