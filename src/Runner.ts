/**
 * The child side of the out-of-process kinds: the script a subprocess or a
 * thread runs. It reads requests, runs the handler on each (concurrently, as
 * many as the parent sends), answers them, honours cancels, and stops when
 * its parent is done with it.
 *
 * ```ts no-run
 * // worker.ts, started by Subprocess.node("worker.ts", ...) or Thread.make("worker.ts", ...)
 * import { Effect, Schema } from "effect"
 * import { DomainError, Runner } from "effect-worker-pool/child"
 *
 * Runner.run({
 *   request: Schema.Struct({ text: Schema.String }),
 *   response: Schema.Number,
 *   handler: ({ text }) =>
 *     text === "" ? Effect.fail(new DomainError({ reason: "empty text" })) : Effect.succeed(text.length)
 * })
 * ```
 *
 * The same script works in both kinds: in a worker thread the runner talks
 * to its parent over `parentPort` (structured clone), otherwise over stdin
 * and stdout (JSON lines, or binary frames written by V8's serializer when
 * the parent takes the runner's offer). In a subprocess, stdout belongs to
 * the protocol:
 * the runner sends whatever else is written to it (a stray `console.log`) to
 * stderr, where the parent logs it.
 *
 * What the handler does, and what the caller gets:
 *
 * | the handler                                           | the caller gets           |
 * |-------------------------------------------------------|---------------------------|
 * | returns or resolves a value                           | the response              |
 * | fails, throws or rejects with an error of the `error` schema (`DomainError` by default) | that error: the worker stays healthy |
 * | fails with `WorkerCrash`, dies, or throws anything else | `WorkerCrash` ("defect: ..."), the worker is replaced |
 * | is interrupted after a cancel (an Effect), or settles after the `signal` aborts (a promise) | nothing: its caller left |
 *
 * The runner exits with code 0 when its stdin ends (or its thread is told to
 * shut down): handlers still running are interrupted. It exits with code 2 on
 * a protocol fault (the parent sent something it cannot read).
 *
 * It sends what is ready at the end of one synchronous run at once (one write,
 * or one message to the parent), and a heartbeat every
 * `Protocol.heartbeatEnv` milliseconds when it has sent nothing else. In a
 * thread, it records the processes the thread starts with `child_process`
 * (`spawn`, `exec`, `execFile`, `fork`) and tells the parent, which stops
 * them when the thread is gone.
 *
 * A worker script that imports only `effect-worker-pool/child` (this module,
 * `DomainError` and `WorkerCrash`) starts faster than one that imports the
 * whole package: it does not load the pool.
 *
 * @since 0.1.0
 */

import * as WorkerThreads from "node:worker_threads"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import type * as Layer from "effect/Layer"
import type * as Rpc from "effect/rpc/Rpc"
import type * as RpcGroup from "effect/rpc/RpcGroup"
import * as Tracer from "effect/Tracer"
import * as Answer from "./internal/answer.ts"
import { type Codec, type Conversion, decoding, encoding, needsEffect } from "./internal/codec.ts"
import * as Invocation from "./internal/invocation.ts"
import { toJsonWire } from "./internal/jsonWire.ts"
import { memoryReportsEnv, runnerMemory } from "./internal/memoryReports.ts"
import * as Operations from "./internal/operations.ts"
import { trackChildProcesses } from "./internal/runner/childProcesses.ts"
import { type Inbound, stdioTransport, type Transport, threadTransport } from "./internal/runner/transport.ts"
import * as Streams from "./internal/streams.ts"
import { movingEncoding } from "./internal/transfer.ts"
import type * as Operation from "./Operation.ts"
import * as Protocol from "./Protocol.ts"
import { Defect, DomainError, InvalidOptions, ProtocolFault, WorkerCrash } from "./WorkerError.ts"

/**
 * A request handler on the child side. It gets the decoded request and a
 * context:
 *
 * - `signal`: aborted when the parent cancels the request. A promise-returning
 *   handler should stop when it fires; an Effect handler is interrupted
 *   instead.
 * - `id`: the request's id on the wire, for logs.
 *
 * It may return an `Effect`, a promise, or a plain value.
 *
 * @example
 * ```ts
 * import type { Runner } from "effect-worker-pool/child"
 *
 * const handler: Runner.Handler<string, number> = async (url, { signal }) => {
 *   const response = await fetch(url, { signal })
 *   return response.status
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type Handler<Req, Resp, E = DomainError, R = never> = (
  request: Req,
  context: { readonly signal: AbortSignal; readonly id: number }
) => Effect.Effect<Resp, E | WorkerCrash, R> | PromiseLike<Resp> | Resp

/**
 * Options of a runner. The schemas must be the ones the parent's kind was
 * given.
 *
 * - `request`, `response`: schemas of a request and a response.
 * - `error`: schema of the domain errors (default `DomainError`).
 * - `handler`: see {@link Handler}.
 * - `maxLineBytes`: longest line, or binary frame, read or written
 *   (subprocess only). By
 *   default the limit the parent set in `Protocol.maxLineBytesEnv`, else
 *   `Protocol.defaultMaxLineBytes` (1 MiB). An answer over it is replaced by
 *   a crash that says so.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import type { Runner } from "effect-worker-pool/child"
 *
 * const options: Runner.Options<number, number> = {
 *   request: Schema.Number,
 *   response: Schema.Number,
 *   handler: (n) => Effect.succeed(n * 2),
 *   maxLineBytes: 4 * 1024 * 1024
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<Req, Resp, E = DomainError, R = never> {
  readonly request: Codec<Req>
  readonly response: Codec<Resp>
  readonly error?: Codec<E> | undefined
  readonly handler: Handler<Req, Resp, E, R>
  readonly maxLineBytes?: number | undefined
}

/**
 * Options of a runner that serves the operations of an `effect/rpc`
 * `RpcGroup` (see the operations guide): `group`, and `handlers`, one per
 * operation (see `Operation.Handlers`), each called with its rpc's payload
 * and the request's context, as a {@link Handler}. The parent's pool is made
 * from the same group. `maxLineBytes` is as in {@link Options}.
 *
 * A streamed operation's handler gives a `Stream` of its elements, sent to
 * the parent in chunks within the call's window. Handlers that miss an
 * operation (or name one the group does not have) are refused when the
 * runner starts: the runner says why on stderr and exits with code 2, and
 * the worker never becomes ready.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Rpc, RpcGroup } from "effect/rpc"
 * import type { Runner } from "effect-worker-pool/child"
 *
 * const Counting = RpcGroup.make(
 *   Rpc.make("Count", { payload: { text: Schema.String }, success: Schema.Number }),
 *   Rpc.make("Upper", { payload: { text: Schema.String }, success: Schema.String })
 * )
 *
 * const options: Runner.GroupOptions<RpcGroup.Rpcs<typeof Counting>> = {
 *   group: Counting,
 *   handlers: {
 *     Count: ({ text }) => text.length,
 *     Upper: ({ text }) => Effect.succeed(text.toUpperCase())
 *   }
 * }
 * ```
 *
 * @since 0.4.0
 * @category models
 */
export interface GroupOptions<Rpcs extends Rpc.Any, R = never> {
  readonly group: RpcGroup.RpcGroup<Rpcs>
  readonly handlers: Operation.Handlers<Rpcs, R>
  readonly maxLineBytes?: number | undefined
}

/**
 * The single-request form of a runner that serves `group` with `handlers`:
 * its `request`, `response` and `error` schemas are the group's envelopes
 * (see `Operation.schemas`), its `handler` calls the operation's handler.
 * For `Remote.serve` and `Remote.listen`, which take that form:
 * `Remote.serve({ ...Runner.fromGroup(Group, handlers), port: 7400 })`.
 * A streamed operation's handler gives a `Stream`, sent to the client in
 * chunks within its caller's window, as a worker script's. Throws
 * `InvalidOptions` for handlers that miss an operation (or name one the
 * group does not have).
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Rpc, RpcGroup } from "effect/rpc"
 * import { Runner } from "effect-worker-pool/child"
 *
 * const Counting = RpcGroup.make(Rpc.make("Count", { payload: { text: Schema.String }, success: Schema.Number }))
 *
 * const options = Runner.fromGroup(Counting, { Count: ({ text }) => text.length })
 * ```
 *
 * @since 0.4.0
 * @category constructors
 */
export const fromGroup = <Rpcs extends Rpc.Any, R = never>(
  group: RpcGroup.RpcGroup<Rpcs>,
  handlers: Operation.Handlers<Rpcs, R>
): Options<Operation.Request<Rpcs>, Operation.Response<Rpcs>, Operation.Failure<Rpcs>, R> => {
  const rpcs = Operations.operationsOf(group)
  if (typeof rpcs === "string") throw new InvalidOptions({ reason: rpcs })
  const wrong = Operations.checkHandlers(rpcs, handlers)
  if (wrong !== undefined) throw new InvalidOptions({ reason: wrong })
  return {
    ...Operations.schemasOf<Rpcs>(group, rpcs),
    handler: Operations.runnerHandler(rpcs, handlers as never) as never
  }
}

/** `options` in the single-request form, or the defect of a group that cannot be served. */
const singleForm = (
  options: Options<any, any, any, any> | GroupOptions<any, any>
): Options<any, any, any, any> | WorkerCrash => {
  if (!("group" in options)) return options
  try {
    return { ...fromGroup(options.group, options.handlers), maxLineBytes: options.maxLineBytes }
  } catch (error) {
    const reason = error instanceof InvalidOptions ? error.reason : String(error)
    return new WorkerCrash({ reason: new Defect({ message: `defect: invalid operations: ${reason}` }) })
  }
}

/**
 * Serves requests until the parent is done: the end of stdin, or a
 * `Shutdown` message to a thread. Handlers still running then are
 * interrupted. Fails with `WorkerCrash` on a protocol fault, or at once for
 * {@link GroupOptions} that cannot be served. Use it instead
 * of {@link run} when the handler needs services or an initialisation: it
 * sends `Ready` (and the worker becomes healthy) only when it starts.
 *
 * @example
 * ```ts no-run
 * import { NodeRuntime } from "@effect/platform-node"
 * import { Effect, Schema } from "effect"
 * import { Runner } from "effect-worker-pool/child"
 *
 * const program = Effect.gen(function* () {
 *   const table = new Map([["one", 1], ["two", 2]]) // loaded once per process
 *   yield* Runner.serve({
 *     request: Schema.String,
 *     response: Schema.Number,
 *     handler: (word) => Effect.succeed(table.get(word) ?? 0)
 *   })
 * })
 *
 * NodeRuntime.runMain(program)
 * ```
 *
 * @since 0.1.0
 * @category running
 */
export const serve: {
  <Rpcs extends Rpc.Any, R = never>(options: GroupOptions<Rpcs, R>): Effect.Effect<void, WorkerCrash, R>
  <Req, Resp, E = DomainError, R = never>(options: Options<Req, Resp, E, R>): Effect.Effect<void, WorkerCrash, R>
} = <Req, Resp, E, R>(given: Options<Req, Resp, E, R> | GroupOptions<any, R>): Effect.Effect<void, WorkerCrash, R> =>
  Effect.suspend(() => {
    const options = singleForm(given)
    return options instanceof WorkerCrash ? Effect.fail(options) : serveSingle<Req, Resp, E, R>(options)
  })

/** Serves a runner of the single-request form. */
const serveSingle = <Req, Resp, E, R>(options: Options<Req, Resp, E, R>): Effect.Effect<void, WorkerCrash, R> =>
  Effect.scoped(
    Effect.gen(function* () {
      const maxLineBytes = options.maxLineBytes ?? inheritedMaxLineBytes() ?? Protocol.defaultMaxLineBytes
      const port = WorkerThreads.isMainThread ? null : WorkerThreads.parentPort
      const transport = yield* Effect.acquireRelease(
        Effect.sync(() => (port === null ? stdioTransport(maxLineBytes) : threadTransport(port))),
        (t) => Effect.sync(t.close)
      )
      const errorSchema = options.error ?? (DomainError as any as Codec<E>)
      const codecs = codecsOn(transport, options.request, options.response, errorSchema)
      // A group's operations, called without the envelope (a request's `operation`): each with its own schemas.
      const operations = new Map<string, ServedOperation>()
      for (const [tag, served] of Operations.servedOf(options.handler) ?? []) {
        operations.set(tag, {
          handler: served.handler as Handler<unknown, unknown, unknown, R>,
          codecs: codecsOn(
            transport,
            served.payload as Codec<unknown>,
            served.success as Codec<unknown>,
            served.error as Codec<unknown>
          )
        })
      }
      const services = yield* Effect.context<R>()
      const runFork = Effect.runForkWith(services)

      const running = new Map<number, Invocation.Invocation>()
      // The streamed operations the handler serves, and the sinks of the streamed calls running.
      const streamed = Streams.streamedOf(options.handler)
      const sinks = new Map<number, Streams.RunnerSink>()
      const finished = Deferred.makeUnsafe<void, WorkerCrash>()
      let stopping = false
      const finish = (exit: Exit.Exit<void, WorkerCrash>) => {
        stopping = true
        Deferred.doneUnsafe(finished, exit)
      }
      // Nobody listens any more: the handlers still running are interrupted without a word.
      yield* Effect.addFinalizer(() =>
        Effect.suspend(() => {
          stopping = true
          const all = [...running.values()]
          for (const r of all) r.cancel()
          return Effect.forEach(all, (r) => r.stopped, { discard: true })
        })
      )

      // Memory reports, when the parent asked: with the heartbeats, and once a turn with the answers, just
      // before the first one, so that the parent knows of a worker over its limit before it frees a slot on it.
      const reportsMemory = globalThis.process.env[memoryReportsEnv] === "1"
      let reported = false
      const reportMemory = () => transport.send({ _tag: "Heartbeat", memory: runnerMemory() })
      const nextTurn = () => {
        reported = false
      }

      const reply = (message: Protocol.FromChild) => {
        if (stopping) return
        if (reportsMemory && !reported) {
          reported = true
          queueMicrotask(nextTurn)
          reportMemory()
        }
        const refused = transport.send(message)
        if (refused !== undefined && message._tag !== "Crash") {
          transport.send({ _tag: "Crash", id: (message as { readonly id: number }).id, reason: `defect: ${refused}` })
        }
      }

      /** Runs a conversion that needs to wait, then `k` on its exit. */
      const later: Answer.Later = (effect, k) => {
        runFork(effect).addObserver(k)
      }

      /** Sends the message that answers request `id`. */
      const replyTo = (id: number, answer: Answer.Answer) => {
        switch (answer._tag) {
          case "Success":
            return reply({ _tag: "Success", id, value: answer.value })
          case "Failure":
            return reply({ _tag: "Failure", id, error: answer.error })
          case "Crash":
            return reply({ _tag: "Crash", id, reason: answer.reason })
          case "Cancelled":
            return reply({ _tag: "Cancelled", id })
        }
      }
      const answerExit = (id: number, exit: Exit.Exit<unknown, unknown>, operation: ServedOperation | undefined) =>
        Answer.answerExit(exit, (operation === undefined ? codecs() : operation.codecs()).encoders, later, id, replyTo)

      /** Sends a chunk of streamed request `id`, of operation `tag`; gives why it could not. */
      const sendChunk = (id: number, tag: string, chunk: ReadonlyArray<unknown>): Effect.Effect<string | undefined> =>
        Effect.suspend(() => {
          const { encodeResponse } = codecs().encoders
          const value = Operations.chunkOf(tag, chunk)
          const send = (encoded: unknown) =>
            stopping ? undefined : transport.send({ _tag: "Chunk", id, value: encoded })
          const refused = (cause: Cause.Cause<unknown>) => `the chunk does not encode: ${Answer.describeCause(cause)}`
          const encoded = encodeResponse.run(value)
          if (Exit.isSuccess(encoded)) return Effect.succeed(send(encoded.value))
          if (!needsEffect(encoded)) return Effect.succeed(refused(encoded.cause))
          return Effect.matchCause(encodeResponse.effect(value), { onSuccess: send, onFailure: refused })
        })

      /**
       * A streamed call gets its sink, on the request: its chunks wait for the
       * parent's credit. One without a window (a bare dispatch) is refused.
       */
      const withSink = (id: number, request: Req, window: number | undefined): boolean => {
        const tag = (request as { readonly _tag?: unknown } | null)?._tag
        if (streamed === undefined || typeof tag !== "string" || !streamed.has(tag)) return true
        if (window === undefined) {
          reply({ _tag: "Rejected", id, reason: `operation ${tag} is a stream: call it through the client's method` })
          return false
        }
        const sink = Streams.runnerSink(window, (chunk) => sendChunk(id, tag, chunk))
        sinks.set(id, sink)
        ;(request as { [Streams.sinkKey]?: Streams.Sink })[Streams.sinkKey] = sink
        return true
      }

      /**
       * Calls the handler (the operation's, for a call without the envelope) and answers by how it ended; an
       * Effect runs under the request's span, if traced.
       */
      const invoke = (
        id: number,
        request: unknown,
        trace: Protocol.TraceContext | undefined,
        window: number | undefined,
        operation: ServedOperation | undefined
      ) => {
        if (operation === undefined && !withSink(id, request as Req, window)) return
        const invocation = Invocation.invoke(
          operation === undefined ? (options.handler as Handler<unknown, unknown, unknown, R>) : operation.handler,
          request,
          id,
          trace === undefined
            ? runFork
            : (effect) => runFork(Effect.withParentSpan(effect, Tracer.externalSpan(trace))),
          (exit) => {
            running.delete(id)
            sinks.delete(id)
            answerExit(id, exit, operation)
          }
        )
        if (invocation !== undefined) running.set(id, invocation)
      }

      const start = (
        id: number,
        payload: unknown,
        trace: Protocol.TraceContext | undefined,
        window: number | undefined,
        tag: string | undefined
      ) => {
        if (running.has(id)) {
          return finish(
            Exit.fail(
              new WorkerCrash({ reason: new ProtocolFault({ message: `the parent sent request ${id} twice` }) })
            )
          )
        }
        const operation = tag === undefined ? undefined : operations.get(tag)
        if (tag !== undefined && operation === undefined) {
          const reason = `this worker serves no operation ${JSON.stringify(tag)} without its envelope`
          return reply({ _tag: "Rejected", id, reason })
        }
        const rejected = (cause: Cause.Cause<unknown>) =>
          reply({ _tag: "Rejected", id, reason: Answer.describeCause(cause) })
        const { decodeRequest } = operation === undefined ? codecs() : operation.codecs()
        const decoded = decodeRequest.run(payload)
        if (Exit.isSuccess(decoded)) return invoke(id, decoded.value, trace, window, operation)
        if (!needsEffect(decoded)) return rejected(decoded.cause)
        // A request that takes time to decode can be cancelled meanwhile.
        const fiber = runFork(decodeRequest.effect(payload))
        running.set(id, { cancel: () => fiber.interruptUnsafe(), stopped: Effect.asVoid(Fiber.await(fiber)), fiber })
        fiber.addObserver((exit) => {
          running.delete(id)
          if (Exit.isSuccess(exit)) invoke(id, exit.value, trace, window, operation)
          else if (Cause.hasInterruptsOnly(exit.cause)) reply({ _tag: "Cancelled", id })
          else rejected(exit.cause)
        })
      }

      const deliver = (message: Inbound) => {
        if (stopping) return
        switch (message._tag) {
          case "Request":
            return start(message.id, message.payload, message.trace, message.window, message.operation)
          case "Ack":
            // An unknown id ended already: its acknowledgements come late.
            return sinks.get(message.id)?.ack(message.n)
          case "Cancel":
            // An unknown id was answered already: its answer acknowledges the cancel.
            return running.get(message.id)?.cancel()
          case "Fault":
            return finish(
              Exit.fail(
                new WorkerCrash({ reason: new ProtocolFault({ message: `protocol error: ${message.reason}` }) })
              )
            )
          case "Shutdown":
          case "End":
            return finish(Exit.void)
        }
      }

      const heartbeat = inheritedHeartbeat()
      transport.start(deliver)
      transport.send({
        _tag: "Ready",
        protocol: Protocol.version,
        ...(heartbeat === undefined ? {} : { heartbeat }),
        ...(port === null ? { frame: "v8" } : { shortRequests: true }),
        ...(operations.size === 0 ? {} : { operations: true })
      })
      if (reportsMemory) reportMemory()
      transport.flush()
      if (port !== null) trackChildProcesses(transport)
      if (heartbeat !== undefined) {
        const timer = setInterval(() => {
          if (!transport.active()) {
            transport.send(reportsMemory ? { _tag: "Heartbeat", memory: runnerMemory() } : { _tag: "Heartbeat" })
          }
        }, heartbeat)
        timer.unref()
        yield* Effect.addFinalizer(() => Effect.sync(() => clearInterval(timer)))
      }
      yield* Deferred.await(finished)
    })
  )

/** How a runner decodes its requests and encodes its answers. */
interface Codecs {
  readonly decodeRequest: Conversion<unknown>
  readonly encoders: Answer.Encoders
}

/**
 * The codecs of `request`, `response` and `error` on `transport`, as it is
 * now: payloads in their schemas' encoded form (a thread, a binary frame), or
 * as JSON values (lines). In a thread, answers move the buffers of their
 * `Transferable` fields.
 */
const codecsOn = (
  transport: Transport,
  request: Codec<any>,
  response: Codec<any>,
  error: Codec<any>
): (() => Codecs) => {
  const structured: Codecs = {
    decodeRequest: decoding(request),
    encoders:
      transport.kind === "stdio"
        ? { encodeResponse: encoding(response), encodeError: encoding(error) }
        : { encodeResponse: movingEncoding(response), encodeError: movingEncoding(error) }
  }
  const json: Codecs =
    transport.kind === "stdio"
      ? {
          decodeRequest: decoding(toJsonWire(request)),
          encoders: { encodeResponse: encoding(toJsonWire(response)), encodeError: encoding(toJsonWire(error)) }
        }
      : structured
  return () => (transport.structured() ? structured : json)
}

/** An operation of a group a runner serves without the envelope: its user's handler, and its codecs now. */
interface ServedOperation {
  readonly handler: Handler<unknown, unknown, unknown, any>
  readonly codecs: () => Codecs
}

/** A positive integer from the environment variable `name`, if it holds one. */
const positiveIntEnv = (name: string): number | undefined => {
  const value = Number(globalThis.process.env[name])
  return Number.isSafeInteger(value) && value > 0 ? value : undefined
}

/** The limit the parent set in the environment. */
const inheritedMaxLineBytes = (): number | undefined => positiveIntEnv(Protocol.maxLineBytesEnv)

/** The heartbeat interval the parent asked for. */
const inheritedHeartbeat = (): number | undefined => positiveIntEnv(Protocol.heartbeatEnv)

/**
 * Runs a worker script: {@link serve}s the handler, then exits the process
 * (or the thread) with code 0 once the parent is done, or 2 on a protocol
 * fault (or a `layer` that fails to build). Call it once, at the top of the
 * script.
 *
 * It takes {@link Options} (one request schema, one handler), or
 * {@link GroupOptions}: an `effect/rpc` `RpcGroup` and a handler per
 * operation (see the operations guide).
 *
 * `layer`, optional, provides the handler's services, and whatever else the
 * handler's effects should run with: a tracer, say, so that the spans of a
 * handler (children of the dispatch span of each traced request) are
 * exported from the child. It is built before the runner says it is ready,
 * and released when the parent is done, before the exit.
 *
 * @example
 * ```ts no-run
 * import { Schema } from "effect"
 * import { DomainError, Runner } from "effect-worker-pool/child"
 *
 * Runner.run({
 *   request: Schema.Number,
 *   response: Schema.Number,
 *   handler: async (n) => {
 *     if (n < 0) throw new DomainError({ reason: "negative input" })
 *     return Math.sqrt(n)
 *   }
 * })
 * ```
 *
 * @since 0.1.0
 * @category running
 */
export const run: {
  <Rpcs extends Rpc.Any>(options: GroupOptions<Rpcs>): void
  <Rpcs extends Rpc.Any, R, LE>(options: GroupOptions<Rpcs, R>, layer: Layer.Layer<R, LE>): void
  <Req, Resp, E = DomainError>(options: Options<Req, Resp, E>): void
  <Req, Resp, E, R, LE>(options: Options<Req, Resp, E, R>, layer: Layer.Layer<R, LE>): void
} = <Req, Resp, E, R, LE>(
  options: Options<Req, Resp, E, R> | GroupOptions<any, R>,
  layer?: Layer.Layer<R, LE>
): void => {
  const served = serve(options as Options<Req, Resp, E, R>)
  Effect.runFork(
    (layer === undefined ? (served as Effect.Effect<void, WorkerCrash>) : Effect.provide(served, layer)).pipe(
      Effect.exit,
      Effect.flatMap((exit) =>
        Effect.sync(() => {
          if (Exit.isFailure(exit)) {
            globalThis.process.stderr.write(`effect-worker-pool runner: ${Answer.describeCause(exit.cause)}\n`)
          }
          globalThis.process.exit(Exit.isSuccess(exit) ? 0 : 2)
        })
      )
    )
  )
}
