/**
 * The flags of `npm run chaos`.
 */
import { randomInt } from "node:crypto"
import { type ChaosOptions, defaults } from "./chaos.ts"
import { type CommandLine, readFlags } from "./command-line.ts"

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
export type Parsed = CommandLine<ChaosOptions>

/** Parses the command line; without `--seed`, draws a seed. */
export const parseFlags = (args: ReadonlyArray<string>): Parsed => {
  const flags = readFlags(args, {
    seed: "string",
    requests: "string",
    faults: "string",
    workers: "string",
    callers: "string",
    bound: "string",
    "hang-timeout": "string",
    help: "boolean"
  })
  if (flags._tag === "Invalid") return flags
  if (flags.values.help === true) return { _tag: "Help" }
  const options: ChaosOptions = {
    seed: flags.integer("seed", flags.values.seed === undefined ? randomInt(2 ** 32) : 0, 0, 2 ** 32 - 1),
    requests: flags.integer("requests", defaults.requests, 1),
    faults: flags.integer("faults", defaults.faults, 0),
    workers: flags.integer("workers", defaults.workers, 3),
    callers: flags.integer("callers", defaults.callers, 1),
    boundMillis: flags.integer("bound", defaults.boundMillis / 1000, 1) * 1000,
    hangTimeoutMillis: flags.integer("hang-timeout", defaults.hangTimeoutMillis, 1)
  }
  const parsed = flags.result(options)
  if (parsed._tag === "Options" && options.faults * 5 > options.requests) {
    return {
      _tag: "Invalid",
      message: `--requests ${options.requests} is too few to carry 5 kinds of faulty request, ${options.faults} each`
    }
  }
  return parsed
}
