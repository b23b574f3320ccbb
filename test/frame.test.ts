/**
 * The binary frame of the subprocess kind (src/internal/frame.ts): any batch
 * of protocol messages comes back the same however the stream is cut, in a
 * JSON body when every value in it is plain JSON and in a V8 body otherwise;
 * any bytes give batches or one fault, never a throw, and nothing past the
 * limit is held; the size estimate of a request never refuses one that fits.
 */
import * as V8 from "node:v8"
import { assert, describe, it } from "@effect/vitest"
import { Schema } from "effect"
import { Protocol } from "effect-worker-pool"
import * as Frame from "../src/internal/frame.ts"
import { frameBytesOver } from "../src/internal/frameSize.ts"
import { expand, shortenFromChild, shortenToChild } from "../src/internal/shortForm.ts"

type Event =
  | { readonly _tag: "Batch"; readonly items: ReadonlyArray<unknown> }
  | { readonly _tag: "Fault"; readonly reason: string }

/** A decoder of frames of at most `limit` bytes that keeps what it hands over. */
const collecting = (limit: number) => {
  const events: Array<Event> = []
  const decoder = Frame.makeDecoder(limit, {
    batch: (items) => events.push({ _tag: "Batch", items }),
    fault: (reason) => events.push({ _tag: "Fault", reason })
  })
  return { decoder, events }
}

/** Feeds `bytes` cut in pieces of the sizes `cuts` names (in turn), checking after each what the decoder holds. */
const feed = (decoder: Frame.Decoder, bytes: Uint8Array, cuts: ReadonlyArray<number>, limit: number) => {
  let offset = 0
  let i = 0
  while (offset < bytes.length) {
    const size = cuts.length === 0 ? bytes.length : cuts[i++ % cuts.length]!
    decoder.push(bytes.subarray(offset, offset + size))
    assert.isAtMost(decoder.pending, limit + Frame.headerBytes)
    offset += size
  }
}

const Cuts = Schema.Array(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 9 })))
const Bytes = Schema.Array(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 255 })))

const requestOf = (id: number, payload: unknown) => ({ _tag: "Request", id, payload })
const successOf = (id: number, value: unknown) => ({ _tag: "Success", id, value })
const operationRequestOf = (operation: string, id: unknown, payload: unknown) => ({
  _tag: "Request",
  id,
  payload,
  operation
})

/** The messages of decoded batches, short forms made whole (a request of an operation's by `operation`, if given). */
const messagesOf = (
  events: ReadonlyArray<Event>,
  whole: (id: number, payload: unknown) => unknown,
  operation?: (tag: string, id: unknown, payload: unknown) => unknown
) => {
  const messages: Array<unknown> = []
  for (const event of events) {
    assert.strictEqual(event._tag, "Batch", event._tag === "Fault" ? event.reason : "")
    if (event._tag === "Batch") assert.isUndefined(expand(event.items, whole, (m) => messages.push(m), operation))
  }
  return messages
}

/** A request or success without its payload comes back with an `undefined` one (its short form has the slot). */
const withPayload = (message: Protocol.ToChild | Protocol.FromChild): unknown => {
  // Only a request of no other field than its payload takes the short form (a streamed call's `window` keeps it whole).
  if (message._tag === "Request" && !("payload" in message) && !("trace" in message) && !("window" in message))
    return { ...message, payload: undefined }
  if (message._tag === "Success" && !("value" in message)) return { ...message, value: undefined }
  return message
}

/** Values that JSON text would change or drop: they take a V8 body. */
const binaryValues: ReadonlyArray<unknown> = [
  new Uint8Array([1, 2, 3]),
  new Float64Array(2),
  new ArrayBuffer(4),
  new Date(0),
  new Map([[1, 2]]),
  new Set([1]),
  undefined,
  -0,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  10n ** 30n,
  Object.assign([1], { 2: 3 }),
  new (class Point {
    x = 1
  })()
]

/** Whether a JSON value holds -0 (which `Schema.Json` allows, and which JSON text writes as 0). */
const hasNegativeZero = (value: unknown): boolean =>
  Object.is(value, -0) ||
  (typeof value === "object" && value !== null && Object.values(value).some((item) => hasNegativeZero(item)))

const noRefusal = (_: unknown, problem: Frame.Problem) => assert.fail(`refused: ${JSON.stringify(problem)}`)

describe("the binary frame", () => {
  it.prop(
    "any batch of messages to a child, and from a child, comes back the same however the bytes are cut",
    [Schema.Array(Protocol.ToChild), Schema.Array(Protocol.FromChild), Cuts],
    ([toChild, fromChild, cuts]) => {
      const limit = 1 << 20
      for (const [batch, shorten, whole, operation] of [
        [toChild, shortenToChild, requestOf, operationRequestOf],
        [fromChild, shortenFromChild, successOf, undefined]
      ] as const) {
        if (batch.length === 0) continue
        const bytes = Frame.encode<unknown>(
          batch,
          shorten as (b: ReadonlyArray<unknown>) => Array<unknown>,
          limit,
          noRefusal
        )!
        const { decoder, events } = collecting(limit)
        feed(decoder, bytes, cuts, limit)
        assert.strictEqual(decoder.pending, 0)
        assert.deepStrictEqual(messagesOf(events, whole, operation), batch.map(withPayload))
      }
    },
    { arbitrary: { runs: 300 } }
  )

  it.prop(
    "a batch takes a JSON body exactly when all its values are plain JSON, a V8 body otherwise; both come back the same",
    [
      Schema.Array(
        Schema.Tuple([
          Schema.Json,
          Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: binaryValues.length * 3 }))
        ])
      ),
      Cuts
    ],
    ([pairs, cuts]) => {
      if (pairs.length === 0) return
      const limit = 1 << 20
      // Mostly plain payloads; some with a value JSON cannot carry (bytes, a date, undefined, -0, NaN, ...).
      const batch = pairs.map(([json, pick], i): Protocol.FromChild => {
        const extra = binaryValues[pick]
        const value = pick < binaryValues.length ? { json, extra } : json
        return i % 2 === 0 ? { _tag: "Success", id: i + 1, value } : { _tag: "Failure", id: i + 1, error: value }
      })
      const items = shortenFromChild(batch)
      const bytes = Frame.encode<Protocol.FromChild>(batch, shortenFromChild, limit, noRefusal)!
      assert.strictEqual(bytes[4], Frame.plainJson(items, limit) ? Frame.Body.Json : Frame.Body.V8)
      assert.strictEqual(
        bytes[4] === Frame.Body.Json,
        pairs.every(([json, pick]) => pick >= binaryValues.length && !hasNegativeZero(json)),
        "JSON unless a value JSON cannot carry is in the batch"
      )
      const { decoder, events } = collecting(limit)
      feed(decoder, bytes, cuts, limit)
      assert.strictEqual(decoder.pending, 0)
      assert.deepStrictEqual(messagesOf(events, successOf), batch)
    },
    { arbitrary: { runs: 500 } }
  )

  it.prop(
    "a value judged plain JSON comes back the same from JSON text as from V8's serializer",
    [Schema.Json, Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: binaryValues.length }))],
    ([json, pick]) => {
      for (const value of [json, [json, binaryValues[pick]], { json, extra: binaryValues[pick] }]) {
        if (!Frame.plainJson(value, 1 << 20)) continue
        assert.deepStrictEqual(JSON.parse(JSON.stringify(value)), V8.deserialize(V8.serialize(value)))
        assert.deepStrictEqual(JSON.parse(JSON.stringify(value)), value)
      }
    },
    { arbitrary: { runs: 500 } }
  )

  it("writes the usual frame into the writer's scratch buffer when it fits there, either body; else a buffer of its own", () => {
    const scratch = Buffer.alloc(256)
    const batches: ReadonlyArray<ReadonlyArray<unknown>> = [
      [1, { a: 1, b: "é" }],
      [2, new Uint8Array([1, 2, 3])],
      [3, "x".repeat(300)],
      [4, new Uint8Array(300)]
    ]
    const { decoder, events } = collecting(1024)
    const inScratch: Array<boolean> = []
    for (const batch of batches) {
      const bytes = Frame.encode(batch, (b) => b, 1024, noRefusal, scratch)!
      inScratch.push(bytes.buffer === scratch.buffer)
      decoder.push(Buffer.from(bytes))
    }
    assert.deepStrictEqual(inScratch, [true, true, false, false])
    assert.deepStrictEqual<ReadonlyArray<unknown>>(
      events.map((e) => (e._tag === "Batch" ? e.items : e.reason)),
      batches
    )
  })

  it("judges a value plain JSON only within the limit, and never what JSON would change", () => {
    for (const value of [1, "s", true, null, [], {}, [1, "a", { b: [null, false] }], Object.create(null)]) {
      assert.isTrue(Frame.plainJson(value, 1024), JSON.stringify(value))
    }
    for (const value of binaryValues) assert.isFalse(Frame.plainJson([value], 1024), String(value))
    const cycle: Array<unknown> = []
    cycle.push(cycle)
    assert.isFalse(Frame.plainJson(cycle, 1024), "a cycle ends the count")
    assert.isFalse(Frame.plainJson(["x".repeat(2000)], 1024))
    assert.isFalse(Frame.plainJson(Object.assign([], { length: 2 ** 31 }), 1024))
  })

  it.prop(
    "any bytes, cut anywhere, give batches then at most one fault; never a throw, never more than the limit held",
    [Bytes, Cuts, Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 64 }))],
    ([bytes, cuts, limit]) => {
      const { decoder, events } = collecting(limit)
      feed(decoder, Uint8Array.from(bytes), cuts, limit)
      const faults = events.filter((e) => e._tag === "Fault")
      assert.isAtMost(faults.length, 1)
      if (faults.length === 1) {
        assert.strictEqual(events.at(-1)?._tag, "Fault", "nothing after a fault")
        assert.isTrue(decoder.failed)
      }
      for (const event of events) if (event._tag === "Batch") assert.isTrue(Array.isArray(event.items))
    },
    { arbitrary: { runs: 1000 } }
  )

  it.prop(
    "frames whose lengths are right and whose bodies are any bytes give a batch or a fault that says why",
    [Schema.Array(Bytes), Cuts],
    ([bodies, cuts]) => {
      const limit = 256
      const frames = bodies
        .filter((body) => body.length > 0)
        .map((body) => {
          const header = Buffer.alloc(Frame.headerBytes)
          header.writeUInt32BE(body.length)
          header[4] = body[0]! % 2 === 0 ? Frame.Body.V8 : Frame.Body.Json
          return Buffer.concat([header, Uint8Array.from(body)])
        })
      const { decoder, events } = collecting(limit)
      feed(decoder, Buffer.concat(frames), cuts, limit)
      for (const event of events) {
        if (event._tag === "Fault") {
          assert.match(
            event.reason,
            /^a frame (that cannot be deserialized: |that is not JSON text: |that is not a batch)/
          )
        }
      }
    },
    { arbitrary: { runs: 500 } }
  )

  it("checks a length before it holds a byte of the body: over the limit, or 0, is a fault at once", () => {
    const over = collecting(1024)
    over.decoder.push(Uint8Array.of(0x7f, 0xff))
    assert.deepStrictEqual(over.events, [])
    assert.strictEqual(over.decoder.pending, 2)
    over.decoder.push(Uint8Array.of(0xff, 0xff))
    assert.deepStrictEqual(over.events, [
      { _tag: "Fault", reason: "a frame of 2147483647 bytes, over the limit of 1024 bytes" }
    ])
    assert.strictEqual(over.decoder.pending, 0)
    over.decoder.push(Frame.encode([{ _tag: "Heartbeat" }], (b) => b, 1024, noRefusal)!)
    assert.strictEqual(over.events.length, 1, "a failed decoder stays stopped")

    const empty = collecting(1024)
    empty.decoder.push(Uint8Array.of(0, 0, 0, 0))
    assert.deepStrictEqual(empty.events, [{ _tag: "Fault", reason: "a frame of 0 bytes" }])
  })

  it("takes a body of exactly the limit; a sparse array (longer than its bytes) is no batch", () => {
    const body = V8.serialize(["x".repeat(100)])
    const header = Buffer.alloc(Frame.headerBytes)
    header.writeUInt32BE(body.length)
    header[4] = Frame.Body.V8
    const exact = collecting(body.length)
    exact.decoder.push(Buffer.concat([header, body]))
    assert.deepStrictEqual(exact.events, [{ _tag: "Batch", items: ["x".repeat(100)] }])

    const sparse = V8.serialize(Object.assign([], { length: 2 ** 32 - 1 }))
    header.writeUInt32BE(sparse.length)
    const huge = collecting(1024)
    huge.decoder.push(Buffer.concat([header, sparse]))
    assert.deepStrictEqual(huge.events, [
      { _tag: "Fault", reason: "a frame that is not a batch (an array) of protocol messages" }
    ])
  })

  it("a batch over the limit leaves in frames of one message; one still over, or not serialisable, is refused", () => {
    const refused: Array<readonly [unknown, string]> = []
    const bytes = Frame.encode<unknown>(
      [{ a: "x".repeat(60) }, { b: "y".repeat(60) }, { c: "z".repeat(200) }, { f: () => 1 }, 7],
      (b) => b,
      100,
      (message, problem) => {
        refused.push([Object.keys(message as object)[0], problem._tag])
        return undefined
      }
    )!
    assert.deepStrictEqual(refused, [
      ["c", "Over"],
      ["f", "NotSerializable"]
    ])
    const { decoder, events } = collecting(100)
    decoder.push(bytes)
    assert.deepStrictEqual(events, [
      { _tag: "Batch", items: [{ a: "x".repeat(60) }] },
      { _tag: "Batch", items: [{ b: "y".repeat(60) }] },
      { _tag: "Batch", items: [7] }
    ])
  })

  it("a message refused may be replaced by another (the runner's crash answer), framed alone", () => {
    const bytes = Frame.encode<unknown>(
      ["x".repeat(200)],
      (b) => b,
      100,
      () => "replaced"
    )!
    const { decoder, events } = collecting(100)
    decoder.push(bytes)
    assert.deepStrictEqual(events, [{ _tag: "Batch", items: ["replaced"] }])
  })
})

describe("the size estimate of a request on the binary frame", () => {
  // Values as schemas encode them, and more: bytes, repeated objects, sparse arrays, numbers V8 writes as doubles.
  const shared = { label: "shared", n: 1 }
  const extras: ReadonlyArray<unknown> = [
    new Uint8Array(100),
    new Float64Array(10),
    [shared, shared, shared],
    Object.assign([], { length: 1000 }),
    { 1234567890: "an index key", 7: true },
    new Date(0),
    new Map([[1, 2]]),
    Object.create(null),
    2 ** 40,
    -0,
    undefined,
    10n ** 30n
  ]

  it.prop(
    "is over the limit only when the value's serialisation is over it (never refuses a request that fits)",
    [
      Schema.Json,
      Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 400 })),
      Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 11 }))
    ],
    ([json, limit, pick]) => {
      for (const value of [json, extras[pick], [json, extras[pick], json], { json, extra: extras[pick] }]) {
        // The value's bytes in V8's format, without the serializer's 2-byte header.
        const bytes = V8.serialize(value).length - 2
        const atLeast = frameBytesOver(value, limit)
        if (atLeast !== undefined) {
          assert.isAbove(atLeast, limit)
          assert.isAtMost(atLeast, bytes, `estimated ${atLeast}, written in ${bytes}`)
        }
      }
    },
    { arbitrary: { runs: 500 } }
  )

  it("stops early on a long array or string, and counts bytes by their length", () => {
    assert.strictEqual(frameBytesOver(new Array(10_000_000).fill(0), 1000), 1002)
    assert.strictEqual(frameBytesOver({ s: "x".repeat(50_000_000) }, 1_000_000), 50_000_008)
    assert.strictEqual(frameBytesOver(new Uint8Array(5_000_000), 1_000_000), 5_000_002)
    assert.isUndefined(frameBytesOver({ a: 1, b: 2 }, 64))
  })
})
