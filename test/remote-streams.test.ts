/**
 * Streamed operations on the remote kind, against a real runner process
 * (`Remote.serve({ ...Runner.fromGroup(Streams, handlers) })`, see
 * fixtures/streams-runner.ts) on loopback: chunks in order (and, for 40
 * cases sampled from a Schema, exactly the prefix a reader takes, whatever
 * the window and the chunks, nothing in flight after), a domain error
 * and a crash mid-stream, the window across the connection (the runner's
 * producer stops at it, while the connection serves other calls), the
 * caller closing its stream cancels the runner's handler before its slot
 * comes back, a timeout bounds the whole stream, a runner killed mid-stream
 * fails it with `WorkerCrash`, an oversized chunk is a typed crash, a
 * pool's drain cuts an open stream with `PoolShutdown`, the runner's
 * `requestTimeout` bounds a stream as a whole, one group's handlers
 * serve both an `effect/rpc` server and a runner, and a raw rpc client's bad
 * input (a wrong window, a misrouted request, unknown acks and cancels) is
 * answered, the runner up, while the window holds chunk by chunk; and a
 * fake runner's parts beyond the window, after the outcome, that do not
 * decode, or a stream without its outcome are a `ProtocolFault`.
 */
import * as Net from "node:net"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { Arbitrary, Deferred, Duration, Effect, Exit, Fiber, Schedule, Schema, Scope, Stream } from "effect"
import { Rpc, RpcGroup, RpcTest } from "effect/rpc"
import {
  InvalidRequest,
  Operation,
  PoolShutdown,
  RequestTimeout,
  Worker,
  WorkerCrash,
  WorkerId,
  WorkerPool
} from "effect-worker-pool"
import { Runner } from "effect-worker-pool/child"
import * as Remote from "../src/Remote.ts"
import * as Raw from "./fixtures/raw-clients.ts"
import { freePort, startScript } from "./fixtures/remote-processes.ts"
import { assertStreamStart, drain, errorOf } from "./fixtures/stream-checks.ts"
import { CountError, Streams } from "./fixtures/streams.ts"

const script = fileURLToPath(new URL("./fixtures/streams-runner.ts", import.meta.url))

/** Pings that a busy machine does not miss; a connectTimeout past what its connection and handshake take. */
const connection = {
  pingInterval: Duration.millis(500),
  pingTimeout: Duration.seconds(10),
  connectTimeout: "20 seconds"
} as const

/** A pool of one remote worker on `address` that serves `Streams`, with its client. */
const makePool = (address: string, options: { readonly window?: number; readonly idempotent?: boolean } = {}) =>
  Effect.gen(function* () {
    const schemas = yield* Operation.schemas(Streams)
    const pool = yield* WorkerPool.make({
      size: 1,
      worker: (id) =>
        Worker.fromKind(id, Remote.make(address, { ...schemas, ...connection }), {
          restart: Schedule.spaced("50 millis")
        })
    })
    const client = yield* WorkerPool.client(pool, Streams, {
      ...(options.window === undefined ? {} : { window: options.window }),
      idempotent: options.idempotent === true ? ["Count", "Ticks", "Produced", "Big"] : []
    })
    return { pool, client }
  })

/** The pool's one worker's health. */
const healthOf = (pool: WorkerPool.WorkerPool<any, any, any>) => Effect.map(pool.health, (all) => all[0]![1])

/** A group of one streamed and one plain operation, for runners in this process. */
const Rows = RpcGroup.make(
  Rpc.make("Rows", {
    payload: { text: Schema.String },
    success: Schema.Array(Schema.String),
    stream: true
  }),
  Rpc.make("Count", { payload: { text: Schema.String }, success: Schema.Number })
)

/** The handlers of `Rows`: one row a line, one chunk a row; an `effect/rpc` server takes them as they are. */
const handlers = {
  Rows: ({ text }: { readonly text: string }) =>
    Stream.fromIterable(text.split("\n")).pipe(
      Stream.rechunk(1),
      Stream.map((line) => line.split(","))
    ),
  Count: ({ text }: { readonly text: string }) => Effect.succeed(text.split("\n").length)
}

/** A raw rpc connection to a runner, past its handshake: it writes messages and reads the runner's, one a line. */
const rawRpc = (port: number, fingerprint: string) =>
  Effect.gen(function* () {
    const { socket, reply } = yield* Raw.handshake(port, Raw.hello(null, fingerprint), "127.0.0.1")
    assert.deepStrictEqual(reply, { ok: true })
    const received: Array<Record<string, any>> = []
    let waiting: (() => void) | undefined
    let text = ""
    socket.on("data", (chunk: Buffer) => {
      text += chunk.toString("utf8")
      let newline = text.indexOf("\n")
      while (newline !== -1) {
        received.push(JSON.parse(text.slice(0, newline)))
        text = text.slice(newline + 1)
        newline = text.indexOf("\n")
      }
      waiting?.()
    })
    socket.resume()
    /** The runner's next message about request `id`. */
    const next = (id: string): Effect.Effect<Record<string, any>> =>
      Effect.callback<Record<string, any>>((resume) => {
        const look = () => {
          const i = received.findIndex((message) => message.requestId === id)
          if (i === -1) return false
          waiting = undefined
          resume(Effect.succeed(received.splice(i, 1)[0]!))
          return true
        }
        if (!look()) waiting = look
      })
    const request = (id: string, tag: string, payload: unknown) =>
      Effect.sync(() => socket.write(`${JSON.stringify({ _tag: "Request", id, tag, payload, headers: [] })}\n`))
    return { next, request }
  })

/**
 * A runner that is not one: it admits any handshake and answers each `Stream` request with `parts`, the rpc
 * messages it is given (`{ _tag: "Chunk", values }` and `{ _tag: "Exit", exit }`, their `requestId` added).
 */
const fakeRunner = (parts: ReadonlyArray<Record<string, unknown>>) =>
  Effect.acquireRelease(
    Effect.callback<Net.Server>((resume) => {
      const server = Net.createServer((socket) => {
        socket.on("error", () => {})
        let text = ""
        let admitted = false
        socket.on("data", (chunk: Buffer) => {
          text += chunk.toString("utf8")
          let newline = text.indexOf("\n")
          while (newline !== -1) {
            const line = text.slice(0, newline)
            text = text.slice(newline + 1)
            newline = text.indexOf("\n")
            if (!admitted) {
              admitted = true
              socket.write('{"ok":true}\n')
              continue
            }
            const message = JSON.parse(line)
            if (message._tag === "Ping") socket.write('{"_tag":"Pong"}\n')
            if (message._tag !== "Request" || message.tag !== "Stream") continue
            for (const part of parts) socket.write(`${JSON.stringify({ ...part, requestId: message.id })}\n`)
          }
        })
      })
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
    }),
    (server) => Effect.sync(() => server.close())
  )

/** A chunk part of `Rows` with one row, as a runner sends it in a rpc `Chunk`. */
const rowPart = (row: ReadonlyArray<string>) => ({ _tag: "Chunk", value: { _tag: "Rows", value: [row] } })

/** A case of the property: a window, chunks of elements, and where the reader stops (past the end: never). */
const Case = Schema.Struct({
  window: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 8 })),
  chunks: Schema.Array(
    Schema.Array(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 1000 }))).check(Schema.isMinLength(1))
  ).check(Schema.isMaxLength(30)),
  stopAt: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 120 }))
})

/** A runner process of fixtures/streams-runner.ts on a free port; killed with the scope. */
const startStreamsRunner = Effect.gen(function* () {
  const port = yield* freePort
  return yield* startScript(script, port, { args: [String(port)] })
})

describe("streamed operations on remote runners", { timeout: 120_000 }, () => {
  it.live("chunks in order, a domain error and a crash mid-stream, a bare dispatch refused", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const runner = yield* startStreamsRunner
        const { pool, client } = yield* makePool(runner.address)
        const chunks = [[1, 2, 3], [4], [5, 6, 7, 8]]
        assert.deepStrictEqual(Array.from(yield* Stream.runCollect(client.Count({ chunks }))), [1, 2, 3, 4, 5, 6, 7, 8])
        const many = Array.from({ length: 300 }, (_, i) => [i])
        assert.deepStrictEqual(Array.from(yield* Stream.runCollect(client.Count({ chunks: many }))), many.flat())
        assert.deepStrictEqual(Array.from(yield* Stream.runCollect(client.Count({ chunks: [] }))), [])

        const failed = yield* drain(client.Count({ chunks: [[1, 2], [-1], [3]] }))
        assert.deepStrictEqual(failed.seen, [1, 2])
        assert.instanceOf(errorOf(failed.exit), CountError)
        const healthy = yield* healthOf(pool)
        assert.deepStrictEqual([healthy.state, healthy.crashes, healthy.inFlight], ["Healthy", 0, 0])

        // A streamed operation dispatched bare has no caller's window: refused, the worker up.
        const bare = yield* Effect.flip(pool.dispatch({ _tag: "Ticks", payload: { limit: 3 } }))
        assert.instanceOf(bare, InvalidRequest)
        assert.match(
          (bare as InvalidRequest).reason,
          /operation Ticks is a stream: call it through the client's method/
        )
        assert.strictEqual((yield* healthOf(pool)).crashes, 0)

        const crashed = yield* drain(client.Count({ chunks: [[1, 2], [-2], [3]] }))
        assert.deepStrictEqual(crashed.seen, [1, 2])
        const crash = errorOf(crashed.exit)
        assert.instanceOf(crash, WorkerCrash)
        assert.strictEqual((crash as WorkerCrash).reason._tag, "Reported")
        assert.strictEqual((crash as WorkerCrash).reason.message, "crashed mid-stream")
        // The worker reconnects and serves.
        assert.deepStrictEqual(Array.from(yield* Stream.runCollect(client.Count({ chunks: [[9]] }))), [9])
        const after = yield* healthOf(pool)
        assert.deepStrictEqual([after.crashes, after.inFlight], [1, 0])
      })
    )
  )

  it.live("every chunk is delivered once, in order, whatever the window and the chunks (sampled cases)", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const runner = yield* startStreamsRunner
        const { pool } = yield* makePool(runner.address)
        const cases = yield* Arbitrary.sampleEffect(Arbitrary.schema(Case), { count: 40, seed: 17 })
        for (const { window, chunks, stopAt } of cases) {
          const client = yield* WorkerPool.client(pool, Streams, { window })
          const read = yield* Stream.runCollect(Stream.take(client.Count({ chunks }), stopAt))
          assert.deepStrictEqual(Array.from(read), chunks.flat().slice(0, stopAt))
          // Ended, or cancelled and confirmed by the runner before the stream closed: nothing holds the worker.
          assert.strictEqual((yield* healthOf(pool)).inFlight, 0)
        }
        const health = yield* healthOf(pool)
        assert.deepStrictEqual([health.state, health.crashes], ["Healthy", 0])
      })
    )
  )

  it.live("the runner's producer stops at the window; closing the stream cancels its handler first", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const runner = yield* startStreamsRunner
        const window = 4
        const { pool, client } = yield* makePool(runner.address, { window })
        const report = client.Produced({})
        let consumed = 0
        const seen = yield* Stream.runCollect(
          client.Ticks({ limit: 1_000_000 }).pipe(
            Stream.take(30),
            Stream.tap((n) =>
              Effect.gen(function* () {
                consumed++
                if (n !== 10) return
                // Holding element 10: the runner fills the window, holds one more, and stops there, while the
                // connection still answers another call.
                const bound = consumed + window + 1
                const reached = yield* Effect.repeat(report, { until: (p) => p.produced >= bound })
                assert.strictEqual(reached.produced, bound)
                for (let i = 0; i < 5; i++) assert.strictEqual((yield* report).produced, bound)
                assert.strictEqual((yield* healthOf(pool)).inFlight, 1)
              })
            )
          )
        )
        assert.deepStrictEqual(
          Array.from(seen),
          Array.from({ length: 30 }, (_, i) => i + 1)
        )
        // The stream closed only once the runner had interrupted its handler: its slot came back then.
        const { produced, interrupted } = yield* report
        assert.strictEqual(interrupted, 1)
        assert.isAtMost(produced, 30 + window + 1)
        const health = yield* healthOf(pool)
        assert.deepStrictEqual([health.state, health.inFlight, health.crashes], ["Healthy", 0, 0])
        yield* runner.waitFor(/ticks interrupted/)
      })
    )
  )

  it.live("the caller's interruption cancels the handler; a timeout bounds the whole stream", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const runner = yield* startStreamsRunner
        const window = 2
        const { pool, client } = yield* makePool(runner.address, { window })
        const holding = yield* Deferred.make<void>()
        const reader = yield* Effect.forkChild(
          Stream.runForEach(client.Ticks({ limit: 1_000_000 }), (n) =>
            n === 3 ? Effect.andThen(Deferred.succeed(holding, undefined), Effect.never) : Effect.void
          )
        )
        yield* Deferred.await(holding)
        assert.strictEqual((yield* healthOf(pool)).inFlight, 1)
        yield* Fiber.interrupt(reader)
        // Interrupting the reader returned once the runner had stopped the handler.
        assert.strictEqual((yield* client.Produced({})).interrupted, 1)
        assert.strictEqual((yield* healthOf(pool)).inFlight, 0)

        // A timeout bounds the whole stream, however fast its chunks come: past it the runner's handler is
        // interrupted (the reader holds element 3 until then), and the stream fails after the chunks it holds.
        const timed = yield* drain(
          client
            .Ticks({ limit: 1_000_000 }, { timeout: "300 millis" })
            .pipe(
              Stream.tap((n) =>
                n === 3
                  ? Effect.asVoid(Effect.repeat(client.Produced({}), { until: (p) => p.interrupted >= 2 }))
                  : Effect.void
              )
            )
        )
        assert.instanceOf(errorOf(timed.exit), RequestTimeout)
        assertStreamStart(timed.seen, 3, 3 + window + 1)
        const health = yield* healthOf(pool)
        assert.deepStrictEqual([health.state, health.inFlight, health.crashes], ["Healthy", 0, 0])
      })
    )
  )

  it.live("a pool's drain waits for an open stream, then fails it with PoolShutdown and stops the handler", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const runner = yield* startStreamsRunner
        const schemas = yield* Operation.schemas(Streams)
        const scope = yield* Scope.make()
        const pool = yield* WorkerPool.make({
          size: 1,
          drain: "300 millis",
          worker: (id) => Worker.fromKind(id, Remote.make(runner.address, { ...schemas, ...connection }))
        }).pipe(Scope.provide(scope))
        const client = yield* WorkerPool.client(pool, Streams, { window: 2 })
        const holding = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const reader = yield* Effect.forkChild(
          drain(
            client
              .Ticks({ limit: 1_000_000 })
              .pipe(
                Stream.tap((n) =>
                  n === 3 ? Effect.andThen(Deferred.succeed(holding, undefined), Deferred.await(release)) : Effect.void
                )
              )
          )
        )
        yield* Deferred.await(holding)
        // The pool closes while its caller holds element 3: the drain waits, then cuts the stream.
        yield* Scope.close(scope, Exit.void)
        yield* runner.waitFor(/ticks interrupted/)
        yield* Deferred.succeed(release, undefined)
        const { seen, exit } = yield* Fiber.join(reader)
        assert.instanceOf(errorOf(exit), PoolShutdown)
        assertStreamStart(seen, 3, 3 + 2 + 1)
      })
    )
  )

  it.live("a runner killed mid-stream fails the stream with WorkerCrash, not retried after a chunk", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const runner = yield* startStreamsRunner
        const window = 4
        const { pool, client } = yield* makePool(runner.address, { window, idempotent: true })
        const killed = yield* drain(
          client.Ticks({ limit: 1_000_000 }).pipe(
            Stream.tap((n) =>
              n === 10
                ? Effect.gen(function* () {
                    runner.child.kill("SIGKILL")
                    yield* runner.exited
                  })
                : Effect.void
            )
          )
        )
        const crash = errorOf(killed.exit)
        assert.instanceOf(crash, WorkerCrash)
        assert.strictEqual((crash as WorkerCrash).reason._tag, "ConnectionLost")
        // What it gave is the stream's beginning: the chunks read, and those the window held.
        assertStreamStart(killed.seen, 10, 10 + window + 1)
        const health = yield* healthOf(pool)
        assert.strictEqual(health.inFlight, 0)
        assert.strictEqual(health.crashes, 1)
      })
    )
  )

  it.live("a chunk over the runner's maxFrameBytes is a typed crash; the worker comes back", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const runner = yield* startStreamsRunner
        const { pool, client } = yield* makePool(runner.address)
        // The runner's limit is 64 KiB (fixtures/streams-runner.ts).
        const big = yield* drain(client.Big({ bytes: 100_000 }))
        assert.deepStrictEqual(big.seen, [])
        const crash = errorOf(big.exit)
        assert.instanceOf(crash, WorkerCrash)
        assert.match((crash as WorkerCrash).reason.message, /over the limit of 65536 \(maxFrameBytes\)/)
        // The worker comes back and serves; a chunk within the limit crosses.
        const small = yield* Stream.runCollect(client.Big({ bytes: 1000 }))
        assert.deepStrictEqual(
          Array.from(small).map((text) => text.length),
          [1000]
        )
        assert.strictEqual((yield* healthOf(pool)).inFlight, 0)
      })
    )
  )

  it.live("one group's handlers serve an effect/rpc server and a runner; its fingerprint covers its streams", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const text = "a,1\nb,2\nc,3"
        const expected = [
          ["a", "1"],
          ["b", "2"],
          ["c", "3"]
        ]

        // The team's effect/rpc server and client.
        const rpc = yield* RpcTest.makeClient(Rows).pipe(Effect.provide(Rows.toLayer(handlers)))
        assert.deepStrictEqual(Array.from(yield* Stream.runCollect(rpc.Rows({ text }))), expected)

        // A runner of this library with the same handlers, and a pool's client.
        const listening = yield* Remote.listen({ ...Runner.fromGroup(Rows, handlers), port: 0 })
        const address = `127.0.0.1:${listening.port}`
        const schemas = yield* Operation.schemas(Rows)
        const pool = yield* WorkerPool.make({
          size: 1,
          worker: (id) => Worker.fromKind(id, Remote.make(address, { ...schemas, ...connection }))
        })
        const client = yield* WorkerPool.client(pool, Rows, { window: 1 })
        assert.deepStrictEqual(Array.from(yield* Stream.runCollect(client.Rows({ text }))), expected)
        assert.strictEqual(yield* client.Count({ text }), 3)

        // A client whose streamed operation has another element schema is refused at connect.
        const Other = RpcGroup.make(
          Rpc.make("Rows", { payload: { text: Schema.String }, success: Schema.String, stream: true }),
          Rpc.make("Count", { payload: { text: Schema.String }, success: Schema.Number })
        )
        const other = yield* Operation.schemas(Other)
        const refused = yield* Worker.fromKind(WorkerId.make(9), Remote.make(address, { ...other, ...connection }), {
          restart: Schedule.spaced("1 hour")
        })
        assert.match((yield* refused.health).lastCrash?.reason ?? "", /SchemaMismatch/)
      })
    )
  )

  it.live(
    "bad input on the wire: a wrong window, a misrouted request, unknown acks and cancels; the window holds",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const listening = yield* Remote.listen({ ...Runner.fromGroup(Rows, handlers), port: 0 })
          const schemas = yield* Operation.schemas(Rows)
          const rpc = yield* rawRpc(listening.port, Raw.fingerprintOf(schemas.request, schemas.response, schemas.error))
          const rows = { _tag: "Rows", payload: { text: "a\nb" } }

          yield* rpc.request("1", "Stream", { request: rows, stream: 0, window: 0 })
          const wrongWindow = yield* rpc.next("1")
          assert.strictEqual(wrongWindow.values[0]._tag, "Rejected")
          assert.match(wrongWindow.values[0].reason, /the window must be a positive integer, got 0/)
          assert.strictEqual((yield* rpc.next("1"))._tag, "Exit")

          yield* rpc.request("2", "Run", rows)
          const bare = yield* rpc.next("2")
          assert.strictEqual(bare.exit.value._tag, "Rejected")
          assert.match(bare.exit.value.reason, /operation Rows is a stream: call it through the client's method/)

          yield* rpc.request("3", "Stream", {
            request: { _tag: "Count", payload: { text: "a" } },
            stream: 1,
            window: 4
          })
          const plain = yield* rpc.next("3")
          assert.strictEqual(plain.values[0]._tag, "Rejected")
          assert.match(plain.values[0].reason, /operation Count is not a stream: it is sent as Run/)
          assert.strictEqual((yield* rpc.next("3"))._tag, "Exit")

          // Acknowledgements and cancels of streams the runner does not hold are answered, and change nothing.
          yield* rpc.request("4", "Ack", { stream: 99, n: 1 })
          assert.strictEqual((yield* rpc.next("4")).exit._tag, "Success")
          yield* rpc.request("5", "Cancel", { stream: 99 })
          assert.strictEqual((yield* rpc.next("5")).exit._tag, "Success")

          // A window of one: each chunk waits for the acknowledgement of the one before; the outcome ends the stream.
          yield* rpc.request("6", "Stream", { request: rows, stream: 2, window: 1 })
          const first = yield* rpc.next("6")
          assert.deepStrictEqual(first.values, [{ _tag: "Chunk", value: { _tag: "Rows", value: [["a"]] } }])
          yield* rpc.request("7", "Ack", { stream: 2, n: 1 })
          const parts: Array<Record<string, any>> = []
          while (parts.length < 2) {
            const message = yield* rpc.next("6")
            parts.push(...message.values)
          }
          assert.deepStrictEqual(parts, [
            { _tag: "Chunk", value: { _tag: "Rows", value: [["b"]] } },
            { _tag: "Success", value: { _tag: "Rows" } }
          ])
          assert.strictEqual((yield* rpc.next("6"))._tag, "Exit")
        })
      )
  )

  it.live(
    "the runner's requestTimeout bounds a streamed call as a whole: WorkerCrash (TimedOut) after its chunks",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const listening = yield* Remote.listen({
            ...Runner.fromGroup(Rows, { ...handlers, Rows: () => Stream.concat(Stream.make(["a"]), Stream.never) }),
            port: 0,
            requestTimeout: "300 millis"
          })
          const schemas = yield* Operation.schemas(Rows)
          const pool = yield* WorkerPool.make({
            size: 1,
            worker: (id) =>
              Worker.fromKind(id, Remote.make(`127.0.0.1:${listening.port}`, { ...schemas, ...connection }))
          })
          const client = yield* WorkerPool.client(pool, Rows)
          const { seen, exit } = yield* drain(client.Rows({ text: "" }))
          assert.deepStrictEqual(seen, [["a"]])
          const crash = errorOf(exit)
          assert.instanceOf(crash, WorkerCrash)
          assert.strictEqual((crash as WorkerCrash).reason._tag, "TimedOut")
        })
      )
  )

  it.live("a runner's part beyond the window, after the outcome, or that does not decode is a ProtocolFault", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const schemas = yield* Operation.schemas(Rows)
        const cases = [
          {
            parts: [{ _tag: "Chunk", values: [rowPart(["a"]), rowPart(["b"]), rowPart(["c"])] }],
            fault: /a chunk beyond the stream's window of 2/
          },
          {
            parts: [{ _tag: "Chunk", values: [{ _tag: "Success", value: { _tag: "Rows" } }, rowPart(["a"])] }],
            fault: /a part of a stream after its outcome/
          },
          {
            parts: [{ _tag: "Chunk", values: [{ _tag: "Chunk", value: { _tag: "Rows", value: [[1]] } }] }],
            fault: /a chunk that does not decode/
          },
          {
            parts: [{ _tag: "Exit", exit: { _tag: "Success", value: null } }],
            fault: /a stream that ended without its outcome/
          }
        ]
        for (const { parts, fault } of cases) {
          const server = yield* fakeRunner(parts)
          const { port } = server.address() as Net.AddressInfo
          const pool = yield* WorkerPool.make({
            size: 1,
            worker: (id) =>
              Worker.fromKind(id, Remote.make(`127.0.0.1:${port}`, { ...schemas, ...connection }), {
                restart: Schedule.spaced("1 hour")
              })
          })
          const client = yield* WorkerPool.client(pool, Rows, { window: 2 })
          const { seen, exit } = yield* drain(client.Rows({ text: "" }))
          assert.isAtMost(seen.length, 2)
          const crash = errorOf(exit)
          assert.instanceOf(crash, WorkerCrash)
          assert.strictEqual((crash as WorkerCrash).reason._tag, "ProtocolFault")
          assert.match((crash as WorkerCrash).reason.message, fault)
        }
      })
    )
  )
})
