/**
 * Calling a runner's handler, once for every wire (the runner of threads and
 * subprocesses, and the remote runner). The handler gets its request and a
 * context (the request's id, and an abort signal made on first use), and may
 * throw, return an Effect, a promise, or a plain value; whatever it does, its
 * end comes back as one `Exit`:
 *
 * - it throws, or its promise rejects: a failure with what was thrown;
 * - it returns a value, or its promise resolves: a success;
 * - an Effect runs in a fiber of its own, and its exit is the fiber's;
 * - a cancel interrupts that fiber, or aborts the signal: a promise that
 *   settles after it ends interrupted, whatever it settled with.
 *
 * `answer.ts` then turns the exit into the wire's answer.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import type { Handler } from "../Runner.ts"

/** What a handler gets beside its request: the request's id, and a signal made on first use. */
class HandlerContext {
  readonly id: number
  controller: AbortController | undefined = undefined
  constructor(id: number) {
    this.id = id
  }
  get signal(): AbortSignal {
    this.controller ??= new AbortController()
    return this.controller.signal
  }
}

/** A handler that has not ended. */
export interface Invocation {
  /** The request was cancelled: interrupt the handler's fiber, or abort its signal. */
  readonly cancel: () => void
  /** Completes when the handler has stopped: its fiber has ended, or its promise has settled. */
  readonly stopped: Effect.Effect<void>
  /** The fiber of an Effect handler; none for a promise. */
  readonly fiber: Fiber.Fiber<unknown, unknown> | undefined
}

const interrupted = Exit.interrupt()

/**
 * Calls `handler` on `request`; `done` gets how it ended, once. An Effect runs
 * with `runFork`. Returns the invocation while the handler runs, or
 * `undefined` when it ended before `invoke` returned (`done` was called).
 */
export const invoke = <Req, Resp, E, R>(
  handler: Handler<Req, Resp, E, R>,
  request: Req,
  id: number,
  runFork: (effect: Effect.Effect<Resp, E | unknown, R>) => Fiber.Fiber<Resp, unknown>,
  done: (exit: Exit.Exit<Resp, unknown>) => void
): Invocation | undefined => {
  const context = new HandlerContext(id)
  let result: ReturnType<Handler<Req, Resp, E, R>>
  try {
    result = handler(request, context)
  } catch (error) {
    done(Exit.fail(error))
    return undefined
  }
  if (Effect.isEffect(result)) {
    const fiber = runFork(result as Effect.Effect<Resp, E, R>)
    const exit = fiber.pollUnsafe()
    if (exit !== undefined) {
      done(exit)
      return undefined
    }
    fiber.addObserver(done)
    return {
      cancel: () => fiber.interruptUnsafe(),
      stopped: Effect.asVoid(Fiber.await(fiber)),
      fiber
    }
  }
  if (!isPromiseLike(result)) {
    done(Exit.succeed(result as Resp))
    return undefined
  }
  let cancelled = false
  const settled = Promise.resolve(result).then(
    (value) => done(cancelled ? interrupted : Exit.succeed(value)),
    (error) => done(cancelled ? interrupted : Exit.fail(error))
  )
  return {
    // A cancel aborts the signal; the request is over when the promise settles.
    cancel: () => {
      cancelled = true
      context.controller?.abort(new Error("the request was cancelled"))
    },
    stopped: Effect.promise(() => settled),
    fiber: undefined
  }
}

const isPromiseLike = (u: unknown): u is PromiseLike<unknown> =>
  typeof u === "object" && u !== null && typeof (u as { then?: unknown }).then === "function"
