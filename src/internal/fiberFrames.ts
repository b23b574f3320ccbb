/**
 * Frames put on a fiber's stack directly, as Effect's own `Pool.use` and
 * `Semaphore` do (`onExitUnsafe`): a dispatch that would otherwise be an
 * effect around an effect around the handler (each of which, evaluated, only
 * pushes its frame and returns the effect inside) pushes the same frames
 * itself while its caller's fiber evaluates it, and returns the handler's
 * effect. The frames are the very objects `Effect.onExitPrimitive` and
 * `Effect.catchCause` make, so they behave as they do when evaluated; what
 * is saved is one turn of the fiber's run loop per frame.
 *
 * A frame may be pushed only from the evaluation of a primitive on the fiber
 * that runs it (`Effect.withFiber`, `Effect.suspend`), whose result is the
 * effect the frames wrap, returned as it is.
 *
 * The stack is a field of Effect's fiber runtime (`_stack`): where a runtime
 * lays its fiber out otherwise (`canPush` is false), the engine makes the
 * wrapping effects instead. test/caller-fiber.test.ts asserts that the
 * Effect this package is built with has it.
 */
import type { Cause, Exit, Fiber } from "effect"
import { Effect } from "effect"

interface Stacked {
  readonly _stack: Array<unknown>
}

/** A frame pushed here: its handler reads what it is about from the frame (`this.about`), not from a closure. */
export interface Frame<About> {
  readonly about: About
}

let pushable: boolean | undefined

/** Whether `fiber` keeps its frames where `push` puts them (one check for the process: every fiber is alike). */
export const canPush = (fiber: Fiber.Fiber<unknown, unknown>): boolean => (pushable ??= hasStack(fiber))

/** Whether `fiber` has the stack of frames this module pushes on (`canPush`, without its memory). */
export const hasStack = (fiber: Fiber.Fiber<unknown, unknown>): boolean =>
  "_stack" in fiber && Array.isArray((fiber as unknown as Stacked)._stack)

/**
 * Pushes on `fiber` the frame of `Effect.onExitPrimitive(self, handler)`:
 * `handler` sees how what follows ends, called on the frame, whose `about`
 * is `about`. A handler shared by every frame (no closure per frame) is the
 * point: a dispatch makes no function.
 */
export const pushOnExit = <About, A, E>(
  fiber: Fiber.Fiber<unknown, unknown>,
  about: About,
  handler: (this: Frame<About>, exit: Exit.Exit<A, E>) => Effect.Effect<void> | undefined
): void => {
  ;(fiber as unknown as Stacked)._stack.push(onExit(undefined as never, about, handler))
}

/** `Effect.onExitPrimitive(self, handler)`, `handler` called on the frame (`this.about`): where frames cannot be pushed. */
export const onExit = <About, A, E, R>(
  self: Effect.Effect<A, E, R>,
  about: About,
  handler: (this: Frame<About>, exit: Exit.Exit<A, E>) => Effect.Effect<void> | undefined
): Effect.Effect<A, E, R> => {
  const frame = Effect.onExitPrimitive(self, handler as never)
  ;(frame as unknown as { about: About }).about = about
  return frame
}

/** `Effect.catchCause(self, f)`, `f` called on the frame (`this.about`): where frames cannot be pushed. */
export const catchCause = <About, A, E, R, A2, E2>(
  self: Effect.Effect<A, E, R>,
  about: About,
  f: (this: Frame<About>, cause: Cause.Cause<E>) => Effect.Effect<A2, E2>
): Effect.Effect<A | A2, E2, R> => {
  const frame = Effect.catchCause(self, f as never)
  ;(frame as unknown as { about: About }).about = about
  return frame as never
}

/**
 * Pushes on `fiber` the frame of `Effect.catchCause(self, f)`: a failure of
 * what follows becomes `f`'s effect, `f` called on the frame (`this.about`).
 * `f` takes exactly one parameter (Effect calls such a handler as it is).
 */
export const pushCatchCause = <About, E, A2, E2>(
  fiber: Fiber.Fiber<unknown, unknown>,
  about: About,
  f: (this: Frame<About>, cause: Cause.Cause<E>) => Effect.Effect<A2, E2>
): void => {
  ;(fiber as unknown as Stacked)._stack.push(catchCause(undefined as never, about, f))
}
