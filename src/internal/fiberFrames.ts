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

let pushable: boolean | undefined

/** Whether `fiber` keeps its frames where `push` puts them (one check for the process: every fiber is alike). */
export const canPush = (fiber: Fiber.Fiber<unknown, unknown>): boolean =>
  (pushable ??= "_stack" in fiber && Array.isArray((fiber as unknown as Stacked)._stack))

/**
 * Pushes on `fiber` the frame of `Effect.onExitPrimitive(self, onExit, true)`:
 * `onExit` sees how what follows ends, and the fiber's interruptibility is
 * left as it is (`onExit` runs no effect: it is synchronous code, which no
 * interruption can enter).
 */
export const pushOnExit = <A, E>(
  fiber: Fiber.Fiber<unknown, unknown>,
  onExit: (exit: Exit.Exit<A, E>) => undefined,
  interruptible?: boolean
): void => {
  ;(fiber as unknown as Stacked)._stack.push(Effect.onExitPrimitive(undefined as never, onExit, interruptible))
}

/** Pushes on `fiber` the frame of `Effect.catchCause(self, f)`: a failure of what follows becomes `f`'s effect. */
export const pushCatchCause = <E, A2, E2>(
  fiber: Fiber.Fiber<unknown, unknown>,
  f: (cause: Cause.Cause<E>) => Effect.Effect<A2, E2>
): void => {
  ;(fiber as unknown as Stacked)._stack.push(Effect.catchCause(undefined as never, f))
}
