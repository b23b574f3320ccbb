/**
 * One incarnation of a remote worker: a connection to a runner, admitted by
 * the handshake, then an `effect/rpc` client over it.
 *
 * The connection is the incarnation: when it is lost (the runner closed it,
 * was killed, the network reset it) or goes silent (no answer to the rpc
 * client's pings within `pingTimeout`), every request in flight on it fails
 * at once with `WorkerCrash` and a reason that says which, and `exited`
 * completes, so that the worker's supervisor reconnects on its own schedule.
 * The rpc client never reconnects by itself: there is one reconnect loop,
 * the supervisor's.
 *
 * A streamed call (its request carries the caller's sink, see
 * `streams.ts`) is one `Stream` rpc: each chunk goes to the sink, within the
 * window; each chunk the caller reads is acknowledged (`Ack`, several at
 * once while one is on its way); a caller that leaves sends `Cancel` and
 * holds its slot until the runner ends the stream, or the connection is gone.
 *
 * A runner that drains says so (`Events`): `exited` completes with `Stopped`
 * at once, so that no new request is routed to it, while the requests it
 * holds run to their end; the connection closes after them. A runner that
 * closes an idle connection (`idleTimeout`) says so the same way, and an
 * address that leaves its membership (its `Gate` closes) ends the
 * incarnation the same way.
 */
import type * as Tls from "node:tls"
import { NodeSocket } from "@effect/platform-node"
import { Cause, Clock, Deferred, Duration, Effect, Exit, type Fiber, Schedule, type Scope, Stream } from "effect"
import { RpcClient, type RpcClientError, RpcSerialization } from "effect/rpc"
import * as Schema from "effect/Schema"
import * as Socket from "effect/socket/Socket"
import { InvalidRequest } from "../../WireError.ts"
import {
  ConnectionLost,
  type CrashReason,
  Defect,
  ProtocolFault,
  StartFailed,
  Stopped,
  TimedOut,
  Unresponsive,
  WorkerCrash
} from "../../WorkerError.ts"
import type { Incarnation } from "../../WorkerKind.ts"
import { type Decoders, reportedCrash, settleAnswer } from "../answer.ts"
import { type Codec, decoding, schemaReason } from "../codec.ts"
import { describe } from "../describe.ts"
import { jsonFrame } from "../jsonSize.ts"
import { toJsonWire } from "../jsonWire.ts"
import { type CallerSink, callerSinkOf } from "../streams.ts"
import { DispatchSpan, traceContext } from "../tracing.ts"
import type { Gate } from "./gate.ts"
import * as Handshake from "./handshake.ts"
import * as Wire from "./wire.ts"

/** What one incarnation needs, checked and with defaults applied. */
export interface Settings<Req, Resp, E> {
  readonly host: string
  readonly port: number
  readonly tls: Tls.ConnectionOptions | undefined
  readonly token: string | undefined
  readonly connectTimeout: Duration.Duration
  readonly pingInterval: Duration.Duration
  readonly pingTimeout: Duration.Duration
  readonly maxFrameBytes: number
  readonly request: Codec<Req>
  readonly response: Codec<Resp>
  readonly error: Codec<E>
  readonly fingerprint: string
  /** The way to this address, when a membership holds it: closed, the connection ends cleanly and none is made. */
  readonly gate?: Gate | undefined
}

/** Room left in a frame for the rpc envelope around a payload. */
const envelopeBytes = 256

/** The size of `payload` as JSON when it is over `limit` bytes; a huge one is never serialised. */
const overLimit = (payload: unknown, limit: number): string | undefined => {
  const frame = jsonFrame(payload, limit, true)
  // A payload its schema encoded is JSON: it cannot fail to serialise.
  return frame._tag === "Over" ? frame.bytes : undefined
}

/**
 * Looks every few milliseconds whether the runner was heard from (`signs`
 * changed); after `limit` ms of silence it calls `silent`. A late look means
 * this process itself was held up: the silence is counted again from there.
 */
const watch = (signs: () => number, limit: number, silent: (quiet: number) => void) =>
  Effect.gen(function* () {
    const period = Math.max(5, Math.min(100, Math.floor(limit / 5)))
    let seen = signs()
    let last = yield* Clock.currentTimeMillis
    let quietSince = last
    while (true) {
      yield* Effect.sleep(period)
      const now = yield* Clock.currentTimeMillis
      const late = now - last > 2 * period + 50
      last = now
      if (late || signs() !== seen) {
        seen = signs()
        quietSince = now
        continue
      }
      if (now - quietSince > limit) return silent(now - quietSince)
    }
  })

/** Connects to the runner and hands the pool an incarnation on that connection. */
export const spawn = <Req, Resp, E>(
  settings: Settings<Req, Resp, E>
): Effect.Effect<Incarnation<Req, Resp, E | InvalidRequest>, WorkerCrash, Scope.Scope> =>
  Effect.gen(function* () {
    const label = `${settings.host}:${settings.port}`
    // An address that left its membership is not connected to (until it comes back, or the worker is removed).
    if (settings.gate !== undefined) yield* settings.gate.whenOpen
    const encodeRequest = Schema.encodeUnknownEffect(toJsonWire(settings.request))
    const decoders: Decoders<Resp, E> = {
      decodeResponse: decoding(toJsonWire(settings.response)),
      decodeError: decoding(toJsonWire(settings.error))
    }

    const connection = yield* Effect.acquireRelease(
      Handshake.connect({
        host: settings.host,
        port: settings.port,
        tls: settings.tls,
        timeoutMillis: Duration.toMillis(settings.connectTimeout),
        hello: { protocol: Wire.protocolVersion, token: settings.token ?? null, fingerprint: settings.fingerprint }
      }).pipe(
        Effect.mapError(
          (failure) =>
            new WorkerCrash({
              reason: new StartFailed({
                message:
                  failure.refused === undefined
                    ? `could not connect to runner ${label}: ${failure.message}`
                    : `runner ${label} refused the connection (${failure.refused}): ${failure.message}`
              })
            })
        )
      ),
      (socket) => Effect.sync(() => socket.destroy())
    )

    // The incarnation's death: the first reason wins, every waiting request fails with it.
    let deathReason: CrashReason | undefined
    let draining = false
    const exited = Deferred.makeUnsafe<WorkerCrash>()
    const waiting = new Set<(outcome: Effect.Effect<Resp, E | InvalidRequest | WorkerCrash>) => void>()
    /** Cancelled streams waiting for the runner to end them: woken when the incarnation dies. */
    const stopping = new Set<() => void>()
    let idle: Deferred.Deferred<void> | undefined
    const crashed = () => Exit.fail(new WorkerCrash({ reason: deathReason! }))
    const forget = (resume: (outcome: Effect.Effect<Resp, E | InvalidRequest | WorkerCrash>) => void) => {
      waiting.delete(resume)
      if (waiting.size === 0 && idle !== undefined) Deferred.doneUnsafe(idle, Exit.void)
    }
    const die = (reason: CrashReason) => {
      if (deathReason !== undefined) return
      deathReason = reason
      Deferred.doneUnsafe(exited, Exit.succeed(new WorkerCrash({ reason })))
      const all = [...waiting]
      waiting.clear()
      if (idle !== undefined) Deferred.doneUnsafe(idle, Exit.void)
      const outcome = crashed()
      for (const resume of all) resume(outcome)
      const cancels = [...stopping]
      stopping.clear()
      for (const wake of cancels) wake()
    }
    const lost = (what: string) =>
      die(new ConnectionLost({ message: `the connection to runner ${label} was lost: ${what}`, address: label }))
    // Registered before the rpc socket's own listeners: the reason is known
    // before the rpc client fails the calls in flight.
    connection.on("error", (error) => lost(Handshake.errorText(error)))
    connection.on("end", () => lost("the runner closed it"))
    connection.on("close", () => lost("it was closed"))

    const socket = yield* NodeSocket.fromDuplex(Effect.succeed(connection))
    const pingTimeoutMillis = Duration.toMillis(settings.pingTimeout)
    const unresponsive = (quiet: number) =>
      die(
        new Unresponsive({
          message: `runner ${label} stopped responding: no answer to a ping for ${quiet} ms (pingTimeout ${pingTimeoutMillis} ms)`
        })
      )
    // Every frame the runner sends (answers, pongs) is a sign of life. With
    // 'readable' listeners in charge, 'data' only reports what is read.
    let heard = 0
    connection.on("data", () => {
      heard++
    })
    yield* Effect.forkScoped(watch(() => heard, pingTimeoutMillis, unresponsive))
    const protocol = yield* RpcClient.makeProtocolSocket({
      pingInterval: settings.pingInterval,
      pingTimeout: settings.pingTimeout,
      retryPolicy: Schedule.recurs(0),
      onPingTimeout: Effect.sync(() => unresponsive(pingTimeoutMillis))
    }).pipe(
      Effect.provideService(Socket.Socket, socket),
      Effect.provideService(RpcSerialization.RpcSerialization, Wire.serialization(settings.maxFrameBytes))
    )
    const client = yield* RpcClient.make(Wire.Group, { disableTracing: true }).pipe(
      // A stream's window is acknowledged as its caller reads (`Ack`): the rpc layer's own acknowledgements are off.
      Effect.provideService(RpcClient.Protocol, { ...protocol, supportsAck: false })
    )

    // A draining runner, or one that closes this idle connection: no new
    // requests come here; those it holds finish. Neither is a crash.
    yield* client.Events().pipe(
      Stream.runForEach((notice) =>
        Effect.sync(() => {
          if (draining || deathReason !== undefined) return
          draining = true
          const message =
            notice === "Idle"
              ? `runner ${label} closes the connection: it carried no request for the runner's idleTimeout`
              : `runner ${label} is draining: it takes no new requests`
          Deferred.doneUnsafe(exited, Exit.succeed(new WorkerCrash({ reason: new Stopped({ message }) })))
        })
      ),
      Effect.ignore,
      Effect.forkScoped
    )
    // An address that left its membership: the same, and the connection counts until it is closed.
    if (settings.gate !== undefined) {
      const leave = settings.gate.enter(() => {
        if (draining || deathReason !== undefined) return
        draining = true
        const message = `runner ${label} left the membership: it takes no new requests`
        Deferred.doneUnsafe(exited, Exit.succeed(new WorkerCrash({ reason: new Stopped({ message }) })))
      })
      yield* Effect.addFinalizer(() => Effect.sync(leave))
    }

    const runFork = Effect.runForkWith(yield* Effect.context<never>())
    const calls = new Set<Fiber.Fiber<unknown, RpcClientError.RpcClientError>>()

    // Runs first at the end of the incarnation: after a drain notice the
    // requests still held finish (the runner closes the connection once
    // they have, or when its drain deadline passes); otherwise they fail now.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function* () {
        if (draining && deathReason === undefined && waiting.size > 0) {
          idle = Deferred.makeUnsafe<void>()
          yield* Deferred.await(idle)
        }
        die(new Stopped({ message: `the connection to runner ${label} was closed` }))
        for (const call of calls) call.interruptUnsafe()
      })
    )

    const invalid = (reason: string) => Effect.fail(new InvalidRequest({ reason }))

    /** An answer whose payload does not decode: the runner's fault, and a crash for the caller. */
    const misdecoded = (what: string) => {
      die(new ProtocolFault({ message: `protocol error: runner ${label} sent ${what}` }))
      return crashed()
    }

    const conclude = (
      exit: Exit.Exit<Wire.Outcome, RpcClientError.RpcClientError>
    ): Effect.Effect<Resp, E | InvalidRequest | WorkerCrash> => {
      if (Exit.isSuccess(exit)) {
        const outcome = exit.value
        switch (outcome._tag) {
          case "Success":
          case "Failure":
          case "Rejected":
            return settleAnswer(outcome, decoders, "the runner", misdecoded)
          case "Crash":
            return Effect.fail(new WorkerCrash({ reason: reportedCrash(outcome.reason) }))
          case "Deadline":
            return Effect.fail(
              new WorkerCrash({
                reason: new TimedOut({
                  message: `runner ${label} interrupted the request at its deadline of ${outcome.timeoutMillis} ms`,
                  timeoutMillis: outcome.timeoutMillis
                })
              })
            )
        }
      }
      const error = Cause.findErrorOption(exit.cause)
      if (error._tag === "Some") {
        const reason = error.value.reason
        if (reason._tag === "RpcClientDefect") {
          die(
            new ProtocolFault({
              message: `protocol error: runner ${label} sent what could not be read: ${describe(reason.cause)}`
            })
          )
        } else {
          lost(reason.message)
        }
        return crashed()
      }
      if (Cause.hasDies(exit.cause)) {
        return Effect.fail(
          new WorkerCrash({ reason: new Defect({ message: `defect: ${describe(Cause.squash(exit.cause))}` }) })
        )
      }
      // Interrupted by the runner, not by the caller: it is shutting down.
      if (deathReason === undefined) {
        die(new Stopped({ message: `runner ${label} stopped the request: it is shutting down` }))
      }
      return crashed()
    }

    const send = (payload: unknown, headers: Record<string, string> | undefined) =>
      Effect.callback<Resp, E | InvalidRequest | WorkerCrash>((resume) => {
        if (deathReason !== undefined) return resume(crashed())
        const call = runFork(headers === undefined ? client.Run(payload) : client.Run(payload, { headers }))
        calls.add(call)
        waiting.add(resume)
        call.addObserver((exit) => {
          calls.delete(call)
          if (!waiting.has(resume)) return
          forget(resume)
          resume(conclude(exit))
        })
        // The caller left: the rpc client tells the runner, which interrupts the handler.
        return Effect.sync(() => {
          forget(resume)
          call.interruptUnsafe()
        })
      })

    let nextStream = 0
    /**
     * A streamed call: the runner's chunks go to the caller's sink, within its
     * window (a chunk beyond it, after the outcome, or that does not decode is
     * a protocol fault); the outcome, the stream's last part, ends the call.
     */
    const sendStream = (payload: unknown, headers: Record<string, string> | undefined, sink: CallerSink) =>
      Effect.callback<Resp, E | InvalidRequest | WorkerCrash>((resume) => {
        if (deathReason !== undefined) return resume(crashed())
        const stream = nextStream++
        let credit = sink.window
        let final: Wire.Outcome | undefined
        let left = false
        let ended = false
        let unacked = 0
        let acking = false
        const flushAcks: Effect.Effect<void> = Effect.suspend(() => {
          const n = unacked
          unacked = 0
          return Effect.ignore(client.Ack({ stream, n }, { discard: true }))
        }).pipe(
          Effect.repeat({ while: () => unacked > 0 && !left && !ended && deathReason === undefined }),
          Effect.ensuring(
            Effect.sync(() => {
              acking = false
            })
          )
        )
        sink.onTake = () => {
          if (left || ended || final !== undefined || deathReason !== undefined) return
          credit++
          unacked++
          if (acking) return
          acking = true
          runFork(flushAcks)
        }
        const fault = (what: string) => {
          misdecoded(`${what} (stream ${stream})`)
        }
        const take = (part: Wire.Part) => {
          if (deathReason !== undefined) return
          if (final !== undefined) return fault("a part of a stream after its outcome")
          if (part._tag !== "Chunk") {
            final = part
            return
          }
          if (credit <= 0) return fault(`a chunk beyond the stream's window of ${sink.window}`)
          credit--
          if (left) return
          const decoded = decoders.decodeResponse.run(part.value)
          if (decoded._tag === "Failure") {
            const error = Cause.findErrorOption(decoded.cause)
            return fault(
              error._tag === "Some"
                ? `a chunk that does not decode: ${schemaReason(error.value)}`
                : "a chunk whose schema decodes asynchronously, which streams do not support"
            )
          }
          const values = decoded.value as unknown
          if (!Array.isArray(values) || values.length === 0) return fault("a chunk that is not a non-empty array")
          sink.push(values as [unknown, ...Array<unknown>])
        }
        const parts = client.Stream(
          { request: payload, stream, window: sink.window },
          { streamBufferSize: sink.window + 2, ...(headers === undefined ? {} : { headers }) }
        )
        const call = runFork(
          Stream.runForEachArray(parts, (array) =>
            Effect.sync(() => {
              for (const part of array) take(part)
            })
          )
        )
        let stopped: (() => void) | undefined
        calls.add(call)
        waiting.add(resume)
        call.addObserver((exit) => {
          ended = true
          calls.delete(call)
          if (stopped !== undefined) {
            stopping.delete(stopped)
            stopped()
          }
          if (!waiting.has(resume)) return
          forget(resume)
          if (Exit.isFailure(exit)) return resume(conclude(exit as Exit.Exit<never, RpcClientError.RpcClientError>))
          if (final !== undefined) return resume(conclude(Exit.succeed(final)))
          resume(misdecoded(`a stream that ended without its outcome (stream ${stream})`))
        })
        // The caller left: the runner interrupts the handler, and its end of the stream confirms it.
        return Effect.callback<void>((done) => {
          left = true
          forget(resume)
          if (ended || deathReason !== undefined) return done(Effect.void)
          stopped = () => done(Effect.void)
          stopping.add(stopped)
          runFork(Effect.ignore(client.Cancel({ stream }, { discard: true })))
        })
      })

    const limit = settings.maxFrameBytes - envelopeBytes
    const run = (request: Req): Effect.Effect<Resp, E | InvalidRequest | WorkerCrash> =>
      Effect.withFiber((fiber) => {
        if (deathReason !== undefined) return crashed()
        // A traced dispatch's span goes with the request: the runner runs the handler under it.
        const span = fiber.getRef(DispatchSpan)
        const headers = span === undefined ? undefined : { [Wire.traceHeader]: Wire.traceParent(traceContext(span)) }
        return Effect.matchEffect(encodeRequest(request), {
          onFailure: (error) => invalid(`the request does not match its schema: ${schemaReason(error)}`),
          onSuccess: (payload) => {
            const over = overLimit(payload, limit)
            if (over !== undefined) {
              return invalid(
                `the request is ${over} bytes on the wire, over the limit of ${settings.maxFrameBytes} (maxFrameBytes)`
              )
            }
            const sink = callerSinkOf(request)
            return sink === undefined ? send(payload, headers) : sendStream(payload, headers, sink)
          }
        })
      })

    yield* Effect.logDebug("remote worker connected").pipe(Effect.annotateLogs({ runner: label }))
    const incarnation: Incarnation<Req, Resp, E | InvalidRequest> = {
      run,
      exited: Deferred.await(exited),
      restartOnTimeout: false,
      settlesOnDeath: true
    }
    return incarnation
  })
