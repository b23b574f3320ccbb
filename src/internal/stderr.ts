/**
 * A child's stderr: split into lines of bounded length, forwarded to the
 * logger, and its last lines kept for the crash reason.
 */
import { Effect } from "effect"
import type { Severity } from "effect/LogLevel"
import { type CrashReason, Exited, Killed } from "../WorkerError.ts"

/** Splits bytes into lines; a line longer than `maxLineBytes` is cut, the rest of it dropped. */
export const makeLogLines = (maxLineBytes: number) => {
  const text = new TextDecoder("utf-8")
  let parts: Array<Uint8Array> = []
  let kept = 0
  let dropped = 0
  const finish = (): string => {
    const bytes = new Uint8Array(kept)
    let offset = 0
    for (const part of parts) {
      bytes.set(part, offset)
      offset += part.length
    }
    const line = text.decode(bytes).replace(/\r$/, "")
    const result = dropped > 0 ? `${line}… [${dropped} more bytes]` : line
    parts = []
    kept = 0
    dropped = 0
    return result
  }
  const keep = (bytes: Uint8Array) => {
    const room = maxLineBytes - kept
    if (bytes.length <= room) {
      if (bytes.length > 0) parts.push(bytes.slice())
      kept += bytes.length
    } else {
      if (room > 0) parts.push(bytes.slice(0, room))
      kept += Math.max(room, 0)
      dropped += bytes.length - Math.max(room, 0)
    }
  }
  return {
    push: (chunk: Uint8Array): Array<string> => {
      const lines: Array<string> = []
      let start = 0
      while (start < chunk.length) {
        const newline = chunk.indexOf(10, start)
        if (newline === -1) {
          keep(chunk.subarray(start))
          break
        }
        keep(chunk.subarray(start, newline))
        lines.push(finish())
        start = newline + 1
      }
      return lines
    },
    /** The unfinished last line, if any. */
    flush: (): Array<string> => (kept > 0 || dropped > 0 ? [finish()] : [])
  }
}

/** The last `size` non-blank lines seen. */
export const makeTail = (size: number) => {
  const lines: Array<string> = []
  return {
    push: (line: string) => {
      if (size <= 0 || line.trim() === "") return
      lines.push(line)
      if (lines.length > size) lines.shift()
    },
    lines: (): ReadonlyArray<string> => lines
  }
}

/** How many characters of each stderr line a crash reason shows. */
const reasonLineChars = 300

/** `reason`, followed by the last lines of stderr when there are any. */
export const withTail = (reason: string, tail: ReadonlyArray<string>): string =>
  tail.length === 0
    ? reason
    : `${reason}; last stderr: ${tail.map((l) => (l.length > reasonLineChars ? `${l.slice(0, reasonLineChars)}…` : l)).join(" | ")}`

/**
 * Why a child process ended: its exit `code`, or the `signal` that killed
 * it, or (`status` unknown) that it closed its stdout; with its last stderr
 * lines.
 */
export const exitReason = (
  label: string,
  status: { readonly code: number | null; readonly signal: string | null } | undefined,
  tail: ReadonlyArray<string>
): CrashReason => {
  if (status === undefined) return new Exited({ message: withTail(`${label} closed its stdout`, tail) })
  if (status.code !== null) {
    return new Exited({ message: withTail(`${label} exited with code ${status.code}`, tail), code: status.code })
  }
  const signal = status.signal ?? "a signal"
  return new Killed({ message: withTail(`${label} was killed by ${signal}`, tail), signal })
}

/** How many stderr lines of a thread wait for the logger at most; more are counted and dropped. */
export const logBacklog = 1024

/**
 * The logger of a child's stderr lines. Lines wait in a backlog for the
 * logging fiber. When the logger falls `logBacklog` lines behind, a child
 * whose output can wait (a pipe: `flow`) is paused until the backlog is
 * logged; otherwise (a thread) the excess is dropped and counted, and the
 * count is logged (at `Warn`) after the lines that made it through. What
 * waits when the scope closes is logged then.
 */
export const makeStderrLog = (
  level: Severity | "None",
  annotate: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>,
  flow?: { readonly pause: () => void; readonly resume: () => void }
) =>
  Effect.gen(function* () {
    let backlog: Array<string> = []
    let dropped = 0
    let paused = false
    let wake: (() => void) | undefined
    const drain = Effect.suspend(() => {
      const lines = backlog
      const lost = dropped
      backlog = []
      dropped = 0
      if (paused) {
        paused = false
        flow?.resume()
      }
      return Effect.forEach(lines, (line) => Effect.logWithLevel(level as Severity)(line), { discard: true }).pipe(
        Effect.andThen(
          lost === 0
            ? Effect.void
            : Effect.logWarning(`${lost} stderr lines dropped: the logger fell ${logBacklog} lines behind`)
        ),
        annotate
      )
    })
    const waitForLines = Effect.callback<void>((resume) => {
      if (backlog.length > 0 || dropped > 0) return resume(Effect.void)
      wake = () => {
        wake = undefined
        resume(Effect.void)
      }
      return Effect.sync(() => {
        wake = undefined
      })
    })
    if (level !== "None") {
      yield* Effect.forkScoped(Effect.forever(Effect.andThen(waitForLines, drain)).pipe(Effect.ensuring(drain)))
    }
    return {
      push: (line: string) => {
        if (level === "None" || line.trim() === "") return
        if (backlog.length < logBacklog) backlog.push(line)
        else if (flow === undefined) dropped++
        else {
          // One chunk may bring the backlog past the bound; then the child waits.
          backlog.push(line)
          if (!paused) {
            paused = true
            flow.pause()
          }
        }
        wake?.()
      }
    }
  })
