/**
 * The termination signals of a runner process, `SIGTERM` and `SIGINT`,
 * heard ahead of the process's other listeners (`NodeRuntime.runMain`'s, for
 * one, which interrupts the main fiber on the same signals) and counted: the
 * first asks for a drain, a second one to stop at once.
 */
import { Deferred, Effect, Exit, type Scope } from "effect"

/** The signals a process has had since it began to listen. */
export interface Signals {
  /** Completes with the first signal's name. */
  readonly first: Effect.Effect<string>
  /** Completes with the second signal's name. */
  readonly second: Effect.Effect<string>
  /** The first signal's name, or `undefined` before it came. */
  readonly received: () => string | undefined
}

const names = ["SIGTERM", "SIGINT"] as const

/** Listens for `SIGTERM` and `SIGINT` for as long as the scope lives. */
export const listen: Effect.Effect<Signals, never, Scope.Scope> = Effect.map(
  Effect.acquireRelease(
    Effect.sync(() => {
      const first = Deferred.makeUnsafe<string>()
      const second = Deferred.makeUnsafe<string>()
      let received: string | undefined
      const on = (signal: string) => () => {
        if (received === undefined) {
          received = signal
          Deferred.doneUnsafe(first, Exit.succeed(signal))
        } else {
          Deferred.doneUnsafe(second, Exit.succeed(signal))
        }
      }
      const listeners = names.map((name) => [name, on(name)] as const)
      // Ahead of the others: the signal is counted before anyone interrupts the runner for it.
      for (const [name, listener] of listeners) globalThis.process.prependListener(name, listener)
      const signals: Signals = {
        first: Deferred.await(first),
        second: Deferred.await(second),
        received: () => received
      }
      return { signals, listeners }
    }),
    ({ listeners }) =>
      Effect.sync(() => {
        for (const [name, listener] of listeners) globalThis.process.off(name, listener)
      })
  ),
  ({ signals }) => signals
)
