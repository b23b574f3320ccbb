/**
 * The child side of the out-of-process kinds: the script a subprocess or a
 * thread runs. It reads requests, runs the handler on each (concurrently, as
 * many as the parent sends), answers them, honours cancels, and stops when
 * its parent is done with it.
 *
 * ```ts no-run
 * // worker.ts, started by Subprocess.node("worker.ts", ...) or Thread.make("worker.ts", ...)
 * import { Effect, Schema } from "effect"
 * import { DomainError, Runner } from "effect-worker-pool"
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
 * and stdout (JSON lines). In a subprocess, stdout belongs to the protocol:
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
 * @since 0.1.0
 */

import * as WorkerThreads from "node:worker_threads"
import { Cause, Effect, Exit, Fiber, Queue, Schema, Scope } from "effect"
import type { Codec } from "./internal/client.ts"
import { describe } from "./internal/describe.ts"
import * as Protocol from "./Protocol.ts"
import { DomainError, WorkerCrash } from "./WorkerError.ts"

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
 * import type { Runner } from "effect-worker-pool"
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
 * - `maxLineBytes`: longest line read or written (subprocess only). By
 *   default the limit the parent set in `Protocol.maxLineBytesEnv`, else
 *   `Protocol.defaultMaxLineBytes` (1 MiB). An answer over it is replaced by
 *   a crash that says so.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import type { Runner } from "effect-worker-pool"
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

type Inbound = Protocol.ToChild | { readonly _tag: "End" } | { readonly _tag: "Fault"; readonly reason: string }

interface Transport {
  readonly kind: "stdio" | "thread"
  /** Sends one message; returns why it could not be sent, in which case nothing was. */
  readonly send: (message: Protocol.FromChild) => string | undefined
  readonly start: (deliver: (message: Inbound) => void) => void
  readonly close: () => void
}

const end: Inbound = { _tag: "End" }

const stdioTransport = (maxLineBytes: number): Transport => {
  const stdout = globalThis.process.stdout
  const stdin = globalThis.process.stdin
  const original = stdout.write
  const write = original.bind(stdout)
  let deliver: (message: Inbound) => void = () => {}
  const onData = (chunk: Uint8Array) => {
    for (const event of lines.push(chunk)) {
      if (event._tag === "Fault") return deliver({ _tag: "Fault", reason: `the parent sent ${event.reason}` })
      const parsed = Protocol.parseToChild(event.text)
      deliver(
        parsed._tag === "Message" ? parsed.message : { _tag: "Fault", reason: `the parent sent ${parsed.reason}` }
      )
    }
  }
  const onEnd = () => deliver(end)
  const lines = Protocol.makeLineDecoder(maxLineBytes)
  return {
    kind: "stdio",
    send: (message) => {
      let line: string
      try {
        line = JSON.stringify(message)
      } catch (error) {
        return `the ${message._tag === "Failure" ? "error" : "response"} is not JSON: ${describe(error)}`
      }
      const bytes = Buffer.byteLength(line, "utf8")
      if (bytes > maxLineBytes) {
        return `the answer is ${bytes} bytes on the wire, over the limit of ${maxLineBytes} (maxLineBytes)`
      }
      write(`${line}\n`)
      return undefined
    },
    start: (f) => {
      deliver = f
      // Stray writes to stdout would corrupt the protocol: they go to stderr.
      stdout.write = globalThis.process.stderr.write.bind(globalThis.process.stderr) as typeof stdout.write
      // A parent that is gone breaks the pipe: that is the end too.
      stdout.on("error", onEnd)
      stdin.on("data", onData)
      stdin.on("end", onEnd)
      stdin.on("error", onEnd)
    },
    close: () => {
      stdout.write = original
      stdin.off("data", onData)
      stdin.off("end", onEnd)
      stdin.off("error", onEnd)
      stdin.pause()
    }
  }
}

const threadTransport = (port: WorkerThreads.MessagePort): Transport => {
  let deliver: (message: Inbound) => void = () => {}
  const onMessage = (value: unknown) => {
    const decoded = Protocol.decodeToChild(value)
    deliver(
      decoded._tag === "Message" ? decoded.message : { _tag: "Fault", reason: `the parent sent ${decoded.reason}` }
    )
  }
  const onClose = () => deliver(end)
  return {
    kind: "thread",
    send: (message) => {
      try {
        port.postMessage(message)
        return undefined
      } catch (error) {
        return `the ${message._tag === "Failure" ? "error" : "response"} cannot be cloned: ${describe(error)}`
      }
    },
    start: (f) => {
      deliver = f
      port.on("message", onMessage)
      port.on("close", onClose)
    },
    close: () => {
      port.off("message", onMessage)
      port.off("close", onClose)
    }
  }
}

const schemaReason = (error: Schema.SchemaError): string => error.message.replaceAll("\n", " ")

/**
 * Serves requests until the parent is done: the end of stdin, or a
 * `Shutdown` message to a thread. Handlers still running then are
 * interrupted. Fails with `WorkerCrash` on a protocol fault. Use it instead
 * of {@link run} when the handler needs services or an initialisation: it
 * sends `Ready` (and the worker becomes healthy) only when it starts.
 *
 * @example
 * ```ts no-run
 * import { NodeRuntime } from "@effect/platform-node"
 * import { Effect, Schema } from "effect"
 * import { Runner } from "effect-worker-pool"
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
export const serve = <Req, Resp, E = DomainError, R = never>(
  options: Options<Req, Resp, E, R>
): Effect.Effect<void, WorkerCrash, R> =>
  Effect.scoped(
    Effect.gen(function* () {
      const maxLineBytes = options.maxLineBytes ?? inheritedMaxLineBytes() ?? Protocol.defaultMaxLineBytes
      const port = WorkerThreads.isMainThread ? null : WorkerThreads.parentPort
      const transport = yield* Effect.acquireRelease(
        Effect.sync(() => (port === null ? stdioTransport(maxLineBytes) : threadTransport(port))),
        (t) => Effect.sync(t.close)
      )
      const errorSchema = options.error ?? (DomainError as any as Codec<E>)
      const json = transport.kind === "stdio"
      const requestCodec = json ? Schema.toCodecJson(options.request) : options.request
      const responseCodec = json ? Schema.toCodecJson(options.response) : options.response
      const errorCodec = json ? Schema.toCodecJson(errorSchema) : errorSchema
      const decodeRequest = Schema.decodeUnknownEffect(requestCodec)
      const encodeResponse = Schema.encodeEffect(responseCodec)
      const encodeError = Schema.encodeUnknownEffect(errorCodec)

      const scope = yield* Scope.Scope
      const running = new Map<number, Fiber.Fiber<void>>()
      let stopping = false
      yield* Scope.addFinalizer(
        scope,
        Effect.sync(() => {
          stopping = true
        })
      )

      const reply = (message: Protocol.FromChild) => {
        if (stopping) return
        const refused = transport.send(message)
        if (refused !== undefined && message._tag !== "Crash") {
          transport.send({ _tag: "Crash", id: (message as { readonly id: number }).id, reason: `defect: ${refused}` })
        }
      }

      /** The final message for request `id`, from how its handler ended. */
      const answer = (id: number, exit: Exit.Exit<Resp, unknown>): Effect.Effect<Protocol.FromChild> => {
        if (Exit.isSuccess(exit)) {
          return encodeResponse(exit.value).pipe(
            Effect.map((value): Protocol.FromChild => ({ _tag: "Success", id, value })),
            Effect.catchCause((cause) =>
              Effect.succeed<Protocol.FromChild>({
                _tag: "Crash",
                id,
                reason: `defect: the response does not match its schema: ${describeCause(cause)}`
              })
            )
          )
        }
        const cause = exit.cause
        const error = Cause.findErrorOption(cause)
        if (error._tag === "Some") {
          const value = error.value
          if (value instanceof WorkerCrash) return Effect.succeed({ _tag: "Crash", id, reason: value.reason })
          return encodeError(value).pipe(
            Effect.map((encoded): Protocol.FromChild => ({ _tag: "Failure", id, error: encoded })),
            Effect.catchCause(() =>
              Effect.succeed<Protocol.FromChild>({ _tag: "Crash", id, reason: `defect: ${describe(value)}` })
            )
          )
        }
        if (Cause.hasDies(cause))
          return Effect.succeed({ _tag: "Crash", id, reason: `defect: ${describe(Cause.squash(cause))}` })
        return Effect.succeed({ _tag: "Cancelled", id })
      }

      /** Calls the handler, whatever it returns, as an Effect. */
      const invoke = (id: number, request: Req): Effect.Effect<Resp, unknown, R> =>
        Effect.suspend(() => {
          const controller = new AbortController()
          let result: ReturnType<Handler<Req, Resp, E, R>>
          try {
            result = options.handler(request, { signal: controller.signal, id })
          } catch (error) {
            return Effect.fail(error)
          }
          if (Effect.isEffect(result)) return result as Effect.Effect<Resp, E | WorkerCrash, R>
          if (isPromiseLike(result)) {
            const promise = Promise.resolve(result)
            const settled = promise.then(
              () => undefined,
              () => undefined
            )
            // A cancel aborts the signal; the request is over when the promise settles.
            return Effect.tryPromise({ try: () => promise, catch: (error) => error }).pipe(
              Effect.onInterrupt(() =>
                Effect.andThen(
                  Effect.sync(() => controller.abort(new Error("the request was cancelled"))),
                  Effect.promise(() => settled)
                )
              )
            )
          }
          return Effect.succeed(result as Resp)
        })

      /**
       * Runs one request and sends its final message. It runs on a fiber that
       * starts uninterruptible, so that a cancel that comes before the fiber
       * has even started still gets its answer: only the handler itself is
       * interruptible.
       */
      const handle = (id: number, payload: unknown): Effect.Effect<void, never, R> =>
        Effect.gen(function* () {
          const decoded = yield* Effect.exit(decodeRequest(payload))
          if (Exit.isFailure(decoded)) {
            const error = Cause.findErrorOption(decoded.cause)
            const reason = error._tag === "Some" ? schemaReason(error.value) : describeCause(decoded.cause)
            return reply({ _tag: "Rejected", id, reason })
          }
          const exit = yield* Effect.exit(Effect.interruptible(invoke(id, decoded.value)))
          reply(yield* answer(id, exit))
        }).pipe(Effect.ensuring(Effect.sync(() => running.delete(id))))

      const inbox = yield* Queue.unbounded<Inbound>()
      transport.start((message) => Queue.offerUnsafe(inbox, message))
      transport.send({ _tag: "Ready", protocol: Protocol.version })

      while (true) {
        const message = yield* Queue.take(inbox)
        switch (message._tag) {
          case "Request": {
            if (running.has(message.id)) {
              return yield* new WorkerCrash({ reason: `the parent sent request ${message.id} twice` })
            }
            running.set(
              message.id,
              yield* Effect.forkIn(handle(message.id, message.payload), scope, { uninterruptible: true })
            )
            break
          }
          case "Cancel": {
            const fiber = running.get(message.id)
            // An unknown id was answered already: its answer acknowledges the cancel.
            if (fiber !== undefined) yield* Effect.forkIn(Fiber.interrupt(fiber), scope)
            break
          }
          case "Fault":
            return yield* new WorkerCrash({ reason: `protocol error: ${message.reason}` })
          case "Shutdown":
          case "End":
            // Nobody listens any more: the handlers still running are interrupted without a word.
            stopping = true
            return
        }
      }
    })
  )

const describeCause = (cause: Cause.Cause<unknown>): string => {
  const error = Cause.findErrorOption(cause)
  if (error._tag === "Some") {
    return Schema.isSchemaError(error.value) ? schemaReason(error.value) : describe(error.value)
  }
  return describe(Cause.squash(cause))
}

/** The limit the parent set in the environment, if it is a positive integer. */
const inheritedMaxLineBytes = (): number | undefined => {
  const value = Number(globalThis.process.env[Protocol.maxLineBytesEnv])
  return Number.isSafeInteger(value) && value > 0 ? value : undefined
}

const isPromiseLike = (u: unknown): u is PromiseLike<unknown> =>
  typeof u === "object" && u !== null && typeof (u as { then?: unknown }).then === "function"

/**
 * Runs a worker script: {@link serve}s the handler, then exits the process
 * (or the thread) with code 0 once the parent is done, or 2 on a protocol
 * fault. Call it once, at the top of the script.
 *
 * @example
 * ```ts no-run
 * import { Schema } from "effect"
 * import { DomainError, Runner } from "effect-worker-pool"
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
export const run = <Req, Resp, E = DomainError>(options: Options<Req, Resp, E>): void => {
  Effect.runFork(
    serve(options).pipe(
      Effect.exit,
      Effect.flatMap((exit) =>
        Effect.sync(() => {
          if (Exit.isFailure(exit)) {
            globalThis.process.stderr.write(`effect-worker-pool runner: ${describeCause(exit.cause)}\n`)
          }
          globalThis.process.exit(Exit.isSuccess(exit) ? 0 : 2)
        })
      )
    )
  )
}
