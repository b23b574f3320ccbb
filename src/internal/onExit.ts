/**
 * `Effect.onExit` with a callback that only updates state. Effect runs a
 * finalizer that returns nothing without the extra step of sequencing an
 * effect after it (its own pools rely on this), which saves two steps of the
 * run loop on every request. Every dispatch of the test suite goes through
 * it, so a change of that behaviour in Effect cannot go unnoticed.
 */
import { Effect, type Exit } from "effect"

export const onExitSync = <A, E, R>(
  self: Effect.Effect<A, E, R>,
  f: (exit: Exit.Exit<A, E>) => void
): Effect.Effect<A, E, R> => Effect.onExit(self, f as unknown as (exit: Exit.Exit<A, E>) => Effect.Effect<void>)
