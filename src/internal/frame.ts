/**
 * The binary frame of a Node child (the subprocess kind, both ways, once
 * both sides agreed on it): a batch of protocol messages (an array, the
 * short forms of a thread's batches allowed) behind a 4-byte big-endian
 * length and a byte that says how the body is written: JSON text when every
 * value in the batch comes back the same from JSON (strings, finite numbers,
 * booleans, `null`, arrays and plain objects of them), else V8's serializer
 * (what structured clone and Node's `advanced` IPC use: bytes, dates, maps,
 * `undefined`, -0 cross intact). One frame per turn: each body has a fixed
 * cost per call, which a batch shares. JSON's is the smaller (a fifth of
 * V8's on a batch of small messages, encoding and decoding), and each V8
 * frame is a buffer outside V8's heap, which costs the garbage collector;
 * V8's body is the one that carries bytes raw.
 *
 * The limit holds before any cost: a length over it is a fault before a byte
 * of the body is held, and a batch whose frame would be over it is split,
 * each message alone in its frame, a message still over it refused.
 */
import * as V8 from "node:v8"
import { describe } from "./describe.ts"

/**
 * The byte a side writes once, before its first frame, to say that frames
 * follow: `0xFF` is no byte of UTF-8, so no JSON line starts with it.
 */
export const switchByte = 0xff

/** The header before each frame's body: its length (4 bytes, big-endian), then its {@link Body} byte. */
export const headerBytes = 5

/** The byte after a frame's length that says how its body is written: JSON text in UTF-8 (`J`), or V8's serializer (`V`). */
export const Body = { Json: 0x4a, V8: 0x56 } as const

/** Why a message cannot go even alone: its frame's body is `bytes` long, over the limit, or V8 cannot serialize it. */
export type Problem =
  | { readonly _tag: "Over"; readonly bytes: number }
  | { readonly _tag: "NotSerializable"; readonly error: unknown }

/** Told of a message that cannot be framed: the caller refuses it, or replaces it by returning another. */
export type Refuse<M> = (message: M, problem: Problem) => M | undefined

/**
 * Whether `value` comes back the same from JSON text: strings, finite
 * numbers other than -0, booleans, `null`, and dense arrays and plain
 * objects of them (no `undefined`, no bytes, no class instances); and
 * whether its JSON text may fit in `limit` bytes (a lower bound, counted as
 * `jsonSize` does: a cycle, or an object repeated far too often, ends the
 * count). An object repeated within the limit comes back as copies.
 */
export const plainJson = (value: unknown, limit: number): boolean => {
  let count = 0
  const stack: Array<unknown> = [value]
  while (stack.length > 0) {
    const current = stack.pop()
    switch (typeof current) {
      case "string":
        count += current.length + 2
        break
      case "number":
        if (!Number.isFinite(current) || (current === 0 && 1 / current < 0)) return false
        count += 1
        break
      case "boolean":
        count += 4
        break
      case "object": {
        if (current === null) {
          count += 4
          break
        }
        if (Array.isArray(current)) {
          // Brackets and commas; a hole is `undefined`, which JSON cannot carry.
          count += current.length + 1
          if (count > limit) return false
          for (let i = 0; i < current.length; i++) stack.push(current[i])
          break
        }
        const prototype = Object.getPrototypeOf(current)
        if (prototype !== Object.prototype && prototype !== null) return false
        count += 1
        for (const key in current) {
          count += key.length + 4
          stack.push((current as Record<string, unknown>)[key])
        }
        break
      }
      default:
        // `undefined`, a bigint, a symbol, a function.
        return false
    }
    if (count > limit) return false
  }
  return true
}

/**
 * A frame whose body is `items` as JSON text: written into `scratch` when it
 * surely fits there (UTF-8 takes at most 3 bytes per UTF-16 code unit), else
 * into a buffer of its own.
 */
const jsonFrameOf = (items: unknown, scratch: Buffer | undefined): Buffer => {
  const text = JSON.stringify(items)
  if (scratch !== undefined && headerBytes + text.length * 3 <= scratch.length) {
    const length = scratch.write(text, headerBytes)
    scratch.writeUInt32BE(length, 0)
    scratch[4] = Body.Json
    return scratch.subarray(0, headerBytes + length)
  }
  const length = Buffer.byteLength(text)
  const frame = Buffer.allocUnsafe(headerBytes + length)
  frame.writeUInt32BE(length, 0)
  frame[4] = Body.Json
  frame.write(text, headerBytes, length, "utf8")
  return frame
}

/**
 * A frame whose body is `items` written by V8's serializer (after the 5 bytes
 * reserved for the header), copied into `scratch` when it fits there: a
 * fresh buffer from the serializer lives outside V8's heap and costs more to
 * write and to collect.
 */
const v8FrameOf = (items: unknown, scratch: Buffer | undefined): Buffer => {
  const serializer = new V8.DefaultSerializer()
  serializer.writeRawBytes(reserved)
  serializer.writeHeader()
  serializer.writeValue(items)
  const frame = serializer.releaseBuffer()
  frame.writeUInt32BE(frame.length - headerBytes, 0)
  frame[4] = Body.V8
  if (scratch === undefined || frame.length > scratch.length) return frame
  frame.copy(scratch)
  return scratch.subarray(0, frame.length)
}
const reserved = new Uint8Array(headerBytes)

/**
 * The frame of `items`, its body JSON when that is plain and fits in `limit`,
 * else V8's; in `scratch` when it fits there. Throws what V8's serializer
 * throws.
 */
const frameOf = (items: unknown, limit: number, scratch?: Buffer): Buffer => {
  if (plainJson(items, limit)) {
    try {
      const frame = jsonFrameOf(items, scratch)
      if (frame.length - headerBytes <= limit) return frame
    } catch {
      // Nested too deep for `JSON.stringify`'s stack: V8's serializer says whether it can.
    }
  }
  return v8FrameOf(items, scratch)
}

/**
 * The frames of one batch, as one buffer to write: usually one frame; when
 * it cannot be (over `limit`, or a message V8 cannot serialize), one frame
 * per message, and `refuse` is told of each message that cannot go even
 * alone (with its size on the wire, or the serializer's error). `shorten`
 * turns the batch into the items sent. With `scratch`, the usual single
 * frame is written there when it fits (then the result is a view of it):
 * the writer reuses one buffer for as long as each write completes at once.
 */
export const encode = <M>(
  batch: ReadonlyArray<M>,
  shorten: (batch: ReadonlyArray<M>) => ReadonlyArray<unknown>,
  limit: number,
  refuse: Refuse<M>,
  scratch?: Buffer
): Buffer | undefined => {
  try {
    const frame = frameOf(shorten(batch), limit, scratch)
    if (frame.length - headerBytes <= limit) return frame
  } catch {
    // One of them cannot be serialized: each on its own below.
  }
  const frames: Array<Buffer> = []
  const alone = (message: M, retry: boolean): void => {
    let frame: Buffer
    try {
      frame = frameOf(shorten([message]), limit, undefined)
    } catch (error) {
      const instead = retry ? refuse(message, { _tag: "NotSerializable", error }) : undefined
      if (instead !== undefined) alone(instead, false)
      return
    }
    if (frame.length - headerBytes <= limit) {
      frames.push(frame)
      return
    }
    const instead = retry ? refuse(message, { _tag: "Over", bytes: frame.length - headerBytes }) : undefined
    if (instead !== undefined) alone(instead, false)
  }
  for (const message of batch) alone(message, true)
  return frames.length === 0 ? undefined : Buffer.concat(frames)
}

/** What a {@link Decoder} hands over: each batch read, or why the stream cannot be read further. */
export interface Sink {
  readonly batch: (items: ReadonlyArray<unknown>) => void
  readonly fault: (reason: string) => void
}

/** Splits a byte stream into batches; holds at most the limit (and a header) of an unfinished frame. */
export interface Decoder {
  readonly push: (chunk: Uint8Array) => void
  /** Bytes of the unfinished frame held now. */
  readonly pending: number
  /** Whether the decoder has stopped on a fault. */
  readonly failed: boolean
}

const hex = (byte: number) => `0x${byte.toString(16).padStart(2, "0")}`

/**
 * Makes a {@link Decoder} of frames of at most `limit` bytes. After a fault
 * (a length over the limit or of zero, a body byte it does not know, a body
 * that cannot be read, a value that is not an array) it stops: later pushes
 * are ignored. Never throws.
 */
export const makeDecoder = (limit: number, sink: Sink): Decoder => {
  const utf8 = new TextDecoder("utf-8", { fatal: true })
  const header = new Uint8Array(headerBytes)
  let headerHeld = 0
  /** The body being filled, once its length was read and checked, and how it is written. */
  let body: Uint8Array | undefined
  let kind = 0
  let filled = 0
  let failed = false

  const fail = (reason: string) => {
    failed = true
    body = undefined
    headerHeld = 0
    sink.fault(reason)
  }

  const read = (kind: number, bytes: Uint8Array) => {
    let value: unknown
    if (kind === Body.Json) {
      try {
        value = JSON.parse(utf8.decode(bytes))
      } catch (error) {
        return fail(`a frame that is not JSON text: ${describe(error)}`)
      }
    } else {
      try {
        value = V8.deserialize(bytes)
      } catch (error) {
        return fail(`a frame that cannot be deserialized: ${describe(error)}`)
      }
    }
    // A dense array holds at least a byte per item: a longer one (sparse) would cost its length to walk.
    if (!Array.isArray(value) || value.length > bytes.length) {
      return fail("a frame that is not a batch (an array) of protocol messages")
    }
    sink.batch(value)
  }

  /** Checks a frame's length, as soon as it is read; `true` if the decoder may go on. */
  const checkedLength = (length: number): boolean => {
    if (length === 0) fail("a frame of 0 bytes")
    else if (length > limit) fail(`a frame of ${length} bytes, over the limit of ${limit} bytes`)
    return !failed
  }

  /** Checks a frame's body byte. */
  const checkedKind = (byte: number): boolean => {
    if (byte !== Body.Json && byte !== Body.V8) fail(`a frame whose body is of an unknown kind (${hex(byte)})`)
    return !failed
  }

  const push = (chunk: Uint8Array) => {
    let offset = 0
    while (offset < chunk.length && !failed) {
      if (body !== undefined) {
        const take = Math.min(body.length - filled, chunk.length - offset)
        body.set(chunk.subarray(offset, offset + take), filled)
        filled += take
        offset += take
        if (filled === body.length) {
          const whole = body
          body = undefined
          read(kind, whole)
        }
        continue
      }
      let length: number
      if (headerHeld === 0 && chunk.length - offset >= headerBytes) {
        length =
          ((chunk[offset]! << 24) | (chunk[offset + 1]! << 16) | (chunk[offset + 2]! << 8) | chunk[offset + 3]!) >>> 0
        if (!checkedLength(length) || !checkedKind(chunk[offset + 4]!)) return
        kind = chunk[offset + 4]!
        offset += headerBytes
      } else {
        const take = Math.min(headerBytes - headerHeld, chunk.length - offset)
        header.set(chunk.subarray(offset, offset + take), headerHeld)
        const before = headerHeld
        headerHeld += take
        offset += take
        length = ((header[0]! << 24) | (header[1]! << 16) | (header[2]! << 8) | header[3]!) >>> 0
        // The length is checked once its 4 bytes are in, before the body byte.
        if (before < 4 && headerHeld >= 4 && !checkedLength(length)) return
        if (headerHeld < headerBytes) return
        headerHeld = 0
        if (!checkedKind(header[4]!)) return
        kind = header[4]!
      }
      if (chunk.length - offset >= length) {
        // Whole in this chunk: read where it lies (the chunk is not reused by its stream).
        read(kind, chunk.subarray(offset, offset + length))
        offset += length
      } else {
        body = new Uint8Array(length)
        filled = 0
      }
    }
  }

  return {
    push: (chunk) => {
      if (!failed) push(chunk)
    },
    get pending() {
      return body === undefined ? headerHeld : headerBytes + filled
    },
    get failed() {
      return failed
    }
  }
}
