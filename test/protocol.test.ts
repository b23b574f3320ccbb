/**
 * The wire: the line decoder and the parent's side of the protocol, fed
 * random bytes and random message sequences. Nothing a child sends can make
 * the parent throw, and every request ends with exactly one outcome.
 */
import * as WorkerThreads from "node:worker_threads"
import { assert, describe, it } from "@effect/vitest"
import { Cause, Duration, Effect, Exit, Fiber, Schema } from "effect"
import { TestClock } from "effect/testing"
import {
  DomainError,
  InvalidRequest,
  Protocol,
  ProtocolFault,
  Stopped,
  Subprocess,
  Thread,
  WorkerCrash
} from "effect-worker-pool"
import * as Client from "../src/internal/client.ts"
import { jsonBytesOver, jsonFrame } from "../src/internal/jsonSize.ts"
import * as RemoteWire from "../src/internal/remote/wire.ts"
import * as S from "./fixtures/support.ts"

const utf8 = new TextEncoder()
const lines = (events: ReadonlyArray<Protocol.LineEvent>) =>
  events.map((e) => (e._tag === "Line" ? e.text : `!${e.reason}`))

describe("Protocol.makeLineDecoder", () => {
  it("splits lines across chunks, multi-byte characters included, and skips blank lines", () => {
    const decoder = Protocol.makeLineDecoder(64)
    const bytes = utf8.encode('{"a":"é"}\n\n\r\n{"b":"日本"}\n{"c"')
    const seen: Array<string> = []
    for (let i = 0; i < bytes.length; i++) seen.push(...lines(decoder.push(bytes.subarray(i, i + 1))))
    assert.deepStrictEqual(seen, ['{"a":"é"}', '{"b":"日本"}'])
    assert.strictEqual(decoder.pending, 4)
  })

  it("takes a line of exactly the limit, and faults on one byte more before its newline arrives", () => {
    const decoder = Protocol.makeLineDecoder(8)
    assert.deepStrictEqual(lines(decoder.push(utf8.encode("12345678\n1234"))), ["12345678"])
    assert.deepStrictEqual(lines(decoder.push(utf8.encode("5678"))), [])
    assert.deepStrictEqual(lines(decoder.push(utf8.encode("9"))), ["!a line longer than the limit of 8 bytes"])
    assert.isTrue(decoder.failed)
    assert.strictEqual(decoder.pending, 0, "nothing is held after a fault")
    assert.deepStrictEqual(lines(decoder.push(utf8.encode("ok\n"))), [], "a failed decoder stays stopped")
  })

  it("faults on a line that is not UTF-8", () => {
    const decoder = Protocol.makeLineDecoder(8)
    assert.deepStrictEqual(lines(decoder.push(Uint8Array.from([0xc3, 0x28, 0x0a]))), [
      "!a line that is not valid UTF-8"
    ])
  })

  const Chunks = Schema.Array(Schema.Array(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 255 }))))

  it.prop(
    "whatever the bytes and however they are cut, it never throws and holds at most the limit",
    [Chunks],
    ([chunks]) => {
      const decoder = Protocol.makeLineDecoder(16)
      for (const chunk of chunks) {
        for (const event of decoder.push(Uint8Array.from(chunk))) {
          if (event._tag === "Line") assert.isAtMost(utf8.encode(event.text).length, 16)
        }
        assert.isAtMost(decoder.pending, 16)
      }
    },
    { arbitrary: { runs: 300 } }
  )

  const Texts = Schema.Array(Schema.String.check(Schema.isMaxLength(20)))
  const Cuts = Schema.Array(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 7 })))

  it.prop(
    "cutting a stream anywhere gives back the same lines",
    [Texts, Cuts],
    ([texts, cuts]) => {
      const expected = texts.map((t) => JSON.stringify(t))
      const bytes = utf8.encode(expected.map((l) => `${l}\n`).join(""))
      const decoder = Protocol.makeLineDecoder(1024)
      const seen: Array<string> = []
      let offset = 0
      let i = 0
      while (offset < bytes.length) {
        const size = cuts.length === 0 ? bytes.length : cuts[i++ % cuts.length]!
        seen.push(...lines(decoder.push(bytes.subarray(offset, offset + size))))
        offset += size
      }
      assert.deepStrictEqual(seen, expected)
    },
    { arbitrary: { runs: 300 } }
  )
})

describe("Protocol messages", () => {
  it("parse, and anything else is a fault that says what it was", () => {
    assert.deepStrictEqual(Protocol.parseFromChild('{"_tag":"Success","id":3,"value":[1]}'), {
      _tag: "Message",
      message: { _tag: "Success", id: 3, value: [1] }
    })
    assert.deepStrictEqual(Protocol.parseFromChild('{"_tag":"Success","id":3}'), {
      _tag: "Message",
      message: { _tag: "Success", id: 3 }
    })
    assert.strictEqual(Protocol.parseFromChild("nope")._tag, "Fault")
    assert.strictEqual(Protocol.parseFromChild('{"_tag":"Success","id":0}')._tag, "Fault", "ids start at 1")
    assert.strictEqual(Protocol.parseFromChild('{"_tag":"Success","id":1.5}')._tag, "Fault")
    assert.strictEqual(Protocol.parseFromChild('{"_tag":"Request","id":1}')._tag, "Fault", "a parent's message")
    const hostile = Object.defineProperty({}, "_tag", {
      enumerable: true,
      get() {
        throw new Error("gotcha")
      }
    })
    assert.strictEqual(Protocol.decodeFromChild(hostile)._tag, "Fault")
    assert.strictEqual(Protocol.parseToChild('{"_tag":"Cancel","id":2}')._tag, "Message")
  })
})

// The parent's side of the protocol, driven by random input from a "child".
const Id = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 7 }))
const Input = Schema.Union([
  Schema.TaggedStruct("Ready", { protocol: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 2 })) }),
  Schema.TaggedStruct("Answer", {
    tag: Schema.Literals(["Success", "Failure", "Crash", "Rejected", "Cancelled"]),
    id: Id,
    valid: Schema.Boolean
  }),
  Schema.TaggedStruct("Bytes", {
    bytes: Schema.Array(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 255 }))).check(Schema.isMaxLength(40))
  }),
  Schema.TaggedStruct("Value", { value: Schema.Json }),
  Schema.TaggedStruct("Interrupt", { index: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 4 })) })
])
const Inputs = Schema.Array(Input).check(Schema.isMaxLength(30))
type Input = typeof Input.Type

const REQUESTS = 5
const CONCURRENCY = 2

/** The JSON line a child would send for `input`. */
const answerLine = (input: Extract<Input, { _tag: "Answer" }>): string => {
  const { tag, id, valid } = input
  switch (tag) {
    case "Success":
      return JSON.stringify({ _tag: tag, id, value: valid ? id * 10 : "not a number" })
    case "Failure":
      return JSON.stringify({ _tag: tag, id, error: valid ? { _tag: "DomainError", reason: `bad ${id}` } : 42 })
    case "Crash":
    case "Rejected":
      return JSON.stringify(valid ? { _tag: tag, id, reason: `reason ${id}` } : { _tag: tag, id })
    case "Cancelled":
      return JSON.stringify({ _tag: tag, id })
  }
}

/** A client whose messages to the child are recorded in `sent`. */
const makeClient = Effect.gen(function* () {
  const sent: Array<Protocol.ToChild> = []
  const client = yield* Client.make({
    label: "child",
    codecs: Client.jsonCodecs(Schema.Number, Schema.Number, DomainError),
    concurrency: CONCURRENCY,
    cancelGrace: Duration.hours(1),
    send: (message) => {
      sent.push(message)
      return undefined
    }
  })
  return { sent, client }
})

const runInputs = (inputs: ReadonlyArray<Input>) =>
  Effect.gen(function* () {
    const { sent, client } = yield* makeClient
    yield* Effect.forkScoped(client.reaper)
    const fibers = yield* Effect.forEach(
      Array.from({ length: REQUESTS }, (_, i) => i),
      (i) => Effect.forkChild(client.run(i))
    )
    yield* Effect.yieldNow
    const interrupted = new Set<number>()
    const decoder = Protocol.makeLineDecoder(64)
    const feed = (bytes: Uint8Array) => {
      for (const event of decoder.push(bytes)) {
        if (event._tag === "Line") client.receiveLine(event.text)
        else client.die(new ProtocolFault({ message: `protocol error: child sent ${event.reason}` }))
      }
    }
    feed(utf8.encode(`${JSON.stringify({ _tag: "Ready", protocol: Protocol.version })}\n`))
    for (const input of inputs) {
      switch (input._tag) {
        case "Ready":
          feed(utf8.encode(`${JSON.stringify({ _tag: "Ready", protocol: input.protocol })}\n`))
          break
        case "Answer":
          feed(utf8.encode(`${answerLine(input)}\n`))
          break
        case "Bytes":
          feed(Uint8Array.from(input.bytes))
          break
        case "Value":
          client.receive(input.value)
          break
        case "Interrupt":
          if (!interrupted.has(input.index)) {
            interrupted.add(input.index)
            yield* Fiber.interrupt(fibers[input.index]!)
          }
          break
      }
      yield* Effect.yieldNow
      assert.isAtMost(client.inFlight(), CONCURRENCY, "never more requests on the child than its concurrency")
      const requests = sent.filter((m) => m._tag === "Request").map((m) => (m as Protocol.Request).id)
      assert.strictEqual(new Set(requests).size, requests.length, "request ids are unique")
    }
    const deathDuringInputs = client.deathReason()
    client.die(new Stopped({ message: "the test is over" }))
    const reason = client.deathReason()!

    for (const [index, fiber] of fibers.entries()) {
      const exit = yield* Fiber.await(fiber)
      if (interrupted.has(index) && Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause)) continue
      if (Exit.isSuccess(exit)) {
        assert.strictEqual(exit.value % 10, 0, "a success is a valid answer")
        continue
      }
      const error = Cause.findErrorOption(exit.cause)
      assert.strictEqual(error._tag, "Some", `request ${index} ended with ${Cause.pretty(exit.cause)}`)
      const value = error._tag === "Some" ? error.value : undefined
      assert.isTrue(
        value instanceof DomainError || value instanceof InvalidRequest || value instanceof WorkerCrash,
        `request ${index}: ${String(value)}`
      )
      if (value instanceof WorkerCrash && deathDuringInputs === undefined) {
        // Crashes without a fault during the inputs come from the child or the end of the test.
        assert.isTrue(
          value.reason === reason || /^reason \d$|^the handler was interrupted$/.test(value.reason.message),
          `request ${index}: ${value.message}`
        )
      }
    }
    if (deathDuringInputs !== undefined) assert.strictEqual(reason, deathDuringInputs, "the first reason stays")
  })

// Well-formed answers only, checked against a model of the protocol.
const Exchange = Schema.Array(
  Schema.Union([
    Schema.TaggedStruct("Answer", {
      tag: Schema.Literals(["Success", "Failure", "Crash", "Rejected", "Cancelled"]),
      id: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 6 })),
      valid: Schema.Literal(true)
    }),
    Schema.TaggedStruct("Interrupt", { index: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 4 })) })
  ])
).check(Schema.isMaxLength(20))

type Expected =
  | { readonly _tag: "Exit"; readonly exit: Exit.Exit<number, unknown> }
  | { readonly _tag: "Interrupted" }
  | { readonly _tag: "Crash" }

const runExchange = (inputs: typeof Exchange.Type) =>
  Effect.gen(function* () {
    const { sent, client } = yield* makeClient
    client.receiveLine(JSON.stringify({ _tag: "Ready", protocol: Protocol.version }))
    const fibers = yield* Effect.forEach(
      Array.from({ length: REQUESTS }, (_, i) => i),
      (i) => Effect.forkChild(client.run(i))
    )
    yield* Effect.yieldNow

    // The model: which ids are on the child, and what each request must end with.
    const pending = new Map<number, number>()
    let scanned = 0
    const scan = () => {
      for (; scanned < sent.length; scanned++) {
        const message = sent[scanned]!
        if (message._tag === "Request") pending.set(message.id, message.payload as number)
      }
    }
    const expected = new Map<number, Expected>()
    const interrupted = new Set<number>()
    let death: string | undefined
    scan()
    for (const input of inputs) {
      if (input._tag === "Interrupt") {
        if (!expected.has(input.index) && !interrupted.has(input.index)) {
          interrupted.add(input.index)
          expected.set(input.index, { _tag: "Interrupted" })
        }
        yield* Fiber.interrupt(fibers[input.index]!)
      } else {
        client.receiveLine(answerLine(input))
        if (death === undefined) {
          const index = pending.get(input.id)
          if (index === undefined) {
            death = `protocol error: child answered request ${input.id}, which is not in flight`
          } else {
            pending.delete(input.id)
            const caller = !interrupted.has(index)
            const outcome = ((): Expected | undefined => {
              switch (input.tag) {
                case "Success":
                  return { _tag: "Exit", exit: Exit.succeed(input.id * 10) }
                case "Failure":
                  return { _tag: "Exit", exit: Exit.fail(new DomainError({ reason: `bad ${input.id}` })) }
                case "Rejected":
                  return {
                    _tag: "Exit",
                    exit: Exit.fail(
                      new InvalidRequest({ reason: `the worker could not decode the request: reason ${input.id}` })
                    )
                  }
                case "Crash":
                  death = `reason ${input.id}`
                  return { _tag: "Crash" }
                case "Cancelled":
                  if (caller) death = "the handler was interrupted"
                  return { _tag: "Crash" }
              }
            })()
            if (caller && outcome !== undefined) expected.set(index, outcome)
          }
        }
      }
      // After a death, every request still waiting has failed with the crash.
      if (death !== undefined) {
        for (let i = 0; i < REQUESTS; i++) if (!expected.has(i)) expected.set(i, { _tag: "Crash" })
      }
      yield* Effect.yieldNow
      scan()
      assert.isAtMost(client.inFlight(), CONCURRENCY)
      assert.strictEqual(client.deathReason()?.message, death)
    }
    client.die(new Stopped({ message: "the test is over" }))
    const reason = client.deathReason()!

    for (const [index, fiber] of fibers.entries()) {
      const exit = yield* Fiber.await(fiber)
      const want = expected.get(index) ?? { _tag: "Crash" }
      if (want._tag === "Interrupted") {
        assert.isTrue(Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause), `request ${index} was interrupted`)
      } else if (want._tag === "Crash") {
        assert.deepStrictEqual(exit, Exit.fail(new WorkerCrash({ reason })), `request ${index}`)
      } else {
        assert.deepStrictEqual(exit, want.exit, `request ${index}`)
      }
    }
  })

describe("the parent's side of the protocol", () => {
  it.effect.prop(
    "matches a model of the protocol: each request ends with its own answer, or the crash, or its interruption",
    [Exchange],
    ([inputs]) => runExchange(inputs),
    { timeout: 60_000, arbitrary: { runs: 300 } }
  )

  it.effect.prop(
    "never throws on random input, holds the concurrency limit, and gives every request one typed outcome",
    [Inputs],
    ([inputs]) => runInputs(inputs),
    { timeout: 60_000, arbitrary: { runs: 300 } }
  )

  it.effect("a valid exchange: answers by id, in any order, and a domain error intact", () =>
    Effect.gen(function* () {
      const sent: Array<Protocol.ToChild> = []
      const client = yield* Client.make({
        label: "child",
        codecs: Client.jsonCodecs(Schema.Number, Schema.Number, DomainError),
        concurrency: 3,
        cancelGrace: Duration.seconds(1),
        send: (message) => {
          sent.push(message)
          return undefined
        }
      })
      client.receiveLine(JSON.stringify({ _tag: "Ready", protocol: Protocol.version }))
      const fibers = yield* Effect.forEach([1, 2, 3], (n) => Effect.forkChild(client.run(n)))
      yield* Effect.yieldNow
      assert.deepStrictEqual(sent, [
        { _tag: "Request", id: 1, payload: 1 },
        { _tag: "Request", id: 2, payload: 2 },
        { _tag: "Request", id: 3, payload: 3 }
      ])
      client.receiveLine(JSON.stringify({ _tag: "Success", id: 3, value: 30 }))
      client.receiveLine(JSON.stringify({ _tag: "Failure", id: 1, error: { _tag: "DomainError", reason: "one" } }))
      client.receiveLine(JSON.stringify({ _tag: "Success", id: 2, value: 20 }))
      assert.deepStrictEqual(yield* Fiber.await(fibers[0]!), Exit.fail(new DomainError({ reason: "one" })))
      assert.deepStrictEqual(yield* Fiber.await(fibers[1]!), Exit.succeed(20))
      assert.deepStrictEqual(yield* Fiber.await(fibers[2]!), Exit.succeed(30))
      assert.strictEqual(client.deathReason(), undefined)
    })
  )
})

describe("batches from a thread", () => {
  const client = Client.make<number, number, DomainError>({
    label: "thread 1",
    codecs: Client.cloneCodecs(Schema.Number, Schema.Number, DomainError),
    concurrency: 2,
    cancelGrace: Duration.seconds(1),
    send: () => undefined
  })

  it.effect("each message of a batch counts, in order; a value that is not a batch is a fault", () =>
    Effect.gen(function* () {
      const thread = yield* client
      const request = yield* Effect.forkChild(thread.run(1))
      thread.receiveBatch([{ _tag: "Ready", protocol: Protocol.version }, { _tag: "Heartbeat" }])
      yield* Effect.yieldNow
      thread.receiveBatch([{ _tag: "Success", id: 1, value: 10 }])
      assert.deepStrictEqual(yield* Fiber.await(request), Exit.succeed(10))
      thread.receiveBatch({ _tag: "Heartbeat" })
      assert.strictEqual(
        thread.deathReason()?.message,
        "protocol error: thread 1 sent a value that is not a batch (an array) of protocol messages"
      )

      const old = yield* client
      old.receiveBatch({ _tag: "Ready", protocol: 1 })
      assert.strictEqual(
        old.deathReason()?.message,
        `protocol error: thread 1 speaks protocol version 1, expected ${Protocol.oldestVersion} to ${Protocol.version}`
      )
    })
  )

  it.effect("a Success in its short form is its id then its value; an id without its value is a fault", () =>
    Effect.gen(function* () {
      const thread = yield* client
      const first = yield* Effect.forkChild(thread.run(1))
      const second = yield* Effect.forkChild(thread.run(2))
      thread.receiveBatch([{ _tag: "Ready", protocol: Protocol.version }])
      yield* Effect.yieldNow
      thread.receiveBatch([2, 20, { _tag: "Heartbeat" }, 1, 10])
      assert.deepStrictEqual(yield* Fiber.await(first), Exit.succeed(10))
      assert.deepStrictEqual(yield* Fiber.await(second), Exit.succeed(20))
      assert.isFalse(thread.shortRequests())

      const third = yield* Effect.forkChild(thread.run(3))
      yield* Effect.yieldNow
      thread.receiveBatch([3])
      assert.strictEqual(
        thread.deathReason()?.message,
        "protocol error: thread 1 sent a batch that ends with the id 3 without its payload"
      )
      assert.isTrue(Exit.isFailure(yield* Fiber.await(third)))

      const short = yield* client
      short.receiveBatch([{ _tag: "Ready", protocol: Protocol.version, shortRequests: true }])
      assert.isTrue(short.shortRequests())
    })
  )
})

describe("the watch on a silent child", () => {
  const ready = (heartbeat?: number) =>
    JSON.stringify({ _tag: "Ready", protocol: Protocol.version, ...(heartbeat === undefined ? {} : { heartbeat }) })

  const watched = (state: Client.ProcessState = "running") =>
    Effect.gen(function* () {
      const killed: Array<string> = []
      const client = yield* Client.make<number, number, DomainError>({
        label: "child",
        codecs: Client.jsonCodecs(Schema.Number, Schema.Number, DomainError),
        concurrency: 2,
        cancelGrace: Duration.hours(1),
        silenceLimit: Duration.seconds(1),
        probe: () => state,
        killStopped: () => killed.push("SIGKILL"),
        send: () => undefined
      })
      yield* Effect.forkScoped(client.watchdog)
      return { client, killed }
    })

  /** Moves the clock by `millis`, one small step at a time (as time passes: the watchdog is never late). */
  const pass = (millis: number) =>
    Effect.gen(function* () {
      for (let t = 0; t < millis; t += 50) yield* TestClock.adjust("50 millis")
    })

  it.effect("an idle child that promised heartbeats and went silent is dead; news keeps it alive", () =>
    Effect.gen(function* () {
      const { client } = yield* watched()
      client.receiveLine(ready(250))
      for (let i = 0; i < 8; i++) {
        yield* pass(500)
        client.receiveLine(JSON.stringify({ _tag: "Heartbeat" }))
      }
      yield* pass(500)
      client.heard()
      yield* pass(900)
      assert.strictEqual(client.deathReason(), undefined)
      yield* pass(400)
      assert.match(
        client.deathReason()?.message ?? "",
        /^child stopped responding: no heartbeat for \d+ ms while idle$/
      )
    }).pipe(Effect.scoped)
  )

  it.effect("a busy silent child is trusted, and so is a child that promised no heartbeat", () =>
    Effect.gen(function* () {
      const busy = yield* watched()
      busy.client.receiveLine(ready(250))
      const request = yield* Effect.forkChild(busy.client.run(1))
      yield* pass(5000)
      assert.strictEqual(busy.client.deathReason(), undefined)
      assert.strictEqual(busy.client.inFlight(), 1)
      busy.client.receiveLine(JSON.stringify({ _tag: "Success", id: 1, value: 2 }))
      assert.deepStrictEqual(yield* Fiber.await(request), Exit.succeed(2))

      const quiet = yield* watched()
      quiet.client.receiveLine(ready())
      yield* pass(5000)
      assert.strictEqual(quiet.client.deathReason(), undefined)
    }).pipe(Effect.scoped)
  )

  it.effect("a silent child whose process is stopped is killed, busy or not", () =>
    Effect.gen(function* () {
      const { client, killed } = yield* watched("stopped")
      client.receiveLine(ready())
      const request = yield* Effect.forkChild(client.run(1))
      yield* pass(1500)
      assert.deepStrictEqual(killed, ["SIGKILL"])
      const reason = client.deathReason()!
      assert.strictEqual(reason._tag, "Unresponsive")
      assert.match(reason.message, /^child stopped responding for \d+ ms: its process is stopped; it was killed$/)
      assert.deepStrictEqual(yield* Fiber.await(request), Exit.fail(new WorkerCrash({ reason })))
    }).pipe(Effect.scoped)
  )

  it.effect("a heartbeat promised at or past the silence limit is a protocol fault", () =>
    Effect.gen(function* () {
      const { client } = yield* watched()
      client.receiveLine(ready(1000))
      assert.strictEqual(
        client.deathReason()?.message,
        "protocol error: child promised a heartbeat every 1000 ms, not within the silence limit of 1000 ms"
      )
    }).pipe(Effect.scoped)
  )
})

describe("the size of a request", () => {
  it("is estimated from below, and the estimate stops as soon as it passes the limit", () => {
    assert.isUndefined(jsonBytesOver({ a: 1, b: "two", c: [true, null] }, 64))
    // Nested arrays within the limit are not counted over it (an element counted twice made 11 of these 9 bytes).
    assert.isUndefined(jsonBytesOver([[""], []], JSON.stringify([[""], []]).length))
    const value = { a: 1, b: "two", c: [true, null], d: undefined, e: () => 1 }
    assert.isAtMost(jsonBytesOver(value, 0)!, JSON.stringify(value).length)
    assert.strictEqual(jsonBytesOver("x".repeat(50_000_000), 1024), 50_000_002)
    // It stops after the few properties that pass the limit: the rest are never read.
    let reads = 0
    const wide = new Proxy(Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`key${i}`, "x".repeat(100)])), {
      get: (target, key) => {
        reads++
        return Reflect.get(target, key)
      }
    })
    assert.isAbove(jsonBytesOver(wide, 500)!, 500)
    assert.isAtMost(reads, 10)
    assert.strictEqual(
      jsonBytesOver(
        Array.from({ length: 1_000_000 }, () => 0),
        1024
      ),
      1_000_001
    )
  })

  // Any JSON value: strings of any UTF-16 (multi-byte and lone surrogates), numbers, nesting.
  const Json = Schema.Json

  it.prop(
    "a frame is the value's JSON text when it fits the limit in UTF-8, else its exact size; estimated or not",
    [Json, Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 300 })), Schema.Boolean],
    ([value, limit, estimate]) => {
      const text = JSON.stringify(value) ?? ""
      const bytes = Buffer.byteLength(text, "utf8")
      const frame = jsonFrame(value, limit, estimate)
      if (bytes <= limit) assert.deepStrictEqual(frame, { _tag: "Text", text })
      else if (frame._tag === "Over" && frame.bytes.startsWith("at least ")) {
        assert.isTrue(estimate)
        const atLeast = Number(frame.bytes.slice("at least ".length))
        assert.isAbove(atLeast, limit)
        assert.isAtMost(atLeast, bytes)
      } else assert.deepStrictEqual(frame, { _tag: "Over", bytes: String(bytes) })
    },
    { arbitrary: { runs: 500 } }
  )

  it("a value JSON cannot write is said so, and never thrown", () => {
    const frame = jsonFrame({ n: 1n }, 1024, true)
    assert.strictEqual(frame._tag, "NotJson")
    const hostile = {
      get boom() {
        throw new Error("no")
      }
    }
    assert.strictEqual(jsonFrame(hostile, 1024, false)._tag, "NotJson")
  })
})

describe("batches on the wire", { timeout: 30_000 }, () => {
  const batchCounter = new URL("./fixtures/batch-counter.ts", import.meta.url)
  const options = { request: Schema.Number, response: Schema.Number, concurrency: 8 } as const

  /** Eight requests at once through an incarnation of `kind`: each answer is the size of the batch it came in. */
  const eightAtOnce = <R>(
    spawn: Effect.Effect<{ readonly run: (n: number) => Effect.Effect<number, unknown> }, unknown, R>
  ) =>
    Effect.gen(function* () {
      const incarnation = yield* spawn
      return yield* Effect.forEach(
        Array.from({ length: 8 }, (_, i) => i),
        (i) => incarnation.run(i),
        {
          concurrency: "unbounded"
        }
      )
    })

  it.live("the parent posts every request of a turn to a thread in one message", () =>
    Effect.gen(function* () {
      const kind = Thread.make(batchCounter, { ...options, execArgv: ["--conditions=effect-worker-pool-source"] })
      assert.deepStrictEqual(yield* eightAtOnce(kind.spawn), [8, 8, 8, 8, 8, 8, 8, 8])
    }).pipe(Effect.scoped)
  )

  it.live("the parent writes every request of a turn to a process in one write", () =>
    S.live(() =>
      Effect.gen(function* () {
        const kind = Subprocess.node(batchCounter, { ...options, nodePath: S.node })
        assert.deepStrictEqual(yield* eightAtOnce(kind.spawn), [8, 8, 8, 8, 8, 8, 8, 8])
      })
    )
  )

  // A Success in its short form (its id, then its value) is shown as "short Success".
  const tagsOf = (batch: ReadonlyArray<unknown>) => {
    const tags: Array<string> = []
    for (let i = 0; i < batch.length; i++) {
      const item = batch[i]
      if (typeof item === "number") {
        tags.push("short Success")
        i++
      } else tags.push((item as { readonly _tag: string })._tag)
    }
    return tags
  }

  /** Starts the runner's script in a thread; `send` posts to it, `answers` waits for `count` answers of what was posted. */
  const runnerThread = (workerData: unknown) =>
    Effect.gen(function* () {
      const worker = new WorkerThreads.Worker(S.workerScript, {
        execArgv: ["--conditions=effect-worker-pool-source"],
        stderr: true,
        workerData
      })
      yield* Effect.addFinalizer(() => Effect.promise(() => worker.terminate()))
      const batches: Array<ReadonlyArray<string>> = []
      let isReady = false
      let ready: () => void = () => {}
      let answered: () => void = () => {}
      let expected = 0
      worker.on("message", (batch: ReadonlyArray<unknown>) => {
        const tags = tagsOf(batch)
        if (tags.includes("Ready")) {
          isReady = true
          return ready()
        }
        batches.push(tags)
        if (batches.flat().length === expected) answered()
      })
      yield* Effect.callback<void>((resume) => {
        ready = () => resume(Effect.void)
        if (isReady) ready()
      }).pipe(Effect.timeout("20 seconds"))
      const answers = (batch: ReadonlyArray<unknown>, count: number) =>
        Effect.callback<ReadonlyArray<ReadonlyArray<string>>>((resume) => {
          batches.length = 0
          expected = count
          answered = () => resume(Effect.succeed([...batches]))
          worker.postMessage(batch)
        }).pipe(Effect.timeout("20 seconds"))
      return answers
    })

  const eightRequests = Array.from({ length: 8 }, (_, i) => ({
    _tag: "Request",
    id: i + 1,
    payload: { _tag: "Echo", value: i }
  }))

  it.live("a thread's runner posts every answer of a turn in one message, successes whole by default", () =>
    Effect.gen(function* () {
      const answers = yield* runnerThread(undefined)
      assert.deepStrictEqual(yield* answers(eightRequests, 8), [Array.from({ length: 8 }, () => "Success")])
      // It reads requests in their short form too (its Ready says so): an id, then its payload.
      assert.deepStrictEqual(yield* answers([9, { _tag: "Echo", value: 1 }, 10, { _tag: "Echo", value: 2 }], 2), [
        ["Success", "Success"]
      ])
    }).pipe(Effect.scoped)
  )

  it.live("a thread's runner posts successes in their short form to a parent that reads it", () =>
    Effect.gen(function* () {
      const answers = yield* runnerThread({ shortSuccesses: true })
      assert.deepStrictEqual(yield* answers(eightRequests, 8), [Array.from({ length: 8 }, () => "short Success")])
    }).pipe(Effect.scoped)
  )
})

describe("the trace context of a remote request (traceparent)", () => {
  const Hex = Schema.Array(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 15 }))).check(Schema.isMinLength(1))
  const hex = (digits: ReadonlyArray<number>) => digits.map((d) => d.toString(16)).join("")

  it.prop(
    "a span's trace context goes through the header and comes back the same",
    [Hex, Hex, Schema.Boolean],
    ([traceId, spanId, sampled]) => {
      const trace = { traceId: hex(traceId), spanId: hex(spanId), sampled }
      assert.deepStrictEqual(RemoteWire.parseTraceParent(RemoteWire.traceParent(trace)), trace)
    }
  )

  it.prop(
    "any header value is read back exactly, or not at all (the request then runs untraced)",
    [Schema.String],
    ([value]) => {
      const trace = RemoteWire.parseTraceParent(value)
      if (trace !== undefined) assert.strictEqual(RemoteWire.traceParent(trace), value)
    },
    { arbitrary: { runs: 500 } }
  )

  it("a missing, foreign or cut header is no trace", () => {
    for (const value of [undefined, "", "01-a-b-01", "00-a-b", "00--b-01", "00-a--01", "00-a-b-02", "00-a-b-01-c"]) {
      assert.strictEqual(RemoteWire.parseTraceParent(value), undefined, String(value))
    }
    assert.deepStrictEqual(RemoteWire.parseTraceParent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"), {
      traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
      spanId: "00f067aa0ba902b7",
      sampled: true
    })
  })
})

describe("the hand-written guards of the protocol", () => {
  // The parent and the runner check each message by hand (a guard per message, on the hot path); the Schemas are
  // what the protocol page documents. These properties tie the two: on any value, a guard says yes exactly when
  // its Schema does.
  const odd: ReadonlyArray<unknown> = [
    undefined,
    null,
    0,
    -1,
    1.5,
    2 ** 53,
    Number.NaN,
    "",
    "1",
    true,
    {},
    [],
    { traceId: "a", spanId: "b" },
    { traceId: "a", spanId: "b", sampled: false }
  ]
  const Pick = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 1000 }))

  /** `message` with one of its keys (or a new one) given an odd value, or deleted, as `pick` says. */
  const mutate = (message: object, pick: number, oddPick: number): unknown => {
    const copy: Record<string, unknown> = { ...message }
    const keys = [...Object.keys(copy), "id", "trace", "heartbeat", "shortRequests", "frame", "reason", "_tag"]
    const key = keys[pick % keys.length]!
    if (oddPick % (odd.length + 1) === odd.length) delete copy[key]
    else copy[key] = odd[oddPick % (odd.length + 1)]
    return copy
  }

  for (const [name, schema, decode] of [
    ["a message from a child", Protocol.FromChild, Protocol.decodeFromChild],
    ["a message to a child", Protocol.ToChild, Protocol.decodeToChild]
  ] as const) {
    const is = Schema.is(schema as Schema.Top)
    it.prop(
      `${name}: the guard accepts what its Schema accepts, and refuses what it refuses`,
      [Protocol.FromChild, Protocol.ToChild, Pick, Pick],
      ([fromChild, toChild, pick, oddPick]) => {
        for (const message of [fromChild, toChild]) {
          for (const value of [message, mutate(message, pick, oddPick)]) {
            assert.strictEqual(decode(value)._tag === "Message", is(value), JSON.stringify(value) ?? String(value))
          }
        }
      },
      { arbitrary: { runs: 2000 } }
    )
  }
})
