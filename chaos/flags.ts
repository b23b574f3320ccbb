/**
 * The flags of `npm run chaos`.
 */
import { randomInt } from "node:crypto"
import { parseArgs } from "node:util"
import { type ChaosOptions, defaults } from "./chaos.ts"

/** The text of `--help`. */
export const usage = `Usage: npm run chaos -- [flags]

  --seed S           the seed of every decision (default: a random one, printed)
  --requests N       requests of each run (default ${defaults.requests})
  --faults K         times each fault is injected in each run (default ${defaults.faults})
  --workers W        workers at the start of each run (default ${defaults.workers})
  --callers C        requests in flight at once (default ${defaults.callers})
  --bound SECONDS    a request not ended this long after its dispatch is hung (default ${defaults.boundMillis / 1000})
  --hang-timeout MS  the timeout of a hanging request (default ${defaults.hangTimeoutMillis})
  --help             this text`

/** What the command line asks for. */
export type Parsed =
  | { readonly _tag: "Help" }
  | { readonly _tag: "Invalid"; readonly message: string }
  | { readonly _tag: "Options"; readonly options: ChaosOptions }

/** Parses the command line; without `--seed`, draws a seed. */
export const parseFlags = (args: ReadonlyArray<string>): Parsed => {
  let values: Record<string, string | boolean | undefined>
  try {
    values = parseArgs({
      args: [...args],
      options: {
        seed: { type: "string" },
        requests: { type: "string" },
        faults: { type: "string" },
        workers: { type: "string" },
        callers: { type: "string" },
        bound: { type: "string" },
        "hang-timeout": { type: "string" },
        help: { type: "boolean" }
      }
    }).values
  } catch (error) {
    return { _tag: "Invalid", message: (error as Error).message }
  }
  if (values.help === true) return { _tag: "Help" }
  const problems: Array<string> = []
  const read = (flag: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    const text = values[flag]
    if (text === undefined) return fallback
    const n = Number(text)
    if (typeof text !== "string" || text.trim() === "" || !Number.isSafeInteger(n) || n < min || n > max) {
      problems.push(`--${flag} must be an integer from ${min} to ${max}, got ${String(text)}`)
    }
    return n
  }
  const options: ChaosOptions = {
    seed: read("seed", values.seed === undefined ? randomInt(2 ** 32) : 0, 0, 2 ** 32 - 1),
    requests: read("requests", defaults.requests, 1),
    faults: read("faults", defaults.faults, 0),
    workers: read("workers", defaults.workers, 3),
    callers: read("callers", defaults.callers, 1),
    boundMillis: read("bound", defaults.boundMillis / 1000, 1) * 1000,
    hangTimeoutMillis: read("hang-timeout", defaults.hangTimeoutMillis, 1)
  }
  if (problems.length === 0 && options.faults * 5 > options.requests) {
    problems.push(
      `--requests ${options.requests} is too few to carry 5 kinds of faulty request, ${options.faults} each`
    )
  }
  return problems.length === 0 ? { _tag: "Options", options } : { _tag: "Invalid", message: problems.join("\n") }
}
