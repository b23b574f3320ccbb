/**
 * A request that runs on its caller's fiber, torn down from outside without
 * ending that fiber: the pool interrupts the fiber while the handler runs,
 * the request's frame catches the interruption, and the caller goes on with
 * the request's outcome (a `WorkerCrash`), as a caller whose request ran on a
 * fiber of its worker does.
 *
 * An interrupted fiber stays interrupted in Effect (the interruption is kept
 * on the fiber, and every later interruptible point fails with it), so the
 * frame that caught an interruption it made clears it (`resume`), and only
 * when every interruption the fiber holds is that one: a caller interrupted
 * by anyone else meanwhile leaves as interrupted. The interruption is kept in
 * a field of Effect's fiber runtime (`_interruptedCause`), which
 * test/caller-fiber.test.ts watches: a caller torn down goes on, and one
 * interrupted by its parent at the same time does not.
 */
import type { Cause, Fiber } from "effect"

/** The fields of Effect's fiber runtime that hold an interruption not yet acted on. */
interface Interruptible {
  _interruptedCause: Cause.Cause<never> | undefined
  _deferredInterrupt: boolean
}

let tearable: boolean | undefined

/**
 * Whether `fiber` keeps its interruption where `forget` clears it. When it
 * does not (an Effect runtime whose fiber is laid out otherwise), a request
 * that a sibling's crash could have to tear down runs on a fiber of its
 * worker instead: slower, never wrong.
 */
export const canTearDown = (fiber: Fiber.Fiber<unknown, unknown>): boolean => (tearable ??= hasInterruptFields(fiber))

/** Whether `fiber` has the fields `forget` clears (`canTearDown`, without its memory: every fiber is alike). */
export const hasInterruptFields = (fiber: Fiber.Fiber<unknown, unknown>): boolean =>
  "_interruptedCause" in fiber && "_deferredInterrupt" in fiber

/** Whether every reason of `cause` is an interruption by `by`. */
const onlyBy = (cause: Cause.Cause<unknown>, by: number): boolean =>
  cause.reasons.length > 0 && cause.reasons.every((reason) => reason._tag === "Interrupt" && reason.fiberId === by)

let tearers = 0

/**
 * A fiber id of its own for a worker's teardowns: below every real fiber's
 * (those count up from 1), so that no other interruption is taken for one.
 */
export const tearerId = (): number => -++tearers

/** Interrupts `caller` on behalf of `by` (a `tearerId`): what runs on it now is torn down. */
export const tearDown = (caller: Fiber.Fiber<unknown, unknown>, by: number): void => caller.interruptUnsafe(by)

/**
 * Clears the interruption `tearDown(caller, by)` left on `caller`, if it is
 * the only one the fiber holds: the request it was meant for has ended, and
 * the caller goes on.
 */
export const forget = (caller: Fiber.Fiber<unknown, unknown>, by: number): void => {
  const fiber = caller as unknown as Interruptible
  const held = fiber._interruptedCause
  if (held === undefined || !onlyBy(held, by)) return
  fiber._interruptedCause = undefined
  fiber._deferredInterrupt = false
}

/**
 * Whether `cause` (what the torn request's handler ended with) came from
 * `tearDown(caller, by)` alone, and nothing else interrupted `caller`
 * meanwhile; if so, `caller`'s fiber is no longer interrupted, and goes on.
 */
export const resume = (caller: Fiber.Fiber<unknown, unknown>, cause: Cause.Cause<unknown>, by: number): boolean => {
  if (!onlyBy(cause, by)) return false
  const held = (caller as unknown as Interruptible)._interruptedCause
  if (held !== undefined && !onlyBy(held, by)) return false
  forget(caller, by)
  return true
}

/**
 * Whether `caller` holds an interruption not yet acted on (after `resume` or
 * `forget` cleared a teardown's): its caller is leaving.
 */
export const isInterrupted = (caller: Fiber.Fiber<unknown, unknown>): boolean =>
  (caller as unknown as Interruptible)._interruptedCause !== undefined
