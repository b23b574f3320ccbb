/**
 * Streamed operations: a call of an operation whose rpc's success is a
 * stream (`RpcSchema.Stream`) is still the pool's one request, in the
 * envelope `{ _tag, payload }`; beside its payload the envelope carries the
 * caller's sink, under a symbol key that no schema encodes. The worker's
 * side hands each chunk of the handler's stream to the sink, which takes it
 * when the window has room (a bounded queue of chunks, read by the caller's
 * `Stream`): a caller that stops reading suspends the producer. The request
 * ends when the handler's stream does (its answer is `undefined`), fails
 * with its error, or is interrupted when the caller's stream is closed, so
 * that it counts as one request in flight for the policies and the health
 * until then.
 *
 * The engine reads two things of it: a stream's run time says nothing of a
 * worker's latency (`Plan.stream`), and a request whose sink has taken a
 * chunk is not retried (`emitted`).
 */
import type { NonEmptyReadonlyArray } from "effect/Array"
import type * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import { InvalidRequest } from "../WireError.ts"
import { describe } from "./describe.ts"
import { HandlerMistake, shape } from "./handler.ts"

/** The key of a streamed call's sink in its envelope. */
export const sinkKey: unique symbol = Symbol.for("effect-worker-pool/Operation/StreamSink")

/** Where the worker's side of a streamed call puts its chunks. */
export interface Sink {
  /** Chunks taken so far. */
  emitted: number
  /** Takes a chunk, once the window has room. */
  readonly offer: (chunk: NonEmptyReadonlyArray<unknown>) => Effect.Effect<void>
}

/** The caller's sink: an out-of-process kind puts what the child sent, and hears of each chunk read. */
export interface CallerSink extends Sink {
  /** Chunks that may be in flight, produced and not yet read. */
  readonly window: number
  /** Puts a chunk now: the window has room for it (the child sends no more than its credit). */
  readonly push: (chunk: NonEmptyReadonlyArray<unknown>) => void
  /** Told when the caller reads a chunk (the kind acknowledges it to the child). */
  onTake: (() => void) | undefined
}

/** The tags of a runner handler's streamed operations, on the handler (see `operations.ts`). */
export const streamedKey: unique symbol = Symbol.for("effect-worker-pool/Operation/Streamed")

/** The streamed operations of a runner's handler, if it serves any. */
export const streamedOf = (handler: unknown): ReadonlySet<string> | undefined =>
  typeof handler === "function" ? (handler as { readonly [streamedKey]?: ReadonlySet<string> })[streamedKey] : undefined

/** The default window: chunks a stream may have in flight, produced and not yet read. */
export const defaultWindow = 16

/** The window an option asks for (the default when absent), or why it is not one. */
export const windowOf = (window: unknown): number | string =>
  window === undefined
    ? defaultWindow
    : typeof window === "number" && Number.isSafeInteger(window) && window >= 1
      ? window
      : `window must be a positive integer, got ${describe(window)}`

/** Whether `request` is a streamed call whose sink has taken a chunk (it must not run twice). */
export const emitted = (request: unknown): boolean => {
  const sink = (request as { readonly [sinkKey]?: Sink } | null)?.[sinkKey]
  return sink !== undefined && sink.emitted > 0
}

/** The sink of a streamed call, or `undefined` when it came without one. */
export const sinkOf = (request: unknown): Sink | undefined =>
  typeof request === "object" && request !== null ? (request as { readonly [sinkKey]?: Sink })[sinkKey] : undefined

/** The caller's sink of a streamed call, for an out-of-process kind (see `call`). */
export const callerSinkOf = (request: unknown): CallerSink | undefined => sinkOf(request) as CallerSink | undefined

/**
 * The in-process handler of streamed operation `tag`: it runs the stream the
 * user's handler gives into the call's sink. A call without a sink (a bare
 * `pool.dispatch`) is an `InvalidRequest`; a handler that throws or gives
 * something else than a `Stream` dies (a `WorkerCrash`, as a handler that
 * gives no Effect).
 */
export const inProcessHandler =
  (tag: string, handler: (payload: unknown) => unknown) =>
  (request: { readonly payload: unknown }): Effect.Effect<unknown, unknown> => {
    const sink = sinkOf(request)
    if (sink === undefined) {
      return Effect.fail(
        new InvalidRequest({ reason: `operation ${tag} is a stream: call it through the client's method` })
      )
    }
    return runInto(tag, sink, () => handler(request.payload))
  }

/**
 * A runner's handler of streamed operation `tag`: it calls the user's
 * handler on the payload (with the request's context) and runs the `Stream`
 * it gives into the request's sink. A handler that throws or gives something
 * else than a `Stream` dies (the parent gets a `WorkerCrash`).
 */
export const runnerHandler =
  (tag: string, handler: (payload: any, context: any) => unknown) =>
  (request: { readonly payload: unknown }, context: unknown): Effect.Effect<unknown, unknown> => {
    const sink = sinkOf(request)
    if (sink === undefined) {
      return Effect.die(new HandlerMistake(`operation ${tag} is a stream: it was called without a window`))
    }
    return runInto(tag, sink, () => handler(request.payload, context))
  }

/** Runs the `Stream` the handler of `tag` gives (`call`) into `sink`: one that throws or gives something else dies. */
const runInto = (tag: string, sink: Sink, call: () => unknown): Effect.Effect<void, unknown> => {
  let stream: unknown
  try {
    stream = call()
  } catch (error) {
    return Effect.die(new HandlerMistake(`the handler of ${tag} threw before it returned a Stream: ${describe(error)}`))
  }
  if (!Stream.isStream(stream)) {
    return Effect.die(new HandlerMistake(`the handler of ${tag} returned ${shape(stream)}, not a Stream`))
  }
  return Stream.runForEachArray(stream as Stream.Stream<unknown, unknown>, sink.offer)
}

/**
 * A streamed call, as its caller reads it: each run dispatches the envelope
 * with a fresh sink (a queue of `window` chunks) on a fiber of the stream's
 * scope, and reads the queue to the request's end. Closing the stream (the
 * caller read what it wanted, or was interrupted) interrupts the request and
 * waits for it to end.
 */
export const call = <A, E>(
  dispatch: (envelope: object) => Effect.Effect<unknown, E>,
  tag: string,
  payload: unknown,
  window: number
): Stream.Stream<A, E> =>
  Stream.unwrap(
    Effect.gen(function* () {
      const queue = yield* Queue.bounded<NonEmptyReadonlyArray<A>, E | Cause.Done>(window)
      const sink: CallerSink = {
        emitted: 0,
        window,
        offer: (chunk) => {
          sink.emitted++
          return Queue.offer(queue, chunk as NonEmptyReadonlyArray<A>)
        },
        push: (chunk) => {
          sink.emitted++
          Queue.offerUnsafe(queue, chunk as NonEmptyReadonlyArray<A>)
        },
        onTake: undefined
      }
      const taken = (chunk: NonEmptyReadonlyArray<A>) => {
        sink.onTake?.()
        return chunk
      }
      yield* Effect.forkScoped(
        Effect.matchCauseEffect(dispatch({ _tag: tag, payload, [sinkKey]: sink }), {
          onSuccess: () => Queue.end(queue),
          onFailure: (cause) => Queue.failCause(queue, cause as Cause.Cause<E>)
        })
      )
      // One chunk per pull, so that what the caller holds unread stays within the window.
      return Stream.flattenArray(Stream.fromEffectRepeat(Effect.map(Queue.take(queue), taken)))
    })
  )

/** The child's side of a streamed call: a sink whose chunks wait for credit, then go to the parent. */
export interface RunnerSink extends Sink {
  /** The parent read `n` more chunks. */
  readonly ack: (n: number) => void
}

/**
 * The child's sink of a streamed call of `window` chunks: a chunk waits
 * while the chunks sent and not acknowledged fill the window, then `send`
 * encodes and sends it (an Effect, for a schema that encodes asynchronously),
 * giving why it could not (too large, a value its schema refuses): the
 * handler then dies with that reason, which the parent gets as a crash.
 */
export const runnerSink = (
  window: number,
  send: (chunk: NonEmptyReadonlyArray<unknown>) => Effect.Effect<string | undefined>
): RunnerSink => {
  let credit = window
  let wake: (() => void) | undefined
  const room: Effect.Effect<void> = Effect.callback<void>((resume) => {
    if (credit > 0) return resume(Effect.void)
    wake = () => {
      wake = undefined
      resume(Effect.void)
    }
    return Effect.sync(() => {
      wake = undefined
    })
  })
  const sink: RunnerSink = {
    emitted: 0,
    offer: (chunk) =>
      Effect.flatMap(room, () => {
        credit--
        sink.emitted++
        return Effect.flatMap(send(chunk), (refused) =>
          refused === undefined ? Effect.void : Effect.die(new Error(`a chunk could not be sent: ${refused}`))
        )
      }),
    ack: (n) => {
      credit += n
      wake?.()
    }
  }
  return sink
}
