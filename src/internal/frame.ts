/**
 * The binary frame of a Node child (the subprocess kind, both ways, once
 * both sides agreed on it): a batch of protocol messages (an array, the
 * short forms of a thread's batches allowed) written with V8's serializer
 * (what structured clone and Node's `advanced` IPC use) behind a 4-byte
 * big-endian length. One frame per turn: V8's serializer has a fixed cost
 * per call, which a batch shares.
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

/** The length before each frame's body. */
export const headerBytes = 4

/** Why a message cannot go even alone: its frame's body is `bytes` long, over the limit, or V8 cannot serialize it. */
export type Problem =
  | { readonly _tag: "Over"; readonly bytes: number }
  | { readonly _tag: "NotSerializable"; readonly error: unknown }

/** Told of a message that cannot be framed: the caller refuses it, or replaces it by returning another. */
export type Refuse<M> = (message: M, problem: Problem) => M | undefined

/** A frame: `body`'s length, then `body` (written after 4 bytes reserved for it, so that nothing is copied). */
const frameOf = (items: unknown): Buffer => {
  const serializer = new V8.DefaultSerializer()
  serializer.writeRawBytes(reserved)
  serializer.writeHeader()
  serializer.writeValue(items)
  const frame = serializer.releaseBuffer()
  frame.writeUInt32BE(frame.length - headerBytes, 0)
  return frame
}
const reserved = new Uint8Array(headerBytes)

/**
 * The frames of one batch, as one buffer to write: usually one frame; when
 * it cannot be (over `limit`, or a message V8 cannot serialize), one frame
 * per message, and `refuse` is told of each message that cannot go even
 * alone (with its size on the wire, or the serializer's error). `shorten`
 * turns the batch into the items sent.
 */
export const encode = <M>(
  batch: ReadonlyArray<M>,
  shorten: (batch: ReadonlyArray<M>) => ReadonlyArray<unknown>,
  limit: number,
  refuse: Refuse<M>
): Buffer | undefined => {
  try {
    const frame = frameOf(shorten(batch))
    if (frame.length - headerBytes <= limit) return frame
  } catch {
    // One of them cannot be serialized: each on its own below.
  }
  const frames: Array<Buffer> = []
  const alone = (message: M, retry: boolean): void => {
    let frame: Buffer
    try {
      frame = frameOf(shorten([message]))
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

/**
 * Makes a {@link Decoder} of frames of at most `limit` bytes. After a fault
 * (a length over the limit or of zero, a body V8 cannot read, a value that
 * is not an array) it stops: later pushes are ignored. Never throws.
 */
export const makeDecoder = (limit: number, sink: Sink): Decoder => {
  const header = new Uint8Array(headerBytes)
  let headerHeld = 0
  /** The body being filled, once its length was read and checked. */
  let body: Uint8Array | undefined
  let filled = 0
  let failed = false

  const fail = (reason: string) => {
    failed = true
    body = undefined
    headerHeld = 0
    sink.fault(reason)
  }

  const read = (bytes: Uint8Array) => {
    let value: unknown
    try {
      value = V8.deserialize(bytes)
    } catch (error) {
      return fail(`a frame that cannot be deserialized: ${describe(error)}`)
    }
    // A dense array holds at least a byte per item: a longer one (sparse) would cost its length to walk.
    if (!Array.isArray(value) || value.length > bytes.length) {
      return fail("a frame that is not a batch (an array) of protocol messages")
    }
    sink.batch(value)
  }

  /** Checks a frame's length; `true` if the decoder may go on. */
  const checked = (length: number): boolean => {
    if (length === 0) fail("a frame of 0 bytes")
    else if (length > limit) fail(`a frame of ${length} bytes, over the limit of ${limit} bytes`)
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
          read(whole)
        }
        continue
      }
      let length: number
      if (headerHeld === 0 && chunk.length - offset >= headerBytes) {
        length =
          ((chunk[offset]! << 24) | (chunk[offset + 1]! << 16) | (chunk[offset + 2]! << 8) | chunk[offset + 3]!) >>> 0
        offset += headerBytes
      } else {
        const take = Math.min(headerBytes - headerHeld, chunk.length - offset)
        header.set(chunk.subarray(offset, offset + take), headerHeld)
        headerHeld += take
        offset += take
        if (headerHeld < headerBytes) return
        headerHeld = 0
        length = ((header[0]! << 24) | (header[1]! << 16) | (header[2]! << 8) | header[3]!) >>> 0
      }
      if (!checked(length)) return
      if (chunk.length - offset >= length) {
        // Whole in this chunk: read where it lies (the chunk is not reused by its stream).
        read(chunk.subarray(offset, offset + length))
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
