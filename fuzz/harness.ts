/**
 * The harness's guards: a real-time watchdog that never waits for what it
 * gives up on, a logger that keeps the lines a run must not produce, and the
 * process-wide catch of uncaught exceptions.
 */
import { Cause, Effect, Fiber, Logger, Option, Scheduler } from "effect"
import type { LogLine } from "./record.ts"

/**
 * Runs `effect` on a detached fiber and waits at most `millis` of real time
 * for it. Past that, the fiber is interrupted without being awaited (an
 * uninterruptible close would hold the harness forever) and `onTimeout`
 * gives the result. Run it outside any `TestClock`.
 */
export const withWatchdog = <A>(effect: Effect.Effect<A>, millis: number, onTimeout: () => A): Effect.Effect<A> =>
  Effect.gen(function* () {
    const fiber = yield* Effect.forkDetach(effect)
    const exit = yield* Effect.timeoutOption(Fiber.await(fiber), millis)
    if (Option.isNone(exit)) {
      fiber.interruptUnsafe()
      return onTimeout()
    }
    if (exit.value._tag === "Success") return exit.value.value
    return yield* Effect.die(new Error(`the run itself failed: ${Cause.pretty(exit.value.cause)}`))
  })

/** A stack overflow, logged or thrown. */
export const isStackOverflow = (text: string): boolean =>
  text.includes("Maximum call stack size exceeded") || text.includes("RangeError")

const serious = new Set(["Error", "Fatal"])

/**
 * A logger that keeps, in `lines`, what is logged at Error or above and any
 * line that mentions a stack overflow, with its cause.
 */
export const capturingLogger = (lines: Array<LogLine>): Logger.Logger<unknown, void> =>
  Logger.make(({ logLevel, message, cause }) => {
    const text = (Array.isArray(message) ? message : [message]).map(String).join(" ")
    const causeText = cause.reasons.length === 0 ? "" : Cause.pretty(cause)
    if (serious.has(logLevel) || isStackOverflow(text) || isStackOverflow(causeText)) {
      lines.push({ level: logLevel, message: causeText === "" ? text : `${text}: ${causeText.split("\n")[0]}` })
    }
  })

/** Provides the capturing logger (and no other) to `effect`. */
export const capturingLogs =
  (lines: Array<LogLine>) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.provideService(effect, Logger.CurrentLoggers, new Set([capturingLogger(lines)]))

/** Uncaught exceptions and unhandled rejections since the last `take`. */
const uncaught: Array<string> = []
let catching = false

/**
 * From now on, an uncaught exception or an unhandled rejection is kept for
 * the run under way (see `takeUncaught`) instead of ending the process.
 */
export const catchUncaught = (): void => {
  if (catching) return
  catching = true
  process.on("uncaughtException", (error) => void uncaught.push(`uncaught exception: ${String(error)}`))
  process.on("unhandledRejection", (reason) => void uncaught.push(`unhandled rejection: ${String(reason)}`))
}

/** The uncaught exceptions since the last call. */
export const takeUncaught = (): Array<string> => uncaught.splice(0, uncaught.length)

/**
 * A scheduler that counts the tasks fibers hand it, over Effect's own: a
 * fiber that wakes up (a timer, a message) runs a task. Provided outside a
 * `TestClock` (which schedules through it), it tells whether moving the
 * clock on after everything closed still runs anything.
 */
export const countingScheduler = (): { readonly scheduler: Scheduler.Scheduler; readonly tasks: () => number } => {
  const parent = new Scheduler.MixedScheduler()
  let tasks = 0
  const scheduler: Scheduler.Scheduler = {
    executionMode: parent.executionMode,
    shouldYield: (fiber) => parent.shouldYield(fiber),
    makeDispatcher: () => {
      const dispatcher = parent.makeDispatcher()
      return {
        scheduleTask: (task, priority) => {
          tasks++
          dispatcher.scheduleTask(task, priority)
        },
        flush: () => dispatcher.flush()
      }
    }
  }
  return { scheduler, tasks: () => tasks }
}
