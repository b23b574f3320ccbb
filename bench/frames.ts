/**
 * `node --conditions=effect-worker-pool-source bench/frames.ts`: candidate
 * encodings of the subprocess kind's wire, measured on the benchmark's
 * payloads before a binary frame is chosen. Each candidate turns a batch of
 * messages (as the parent sends them in one turn) into bytes and back, and is
 * timed per message (both ways) and sized per message:
 *
 * - `json lines`: today's wire, `JSON.stringify` per message joined by
 *   newlines, then the text split and parsed (a `Uint8Array` goes as its
 *   schema's base64 string, encoded and decoded here too);
 * - `v8 per message`: `v8.serialize` of each message behind a 4-byte length
 *   prefix (what Node's `advanced` IPC serialization does), deserialised one
 *   by one;
 * - `v8 per batch`: one `v8.serialize` of the batch's array, one
 *   `v8.deserialize`.
 *
 * The payloads: the throughput benchmark's `{ a, b }`; a record of a dozen
 * fields; a 1 KiB string; a 64 KiB `Uint8Array`. Each figure is the median of
 * `--rounds` rounds, the candidates interleaved round by round.
 */
import { Buffer } from "node:buffer"
import { parseArgs } from "node:util"
import * as V8 from "node:v8"

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "7" },
    batch: { type: "string", default: "64" },
    messages: { type: "string", default: "200000" }
  }
})
const rounds = Number(values.rounds)
const batchSize = Number(values.batch)

interface Payload {
  readonly name: string
  readonly make: (i: number) => unknown
  /** How many messages a round times (fewer for the large ones). */
  readonly messages: number
}

const record = (i: number) => ({
  id: i,
  user: "a.user@example.com",
  tags: ["alpha", "beta", "gamma"],
  score: i / 7,
  active: i % 2 === 0,
  created: "2026-12-05T18:00:00.000Z",
  nested: { x: i, y: -i, label: "point" },
  notes: null,
  ratio: 0.25,
  count: 42,
  kind: "record",
  version: 3
})

const kib = "x".repeat(1024)
const bytes64k = new Uint8Array(64 * 1024).map((_, i) => i & 0xff)

const total = Number(values.messages)
const payloads: ReadonlyArray<Payload> = [
  { name: "{ a, b }", make: (i) => ({ a: i, b: 1 }), messages: total },
  { name: "record of 12 fields", make: record, messages: total / 4 },
  { name: "1 KiB string", make: () => kib, messages: total / 4 },
  // A copy each: one array repeated would be written once by v8's serializer, which keeps object identity.
  { name: "64 KiB Uint8Array", make: () => new Uint8Array(bytes64k), messages: total / 200 }
]

interface Candidate {
  readonly name: string
  /** The bytes of a batch. */
  readonly encode: (batch: ReadonlyArray<unknown>) => Uint8Array
  /** The messages of a batch's bytes. */
  readonly decode: (bytes: Uint8Array) => ReadonlyArray<unknown>
}

/** A `Uint8Array` in JSON, as `Schema.Uint8Array`'s JSON codec carries it: base64. */
const toJsonValue = (payload: unknown): unknown =>
  payload instanceof Uint8Array ? Buffer.from(payload).toString("base64") : payload
const fromJsonValue = (value: unknown, binary: boolean): unknown =>
  binary ? new Uint8Array(Buffer.from(value as string, "base64")) : value

const jsonLines = (binary: boolean): Candidate => ({
  name: "json lines",
  encode: (batch) => {
    const lines: Array<string> = []
    for (const message of batch as ReadonlyArray<{ payload: unknown }>) {
      lines.push(JSON.stringify({ ...message, payload: toJsonValue(message.payload) }))
    }
    lines.push("")
    return Buffer.from(lines.join("\n"), "utf8")
  },
  decode: (bytes) => {
    const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8")
    const out: Array<unknown> = []
    for (const line of text.split("\n")) {
      if (line === "") continue
      const message = JSON.parse(line) as { payload: unknown }
      out.push({ ...message, payload: fromJsonValue(message.payload, binary) })
    }
    return out
  }
})

const v8PerMessage: Candidate = {
  name: "v8 per message",
  encode: (batch) => {
    const frames = batch.map((message) => V8.serialize(message))
    let size = 0
    for (const frame of frames) size += 4 + frame.length
    const out = Buffer.allocUnsafe(size)
    let offset = 0
    for (const frame of frames) {
      out.writeUInt32LE(frame.length, offset)
      frame.copy(out, offset + 4)
      offset += 4 + frame.length
    }
    return out
  },
  decode: (bytes) => {
    const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    const out: Array<unknown> = []
    let offset = 0
    while (offset < buffer.length) {
      const length = buffer.readUInt32LE(offset)
      out.push(V8.deserialize(buffer.subarray(offset + 4, offset + 4 + length)))
      offset += 4 + length
    }
    return out
  }
}

const v8PerBatch: Candidate = {
  name: "v8 per batch",
  encode: (batch) => V8.serialize(batch),
  decode: (bytes) => V8.deserialize(bytes as Buffer) as ReadonlyArray<unknown>
}

interface Figure {
  readonly payload: string
  readonly candidate: string
  readonly nsPerMessage: number
  readonly bytesPerMessage: number
}

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!

const measure = (payload: Payload, candidate: Candidate): { ns: number; bytes: number } => {
  const batches: Array<ReadonlyArray<unknown>> = []
  for (let i = 0; i < payload.messages; i += batchSize) {
    const batch: Array<unknown> = []
    for (let j = i; j < Math.min(i + batchSize, payload.messages); j++) {
      batch.push({ _tag: "Request", id: j + 1, payload: payload.make(j) })
    }
    batches.push(batch)
  }
  let bytes = 0
  let checked = 0
  const start = process.hrtime.bigint()
  for (const batch of batches) {
    const encoded = candidate.encode(batch)
    bytes += encoded.byteLength
    checked += candidate.decode(encoded).length
  }
  const ns = Number(process.hrtime.bigint() - start)
  if (checked !== payload.messages) throw new Error(`${candidate.name} lost messages`)
  return { ns: ns / payload.messages, bytes: bytes / payload.messages }
}

const figures: Array<Figure> = []
for (const payload of payloads) {
  const binary = payload.make(0) instanceof Uint8Array
  const candidates = [jsonLines(binary), v8PerMessage, v8PerBatch]
  // Warm up, then interleave.
  for (const candidate of candidates) measure({ ...payload, messages: Math.min(payload.messages, 2000) }, candidate)
  const times = new Map<string, Array<number>>()
  const sizes = new Map<string, number>()
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? candidates : [...candidates].reverse()
    for (const candidate of order) {
      const { ns, bytes } = measure(payload, candidate)
      times.set(candidate.name, [...(times.get(candidate.name) ?? []), ns])
      sizes.set(candidate.name, bytes)
    }
  }
  for (const candidate of candidates) {
    figures.push({
      payload: payload.name,
      candidate: candidate.name,
      nsPerMessage: median(times.get(candidate.name)!),
      bytesPerMessage: sizes.get(candidate.name)!
    })
  }
}

console.log(`batches of ${batchSize} requests, encoded and decoded; median of ${rounds} rounds`)
console.log("| payload | candidate | ns per message | vs json lines | bytes per message |")
console.log("| --- | --- | ---: | ---: | ---: |")
for (const figure of figures) {
  const json = figures.find((f) => f.payload === figure.payload && f.candidate === "json lines")!
  console.log(
    `| ${figure.payload} | ${figure.candidate} | ${figure.nsPerMessage.toFixed(0)} | ${(json.nsPerMessage / figure.nsPerMessage).toFixed(2)}x | ${figure.bytesPerMessage.toFixed(0)} |`
  )
}
