/**
 * The runner's side of a remote worker: a TCP (or TLS) listener whose
 * connections pass the handshake before an `effect/rpc` server takes them,
 * and the handler behind `Run`, with its concurrency limit and deadline.
 *
 * Draining: the listener stops accepting, every client hears `Draining` on
 * its `Events` stream (and routes new requests elsewhere), the requests held
 * run to their end, and the runner waits until its clients have closed
 * their connections, or until `drainTimeout`.
 */
import * as Net from "node:net"
import type { Duplex } from "node:stream"
import * as Tls from "node:tls"
import { NodeSocket } from "@effect/platform-node"
import { Cause, Deferred, Duration, Effect, Exit, Fiber, Option, type Scope, Semaphore, Stream } from "effect"
import * as NetAddress from "effect/net/NetAddress"
import { RpcSerialization, RpcServer } from "effect/rpc"
import * as Schema from "effect/Schema"
import type * as Socket from "effect/socket/Socket"
import * as SocketServer from "effect/socket/SocketServer"
import type { Handler } from "../../Runner.ts"
import { WorkerCrash } from "../../WorkerError.ts"
import { type Codec, schemaReason } from "../codec.ts"
import { describe } from "../describe.ts"
import * as Handshake from "./handshake.ts"
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
  readonly request: Codec<Req>
  readonly response: Codec<Resp>
  readonly error: Codec<E>
  readonly handler: Handler<Req, Resp, E, R>
}

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

const isPromiseLike = (u: unknown): u is PromiseLike<unknown> =>
  typeof u === "object" && u !== null && typeof (u as { then?: unknown }).then === "function"

/** Starts listening; the listener and every connection belong to the scope. */
export const listen = <Req, Resp, E, R>(
  settings: Settings<Req, Resp, E, R>
): Effect.Effect<Listening, SocketServer.SocketServerError, R | Scope.Scope> =>
  Effect.gen(function* () {
    const decodeRequest = Schema.decodeUnknownEffect(Schema.toCodecJson(settings.request))
    const encodeResponse = Schema.encodeUnknownEffect(Schema.toCodecJson(settings.response))
    const encodeError = Schema.encodeUnknownEffect(Schema.toCodecJson(settings.error))
    const fingerprint = Wire.fingerprint(settings.request, settings.response, settings.error)
    const services = yield* Effect.context<R>()
    const runFork = Effect.runForkWith(services)
    const permits = yield* Semaphore.make(settings.concurrency)
    const drainStarted = Deferred.makeUnsafe<void>()
    let draining = false
    let active = 0
    const connections = new Set<Duplex>()
    let quiet: Deferred.Deferred<void> | undefined
    const checkQuiet = () => {
      if (quiet !== undefined && active === 0 && connections.size === 0) Deferred.doneUnsafe(quiet, Exit.void)
    }

    // ---- the handler behind Run ----
    const outcomeOf = (exit: Exit.Exit<Resp, unknown>): Effect.Effect<Wire.Outcome> => {
      if (Exit.isSuccess(exit)) {
        return Effect.match(encodeResponse(exit.value), {
          onSuccess: (value): Wire.Outcome => ({ _tag: "Success", value }),
          onFailure: (error): Wire.Outcome => ({
            _tag: "Crash",
            reason: `defect: the response does not match its schema: ${schemaReason(error)}`
          })
        })
      }
      const error = Cause.findErrorOption(exit.cause)
      if (error._tag === "Some") {
        const value = error.value
        if (value instanceof WorkerCrash) return Effect.succeed({ _tag: "Crash", reason: value.reason.message })
        return Effect.match(encodeError(value), {
          onSuccess: (encoded): Wire.Outcome => ({ _tag: "Failure", error: encoded }),
          onFailure: (): Wire.Outcome => ({ _tag: "Crash", reason: `defect: ${describe(value)}` })
        })
      }
      if (Cause.hasDies(exit.cause)) {
        return Effect.succeed({ _tag: "Crash", reason: `defect: ${describe(Cause.squash(exit.cause))}` })
      }
      // Interrupted: the client left, or the runner is shutting down.
      return Effect.failCause(exit.cause as Cause.Cause<never>)
    }

    /** Calls the handler: an Effect runs here (and is interrupted here); a promise gets an abort signal. */
    const invoke = (request: Req, id: number): Effect.Effect<Resp, unknown, R> =>
      Effect.callback<Resp, unknown, R>((resume) => {
        const controller = new AbortController()
        let result: ReturnType<Handler<Req, Resp, E, R>>
        try {
          result = settings.handler(request, { signal: controller.signal, id })
        } catch (error) {
          return resume(Effect.fail(error))
        }
        if (Effect.isEffect(result)) return resume(result as Effect.Effect<Resp, unknown, R>)
        if (!isPromiseLike(result)) return resume(Effect.succeed(result as Resp))
        Promise.resolve(result).then(
          (value) => resume(Effect.succeed(value)),
          (error) => resume(Effect.fail(error))
        )
        return Effect.sync(() => controller.abort(new Error("the request was cancelled")))
      })

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

    const run = (payload: unknown, id: number): Effect.Effect<Wire.Outcome, never, R> =>
      Effect.suspend(() => {
        active++
        return permits
          .withPermits(1)(
            Effect.matchEffect(decodeRequest(payload), {
              onFailure: (error) => Effect.succeed<Wire.Outcome>({ _tag: "Rejected", reason: schemaReason(error) }),
              onSuccess: (request) => handle(request, id)
            })
          )
          .pipe(
            Effect.ensuring(
              Effect.sync(() => {
                active--
                checkQuiet()
              })
            )
          )
      })

    const handlers = Wire.Group.toLayer(
      Effect.succeed(
        Wire.Group.of({
          Run: (payload, { requestId }) => run(payload, Number(requestId)),
          Events: () => Stream.fromEffect(Effect.as(Deferred.await(drainStarted), "Draining" as const))
        })
      )
    )

    // ---- the listener, with the handshake in front ----
    const nodeServer: Net.Server =
      settings.tls === undefined ? Net.createServer() : Tls.createServer({ ...settings.tls })
    const admitted = Deferred.makeUnsafe<(socket: Socket.Socket) => Effect.Effect<unknown, unknown>>()
    const connectionFibers = new Set<Fiber.Fiber<unknown, unknown>>()

    const check = (hello: Partial<Handshake.Hello> | undefined): Handshake.Reply => {
      if (hello === undefined) return { refused: "Malformed", message: "the handshake is not a JSON object" }
      if (settings.token !== undefined && !Handshake.tokenMatches(hello.token, settings.token)) {
        return { refused: "Unauthorized", message: "the token is missing or wrong" }
      }
      if (hello.protocol !== Wire.protocolVersion) {
        return {
          refused: "ProtocolMismatch",
          message: `the client speaks protocol ${String(hello.protocol)}, the runner ${Wire.protocolVersion}`
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

    const onConnection = (conn: Net.Socket) => {
      const remote = `${conn.remoteAddress}:${conn.remotePort}`
      conn.on("error", () => {})
      conn.setNoDelay(true)
      Handshake.accept(conn, {
        timeoutMillis: Duration.toMillis(settings.handshakeTimeout),
        check,
        refuse: (refused, message) => {
          runFork(
            Effect.logWarning("remote client refused").pipe(Effect.annotateLogs({ client: remote, refused, message }))
          )
        },
        admit: () => {
          connections.add(conn)
          const fiber = runFork(
            Effect.gen(function* () {
              const handler = yield* Deferred.await(admitted)
              const socket = yield* NodeSocket.fromDuplex(Effect.succeed(conn))
              yield* handler(socket)
            }).pipe(
              Effect.ensuring(
                Effect.sync(() => {
                  conn.destroy()
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
    nodeServer.on(settings.tls === undefined ? "connection" : "secureConnection", onConnection)
    if (settings.tls !== undefined) {
      // A client that fails the TLS handshake (no certificate, an untrusted one) is logged and let go.
      nodeServer.on("tlsClientError", (error, socket) => {
        socket.destroy()
        runFork(
          Effect.logWarning("remote client refused").pipe(
            Effect.annotateLogs({
              client: `${socket.remoteAddress}:${socket.remotePort}`,
              refused: "Tls",
              message: Handshake.errorText(error)
            })
          )
        )
      })
    }

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
          nodeServer.close()
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
      Effect.provideService(RpcSerialization.RpcSerialization, Wire.serialization(settings.maxFrameBytes))
    )
    yield* RpcServer.make(Wire.Group, { disableTracing: true, concurrency: "unbounded" }).pipe(
      Effect.provide(handlers),
      Effect.provideService(RpcServer.Protocol, protocol),
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

    return { host: address.address, port: address.port, drain, draining: () => draining }
  })
