/**
 * The wire between a pool and its out-of-process workers: the messages as
 * `Schema`s, and the line codec of the subprocess kind with its size limit.
 *
 * Both out-of-process kinds speak the same messages. A subprocess sends them
 * as JSON, one per line, over its stdin and stdout; a thread posts them as
 * objects (structured clone). Every request carries an id chosen by the
 * parent, unique within one incarnation (1, 2, 3, ...); the child answers each
 * id exactly once, with one of the final messages.
 *
 * | direction      | message                                     | meaning                                                  |
 * |----------------|---------------------------------------------|----------------------------------------------------------|
 * | child → parent | `{"_tag":"Ready","protocol":1}`             | the runner is up; sent once, before anything else        |
 * | parent → child | `{"_tag":"Request","id":1,"payload":…}`     | run the handler on `payload` (the encoded request)       |
 * | parent → child | `{"_tag":"Cancel","id":1}`                  | the caller gave up: interrupt the handler                |
 * | parent → child | `{"_tag":"Shutdown"}`                       | exit now (threads; a subprocess sees its stdin close)    |
 * | child → parent | `{"_tag":"Success","id":1,"value":…}`       | final: the encoded response                              |
 * | child → parent | `{"_tag":"Failure","id":1,"error":…}`       | final: the encoded domain error                          |
 * | child → parent | `{"_tag":"Crash","id":1,"reason":"…"}`      | final: the handler raised `WorkerCrash` or died          |
 * | child → parent | `{"_tag":"Rejected","id":1,"reason":"…"}`   | final: the child could not decode the request            |
 * | child → parent | `{"_tag":"Cancelled","id":1}`               | final: the handler was interrupted                       |
 *
 * A final message for an id that is not in flight, a line that is not JSON or
 * not one of these messages, or a line longer than the limit is a protocol
 * fault: the parent treats the child as crashed.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { excerpt } from "./internal/text.ts"

/**
 * The version of the wire protocol, sent by the runner in its `Ready`
 * message. A parent refuses a child that speaks another version.
 *
 * @example
 * ```ts
 * import { Protocol } from "effect-worker-pool"
 *
 * console.log(Protocol.version) // 1
 * ```
 *
 * @since 0.1.0
 * @category constants
 */
export const version = 1

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
 * A request id: a positive integer, unique within one incarnation.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
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
 * The runner is up and speaks protocol `protocol`.
 *
 * @example
 * ```ts
 * import { Protocol } from "effect-worker-pool"
 *
 * const ready: Protocol.Ready = { _tag: "Ready", protocol: Protocol.version }
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const Ready = Schema.TaggedStruct("Ready", { protocol: Schema.Number })

/**
 * @since 0.1.0
 * @category schemas
 */
export type Ready = typeof Ready.Type

/**
 * Run the handler on `payload`, the request as its schema encodes it.
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
  payload: Schema.optionalKey(Schema.Unknown)
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
 * A message from the parent to a child.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Protocol } from "effect-worker-pool"
 *
 * const message = Schema.decodeUnknownSync(Protocol.ToChild)({ _tag: "Cancel", id: 3 })
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const ToChild = Schema.Union([Request, Cancel, Shutdown])

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
 * import { Schema } from "effect"
 * import { Protocol } from "effect-worker-pool"
 *
 * const message = Schema.decodeUnknownSync(Protocol.FromChild)({ _tag: "Success", id: 3, value: "ok" })
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const FromChild = Schema.Union([Ready, Success, Failure, Crash, Rejected, Cancelled])

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
  const finish = (last: Uint8Array): LineEvent | undefined => {
    let bytes = last
    if (parts.length > 0) {
      parts.push(last)
      bytes = new Uint8Array(pending + last.length)
      let offset = 0
      for (const part of parts) {
        bytes.set(part, offset)
        offset += part.length
      }
    }
    parts = []
    pending = 0
    let text: string
    try {
      text = utf8.decode(bytes)
    } catch {
      failed = true
      return { _tag: "Fault", reason: "a line that is not valid UTF-8" }
    }
    return text.trim() === "" ? undefined : { _tag: "Line", text }
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
      while (start < chunk.length) {
        const newline = chunk.indexOf(10, start)
        const end = newline === -1 ? chunk.length : newline
        if (pending + (end - start) > maxLineBytes) {
          events.push(tooLong())
          return events
        }
        if (newline === -1) {
          // Copied: the caller may reuse its buffer.
          parts.push(chunk.slice(start))
          pending += chunk.length - start
          break
        }
        const event = finish(chunk.subarray(start, newline))
        if (event !== undefined) events.push(event)
        if (failed) return events
        start = newline + 1
      }
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

const isFromChild = Schema.is(FromChild)

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

const isToChild = Schema.is(ToChild)

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
