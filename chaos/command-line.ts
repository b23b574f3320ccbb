/**
 * The command line of `npm run chaos` and `npm run fuzz`, read the same way:
 * Node's `parseArgs` over the flags a command declares, each number checked
 * against its range, and every mistake said at once.
 */
import { parseArgs } from "node:util"

/** A command line that cannot be run, and why. */
export interface Invalid {
  readonly _tag: "Invalid"
  readonly message: string
}

/** What a command line asks for: `--help`, a run with `options`, or nothing it can do. */
export type CommandLine<Options> =
  | { readonly _tag: "Help" }
  | Invalid
  | { readonly _tag: "Options"; readonly options: Options }

/** The flags a command line gave, read one at a time; a mistake is noted, and said by `result`. */
export interface FlagReader {
  readonly _tag: "Read"
  /** Each flag given: the text of a flag with a value, `true` for a switch. */
  readonly values: Readonly<Record<string, string | boolean | undefined>>
  /** Notes a mistake of the command line. */
  readonly problem: (message: string) => void
  /** The number `--flag` gives, from `min` to `max`; `fallback` without the flag. */
  readonly number: (flag: string, fallback: number, min: number, max?: number) => number
  /** The integer `--flag` gives, from `min` to `max`; `fallback` without the flag. */
  readonly integer: (flag: string, fallback: number, min: number, max?: number) => number
  /** The names `--flag` lists, comma-separated, blanks left out; `undefined` without the flag. */
  readonly names: (flag: string) => Array<string> | undefined
  /** A run with `options`, or, if a mistake was noted, every mistake. */
  readonly result: <Options>(options: Options) => CommandLine<Options>
}

/**
 * Reads `args` against `flags`: each is a `--name` that takes a value
 * (`"string"`) or a switch (`"boolean"`). A flag not declared, or one that
 * lacks its value, makes the command line `Invalid` at once.
 */
export const readFlags = (
  args: ReadonlyArray<string>,
  flags: Readonly<Record<string, "string" | "boolean">>
): FlagReader | Invalid => {
  let values: Record<string, string | boolean | undefined>
  try {
    values = parseArgs({
      args: [...args],
      options: Object.fromEntries(Object.entries(flags).map(([name, type]) => [name, { type }]))
    }).values
  } catch (error) {
    return { _tag: "Invalid", message: (error as Error).message }
  }
  const problems: Array<string> = []
  const inRange =
    (kind: "a number" | "an integer", valid: (n: number) => boolean) =>
    (flag: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number => {
      const text = values[flag]
      if (text === undefined) return fallback
      const n = Number(text)
      if (typeof text !== "string" || text.trim() === "" || !valid(n) || n < min || n > max) {
        problems.push(`--${flag} must be ${kind} from ${min} to ${max}, got ${String(text)}`)
      }
      return n
    }
  return {
    _tag: "Read",
    values,
    problem: (message) => void problems.push(message),
    number: inRange("a number", Number.isFinite),
    integer: inRange("an integer", Number.isSafeInteger),
    names: (flag) => {
      const text = values[flag]
      if (typeof text !== "string") return undefined
      return text
        .split(",")
        .map((s) => s.trim())
        .filter((s) => s !== "")
    },
    result: (options) =>
      problems.length === 0 ? { _tag: "Options", options } : { _tag: "Invalid", message: problems.join("\n") }
  }
}
