/**
 * The wire between a pool and its out-of-process workers: the messages as
 * `Schema`s, and the line codec of the subprocess kind with its size limit.
 *
 * Both out-of-process kinds speak the same messages. A subprocess sends them
 * as JSON, one per line, over its stdin and stdout; a thread posts them as
 * objects (structured clone), an array of them per `postMessage` (a batch).
 * In a thread's batch, the most frequent messages may take a short form of
 * two items, the id (a number) then the payload: a child's `Success`
 * (`[3, 10]` is `{"_tag":"Success","id":3,"value":10}`) when the thread's
 * `workerData` has `shortSuccesses: true` (the thread kind sets it), and a
 * parent's `Request` when the child's `Ready` says `shortRequests`. A
 * `Request` that carries an `operation` takes a short form of three items,
 * the operation's tag (a string), the id, then the payload
 * (`["Hash", 3, {"text":"abc"}]`), to a child whose `Ready` says both
 * `shortRequests` and `operations`. Either side reads every form. Cloning a
 * number costs far less than cloning an object with its keys.
 * Either side sends what it has ready at the end of one synchronous run at once:
 * several lines in one write, or one batch. Every request carries an id
 * chosen by the parent, unique within one incarnation (1, 2, 3, ...); the
 * child answers each id exactly once, with one of the final messages.
 *
 * | direction      | message                                     | meaning                                                  |
 * |----------------|---------------------------------------------|----------------------------------------------------------|
 * | child → parent | `{"_tag":"Ready","protocol":3,"heartbeat":500}` | the runner is up, and sends a heartbeat every 500 ms (optional); sent once, before anything else; a runner that serves a group adds `"operations":true` (it reads a request's `operation`) |
 * | parent → child | `{"_tag":"Request","id":1,"payload":…}`     | run the handler on `payload` (the encoded request); a traced request adds `"trace":{"traceId":…,"spanId":…,"sampled":true}`, the span of its dispatch (optional); a streamed operation's call adds `"window":16`, the chunks the child may send before an `Ack`; a call of an operation of a group may add `"operation":"Hash"` (to a child whose `Ready` says `"operations":true`): `payload` is then the operation's own, and so is the answer's `value` or `error` |
 * | child → parent | `{"_tag":"Chunk","id":1,"value":…}`         | a chunk of a streamed call's elements (the encoded chunk), within its window |
 * | parent → child | `{"_tag":"Ack","id":1,"n":1}`               | the caller read `n` more chunks of the stream: `n` more may be sent |
 * | parent → child | `{"_tag":"Cancel","id":1}`                  | the caller gave up: interrupt the handler                |
 * | parent → child | `{"_tag":"Shutdown"}`                       | exit now (threads; a subprocess sees its stdin close)    |
 * | child → parent | `{"_tag":"Success","id":1,"value":…}`       | final: the encoded response                              |
 * | child → parent | `{"_tag":"Failure","id":1,"error":…}`       | final: the encoded domain error                          |
 * | child → parent | `{"_tag":"Crash","id":1,"reason":"…"}`      | final: the handler raised `WorkerCrash` or died          |
 * | child → parent | `{"_tag":"Rejected","id":1,"reason":"…"}`   | final: the child could not decode the request            |
 * | child → parent | `{"_tag":"Cancelled","id":1}`               | final: the handler was interrupted                       |
 * | child → parent | `{"_tag":"Heartbeat"}`                      | the child's event loop turns (when it has nothing else to send); with `"memory":…` (optional), its memory in bytes |
 * | child → parent | `{"_tag":"ChildStarted","pid":42,"group":false}` | a thread started process 42 (the leader of its own group if `group`) |
 * | child → parent | `{"_tag":"ChildExited","pid":42}`           | that process exited                                      |
 *
 * A final message or a `Chunk` for an id that is not in flight (a chunk after
 * its stream's end included), a `Chunk` beyond its window or of a request
 * that is not a stream, a line that is not JSON or not one of these
 * messages, or a line longer than the limit is a protocol fault: the parent
 * treats the child as crashed. A stream ends with its final message
 * (`Success` after its last chunk, `Failure`, `Crash`, `Cancelled`).
 *
 * A parent of this version takes a child of version 2 (the same messages,
 * without `Chunk` and `Ack`): such a child serves every operation that is
 * not a stream.
 *
 * A runner on Node offers a binary frame in its `Ready` (`"frame":"v8"`). A
 * parent that takes it writes the byte `0xFF` (no byte of UTF-8, so no JSON
 * line starts with it) on the child's stdin, then only frames; the child,
 * reading that byte first, answers with the same byte on its stdout, then
 * only frames (the lines it wrote before stay lines). A frame is a 4-byte
 * big-endian length, a byte that says how the body is written (`0x4A`, `J`:
 * JSON text; `0x56`, `V`: V8's serializer, `node:v8`, what structured clone
 * uses), then the body: a batch (an array, with the short forms of a
 * thread's batches both ways), everything one side has ready in one turn.
 * A batch whose values are all plain JSON goes as JSON text, any other
 * (bytes, dates, `undefined`) through V8's serializer. Its length is at most
 * `maxLineBytes`; a longer one, an unknown body byte, a body that cannot be
 * read, or a value that is not a batch of these messages is a protocol
 * fault. A parent that does not know the field (or is told by
 * {@link frameEnv} to keep lines) ignores it; a child that does not offer it
 * gets lines.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"
import { excerpt } from "./internal/text.ts"

/**
 * The version of the wire protocol, sent by the runner in its `Ready`
 * message. A parent refuses a child that speaks another version.
 *
 * @example
 * ```ts
 * import { Protocol } from "effect-worker-pool"
 *
 * console.log(Protocol.version) // 3
 * ```
 *
 * A parent also takes a child of {@link oldestVersion}.
 *
 * @since 0.1.0
 * @category constants
 */
export const version = 3

/**
 * The oldest version of the protocol a parent still takes: a child of
 * version 2 speaks every message but `Chunk` and `Ack`, so it serves every
 * operation that is not a stream.
 *
 * @example
 * ```ts
 * import { Protocol } from "effect-worker-pool"
 *
 * console.log(Protocol.oldestVersion) // 2
 * ```
 *
 * @since 0.4.0
 * @category constants
 */
export const oldestVersion = 2

/**
 * The default limit on one line of the subprocess protocol, in bytes, without
 * its newline: 1 MiB. A longer line is a protocol fault (the parent never
 * buffers more than this per process). Raise it with the kind's
 * `maxLineBytes` option when requests or responses are larger; the runner
 * learns the limit from the environment variable {@link maxLineBytesEnv}.
 *
 * @example
 * ```ts
 * import { Protocol } from "effect-worker-pool"
 *
 * console.log(Protocol.defaultMaxLineBytes) // 1048576
 * ```
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultMaxLineBytes = 1024 * 1024

/**
 * The environment variable through which a subprocess kind tells its runner
 * its `maxLineBytes`, so that both sides apply the same limit.
 *
 * @example
 * ```ts
 * import { Protocol } from "effect-worker-pool"
 *
 * console.log(Protocol.maxLineBytesEnv) // "EFFECT_WORKER_POOL_MAX_LINE_BYTES"
 * ```
 *
 * @since 0.1.0
 * @category constants
 */
export const maxLineBytesEnv = "EFFECT_WORKER_POOL_MAX_LINE_BYTES"

/**
 * The environment variable through which a kind tells its runner how often
 * to send a {@link Heartbeat}, in milliseconds. A runner without it sends
 * none, and says so by leaving `heartbeat` out of its `Ready`.
 *
 * @example
 * ```ts
 * import { Protocol } from "effect-worker-pool"
 *
 * console.log(Protocol.heartbeatEnv) // "EFFECT_WORKER_POOL_HEARTBEAT_MS"
 * ```
 *
 * @since 0.1.0
 * @category constants
 */
export const heartbeatEnv = "EFFECT_WORKER_POOL_HEARTBEAT_MS"

/**
 * The environment variable that makes a parent keep JSON lines with a child
 * that offers the binary frame: set to `json`. Unset (or `v8`), a subprocess
 * kind takes the frame when its child offers it. Any other value is an
 * `InvalidOptions` of the kind.
 *
 * @example
 * ```ts
 * import { Protocol } from "effect-worker-pool"
 *
 * console.log(Protocol.frameEnv) // "EFFECT_WORKER_POOL_FRAME"
 * ```
 *
 * @since 0.3.0
 * @category constants
 */
export const frameEnv = "EFFECT_WORKER_POOL_FRAME"

/**
 * A request id: a positive integer, unique within one incarnation.
 *
 * @example
 * ```ts
 * import * as Schema from "effect/Schema"
 * import { Protocol } from "effect-worker-pool"
 *
 * const id = Schema.decodeUnknownSync(Protocol.RequestId)(1)
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const RequestId = Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))

/**
 * The runner is up and speaks protocol `protocol`. With `heartbeat`, it
 * promises a {@link Heartbeat} (or any other message) at least every
 * `heartbeat` milliseconds while its event loop turns; the parent then
 * treats a long silence of an idle child as a crash. With `shortRequests`
 * (a thread's runner), it reads requests in their short form (see the
 * module's documentation). With `frame` (a runner on Node over stdio:
 * `"v8"`), it reads and writes the binary frame once the parent switches to
 * it; a parent ignores a frame it does not know. With `operations` (a
 * runner that serves a group), it reads a {@link Request}'s `operation` and
 * answers such a request with the operation's own value or error.
 *
 * @example
 * ```ts
 * import { Protocol } from "effect-worker-pool"
 *
 * const ready: Protocol.Ready = { _tag: "Ready", protocol: Protocol.version, heartbeat: 500 }
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const Ready = Schema.TaggedStruct("Ready", {
  protocol: Schema.Number,
  heartbeat: Schema.optionalKey(Schema.Number),
  shortRequests: Schema.optionalKey(Schema.Boolean),
  frame: Schema.optionalKey(Schema.String),
  operations: Schema.optionalKey(Schema.Boolean)
})

/**
 * @since 0.1.0
 * @category schemas
 */
export type Ready = typeof Ready.Type

/**
 * The span a request was dispatched under, for a child to run its handler
 * under (as an external parent span), so that the handler's spans join the
 * caller's trace: ids as the tracer made them (W3C trace context: 32 and 16
 * hex digits with OpenTelemetry), and whether the trace is sampled.
 *
 * @example
 * ```ts
 * import { Protocol } from "effect-worker-pool"
 *
 * const trace: Protocol.TraceContext = {
 *   traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
 *   spanId: "00f067aa0ba902b7",
 *   sampled: true
 * }
 * ```
 *
 * @since 0.2.0
 * @category schemas
 */
export const TraceContext = Schema.Struct({
  traceId: Schema.String,
  spanId: Schema.String,
  sampled: Schema.Boolean
})

/**
 * @since 0.2.0
 * @category schemas
 */
export type TraceContext = typeof TraceContext.Type

/**
 * Run the handler on `payload`, the request as its schema encodes it. A
 * request dispatched under a span carries it in `trace` (see
 * {@link TraceContext}); a runner that does not know the field ignores it.
 * A call of a streamed operation carries `window`: how many {@link Chunk}s
 * the child may send before the parent's first {@link Ack}. A call of an
 * operation of a group may carry `operation`, its tag, when the child's
 * {@link Ready} says `operations`: `payload` is then the operation's own
 * payload (not the envelope `{ _tag, payload }`), and the answer's `value`
 * or `error` the operation's own (not `{ _tag, value }` or
 * `{ _tag, error }`).
 *
 * @example
 * ```ts
 * import { Protocol } from "effect-worker-pool"
 *
 * const request: Protocol.Request = { _tag: "Request", id: 1, payload: { n: 2 } }
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const Request = Schema.TaggedStruct("Request", {
  id: RequestId,
  payload: Schema.optionalKey(Schema.Unknown),
  trace: Schema.optionalKey(TraceContext),
  window: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))),
  operation: Schema.optionalKey(Schema.String)
})

/**
 * @since 0.1.0
 * @category schemas
 */
export type Request = typeof Request.Type

/**
 * The caller of request `id` gave up: the child should interrupt its handler
 * and answer `Cancelled` (or its result, if it was already done).
 *
 * @example
 * ```ts
 * import { Protocol } from "effect-worker-pool"
 *
 * const cancel: Protocol.Cancel = { _tag: "Cancel", id: 1 }
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const Cancel = Schema.TaggedStruct("Cancel", { id: RequestId })

/**
 * @since 0.1.0
 * @category schemas
 */
export type Cancel = typeof Cancel.Type

/**
 * The caller of streamed request `id` read `n` more chunks: the child may
 * send `n` more {@link Chunk}s. A child may send a chunk only while the
 * chunks it sent are fewer than the request's `window` plus the acknowledged
 * ones.
 *
 * @example
 * ```ts
 * import { Protocol } from "effect-worker-pool"
 *
 * const ack: Protocol.Ack = { _tag: "Ack", id: 1, n: 1 }
 * ```
 *
 * @since 0.4.0
 * @category schemas
 */
export const Ack = Schema.TaggedStruct("Ack", { id: RequestId, n: Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)) })

/**
 * @since 0.4.0
 * @category schemas
 */
export type Ack = typeof Ack.Type

/**
 * The child should stop now: its pending requests are abandoned. A subprocess
 * is also told by the end of its stdin.
 *
 * @example
 * ```ts
 * import { Protocol } from "effect-worker-pool"
 *
 * const shutdown: Protocol.Shutdown = { _tag: "Shutdown" }
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const Shutdown = Schema.TaggedStruct("Shutdown", {})

/**
 * @since 0.1.0
 * @category schemas
 */
export type Shutdown = typeof Shutdown.Type

/**
 * Final answer to request `id`: the response, as its schema encodes it.
 *
 * @example
 * ```ts
 * import { Protocol } from "effect-worker-pool"
 *
 * const success: Protocol.Success = { _tag: "Success", id: 1, value: 4 }
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const Success = Schema.TaggedStruct("Success", {
  id: RequestId,
  value: Schema.optionalKey(Schema.Unknown)
})

/**
 * @since 0.1.0
 * @category schemas
 */
export type Success = typeof Success.Type

/**
 * A chunk of streamed request `id`: its elements, as the response schema
 * encodes a chunk (for an operation of a group, `{ _tag, value: [...] }`).
 * Not final: the stream ends with `Success` (its value, for an operation of
 * a group, `{ _tag }`), or with another final message. A chunk beyond the
 * window, for a request that is not a stream, or for an id not in flight is
 * a protocol fault.
 *
 * @example
 * ```ts
 * import { Protocol } from "effect-worker-pool"
 *
 * const chunk: Protocol.Chunk = { _tag: "Chunk", id: 1, value: { _tag: "Rows", value: ["a", "b"] } }
 * ```
 *
 * @since 0.4.0
 * @category schemas
 */
export const Chunk = Schema.TaggedStruct("Chunk", {
  id: RequestId,
  value: Schema.optionalKey(Schema.Unknown)
})

/**
 * @since 0.4.0
 * @category schemas
 */
export type Chunk = typeof Chunk.Type

/**
 * Final answer to request `id`: a domain error, as the error schema encodes
 * it. The worker stays healthy.
 *
 * @example
 * ```ts
 * import { Protocol } from "effect-worker-pool"
 *
 * const failure: Protocol.Failure = { _tag: "Failure", id: 1, error: { _tag: "DomainError", reason: "negative" } }
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const Failure = Schema.TaggedStruct("Failure", {
  id: RequestId,
  error: Schema.optionalKey(Schema.Unknown)
})

/**
 * @since 0.1.0
 * @category schemas
 */
export type Failure = typeof Failure.Type

/**
 * Final answer to request `id`: the handler failed with `WorkerCrash` or died
 * with a defect. The parent fails the request with `WorkerCrash` and replaces
 * the child.
 *
 * @example
 * ```ts
 * import { Protocol } from "effect-worker-pool"
 *
 * const crash: Protocol.Crash = { _tag: "Crash", id: 1, reason: "defect: TypeError: x is undefined" }
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const Crash = Schema.TaggedStruct("Crash", { id: RequestId, reason: Schema.String })

/**
 * @since 0.1.0
 * @category schemas
 */
export type Crash = typeof Crash.Type

/**
 * Final answer to request `id`: the child could not decode the request (the
 * two sides disagree on its schema). The caller gets `InvalidRequest`; the
 * worker stays healthy.
 *
 * @example
 * ```ts
 * import { Protocol } from "effect-worker-pool"
 *
 * const rejected: Protocol.Rejected = { _tag: "Rejected", id: 1, reason: "Expected number, got \"a\"" }
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const Rejected = Schema.TaggedStruct("Rejected", { id: RequestId, reason: Schema.String })

/**
 * @since 0.1.0
 * @category schemas
 */
export type Rejected = typeof Rejected.Type

/**
 * Final answer to request `id`: its handler was interrupted, after a `Cancel`.
 *
 * @example
 * ```ts
 * import { Protocol } from "effect-worker-pool"
 *
 * const cancelled: Protocol.Cancelled = { _tag: "Cancelled", id: 1 }
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const Cancelled = Schema.TaggedStruct("Cancelled", { id: RequestId })

/**
 * @since 0.1.0
 * @category schemas
 */
export type Cancelled = typeof Cancelled.Type

/**
 * The child is alive: its event loop turns. Sent every `heartbeat`
 * milliseconds (see {@link Ready}) unless something else was sent meanwhile.
 * `memory` (optional, since 0.3.0): the child's memory in bytes (a thread's
 * heap in use, a process's resident set size), sent by a runner whose
 * worker recycles over a memory limit, with its heartbeats and after the
 * answers of each turn. A parent ignores it unless it asked for it; a child
 * that leaves it out keeps working.
 *
 * @example
 * ```ts
 * import { Protocol } from "effect-worker-pool"
 *
 * const beat: Protocol.Heartbeat = { _tag: "Heartbeat" }
 * const report: Protocol.Heartbeat = { _tag: "Heartbeat", memory: 48_000_000 }
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const Heartbeat = Schema.TaggedStruct("Heartbeat", {
  memory: Schema.optionalKey(Schema.Number)
})

/**
 * @since 0.1.0
 * @category schemas
 */
export type Heartbeat = typeof Heartbeat.Type

/**
 * A thread started process `pid` (with `child_process`); `group` says it
 * leads a process group of its own (a detached spawn). The parent stops the
 * process (its group, if `group`) when the thread dies or is stopped.
 *
 * @example
 * ```ts
 * import { Protocol } from "effect-worker-pool"
 *
 * const started: Protocol.ChildStarted = { _tag: "ChildStarted", pid: 4242, group: false }
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const ChildStarted = Schema.TaggedStruct("ChildStarted", { pid: Schema.Number, group: Schema.Boolean })

/**
 * @since 0.1.0
 * @category schemas
 */
export type ChildStarted = typeof ChildStarted.Type

/**
 * A process that a thread started (see {@link ChildStarted}) has exited: the
 * parent forgets it.
 *
 * @example
 * ```ts
 * import { Protocol } from "effect-worker-pool"
 *
 * const exited: Protocol.ChildExited = { _tag: "ChildExited", pid: 4242 }
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const ChildExited = Schema.TaggedStruct("ChildExited", { pid: Schema.Number })

/**
 * @since 0.1.0
 * @category schemas
 */
export type ChildExited = typeof ChildExited.Type

/**
 * A message from the parent to a child.
 *
 * @example
 * ```ts
 * import * as Schema from "effect/Schema"
 * import { Protocol } from "effect-worker-pool"
 *
 * const message = Schema.decodeUnknownSync(Protocol.ToChild)({ _tag: "Cancel", id: 3 })
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const ToChild = Schema.Union([Request, Cancel, Shutdown, Ack])

/**
 * @since 0.1.0
 * @category schemas
 */
export type ToChild = typeof ToChild.Type

/**
 * A message from a child to its parent.
 *
 * @example
 * ```ts
 * import * as Schema from "effect/Schema"
 * import { Protocol } from "effect-worker-pool"
 *
 * const message = Schema.decodeUnknownSync(Protocol.FromChild)({ _tag: "Success", id: 3, value: "ok" })
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const FromChild = Schema.Union([
  Ready,
  Success,
  Chunk,
  Failure,
  Crash,
  Rejected,
  Cancelled,
  Heartbeat,
  ChildStarted,
  ChildExited
])

/**
 * @since 0.1.0
 * @category schemas
 */
export type FromChild = typeof FromChild.Type

/**
 * One line read off a stream by a {@link LineDecoder}: its text, or why the
 * stream cannot be read further.
 *
 * @example
 * ```ts
 * import type { Protocol } from "effect-worker-pool"
 *
 * const show = (event: Protocol.LineEvent) => (event._tag === "Line" ? event.text : `fault: ${event.reason}`)
 * ```
 *
 * @since 0.1.0
 * @category line codec
 */
export type LineEvent =
  | { readonly _tag: "Line"; readonly text: string }
  | { readonly _tag: "Fault"; readonly reason: string }

/**
 * Splits a byte stream into UTF-8 lines, holding at most `maxLineBytes` bytes
 * of an unfinished line. Empty lines are skipped. After a fault (a line over
 * the limit, or bytes that are not UTF-8) the decoder stops: every later
 * `push` returns nothing.
 *
 * @example
 * ```ts
 * import { Protocol } from "effect-worker-pool"
 *
 * const decoder = Protocol.makeLineDecoder(16)
 * const bytes = new TextEncoder().encode('{"a":1}\n{"b"')
 * console.log(decoder.push(bytes)) // [{ _tag: "Line", text: '{"a":1}' }]
 * console.log(decoder.pending) // 4
 * ```
 *
 * @since 0.1.0
 * @category line codec
 */
export interface LineDecoder {
  readonly push: (chunk: Uint8Array) => ReadonlyArray<LineEvent>
  /** Bytes of the unfinished line held now. */
  readonly pending: number
  /** Whether the decoder has stopped on a fault. */
  readonly failed: boolean
}

/**
 * Makes a {@link LineDecoder}. See there.
 *
 * @example
 * ```ts
 * import { Protocol } from "effect-worker-pool"
 *
 * const decoder = Protocol.makeLineDecoder(Protocol.defaultMaxLineBytes)
 * ```
 *
 * @since 0.1.0
 * @category line codec
 */
export const makeLineDecoder = (maxLineBytes: number): LineDecoder => {
  const utf8 = new TextDecoder("utf-8", { fatal: true })
  let parts: Array<Uint8Array> = []
  let pending = 0
  let failed = false
  const tooLong = (): LineEvent => {
    failed = true
    parts = []
    pending = 0
    return { _tag: "Fault", reason: `a line longer than the limit of ${maxLineBytes} bytes` }
  }
  const notUtf8 = (): LineEvent => {
    failed = true
    return { _tag: "Fault", reason: "a line that is not valid UTF-8" }
  }
  const keep = (events: Array<LineEvent>, text: string) => {
    if (text.trim() !== "") events.push({ _tag: "Line", text })
  }
  /** The line whose beginning is held, ended by `last`. */
  const finish = (events: Array<LineEvent>, last: Uint8Array) => {
    parts.push(last)
    const bytes = new Uint8Array(pending + last.length)
    let offset = 0
    for (const part of parts) {
      bytes.set(part, offset)
      offset += part.length
    }
    parts = []
    pending = 0
    try {
      keep(events, utf8.decode(bytes))
    } catch {
      events.push(notUtf8())
    }
  }
  /** Whole lines, `bytes` without the last newline: decoded at once, without a copy. */
  const run = (events: Array<LineEvent>, bytes: Uint8Array) => {
    let text: string
    try {
      text = utf8.decode(bytes)
    } catch {
      // Line by line, so that the lines before the bad one still count.
      let start = 0
      while (!failed) {
        const newline = bytes.indexOf(10, start)
        const line = bytes.subarray(start, newline === -1 ? bytes.length : newline)
        try {
          keep(events, utf8.decode(line))
        } catch {
          events.push(notUtf8())
        }
        if (newline === -1) break
        start = newline + 1
      }
      return
    }
    let start = 0
    for (;;) {
      const newline = text.indexOf("\n", start)
      if (newline === -1) {
        keep(events, start === 0 ? text : text.slice(start))
        return
      }
      keep(events, text.slice(start, newline))
      start = newline + 1
    }
  }
  return {
    get pending() {
      return pending
    },
    get failed() {
      return failed
    },
    push: (chunk) => {
      if (failed) return []
      const events: Array<LineEvent> = []
      let start = 0
      // A run of whole lines of this chunk, from `runStart` to the newline at `runEnd`.
      let runStart = -1
      let runEnd = -1
      const flushRun = () => {
        if (runStart !== -1) run(events, chunk.subarray(runStart, runEnd))
        runStart = -1
      }
      while (start < chunk.length) {
        const newline = chunk.indexOf(10, start)
        const end = newline === -1 ? chunk.length : newline
        if (pending + (end - start) > maxLineBytes) {
          flushRun()
          if (!failed) events.push(tooLong())
          return events
        }
        if (newline === -1) {
          flushRun()
          if (failed) return events
          // Copied: the caller may reuse its buffer.
          parts.push(chunk.slice(start))
          pending += chunk.length - start
          break
        }
        if (pending > 0) {
          finish(events, chunk.subarray(start, newline))
          if (failed) return events
        } else {
          if (runStart === -1) runStart = start
          runEnd = newline
        }
        start = newline + 1
      }
      flushRun()
      return events
    }
  }
}

/**
 * Turns one line into a message from a child, or says why it is not one.
 * Never throws.
 *
 * @example
 * ```ts
 * import { Protocol } from "effect-worker-pool"
 *
 * console.log(Protocol.parseFromChild('{"_tag":"Cancelled","id":2}'))
 * // { _tag: "Message", message: { _tag: "Cancelled", id: 2 } }
 * console.log(Protocol.parseFromChild("oops")._tag) // "Fault"
 * ```
 *
 * @since 0.1.0
 * @category line codec
 */
export const parseFromChild = (line: string): Parsed<FromChild> => {
  let json: unknown
  try {
    json = JSON.parse(line)
  } catch {
    return { _tag: "Fault", reason: `a line that is not JSON: ${excerpt(line)}` }
  }
  return decodeFromChild(json)
}

// The guards below check what `Schema.is` of `FromChild` and `ToChild` would,
// by hand: they run once per message, on the hot path. test/protocol.test.ts
// holds them to their Schemas (a property over valid and mutated messages).

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null

const isId = (u: unknown): boolean => typeof u === "number" && Number.isSafeInteger(u) && u >= 1

const isFromChild = (u: unknown): u is FromChild => {
  if (!isRecord(u)) return false
  switch (u._tag) {
    case "Success":
    case "Failure":
    case "Cancelled":
    case "Chunk":
      return isId(u.id)
    case "Crash":
    case "Rejected":
      return isId(u.id) && typeof u.reason === "string"
    case "Heartbeat":
      return !("memory" in u) || typeof u.memory === "number"
    case "Ready":
      return (
        typeof u.protocol === "number" &&
        (!("heartbeat" in u) || typeof u.heartbeat === "number") &&
        (!("shortRequests" in u) || typeof u.shortRequests === "boolean") &&
        (!("frame" in u) || typeof u.frame === "string") &&
        (!("operations" in u) || typeof u.operations === "boolean")
      )
    case "ChildStarted":
      return typeof u.pid === "number" && typeof u.group === "boolean"
    case "ChildExited":
      return typeof u.pid === "number"
    default:
      return false
  }
}

/** A message if `is` accepts the value, else a fault; never throws. */
const decodeWith = <A>(is: (u: unknown) => u is A, value: unknown): Parsed<A> => {
  try {
    if (is(value)) return { _tag: "Message", message: value }
  } catch {
    // A hostile value (a getter that throws) is no message either.
  }
  return { _tag: "Fault", reason: `a value that is not a protocol message: ${excerpt(safeJson(value))}` }
}

/**
 * Checks that a value (a parsed line, or an object posted by a thread) is a
 * message from a child. Never throws.
 *
 * @example
 * ```ts
 * import { Protocol } from "effect-worker-pool"
 *
 * console.log(Protocol.decodeFromChild({ _tag: "Ready", protocol: 1 })._tag) // "Message"
 * ```
 *
 * @since 0.1.0
 * @category line codec
 */
export const decodeFromChild = (value: unknown): Parsed<FromChild> => decodeWith(isFromChild, value)

const safeJson = (value: unknown): string => {
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return Object.prototype.toString.call(value)
  }
}

/**
 * What a parser of messages returns: the message, or why there is none.
 *
 * @example
 * ```ts
 * import type { Protocol } from "effect-worker-pool"
 *
 * const ok = (parsed: Protocol.Parsed<Protocol.ToChild>) => parsed._tag === "Message"
 * ```
 *
 * @since 0.1.0
 * @category line codec
 */
export type Parsed<A> =
  | { readonly _tag: "Message"; readonly message: A }
  | { readonly _tag: "Fault"; readonly reason: string }

const isTraceContext = (u: unknown): boolean =>
  isRecord(u) && typeof u.traceId === "string" && typeof u.spanId === "string" && typeof u.sampled === "boolean"

const isToChild = (u: unknown): u is ToChild => {
  if (!isRecord(u)) return false
  switch (u._tag) {
    case "Request":
      return (
        isId(u.id) &&
        (!("trace" in u) || isTraceContext(u.trace)) &&
        (!("window" in u) || isId(u.window)) &&
        (!("operation" in u) || typeof u.operation === "string")
      )
    case "Cancel":
      return isId(u.id)
    case "Ack":
      return isId(u.id) && isId(u.n)
    case "Shutdown":
      return true
    default:
      return false
  }
}

/**
 * Checks that a value is a message from the parent (the runner's side of
 * {@link decodeFromChild}). Never throws.
 *
 * @example
 * ```ts
 * import { Protocol } from "effect-worker-pool"
 *
 * console.log(Protocol.decodeToChild({ _tag: "Cancel", id: 1 })._tag) // "Message"
 * ```
 *
 * @since 0.1.0
 * @category line codec
 */
export const decodeToChild = (value: unknown): Parsed<ToChild> => decodeWith(isToChild, value)

/**
 * Turns one line into a message from the parent (the runner's side of
 * {@link parseFromChild}). Never throws.
 *
 * @example
 * ```ts
 * import { Protocol } from "effect-worker-pool"
 *
 * console.log(Protocol.parseToChild('{"_tag":"Shutdown"}')) // { _tag: "Message", message: { _tag: "Shutdown" } }
 * ```
 *
 * @since 0.1.0
 * @category line codec
 */
export const parseToChild = (line: string): Parsed<ToChild> => {
  let json: unknown
  try {
    json = JSON.parse(line)
  } catch {
    return { _tag: "Fault", reason: `a line that is not JSON: ${excerpt(line)}` }
  }
  return decodeToChild(json)
}
