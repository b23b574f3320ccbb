/**
 * The parent side of the wire, for every out-of-process kind: request ids,
 * the table of requests in flight, the concurrency limit, cancellation with
 * its grace period, the ready handshake, the watch on a silent child, and the
 * death of the child.
 *
 * It is transport-agnostic and synchronous at its edges: a transport hands it
 * what the child sent (`receive`, `receiveBatch`, `receiveLine`) and tells it
 * when the child is gone (`die`); it hands the transport what to send
 * (`send`), which the transport may hold until the end of the turn. Nothing
 * it is given can make it throw: anything unexpected is a protocol fault,
 * which kills the incarnation with a reason. Every request settles exactly
 * once: with the child's answer, or with `WorkerCrash` when the child dies.
 *
 * A request costs no fiber and no Deferred: its caller's fiber waits in an
 * `Effect.callback`, which the answer resumes with its final outcome.
 */

import type { Tracer } from "effect"
import { Cause, Clock, Deferred, Duration, Effect, Exit, Queue } from "effect"
import type * as Schema from "effect/Schema"
import * as Protocol from "../Protocol.ts"
import { InvalidRequest } from "../WireError.ts"
import {
  CancelIgnored,
  type CrashReason,
  Defect,
  Exited,
  ProtocolFault,
  StartFailed,
  Unresponsive,
  WorkerCrash
} from "../WorkerError.ts"
import { reportedCrash, settleAnswer } from "./answer.ts"
import { type Codec, type Conversion, decoding, encoding, needsEffect, schemaReason } from "./codec.ts"
import { describe } from "./describe.ts"
import { toJsonWire } from "./jsonWire.ts"
import { type BareOperation, bareOperations } from "./operations.ts"
import { expand } from "./shortForm.ts"
import { type CallerSink, callerSinkOf } from "./streams.ts"
import { DispatchSpan, traceContext, withDispatchSpan } from "./tracing.ts"

export type { Codec } from "./codec.ts"

/** How payloads are turned into wire values and back, for one transport. */
export interface Codecs<Resp, E> {
  readonly encodeRequest: Conversion<unknown>
  readonly decodeResponse: Conversion<Resp>
  readonly decodeError: Conversion<E>
  /**
   * The request schema is a group's (see `operations.ts`): its operations
   * that may travel without the envelope, by tag. A call of one goes to a
   * child whose `Ready` says `operations` as its tag and its own payload, and
   * its answer is its own value or error.
   */
  readonly operations?: ReadonlyMap<string, OperationCodecs> | undefined
}

/** How the payload, the answer and the domain error of one operation's calls cross, for one transport. */
export interface OperationCodecs {
  readonly tag: string
  readonly encodePayload: Conversion<unknown>
  readonly decodeResponse: Conversion<any>
  readonly decodeError: Conversion<any>
}

/**
 * The codecs of the operations of the group whose request schema is
 * `request`, each made by `make` from its schemas; `undefined` for a schema
 * that is no group's.
 */
const operationCodecs = (
  request: unknown,
  make: (operation: BareOperation) => OperationCodecs
): ReadonlyMap<string, OperationCodecs> | undefined => {
  const operations = bareOperations(request)
  return operations === undefined ? undefined : new Map(operations.map((operation) => [operation.tag, make(operation)]))
}

/**
 * Codecs that keep the schemas' encoded form (structured clone keeps dates,
 * maps, typed arrays); requests, and a group's payloads, encoded by `encode`.
 */
export const cloneCodecs = <Req, Resp, E>(
  request: Codec<Req>,
  response: Codec<Resp>,
  error: Codec<E>,
  encode: (schema: Codec<any>) => Conversion<unknown> = encoding
): Codecs<Resp, E> => ({
  encodeRequest: encode(request),
  decodeResponse: decoding(response),
  decodeError: decoding(error),
  operations: operationCodecs(request, (operation) => ({
    tag: operation.tag,
    encodePayload: encode(operation.payload as Codec<unknown>),
    decodeResponse: decoding(operation.success as Codec<unknown>),
    decodeError: decoding(operation.error as Codec<unknown>)
  }))
})

/** Codecs whose wire values are JSON values (bytes as base64, `Transferable` ones included: see jsonWire.ts). */
export const jsonCodecs = <Req, Resp, E>(
  request: Codec<Req>,
  response: Codec<Resp>,
  error: Codec<E>
): Codecs<Resp, E> => ({
  encodeRequest: encoding(toJsonWire(request)),
  decodeResponse: decoding(toJsonWire(response)),
  decodeError: decoding(toJsonWire(error)),
  operations: operationCodecs(request, (operation) => ({
    tag: operation.tag,
    encodePayload: encoding(toJsonWire(operation.payload as Codec<unknown>)),
    decodeResponse: decoding(toJsonWire(operation.success as Codec<unknown>)),
    decodeError: decoding(toJsonWire(operation.error as Codec<unknown>))
  }))
})

/** What a look at the child's process says, for a child that went silent. */
export type ProcessState = "stopped" | "running" | "unknown"

export interface ClientOptions<Resp, E> {
  /** Names the child in crash reasons, such as `"process 1234"`. */
  readonly label: string
  readonly codecs: Codecs<Resp, E>
  /** Requests the child holds at most at once; more wait in the parent. */
  readonly concurrency: number
  /** How long a cancelled request may take to be acknowledged. */
  readonly cancelGrace: Duration.Duration
  /**
   * How long a child that promised heartbeats may stay silent while idle;
   * also when a silent child's process is looked at. `undefined`: never.
   */
  readonly silenceLimit?: Duration.Duration | undefined
  /** Looks at the child's process (is it stopped?). */
  readonly probe?: (() => ProcessState) | undefined
  /** Kills a stopped child at once. */
  readonly killStopped?: (() => void) | undefined
  /** The child's `Ready`, accepted: the transport may switch to a frame it offers, before anything else is sent. */
  readonly onReady?: ((ready: Protocol.Ready) => void) | undefined
  /** The child reported its memory, in bytes (see `memoryReports.ts`). */
  readonly onMemory?: ((bytes: number) => void) | undefined
  /** A thread reports a process it started, or its exit. */
  readonly onChildProcess?: ((message: Protocol.ChildStarted | Protocol.ChildExited) => void) | undefined
  /**
   * Sends one message to the child, now or at the end of the turn. Returns
   * why it could not be sent (too large, not serialisable), in which case
   * nothing was sent. Failures of the channel itself (a broken pipe) are
   * reported with `die`; a request the transport finds it cannot send later
   * is handed back with `refuse`.
   */
  readonly send: (message: Protocol.ToChild) => string | undefined
}

export interface Client<Req, Resp, E> {
  /** Sends one request and awaits its answer; interrupting it sends a cancel. */
  readonly run: (request: Req) => Effect.Effect<Resp, E | InvalidRequest | WorkerCrash>
  /**
   * Sends one request; `done` is called exactly once with its outcome (an
   * `Exit`, or an effect for a schema that decodes asynchronously). The
   * returned function cancels it: `done` then comes with an interruption once
   * the child has confirmed the cancel, or with the crash if the child dies
   * first, so that whoever holds the request's slot keeps it until then.
   */
  readonly start: (
    request: Req,
    done: (outcome: Effect.Effect<Resp, E | InvalidRequest | WorkerCrash>) => void,
    span?: Tracer.AnySpan | undefined
  ) => () => void
  /** Completes with the crash once the child is dead or must be replaced. */
  readonly exited: Effect.Effect<WorkerCrash>
  /** Succeeds once the child sent `Ready`; fails if it dies first or takes longer than `timeout`. */
  readonly awaitReady: (timeout: Duration.Duration) => Effect.Effect<void, WorkerCrash>
  /** Kills incarnations that ignore a cancel. Fork it in the incarnation's scope. */
  readonly reaper: Effect.Effect<never>
  /** Finds a child that went silent (see `silenceLimit`). Fork it in the incarnation's scope. */
  readonly watchdog: Effect.Effect<void>
  /** A message the child sent, as a value. */
  readonly receive: (message: unknown) => void
  /** A batch of messages a thread posted: an array of them, successes in their short form. */
  readonly receiveBatch: (batch: unknown) => void
  /** One line of the child's output. */
  readonly receiveLine: (line: string) => void
  /** The child gave a sign of life that is not a whole message yet (some bytes). */
  readonly heard: () => void
  /** The transport could not send request `id` after all: its caller gets `InvalidRequest`. */
  readonly refuse: (id: number, reason: string) => void
  /** The child is dead or must be replaced, for `reason`; the first reason wins. */
  readonly die: (reason: CrashReason) => void
  readonly deathReason: () => CrashReason | undefined
  /** Requests sent and not yet answered (including cancelled ones). */
  readonly inFlight: () => number
  /** Whether the child's `Ready` said it reads requests in their short form (a thread's batches). */
  readonly shortRequests: () => boolean
}

/**
 * A request's life in the client: waiting for a permit in the parent, on the
 * child, left by its caller before it was sent, or over (answered, refused,
 * or failed by the death of the child).
 */
const State = { Queued: 0, Sent: 1, Left: 2, Done: 3 } as const
type State = (typeof State)[keyof typeof State]

interface Entry<A, E> {
  id: number
  state: State
  /** Its caller left and a cancel was sent. */
  cancelled: boolean
  readonly payload: unknown
  readonly resume: (outcome: Effect.Effect<A, E>) => void
  /** Started with `start`: told of its end even after a cancel. */
  readonly always: boolean
  /** The span it was dispatched under, if traced: the child runs its handler under it. */
  readonly trace: Protocol.TraceContext | undefined
  /** A streamed call's sink: the child's chunks go there (see `streams.ts`). */
  readonly sink: CallerSink | undefined
  /** Chunks the child may still send: its window, less the chunks sent, plus those read. */
  credit: number
  /** It calls this operation without the envelope: its payload is the operation's, and so is its answer. */
  readonly operation: OperationCodecs | undefined
}

const cancelledExit = Exit.failCause(Cause.interrupt())
/** A `Success` in its short form, made whole. */
const successOf = (id: number, value: unknown): Protocol.Success => ({ _tag: "Success", id, value })
const noop = () => {}

interface CancelDeadline {
  readonly id: number
  readonly entry: Entry<unknown, unknown>
  readonly at: number
}

/** Makes the parent's side of the wire for one incarnation; the transport feeds it. */
export const make = <Req, Resp, E>(options: ClientOptions<Resp, E>): Effect.Effect<Client<Req, Resp, E>> =>
  Effect.clockWith((clock) =>
    Effect.map(Queue.unbounded<CancelDeadline>(), (deadlines) => makeWith(options, deadlines, clock))
  )

const makeWith = <Req, Resp, E>(
  options: ClientOptions<Resp, E>,
  deadlines: Queue.Queue<CancelDeadline>,
  clock: Clock.Clock
): Client<Req, Resp, E> => {
  type Outcome = E | InvalidRequest | WorkerCrash
  type Pending = Entry<Resp, Outcome>
  const { label, codecs, send } = options
  const graceMillis = Duration.toMillis(options.cancelGrace)
  const silenceMillis = options.silenceLimit === undefined ? undefined : Duration.toMillis(options.silenceLimit)
  const pending = new Map<number, Pending>()
  const exited = Deferred.makeUnsafe<WorkerCrash>()
  const ready = Deferred.makeUnsafe<void, WorkerCrash>()
  let nextId = 1
  let isReady = false
  let heartbeats = false
  let shortRequests = false
  /** The child's protocol version, from its `Ready`. */
  let protocol = Protocol.version
  /** Whether the child reads a request's `operation` (its `Ready` says so). */
  let operations = false
  /** Counts the signs of life of the child, for the watchdog. */
  let signs = 0
  let deathReason: CrashReason | undefined

  // The concurrency limit. A permit is held from sending a request until its
  // final answer, even when its caller left: a cancelled request still
  // occupies the child until the child says it stopped. Requests without a
  // permit wait in `queue`, in order; those whose caller left are skipped.
  let free = options.concurrency
  let queue: Array<Pending> = []
  let queueHead = 0

  const crash = (reason: CrashReason) => new WorkerCrash({ reason })
  const crashed = (): Exit.Exit<never, WorkerCrash> =>
    Exit.fail(crash(deathReason ?? new Exited({ message: `${label} is gone` })))

  const die = (reason: CrashReason): void => {
    if (deathReason !== undefined) return
    deathReason = reason
    const error = crash(reason)
    Deferred.doneUnsafe(exited, Exit.succeed(error))
    Deferred.doneUnsafe(ready, Exit.fail(error))
    const failed = [...pending.values()]
    pending.clear()
    for (let i = queueHead; i < queue.length; i++) if (queue[i]!.state === State.Queued) failed.push(queue[i]!)
    queue = []
    queueHead = 0
    const outcome = Exit.fail(error)
    for (const entry of failed) {
      entry.state = State.Done
      entry.resume(outcome)
    }
  }

  const fault = (what: string) => die(new ProtocolFault({ message: `protocol error: ${label} ${what}` }))

  /** `send`, with a throw turned into a refusal. */
  const sendSafely = (message: Protocol.ToChild): string | undefined => {
    try {
      return send(message)
    } catch (error) {
      return `the request could not be sent: ${describe(error)}`
    }
  }

  /** Sends a request that holds a permit. */
  const dispatch = (entry: Pending): void => {
    const id = nextId++
    entry.id = id
    entry.state = State.Sent
    pending.set(id, entry)
    const trace = entry.trace
    if (entry.sink !== undefined) {
      dispatchStream(id, entry, entry.sink)
      return
    }
    const operation = entry.operation
    const refused = sendSafely(
      operation !== undefined
        ? trace === undefined
          ? { _tag: "Request", id, payload: entry.payload, operation: operation.tag }
          : { _tag: "Request", id, payload: entry.payload, operation: operation.tag, trace }
        : trace === undefined
          ? { _tag: "Request", id, payload: entry.payload }
          : { _tag: "Request", id, payload: entry.payload, trace }
    )
    if (refused !== undefined) refuseEntry(id, entry, refused)
  }

  /** Sends a streamed call with its window; each chunk its caller reads is acknowledged. */
  const dispatchStream = (id: number, entry: Pending, sink: CallerSink): void => {
    if (protocol < 3) {
      refuseEntry(id, entry, `${label} speaks protocol version ${protocol}, which has no streams`)
      return
    }
    entry.credit = sink.window
    sink.onTake = () => {
      if (entry.state !== State.Sent || entry.cancelled || deathReason !== undefined) return
      entry.credit++
      sendSafely({ _tag: "Ack", id, n: 1 })
    }
    const message: Protocol.Request = { _tag: "Request", id, payload: entry.payload, window: sink.window }
    const refused = sendSafely(entry.trace === undefined ? message : { ...message, trace: entry.trace })
    if (refused !== undefined) refuseEntry(id, entry, refused)
  }

  /** A chunk of a streamed call: to its sink, within its window. */
  const chunk = (message: Protocol.Chunk) => {
    const id = message.id
    const entry = pending.get(id)
    if (entry === undefined) return fault(`sent a chunk of request ${id}, which is not in flight`)
    const sink = entry.sink
    if (sink === undefined) return fault(`sent a chunk of request ${id}, which is not a stream`)
    if (entry.credit <= 0) return fault(`sent a chunk of request ${id} beyond its window of ${sink.window}`)
    entry.credit--
    if (entry.cancelled) return
    const decoded = codecs.decodeResponse.run(message.value)
    if (Exit.isFailure(decoded)) {
      const error = Cause.findErrorOption(decoded.cause)
      return fault(
        error._tag === "Some"
          ? `sent a chunk of request ${id} that does not decode: ${schemaReason(error.value)}`
          : `sent a chunk of request ${id} whose schema decodes asynchronously, which streams do not support`
      )
    }
    const values = decoded.value as unknown
    if (!Array.isArray(values) || values.length === 0) {
      return fault(`sent a chunk of request ${id} that is not a non-empty array`)
    }
    sink.push(values as [unknown, ...Array<unknown>])
  }

  const refuseEntry = (id: number, entry: Pending, reason: string) => {
    pending.delete(id)
    entry.state = State.Done
    releasePermit()
    entry.resume(Exit.fail(new InvalidRequest({ reason })))
  }

  const refuse = (id: number, reason: string): void => {
    const entry = pending.get(id)
    if (entry !== undefined && deathReason === undefined) refuseEntry(id, entry, reason)
  }

  const releasePermit = (): void => {
    while (queueHead < queue.length) {
      const next = queue[queueHead]!
      queue[queueHead++] = undefined as never
      if (queueHead === queue.length) {
        queue = []
        queueHead = 0
      }
      if (next.state === State.Queued) {
        dispatch(next)
        return
      }
    }
    free++
  }

  /** The caller left: a queued request leaves the line; a sent one is cancelled, with `cancelGrace` to say it stopped. */
  const leaveNow = (entry: Pending): void => {
    if (entry.state === State.Queued) {
      entry.state = State.Left
      return
    }
    if (entry.state !== State.Sent || entry.cancelled || deathReason !== undefined) return
    entry.cancelled = true
    sendSafely({ _tag: "Cancel", id: entry.id })
    Queue.offerUnsafe(deadlines, {
      id: entry.id,
      entry: entry as Entry<unknown, unknown>,
      at: clock.currentTimeMillisUnsafe() + graceMillis
    })
  }
  const leave = (entry: Pending) => Effect.sync(() => leaveNow(entry))

  /** An answer whose payload does not decode: the child's fault, and a crash for the caller. */
  const misdecoded = (what: string) => {
    fault(`sent ${what}`)
    return crashed()
  }

  const settle = (message: Protocol.FromChild, entry: Pending): Effect.Effect<Resp, Outcome> => {
    switch (message._tag) {
      case "Success":
      case "Failure":
      case "Rejected":
        return settleAnswer(message, entry.operation ?? codecs, "the worker", misdecoded)
      default:
        // A crash, or a cancel nobody asked for: `handle` has recorded the death.
        return crashed()
    }
  }

  const handle = (message: Protocol.FromChild) => {
    switch (message._tag) {
      case "Heartbeat":
        if (message.memory !== undefined) options.onMemory?.(message.memory)
        return
      case "Ready":
        if (isReady) return fault("sent Ready twice")
        if (!(message.protocol >= Protocol.oldestVersion && message.protocol <= Protocol.version)) {
          return fault(
            `speaks protocol version ${message.protocol}, expected ${Protocol.oldestVersion} to ${Protocol.version}`
          )
        }
        protocol = message.protocol
        if (message.heartbeat !== undefined) {
          if (silenceMillis !== undefined && !(message.heartbeat > 0 && message.heartbeat < silenceMillis)) {
            return fault(
              `promised a heartbeat every ${message.heartbeat} ms, not within the silence limit of ${silenceMillis} ms`
            )
          }
          heartbeats = true
        }
        shortRequests = message.shortRequests === true
        operations = message.operations === true
        isReady = true
        options.onReady?.(message)
        Deferred.doneUnsafe(ready, Exit.void)
        return
      case "ChildStarted":
      case "ChildExited":
        options.onChildProcess?.(message)
        return
    }
    if (!isReady) return fault(`sent ${message._tag} for request ${message.id} before Ready`)
    if (message._tag === "Chunk") return chunk(message)
    const entry = pending.get(message.id)
    if (entry === undefined) return fault(`answered request ${message.id}, which is not in flight`)
    pending.delete(message.id)
    entry.state = State.Done
    // Whether or not its caller is still there, a crash is the child's.
    if (message._tag === "Crash") die(reportedCrash(message.reason))
    // Nobody cancelled it: the handler interrupted itself.
    else if (message._tag === "Cancelled" && !entry.cancelled)
      die(new Defect({ message: "the handler was interrupted" }))
    if (deathReason === undefined) releasePermit()
    if (!entry.cancelled) entry.resume(settle(message, entry))
    else if (entry.always) entry.resume(message._tag === "Crash" ? crashed() : cancelledExit)
  }

  /** After the death, only the processes a thread started still matter: they must be stopped. */
  const afterDeath = (value: unknown) => {
    const tag = typeof value === "object" && value !== null ? (value as { _tag?: unknown })._tag : undefined
    if (tag !== "ChildStarted" && tag !== "ChildExited") return
    const decoded = Protocol.decodeFromChild(value)
    if (decoded._tag === "Message") handle(decoded.message)
  }

  const receive = (value: unknown) => {
    if (deathReason !== undefined) return afterDeath(value)
    signs++
    const decoded = Protocol.decodeFromChild(value)
    if (decoded._tag === "Fault") return fault(`sent ${decoded.reason}`)
    handle(decoded.message)
  }

  const receiveBatch = (batch: unknown) => {
    if (!Array.isArray(batch)) {
      if (deathReason !== undefined) return
      // A child of protocol 1 posts its Ready alone: its version is the better reason.
      const lone = typeof batch === "object" && batch !== null ? (batch as { _tag?: unknown; protocol?: unknown }) : {}
      const known = typeof lone.protocol === "number" && lone.protocol >= Protocol.oldestVersion
      if (!isReady && lone._tag === "Ready" && !(known && (lone.protocol as number) <= Protocol.version)) {
        return receive(batch)
      }
      return fault("sent a value that is not a batch (an array) of protocol messages")
    }
    const malformed = expand(batch, successOf, receive)
    if (malformed !== undefined && deathReason === undefined) fault(`sent ${malformed}`)
  }

  const receiveLine = (line: string) => {
    if (deathReason !== undefined) return
    signs++
    const parsed = Protocol.parseFromChild(line)
    if (parsed._tag === "Fault") return fault(`sent ${parsed.reason}`)
    handle(parsed.message)
  }

  const reaper: Effect.Effect<never> = Effect.forever(
    Effect.gen(function* () {
      const deadline = yield* Queue.take(deadlines)
      const now = yield* Clock.currentTimeMillis
      if (deadline.at > now) yield* Effect.sleep(deadline.at - now)
      if (deathReason === undefined && deadline.entry.state === State.Sent) {
        die(
          new CancelIgnored({ message: `${label} ignored the cancel of request ${deadline.id} for ${graceMillis} ms` })
        )
      }
    })
  ).pipe(Effect.catchCause(() => Effect.never)) as Effect.Effect<never>

  /**
   * Looks every `period` for news from the child. After `silenceLimit`
   * without any: a stopped process is killed; an idle child that promised
   * heartbeats is dead; a busy one (a long synchronous request blocks its
   * event loop) is trusted. A late look means the parent itself was held up:
   * the silence is counted again from there.
   */
  const watchdog: Effect.Effect<void> =
    silenceMillis === undefined
      ? Effect.void
      : Effect.gen(function* () {
          const period = Math.max(5, Math.min(200, Math.floor(silenceMillis / 8)))
          let seen = signs
          let last = yield* Clock.currentTimeMillis
          let quietSince = last
          while (deathReason === undefined) {
            yield* Effect.sleep(period)
            const now = yield* Clock.currentTimeMillis
            const late = now - last > 2 * period + 50
            last = now
            if (late || !isReady || signs !== seen) {
              seen = signs
              quietSince = now
              continue
            }
            const quiet = now - quietSince
            if (quiet < silenceMillis) continue
            if (options.probe?.() === "stopped") {
              options.killStopped?.()
              return die(
                new Unresponsive({
                  message: `${label} stopped responding for ${quiet} ms: its process is stopped; it was killed`
                })
              )
            }
            if (heartbeats && pending.size === 0) {
              return die(
                new Unresponsive({ message: `${label} stopped responding: no heartbeat for ${quiet} ms while idle` })
              )
            }
          }
        })

  /** The operation `request` calls without the envelope: one of the group's, to a child that reads it. */
  const operationOf = (request: unknown): OperationCodecs | undefined => {
    const table = codecs.operations
    if (table === undefined || !operations) return undefined
    const tag = (request as { readonly _tag?: unknown } | null)?._tag
    return typeof tag === "string" ? table.get(tag) : undefined
  }

  /** What `encodeRequest` encodes of `request`: its payload, for a call of `operation`. */
  const encodedPart = (request: Req, operation: OperationCodecs | undefined): unknown =>
    operation === undefined ? request : (request as { readonly payload?: unknown }).payload

  /** Sends `payload` (a request encoded), now or when a permit frees up. */
  const enter = (
    payload: unknown,
    resume: (outcome: Effect.Effect<Resp, Outcome>) => void,
    always: boolean,
    trace: Protocol.TraceContext | undefined,
    sink: CallerSink | undefined,
    operation: OperationCodecs | undefined
  ) => {
    const entry: Pending = {
      id: 0,
      state: State.Queued,
      cancelled: false,
      payload,
      resume,
      always,
      trace,
      sink,
      credit: 0,
      operation
    }
    if (free > 0) {
      free--
      dispatch(entry)
    } else {
      queue.push(entry)
    }
    return entry
  }

  const start = (
    request: Req,
    done: (outcome: Effect.Effect<Resp, Outcome>) => void,
    span?: Tracer.AnySpan | undefined
  ): (() => void) => {
    if (deathReason !== undefined) {
      done(crashed())
      return noop
    }
    const operation = operationOf(request)
    const encoded = (operation === undefined ? codecs.encodeRequest : operation.encodePayload).run(
      encodedPart(request, operation)
    )
    if (Exit.isFailure(encoded)) {
      if (!needsEffect(encoded)) {
        const error = Cause.findErrorOption(encoded.cause)
        done(error._tag === "Some" ? invalid(error.value) : Exit.failCause(encoded.cause as Cause.Cause<never>))
      } else {
        // A schema that encodes asynchronously: the caller runs the request.
        done(span === undefined ? run(request) : withDispatchSpan(run(request), span))
      }
      return noop
    }
    const entry = enter(
      encoded.value,
      done,
      true,
      span === undefined ? undefined : traceContext(span),
      callerSinkOf(request),
      operation
    )
    return () => {
      if (entry.state === State.Queued) {
        entry.state = State.Left
        done(cancelledExit)
      } else {
        leaveNow(entry)
      }
    }
  }

  const submit = (
    payload: unknown,
    trace: Protocol.TraceContext | undefined,
    sink: CallerSink | undefined,
    operation: OperationCodecs | undefined
  ): Effect.Effect<Resp, Outcome> =>
    Effect.callback<Resp, Outcome>((resume) => {
      if (deathReason !== undefined) return resume(crashed())
      return leave(enter(payload, resume, false, trace, sink, operation))
    })

  const invalid = (error: Schema.SchemaError) =>
    Exit.fail(new InvalidRequest({ reason: `the request does not match its schema: ${schemaReason(error)}` }))

  const run = (request: Req): Effect.Effect<Resp, Outcome> =>
    Effect.withFiber((fiber) => {
      if (deathReason !== undefined) return crashed()
      const span = fiber.getRef(DispatchSpan)
      const trace = span === undefined ? undefined : traceContext(span)
      const operation = operationOf(request)
      const encode = operation === undefined ? codecs.encodeRequest : operation.encodePayload
      const encoded = encode.run(encodedPart(request, operation))
      if (Exit.isSuccess(encoded)) return submit(encoded.value, trace, callerSinkOf(request), operation)
      if (!needsEffect(encoded)) {
        const error = Cause.findErrorOption(encoded.cause)
        return error._tag === "Some" ? invalid(error.value) : Exit.failCause(encoded.cause as Cause.Cause<never>)
      }
      return Effect.matchCauseEffect(encode.effect(encodedPart(request, operation)), {
        onSuccess: (payload) => submit(payload, trace, callerSinkOf(request), operation),
        onFailure: (cause): Effect.Effect<never, Outcome> => {
          const error = Cause.findErrorOption(cause)
          return error._tag === "Some" ? invalid(error.value) : Effect.failCause(cause as Cause.Cause<never>)
        }
      })
    })

  const awaitReady = (timeout: Duration.Duration): Effect.Effect<void, WorkerCrash> =>
    Deferred.await(ready).pipe(
      Effect.timeoutOrElse({
        duration: timeout,
        orElse: () =>
          Effect.suspend(() => {
            const timeoutMillis = Duration.toMillis(timeout)
            die(new StartFailed({ message: `${label} did not become ready within ${timeoutMillis} ms`, timeoutMillis }))
            return crashed()
          })
      })
    )

  return {
    run,
    start,
    exited: Deferred.await(exited),
    awaitReady,
    reaper,
    watchdog,
    receive,
    receiveBatch,
    receiveLine,
    heard: () => {
      signs++
    },
    refuse,
    die,
    deathReason: () => deathReason,
    inFlight: () => pending.size,
    shortRequests: () => shortRequests
  }
}
