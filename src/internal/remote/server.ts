/**
 * The runner's side of a remote worker: a TCP (or TLS) listener whose
 * connections pass the handshake before an `effect/rpc` server takes them,
 * and the handler behind `Run` and `Stream`, with its concurrency limit and
 * deadline.
 *
 * Draining: the listener stops accepting, every client hears `Draining` on
 * its `Events` stream (and routes new requests elsewhere), the requests held
 * run to their end, and the runner waits until its clients have closed
 * their connections, or until `drainTimeout`.
 *
 * Defences: at most `maxConnections` connections, counted from their accept
 * (a connection past it is refused, `Full`); a handshake within
 * `handshakeTimeout` (or the client is told `HandshakeTimeout`); a source
 * address with too many failed handshakes is refused at once for a period
 * that doubles (`RateLimited`); refusals are logged once per source per
 * `refusalLogInterval`, the rest counted; an admitted connection that
 * carries no request for `idleTimeout` is told (`Idle` on its `Events`
 * stream) and closed; an oversized frame is logged.
 */
import * as Net from "node:net"
import type { Duplex } from "node:stream"
import * as Tls from "node:tls"
import { NodeSocket } from "@effect/platform-node"
import {
  type Cause,
  type Context,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  Option,
  Predicate,
  Queue,
  type Scope,
  Semaphore,
  Stream,
  Tracer
} from "effect"
import * as NetAddress from "effect/net/NetAddress"
import { RpcSerialization, RpcServer } from "effect/rpc"
import * as Schema from "effect/Schema"
import type * as Socket from "effect/socket/Socket"
import * as SocketServer from "effect/socket/SocketServer"
import type * as RemoteMetrics from "../../RemoteMetrics.ts"
import type { Handler } from "../../Runner.ts"
import * as Answer from "../answer.ts"
import { type Codec, encoding, needsEffect, schemaReason } from "../codec.ts"
import { describe } from "../describe.ts"
import * as Invocation from "../invocation.ts"
import { jsonFrame } from "../jsonSize.ts"
import { toJsonWire } from "../jsonWire.ts"
import * as Operations from "../operations.ts"
import * as Streams from "../streams.ts"
import * as Handshake from "./handshake.ts"
import { RunnerMeter } from "./meter.ts"
import * as RefusalLog from "./refusalLog.ts"
import * as SourceLimit from "./sourceLimit.ts"
import * as Wire from "./wire.ts"

/** What a runner needs, checked and with defaults applied. */
export interface Settings<Req, Resp, E, R> {
  readonly host: string
  readonly port: number
  readonly tls: Tls.TlsOptions | undefined
  readonly token: string | undefined
  readonly concurrency: number
  readonly requestTimeout: Duration.Duration | undefined
  readonly handshakeTimeout: Duration.Duration
  readonly maxFrameBytes: number
  readonly maxConnections: number
  readonly idleTimeout: Duration.Duration | undefined
  readonly failedHandshakes: {
    readonly limit: number
    readonly window: Duration.Duration
    readonly backoff: Duration.Duration
    readonly maxBackoff: Duration.Duration
  }
  readonly refusalLogInterval: Duration.Duration
  readonly request: Codec<Req>
  readonly response: Codec<Resp>
  readonly error: Codec<E>
  readonly handler: Handler<Req, Resp, E, R>
}

/** Addresses told apart by the limit on failed handshakes, and by the refusal log in an interval. */
export const maxTrackedSources = 4096

/** How long a client told that its connection is idle has to close it before the runner does. */
const idleGraceMillis = 10_000

/**
 * The request header that names the connection a request came on. The
 * runner sets it on every request it reads (one a client sent is dropped).
 */
const connectionHeader = "x-effect-worker-pool-connection"

/** The refusals that count as failed handshakes of their source. */
const failures: ReadonlySet<string> = new Set([
  "Unauthorized",
  "SchemaMismatch",
  "ProtocolMismatch",
  "Malformed",
  "HandshakeTimeout",
  "Tls"
])

/** An admitted connection. */
interface Connection {
  readonly id: number
  readonly socket: Duplex
  readonly client: string
  readonly source: string
  /** Run requests on it now. */
  runs: number
  /** Done when the runner closes it for carrying no request for `idleTimeout`. */
  readonly idle: Deferred.Deferred<void>
  idleTimer: ReturnType<typeof setTimeout> | undefined
  /** It opened its `Events` stream: it can be told it is idle. */
  events: boolean
  /** Why the runner closes it, once it does: the first cause is the one counted and logged. */
  closing: "Idle" | "FrameTooLarge" | undefined
  /** Its streamed calls, by the client's id of them. */
  readonly streams: Map<number, OpenStream>
}

/** A streamed call on a connection. */
interface OpenStream {
  /** Its sink, once its request is decoded: acknowledgements go there. */
  sink: Streams.RunnerSink | undefined
  /** Its client cancelled it. */
  cancelled: boolean
  /** The fiber of its request, once it runs. */
  fiber: Fiber.Fiber<Wire.Outcome> | undefined
}

/** Room left in a frame for the rpc envelope around a chunk. */
const envelopeBytes = 256

/** A runner listening for clients. */
export interface Listening {
  /** Where it listens (the port it was given, or the one the system chose for `0`). */
  readonly host: string
  readonly port: number
  /**
   * Tells the clients, waits for what they hold to finish and for them to leave, at most `timeout`;
   * `true` when they did within it.
   */
  readonly drain: (timeout: Duration.Duration) => Effect.Effect<boolean>
  /** Whether it drains (it accepts no new client). */
  readonly draining: () => boolean
}

/** Starts listening; the listener and every connection belong to the scope. */
export const listen = <Req, Resp, E, R>(
  settings: Settings<Req, Resp, E, R>
): Effect.Effect<Listening, SocketServer.SocketServerError, R | Scope.Scope> =>
  Effect.gen(function* () {
    const decodeRequest = Schema.decodeUnknownEffect(toJsonWire(settings.request))
    /** The fingerprint a client of each protocol version this runner admits gives for its schemas. */
    const fingerprints = new Map<unknown, string>()
    for (let version = Wire.oldestProtocolVersion; version <= Wire.protocolVersion; version++) {
      fingerprints.set(version, Wire.fingerprint(settings.request, settings.response, settings.error, version))
    }
    const services = yield* Effect.context<R>()
    const runFork = Effect.runForkWith(services)
    const permits = yield* Semaphore.make(settings.concurrency)
    const drainStarted = Deferred.makeUnsafe<void>()
    let draining = false
    let active = 0
    const connections = new Set<Duplex>()
    const admittedById = new Map<number, Connection>()
    let nextConnection = 0
    /** Connections from accept to close that count toward maxConnections (not those being refused). */
    let held = 0
    let closed = false
    const meter = new RunnerMeter(services as Context.Context<never>)
    let quiet: Deferred.Deferred<void> | undefined
    const checkQuiet = () => {
      if (quiet !== undefined && active === 0 && connections.size === 0) Deferred.doneUnsafe(quiet, Exit.void)
    }

    // ---- the handler behind Run and Stream ----
    /** The streamed operations the handler serves (a group's, through `Runner.fromGroup`). */
    const streamed = Streams.streamedOf(settings.handler)
    const encoders: Answer.Encoders = {
      encodeResponse: encoding(toJsonWire(settings.response)),
      encodeError: encoding(toJsonWire(settings.error))
    }
    const later: Answer.Later = (effect, k) => {
      runFork(effect).addObserver(k)
    }
    /** The outcome of a handler's end; interrupted (the client left, or the runner is shutting down), it fails so. */
    const outcomeOf = (exit: Exit.Exit<Resp, unknown>): Effect.Effect<Wire.Outcome> =>
      Effect.callback<Wire.Outcome>((resume) =>
        Answer.answerExit(exit, encoders, later, resume, (resume, answer) =>
          resume(
            answer._tag === "Cancelled" && Exit.isFailure(exit)
              ? Effect.failCause(exit.cause as Cause.Cause<never>)
              : Effect.succeed(answer as Wire.Outcome)
          )
        )
      )

    /**
     * Calls the handler: an Effect runs in a fiber with this one's services and span, interrupted (and awaited) when
     * this one is; a promise's signal is aborted then, and the interruption does not wait for it to settle.
     */
    const invoke = (request: Req, id: number): Effect.Effect<Resp, unknown, R> =>
      Effect.withFiber((parent) =>
        Effect.callback<Resp, unknown>((resume) => {
          const invocation = Invocation.invoke(
            settings.handler,
            request,
            id,
            Effect.runForkWith(parent.context as Context.Context<R>),
            resume
          )
          if (invocation === undefined) return
          return invocation.fiber === undefined ? Effect.sync(invocation.cancel) : Fiber.interrupt(invocation.fiber)
        })
      )

    const handle = (request: Req, id: number): Effect.Effect<Wire.Outcome, never, R> => {
      const ran = Effect.flatMap(Effect.exit(invoke(request, id)), outcomeOf)
      const timeout = settings.requestTimeout
      if (timeout === undefined) return ran
      const timeoutMillis = Duration.toMillis(timeout)
      return Effect.timeoutOrElse(ran, {
        duration: timeout,
        orElse: () => Effect.succeed<Wire.Outcome>({ _tag: "Deadline", timeoutMillis })
      })
    }

    /**
     * Why `request` cannot run as it came: a streamed operation's without a
     * window (`Run`), or another's with one (`Stream`); `undefined` when it can.
     */
    const misrouted = (request: unknown, stream: boolean): string | undefined => {
      const tag = typeof request === "object" && request !== null ? (request as { _tag?: unknown })._tag : undefined
      const isStreamed = streamed !== undefined && typeof tag === "string" && streamed.has(tag)
      if (isStreamed === stream) return undefined
      return isStreamed
        ? `operation ${tag} is a stream: call it through the client's method`
        : `operation ${describe(tag)} is not a stream: it is sent as Run`
    }

    /**
     * Runs one request: under the client's dispatch span when the request
     * carries one. A streamed call's request gets the sink `sinkFor` makes
     * for its operation.
     */
    const run = (
      payload: unknown,
      id: number,
      connection: Connection | undefined,
      traceParent: string | undefined,
      sinkFor?: (tag: string) => Streams.Sink
    ): Effect.Effect<Wire.Outcome, never, R> =>
      Effect.suspend(() => {
        active++
        meter.inFlight++
        if (connection !== undefined) runStarted(connection)
        const trace = Wire.parseTraceParent(traceParent)
        const decodedAndRun = Effect.matchEffect(decodeRequest(payload), {
          onFailure: (error) => Effect.succeed<Wire.Outcome>({ _tag: "Rejected", reason: schemaReason(error) }),
          onSuccess: (request) => {
            if (streamed === undefined && sinkFor === undefined) return handle(request, id)
            const wrong = misrouted(request, sinkFor !== undefined)
            if (wrong !== undefined) return Effect.succeed<Wire.Outcome>({ _tag: "Rejected", reason: wrong })
            if (sinkFor !== undefined) {
              const sink = sinkFor((request as { readonly _tag: string })._tag)
              ;(request as { [Streams.sinkKey]?: Streams.Sink })[Streams.sinkKey] = sink
            }
            return handle(request, id)
          }
        })
        return permits
          .withPermits(1)(
            trace === undefined ? decodedAndRun : Effect.withParentSpan(decodedAndRun, Tracer.externalSpan(trace))
          )
          .pipe(
            Effect.onExit((exit) =>
              Effect.sync(() => {
                active--
                meter.inFlight--
                meter.answered(Exit.isSuccess(exit) ? exit.value._tag : "Interrupted")
                if (connection !== undefined) runEnded(connection)
                checkQuiet()
              })
            )
          )
      })

    // ---- idle connections ----
    const idleMillis = settings.idleTimeout === undefined ? undefined : Duration.toMillis(settings.idleTimeout)
    const armIdle = (connection: Connection) => {
      if (idleMillis === undefined || closed) return
      clearTimeout(connection.idleTimer)
      connection.idleTimer = setTimeout(() => idleFor(connection), idleMillis)
    }
    const runStarted = (connection: Connection) => {
      connection.runs++
      clearTimeout(connection.idleTimer)
    }
    const runEnded = (connection: Connection) => {
      connection.runs--
      if (connection.runs === 0 && !Deferred.isDoneUnsafe(connection.idle)) armIdle(connection)
    }
    /** Closes a connection that carried no request for idleTimeout: its client is told, and has a while to leave. */
    const idleFor = (connection: Connection) => {
      if (connection.runs > 0 || closed || connection.closing !== undefined || !admittedById.has(connection.id)) return
      connection.closing = "Idle"
      Deferred.doneUnsafe(connection.idle, Exit.void)
      meter.refused("Idle")
      runFork(
        Effect.logDebug("remote client idle: its connection is closed").pipe(
          Effect.annotateLogs({ client: connection.client, idleTimeout: `${idleMillis} ms` })
        )
      )
      if (!connection.events) return void connection.socket.destroy()
      const close = () => {
        if (connection.runs > 0) connection.idleTimer = setTimeout(close, idleGraceMillis)
        else connection.socket.destroy()
      }
      connection.idleTimer = setTimeout(close, idleGraceMillis)
    }

    const connectionOf = (headers: Readonly<Record<string, string | undefined>>): Connection | undefined => {
      const id = headers[connectionHeader]
      return id === undefined ? undefined : admittedById.get(Number(id))
    }

    // ---- streamed calls ----
    /** The streamed calls of requests that name no connection (none do: the runner names it on each). */
    const unnamed = new Map<number, OpenStream>()
    const streamsOf = (connection: Connection | undefined) => connection?.streams ?? unnamed
    const chunkLimit = settings.maxFrameBytes - envelopeBytes

    /**
     * Puts a chunk of operation `tag` into `queue`, encoded by the response
     * schema; gives why it could not (a value its schema refuses, a frame
     * over `maxFrameBytes`): the handler then dies with that reason.
     */
    const sendChunk = (
      queue: Queue.Queue<Wire.Part, Cause.Done>,
      tag: string,
      chunk: ReadonlyArray<unknown>
    ): Effect.Effect<string | undefined> => {
      const value = Operations.chunkOf(tag, chunk)
      const put = (encoded: unknown): string | undefined => {
        const frame = jsonFrame(encoded, chunkLimit, true)
        if (frame._tag === "Over") {
          return `the chunk is ${frame.bytes} bytes on the wire, over the limit of ${settings.maxFrameBytes} (maxFrameBytes)`
        }
        if (frame._tag === "NotJson") return `the chunk is not JSON: ${describe(frame.error)}`
        Queue.offerUnsafe(queue, { _tag: "Chunk", value: encoded })
        return undefined
      }
      const refused = (cause: Cause.Cause<unknown>) => `the chunk does not encode: ${Answer.describeCause(cause)}`
      const encoded = encoders.encodeResponse.run(value)
      if (encoded._tag === "Success") return Effect.succeed(put(encoded.value))
      if (!needsEffect(encoded)) return Effect.succeed(refused(encoded.cause))
      return Effect.matchCause(encoders.encodeResponse.effect(value), { onSuccess: put, onFailure: refused })
    }

    /**
     * A streamed call: its chunks, then its outcome, on the rpc stream. The
     * handler's sink sends a chunk while the client's window has room. A
     * cancel interrupts the handler, then the stream ends without an outcome.
     */
    const runStream = (
      payload: { readonly request: unknown; readonly stream: number; readonly window: number },
      id: number,
      headers: Readonly<Record<string, string | undefined>>
    ): Stream.Stream<Wire.Part, never, R> => {
      const { request, stream, window } = payload
      if (!Number.isSafeInteger(window) || window < 1) {
        const rejected: Wire.Part = {
          _tag: "Rejected",
          reason: `the window must be a positive integer, got ${describe(window)}`
        }
        return Stream.make(rejected)
      }
      const connection = connectionOf(headers)
      const streams = streamsOf(connection)
      const open: OpenStream = { sink: undefined, cancelled: false, fiber: undefined }
      // Registered as the request is read, so that a cancel read after it finds it.
      streams.set(stream, open)
      const sinkFor = (queue: Queue.Queue<Wire.Part, Cause.Done>) => (tag: string) => {
        open.sink = Streams.runnerSink(window, (chunk) => sendChunk(queue, tag, chunk))
        return open.sink
      }
      return Stream.callback<Wire.Part, never, R>((queue) =>
        Effect.gen(function* () {
          if (open.cancelled) return yield* Queue.end(queue)
          const fiber = yield* Effect.forkChild(
            run(request, id, connection, headers[Wire.traceHeader], sinkFor(queue)),
            { startImmediately: true }
          )
          open.fiber = fiber
          // Interrupted (the client left, the runner stops), the request is interrupted and waited for.
          const exit = yield* Effect.onInterrupt(Fiber.await(fiber), () => Fiber.interrupt(fiber))
          // A cancelled request ends the stream without an outcome: the end confirms the cancel.
          if (Exit.isSuccess(exit)) yield* Queue.offer(queue, exit.value)
          yield* Queue.end(queue)
        }).pipe(
          Effect.ensuring(
            Effect.sync(() => {
              if (streams.get(stream) === open) streams.delete(stream)
            })
          )
        )
      )
    }

    const handlers = Wire.Group.toLayer(
      Effect.succeed(
        Wire.Group.of({
          Run: (payload, { requestId, headers }) =>
            run(payload, Number(requestId), connectionOf(headers), headers[Wire.traceHeader]),
          Stream: (payload, { requestId, headers }) => runStream(payload, Number(requestId), headers),
          Ack: ({ stream, n }, { headers }) =>
            Effect.sync(() => {
              // An unknown stream ended already: its acknowledgements come late.
              if (Number.isSafeInteger(n) && n > 0) streamsOf(connectionOf(headers)).get(stream)?.sink?.ack(n)
            }),
          Cancel: ({ stream }, { headers }) =>
            Effect.sync(() => {
              // An unknown stream ended already: its end confirms the cancel.
              const open = streamsOf(connectionOf(headers)).get(stream)
              if (open === undefined) return
              open.cancelled = true
              open.fiber?.interruptUnsafe()
            }),
          Events: (_, { headers }) => {
            const connection = connectionOf(headers)
            const draining = Effect.as(Deferred.await(drainStarted), "Draining" as const)
            if (connection === undefined) return Stream.fromEffect(draining)
            connection.events = true
            return Stream.fromEffect(
              Effect.raceFirst(draining, Effect.as(Deferred.await(connection.idle), "Idle" as const))
            )
          }
        })
      )
    )

    // ---- refusals: counted, limited per source, logged once per source per interval ----
    const limiter = SourceLimit.make(
      {
        limit: settings.failedHandshakes.limit,
        windowMillis: Duration.toMillis(settings.failedHandshakes.window),
        backoffMillis: Duration.toMillis(settings.failedHandshakes.backoff),
        maxBackoffMillis: Duration.toMillis(settings.failedHandshakes.maxBackoff),
        maxSources: maxTrackedSources
      },
      Date.now
    )
    const refusalLog = RefusalLog.make({
      maxSources: maxTrackedSources,
      first: ({ client, reason, message }) =>
        runFork(
          Effect.logWarning(
            reason === "FrameTooLarge" ? "remote client sent a frame over maxFrameBytes" : "remote client refused"
          ).pipe(Effect.annotateLogs({ client, refused: reason, message }))
        ),
      summary: ({ source, count, reasons }) =>
        runFork(
          Effect.logWarning("remote client refusals").pipe(
            Effect.annotateLogs({
              source: source ?? "other sources",
              more: count,
              reasons,
              interval: Duration.format(settings.refusalLogInterval)
            })
          )
        )
    })
    const refused = (
      source: string,
      client: string,
      reason: RemoteMetrics.RefusalReason,
      message: string,
      silent = false
    ) => {
      meter.refused(reason)
      if (failures.has(reason) && !silent) limiter.failed(source)
      refusalLog.record(source, client, reason, message)
    }
    yield* Effect.forkScoped(
      Effect.forever(
        Effect.andThen(
          Effect.sleep(settings.refusalLogInterval),
          Effect.sync(() => {
            refusalLog.flush()
            limiter.prune()
          })
        )
      )
    )

    // ---- the listener, with the handshake in front ----
    const handshakeMillis = Duration.toMillis(settings.handshakeTimeout)
    const nodeServer: Net.Server =
      settings.tls === undefined
        ? Net.createServer()
        : Tls.createServer({ handshakeTimeout: handshakeMillis, ...settings.tls })
    const admitted = Deferred.makeUnsafe<(socket: Socket.Socket) => Effect.Effect<unknown, unknown>>()
    const connectionFibers = new Set<Fiber.Fiber<unknown, unknown>>()
    /** The connection each connection fiber serves, for the serialization made on it. */
    const byFiber = new WeakMap<Fiber.Fiber<unknown, unknown>, Connection>()

    const check = (hello: Partial<Handshake.Hello> | undefined): Handshake.Reply => {
      if (hello === undefined) return { refused: "Malformed", message: "the handshake is not a JSON object" }
      if (settings.token !== undefined && !Handshake.tokenMatches(hello.token, settings.token)) {
        return { refused: "Unauthorized", message: "the token is missing or wrong" }
      }
      const fingerprint = fingerprints.get(hello.protocol)
      if (fingerprint === undefined) {
        return {
          refused: "ProtocolMismatch",
          message: `the client speaks protocol ${String(hello.protocol)}, the runner ${Wire.oldestProtocolVersion} to ${Wire.protocolVersion}`
        }
      }
      if (hello.fingerprint !== fingerprint) {
        return {
          refused: "SchemaMismatch",
          message: "the client's request, response or error schemas differ from the runner's"
        }
      }
      if (draining) return { refused: "Draining", message: "the runner is draining" }
      return { ok: true }
    }

    /** Whether a connection from `source` is refused at once, and why. */
    const early = (source: string): { readonly refused: Handshake.Refusal; readonly message: string } | undefined => {
      const blocked = limiter.blockedFor(source)
      if (blocked > 0) {
        return {
          refused: "RateLimited",
          message: `too many failed handshakes from ${source}: its connections are refused for ${blocked} ms more`
        }
      }
      if (held >= settings.maxConnections) {
        return {
          refused: "Full",
          message: `the runner holds its maximum of ${settings.maxConnections} connections (maxConnections)`
        }
      }
      return undefined
    }

    const onConnection = (conn: Duplex & Net.Socket, refusal: ReturnType<typeof early>) => {
      const source = SourceLimit.sourceOf(conn.remoteAddress)
      const client = `${conn.remoteAddress}:${conn.remotePort}`
      conn.on("error", () => {})
      conn.setNoDelay(true)
      if (refusal !== undefined) {
        Handshake.refuseAtOnce(conn, refusal.refused, refusal.message)
        return refused(source, client, refusal.refused, refusal.message)
      }
      Handshake.accept(conn, {
        timeoutMillis: handshakeMillis,
        check,
        refuse: (reason, message, silent) => refused(source, client, reason, message, silent),
        admit: () => {
          limiter.succeeded(source)
          connections.add(conn)
          const connection: Connection = {
            id: nextConnection++,
            socket: conn,
            client,
            source,
            runs: 0,
            idle: Deferred.makeUnsafe<void>(),
            idleTimer: undefined,
            events: false,
            closing: undefined,
            streams: new Map()
          }
          admittedById.set(connection.id, connection)
          armIdle(connection)
          const fiber = runFork(
            Effect.gen(function* () {
              yield* Effect.sync(() => byFiber.set(Fiber.getCurrent()!, connection))
              const handler = yield* Deferred.await(admitted)
              const socket = yield* NodeSocket.fromDuplex(Effect.succeed(conn))
              yield* handler(socket)
            }).pipe(
              Effect.ensuring(
                Effect.sync(() => {
                  conn.destroy()
                  clearTimeout(connection.idleTimer)
                  admittedById.delete(connection.id)
                  connections.delete(conn)
                  connectionFibers.delete(fiber)
                  checkQuiet()
                })
              )
            )
          )
          connectionFibers.add(fiber)
        }
      })
    }

    /** Counts a connection from its accept; decides there whether it is refused at once. */
    const pendingTls = new Map<string, ReturnType<typeof early>>()
    nodeServer.on("connection", (raw: Net.Socket) => {
      meter.open++
      const refusal = early(SourceLimit.sourceOf(raw.remoteAddress))
      if (refusal === undefined) held++
      raw.once("close", () => {
        meter.open--
        if (refusal === undefined) held--
      })
      if (settings.tls === undefined) return onConnection(raw, refusal)
      // Over TLS, the refusal is said once the TLS handshake (bounded by handshakeTimeout) is done.
      const key = `${raw.remoteAddress}:${raw.remotePort}`
      pendingTls.set(key, refusal)
      raw.once("close", () => pendingTls.delete(key))
    })
    if (settings.tls !== undefined) {
      nodeServer.on("secureConnection", (conn: Tls.TLSSocket) => {
        const key = `${conn.remoteAddress}:${conn.remotePort}`
        const refusal = pendingTls.get(key)
        pendingTls.delete(key)
        onConnection(conn, refusal)
      })
      // A client that fails the TLS handshake (no certificate, an untrusted one) is logged and let go.
      nodeServer.on("tlsClientError", (error, socket) => {
        socket.destroy()
        refused(
          SourceLimit.sourceOf(socket.remoteAddress),
          `${socket.remoteAddress}:${socket.remotePort}`,
          "Tls",
          Handshake.errorText(error)
        )
      })
    }

    /** Names each request's connection, and logs an oversized frame, for the connection it is made on. */
    const base = Wire.serialization(settings.maxFrameBytes)
    const serialization = RpcSerialization.RpcSerialization.of({
      ...base,
      makeUnsafe: () => {
        const parser = base.makeUnsafe()
        const current = Fiber.getCurrent()
        const connection = current === undefined ? undefined : byFiber.get(current)
        if (connection === undefined) return parser
        const header: [string, string] = [connectionHeader, String(connection.id)]
        // Bytes since the last newline: at least the size of a frame over the limit.
        let pending = 0
        return {
          encode: (response) => parser.encode(response),
          decode: (data) => {
            const newline = typeof data === "string" ? data.lastIndexOf("\n") : data.lastIndexOf(10)
            pending = newline === -1 ? pending + data.length : data.length - newline - 1
            let messages: ReadonlyArray<unknown>
            try {
              messages = parser.decode(data)
            } catch (cause) {
              if (Predicate.isTagged(cause, "MaxBufferSizeExceeded") && connection.closing === undefined) {
                connection.closing = "FrameTooLarge"
                clearTimeout(connection.idleTimer)
                refused(
                  connection.source,
                  connection.client,
                  "FrameTooLarge",
                  `a frame of at least ${pending} bytes, over the limit of ${settings.maxFrameBytes} (maxFrameBytes)`
                )
              }
              throw cause
            }
            for (const message of messages as ReadonlyArray<{ _tag?: unknown; headers?: Array<[string, string]> }>) {
              if (message._tag === "Request" && Array.isArray(message.headers)) {
                message.headers = message.headers.filter(([name]) => name.toLowerCase() !== connectionHeader)
                message.headers.push(header)
              }
            }
            return messages
          }
        }
      }
    })

    const address = yield* Effect.acquireRelease(
      Effect.callback<Net.AddressInfo, SocketServer.SocketServerError>((resume) => {
        nodeServer.once("error", (cause) =>
          resume(
            Effect.fail(
              new SocketServer.SocketServerError({ reason: new SocketServer.SocketServerOpenError({ cause }) })
            )
          )
        )
        nodeServer.listen({ host: settings.host, port: settings.port }, () =>
          resume(Effect.succeed(nodeServer.address() as Net.AddressInfo))
        )
      }),
      () =>
        Effect.suspend(() => {
          closed = true
          nodeServer.close()
          for (const connection of admittedById.values()) clearTimeout(connection.idleTimer)
          refusalLog.flush()
          meter.close()
          const fibers = [...connectionFibers]
          return Effect.forEach(fibers, Fiber.interrupt, { discard: true })
        })
    )

    const socketServer = SocketServer.SocketServer.of({
      address: NetAddress.inetAddressFromIpStringUnsafe(address.address, address.port),
      run: <R2, E2, A>(handler: (socket: Socket.Socket) => Effect.Effect<A, E2, R2>) =>
        Effect.flatMap(Effect.context<R2>(), (context) => {
          Deferred.doneUnsafe(
            admitted,
            Exit.succeed((socket: Socket.Socket) => Effect.provideContext(handler(socket), context))
          )
          return Effect.never
        })
    })

    const protocol = yield* RpcServer.makeProtocolSocketServer.pipe(
      Effect.provideService(SocketServer.SocketServer, socketServer),
      Effect.provideService(RpcSerialization.RpcSerialization, serialization)
    )
    yield* RpcServer.make(Wire.Group, { disableTracing: true, concurrency: "unbounded" }).pipe(
      Effect.provide(handlers),
      // A stream's window is the client's (`Ack`): the rpc layer's own acknowledgements are off (see wire.ts).
      Effect.provideService(RpcServer.Protocol, { ...protocol, supportsAck: false }),
      Effect.forkScoped
    )

    const drain = (timeout: Duration.Duration) =>
      Effect.suspend(() => {
        if (!draining) {
          draining = true
          nodeServer.close()
          Deferred.doneUnsafe(drainStarted, Exit.void)
        }
        quiet ??= Deferred.makeUnsafe<void>()
        checkQuiet()
        return Effect.map(Effect.timeoutOption(Deferred.await(quiet), timeout), Option.isSome)
      })

    meter.start(`${address.address}:${address.port}`)
    return { host: address.address, port: address.port, drain, draining: () => draining }
  })
