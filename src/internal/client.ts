/**
 * The parent side of the wire, for every out-of-process kind: request ids,
 * the table of requests in flight, the concurrency limit, cancellation with
 * its grace period, the ready handshake, and the death of the child.
 *
 * It is transport-agnostic and synchronous at its edges: a transport hands it
 * what the child sent (`receive`, `receiveLine`) and tells it when the child
 * is gone (`die`); it hands the transport what to send (`send`). Nothing it is
 * given can make it throw: anything unexpected is a protocol fault, which
 * kills the incarnation with a reason. Every request settles exactly once:
 * with the child's answer, or with `WorkerCrash` when the child dies.
 */
import { Cause, Clock, Deferred, Duration, Effect, Exit, Queue, Schema } from "effect"
import * as Protocol from "../Protocol.ts"
import { InvalidRequest } from "../WireError.ts"
import { WorkerCrash } from "../WorkerError.ts"
import { describe } from "./describe.ts"

/** A schema usable on the wire: no services needed to encode or decode. */
export type Codec<A> = Schema.Codec<A, unknown, never, never>

/** How payloads are turned into wire values and back, for one transport. */
export interface Codecs<Req, Resp, E> {
  readonly encodeRequest: (request: Req) => Effect.Effect<unknown, Schema.SchemaError>
  readonly decodeResponse: (value: unknown) => Effect.Effect<Resp, Schema.SchemaError>
  readonly decodeError: (value: unknown) => Effect.Effect<E, Schema.SchemaError>
}

/** Codecs that keep the schemas' encoded form (structured clone keeps dates, maps, typed arrays). */
export const cloneCodecs = <Req, Resp, E>(
  request: Codec<Req>,
  response: Codec<Resp>,
  error: Codec<E>
): Codecs<Req, Resp, E> => ({
  encodeRequest: Schema.encodeEffect(request),
  decodeResponse: Schema.decodeUnknownEffect(response),
  decodeError: Schema.decodeUnknownEffect(error)
})

/** Codecs whose wire values are JSON values. */
export const jsonCodecs = <Req, Resp, E>(
  request: Codec<Req>,
  response: Codec<Resp>,
  error: Codec<E>
): Codecs<Req, Resp, E> =>
  cloneCodecs(Schema.toCodecJson(request), Schema.toCodecJson(response), Schema.toCodecJson(error))

export interface ClientOptions<Req, Resp, E> {
  /** Names the child in crash reasons, such as `"process 1234"`. */
  readonly label: string
  readonly codecs: Codecs<Req, Resp, E>
  /** Requests the child holds at most at once; more wait in the parent. */
  readonly concurrency: number
  /** How long a cancelled request may take to be acknowledged. */
  readonly cancelGrace: Duration.Duration
  /**
   * Sends one message to the child. Returns why it could not be sent (too
   * large, not serialisable), in which case nothing was sent. Failures of the
   * channel itself (a broken pipe) are reported with `die`.
   */
  readonly send: (message: Protocol.ToChild) => string | undefined
}

export interface Client<Req, Resp, E> {
  /** Sends one request and awaits its answer; interrupting it sends a cancel. */
  readonly run: (request: Req) => Effect.Effect<Resp, E | InvalidRequest | WorkerCrash>
  /** Completes with the crash once the child is dead or must be replaced. */
  readonly exited: Effect.Effect<WorkerCrash>
  /** Succeeds once the child sent `Ready`; fails if it dies first or takes longer than `timeout`. */
  readonly awaitReady: (timeout: Duration.Duration) => Effect.Effect<void, WorkerCrash>
  /** Kills incarnations that ignore a cancel. Fork it in the incarnation's scope. */
  readonly reaper: Effect.Effect<never>
  /** A message the child posted (threads) or a parsed line. */
  readonly receive: (message: unknown) => void
  /** One line of the child's output. */
  readonly receiveLine: (line: string) => void
  /** The child is dead or must be replaced, for `reason`; the first reason wins. */
  readonly die: (reason: string) => void
  readonly deathReason: () => string | undefined
  /** Requests sent and not yet answered (including cancelled ones). */
  readonly inFlight: () => number
}

type Reply = Protocol.Success | Protocol.Failure | Protocol.Crash | Protocol.Rejected | Protocol.Cancelled | Died

interface Died {
  readonly _tag: "Died"
}

const died: Died = { _tag: "Died" }

interface Pending {
  readonly reply: Deferred.Deferred<Reply>
  /** Its caller left and a cancel was sent. */
  cancelled: boolean
}

interface CancelDeadline {
  readonly id: number
  readonly pending: Pending
  readonly at: number
}

const schemaReason = (error: Schema.SchemaError): string => error.message.replaceAll("\n", " ")

export const make = <Req, Resp, E>(options: ClientOptions<Req, Resp, E>): Effect.Effect<Client<Req, Resp, E>> =>
  Effect.map(Queue.unbounded<CancelDeadline>(), (deadlines) => makeWith(options, deadlines))

const makeWith = <Req, Resp, E>(
  options: ClientOptions<Req, Resp, E>,
  deadlines: Queue.Queue<CancelDeadline>
): Client<Req, Resp, E> => {
  const { label, codecs, send } = options
  const graceMillis = Duration.toMillis(options.cancelGrace)
  const pending = new Map<number, Pending>()
  const exited = Deferred.makeUnsafe<WorkerCrash>()
  const ready = Deferred.makeUnsafe<void, WorkerCrash>()
  let nextId = 1
  let isReady = false
  let deathReason: string | undefined

  // The concurrency limit. A permit is held from sending a request until its
  // final answer, even when its caller left: a cancelled request still
  // occupies the child until the child says it stopped.
  let free = options.concurrency
  const waiters: Array<Deferred.Deferred<void>> = []
  const releasePermit = () => {
    const next = waiters.shift()
    if (next === undefined) free++
    else Deferred.doneUnsafe(next, Exit.void)
  }
  const acquirePermit: Effect.Effect<void> = Effect.suspend(() => {
    if (free > 0) {
      free--
      return Effect.void
    }
    const waiter = Deferred.makeUnsafe<void>()
    waiters.push(waiter)
    return Effect.onInterrupt(Deferred.await(waiter), () =>
      Effect.sync(() => {
        const index = waiters.indexOf(waiter)
        // Still waiting: leave the line. Already handed a permit: give it on.
        if (index >= 0) waiters.splice(index, 1)
        else releasePermit()
      })
    )
  })

  const crash = (reason: string) => new WorkerCrash({ reason })

  const die = (reason: string): void => {
    if (deathReason !== undefined) return
    deathReason = reason
    const error = crash(reason)
    Deferred.doneUnsafe(exited, Exit.succeed(error))
    Deferred.doneUnsafe(ready, Exit.fail(error))
    for (const entry of pending.values()) Deferred.doneUnsafe(entry.reply, Exit.succeed(died))
    pending.clear()
    // Waiters wake up, see the death and fail.
    for (const waiter of waiters.splice(0)) Deferred.doneUnsafe(waiter, Exit.void)
  }

  const fault = (what: string) => die(`protocol error: ${label} ${what}`)

  const handle = (message: Protocol.FromChild): void => {
    if (message._tag === "Ready") {
      if (isReady) {
        fault("sent Ready twice")
        return
      }
      if (message.protocol !== Protocol.version) {
        fault(`speaks protocol version ${message.protocol}, expected ${Protocol.version}`)
        return
      }
      isReady = true
      Deferred.doneUnsafe(ready, Exit.void)
      return
    }
    if (!isReady) {
      fault(`sent ${message._tag} for request ${message.id} before Ready`)
      return
    }
    const entry = pending.get(message.id)
    if (entry === undefined) {
      fault(`answered request ${message.id}, which is not in flight`)
      return
    }
    pending.delete(message.id)
    // Whether or not its caller is still there, a crash is the child's. (First:
    // completing a Deferred may resume its waiter at once.)
    if (message._tag === "Crash") die(message.reason)
    // Nobody cancelled it: the handler interrupted itself.
    else if (message._tag === "Cancelled" && !entry.cancelled) die("the handler was interrupted")
    releasePermit()
    Deferred.doneUnsafe(entry.reply, Exit.succeed(message))
  }

  const receive = (value: unknown): void => {
    if (deathReason !== undefined) return
    const decoded = Protocol.decodeFromChild(value)
    if (decoded._tag === "Fault") {
      fault(`sent ${decoded.reason}`)
      return
    }
    handle(decoded.message)
  }

  const receiveLine = (line: string): void => {
    if (deathReason !== undefined) return
    const parsed = Protocol.parseFromChild(line)
    if (parsed._tag === "Fault") {
      fault(`sent ${parsed.reason}`)
      return
    }
    handle(parsed.message)
  }

  /** The caller left: ask the child to stop, and give it `cancelGrace` to say it did. */
  const cancel = (id: number, entry: Pending) =>
    Effect.clockWith((clock) =>
      Effect.sync(() => {
        if (deathReason !== undefined || Deferred.isDoneUnsafe(entry.reply)) return
        entry.cancelled = true
        sendSafely({ _tag: "Cancel", id })
        Queue.offerUnsafe(deadlines, { id, pending: entry, at: clock.currentTimeMillisUnsafe() + graceMillis })
      })
    )

  const reaper: Effect.Effect<never> = Effect.forever(
    Effect.gen(function* () {
      const deadline = yield* Queue.take(deadlines)
      const now = yield* Clock.currentTimeMillis
      if (deadline.at > now) yield* Effect.sleep(deadline.at - now)
      if (deathReason === undefined && !Deferred.isDoneUnsafe(deadline.pending.reply)) {
        die(`${label} ignored the cancel of request ${deadline.id} for ${graceMillis} ms`)
      }
    })
  ).pipe(Effect.catchCause(() => Effect.never)) as Effect.Effect<never>

  const crashed = () => Effect.fail(crash(deathReason ?? `${label} is gone`))

  /** Decodes a payload of a final answer; a payload that does not decode is the child's fault. */
  const decodeOrDie = <A>(decode: Effect.Effect<A, Schema.SchemaError>, what: string) =>
    Effect.catchTag(decode, "SchemaError", (error) =>
      Effect.suspend(() => {
        fault(`sent ${what} that does not match its schema: ${schemaReason(error)}`)
        return crashed()
      })
    )

  const settle = (reply: Reply): Effect.Effect<Resp, E | InvalidRequest | WorkerCrash> => {
    switch (reply._tag) {
      case "Success":
        return decodeOrDie(codecs.decodeResponse(reply.value), "a response")
      case "Failure":
        return Effect.flatMap(decodeOrDie(codecs.decodeError(reply.error), "an error"), Effect.fail)
      case "Rejected":
        return Effect.fail(new InvalidRequest({ reason: `the worker could not decode the request: ${reply.reason}` }))
      case "Crash":
      case "Cancelled":
      case "Died":
        // `handle` has already recorded the death.
        return crashed()
    }
  }

  const run = (request: Req): Effect.Effect<Resp, E | InvalidRequest | WorkerCrash> =>
    Effect.uninterruptibleMask((restore) =>
      Effect.gen(function* () {
        if (deathReason !== undefined) return yield* crashed()
        yield* restore(acquirePermit)
        if (deathReason !== undefined) return yield* crashed()
        // From here the permit is this request's until the child answers it.
        const encoded = yield* Effect.exit(restore(codecs.encodeRequest(request)))
        if (Exit.isFailure(encoded)) {
          releasePermit()
          const error = Cause.findErrorOption(encoded.cause)
          if (error._tag === "Some") {
            return yield* new InvalidRequest({
              reason: `the request does not match its schema: ${schemaReason(error.value)}`
            })
          }
          return yield* Effect.failCause(encoded.cause as Cause.Cause<never>)
        }
        if (deathReason !== undefined) return yield* crashed()
        const id = nextId++
        const entry: Pending = { reply: Deferred.makeUnsafe<Reply>(), cancelled: false }
        pending.set(id, entry)
        const refused = sendSafely({ _tag: "Request", id, payload: encoded.value })
        if (refused !== undefined) {
          pending.delete(id)
          releasePermit()
          return yield* new InvalidRequest({ reason: refused })
        }
        const reply = yield* restore(Deferred.await(entry.reply)).pipe(Effect.onInterrupt(() => cancel(id, entry)))
        return yield* restore(settle(reply))
      })
    )

  /** `send`, with a throw turned into a refusal. */
  const sendSafely = (message: Protocol.ToChild): string | undefined => {
    try {
      return send(message)
    } catch (error) {
      return `the request could not be sent: ${describe(error)}`
    }
  }

  const awaitReady = (timeout: Duration.Duration): Effect.Effect<void, WorkerCrash> =>
    Deferred.await(ready).pipe(
      Effect.timeoutOrElse({
        duration: timeout,
        orElse: () =>
          Effect.suspend(() => {
            die(`${label} did not become ready within ${Duration.toMillis(timeout)} ms`)
            return crashed()
          })
      })
    )

  return {
    run,
    exited: Deferred.await(exited),
    awaitReady,
    reaper,
    receive,
    receiveLine,
    die,
    deathReason: () => deathReason,
    inFlight: () => pending.size
  }
}
