/**
 * The demo's command-line flags: parsing, validation and `--help`.
 */
import { parseArgs } from "node:util"

export interface Flags {
  readonly kind: "subprocess" | "thread" | "in-process" | "remote"
  readonly workers: number
  readonly policy: PolicyName
  readonly durationSeconds: number
  readonly crashRate: number
  readonly errorRate: number
  readonly concurrency: number
}

export type ParsedFlags =
  | { readonly _tag: "Run"; readonly flags: Flags }
  | { readonly _tag: "Help" }
  | { readonly _tag: "Invalid"; readonly message: string }

export const usage = `Usage: npm start -- [flags]

Runs a pool of workers under concurrent load: child processes by default,
or threads, or fibers in process, or remote workers on runner processes it
starts on loopback. Some requests are bad (the worker answers with a
DomainError), some crash their worker (a child calls process.exit, is
killed, or throws; a runner exits), which its supervisor then restarts. A
table shows each worker's health, redrawn live on a terminal and printed
once at the end otherwise; a summary checks that every request got exactly
one outcome.

Flags:
  --kind KIND          subprocess, thread, in-process or remote      (default subprocess)
  --workers N          workers in the pool, an integer >= 1          (default 4)
  --policy NAME        dispatch policy: shortest-expected-delay, least-loaded, round-robin,
                       power-of-two-choices, peak-ewma or random (default shortest-expected-delay)
  --duration SECONDS   how long to send requests, a number > 0       (default 5)
  --crash-rate P       probability that a request crashes its worker (default 0.005)
  --error-rate P       probability that a request is bad             (default 0.1)
  --concurrency N      concurrent callers, an integer >= 1           (default 16)
  --help               show this help

The exit code is 0 when every request got exactly one outcome, 1 otherwise, 2 for bad flags.`

class InvalidFlag extends Error {}

// Plain decimal notation only: "0x10", "1e3" or "" are rejected, not read as numbers.
const integerPattern = /^\d+$/
const decimalPattern = /^(\d+(\.\d*)?|\.\d+)$/

const integerAtLeast = (name: string, value: string, min: number): number => {
  const n = Number(value)
  if (!integerPattern.test(value) || !Number.isSafeInteger(n) || n < min) {
    throw new InvalidFlag(`--${name} must be an integer >= ${min}, got "${value}"`)
  }
  return n
}

const positiveNumber = (name: string, value: string): number => {
  const n = Number(value)
  if (!decimalPattern.test(value) || n <= 0) throw new InvalidFlag(`--${name} must be a number > 0, got "${value}"`)
  return n
}

const probability = (name: string, value: string): number => {
  const n = Number(value)
  if (!decimalPattern.test(value) || n > 1) {
    throw new InvalidFlag(`--${name} must be a probability between 0 and 1, got "${value}"`)
  }
  return n
}

const kindName = (value: string): Flags["kind"] => {
  if (value === "subprocess" || value === "thread" || value === "in-process" || value === "remote") return value
  throw new InvalidFlag(`--kind must be subprocess, thread, in-process or remote, got "${value}"`)
}

/** The policies the demo offers, by flag value. */
export const policyNames = [
  "shortest-expected-delay",
  "least-loaded",
  "round-robin",
  "power-of-two-choices",
  "peak-ewma",
  "random"
] as const
export type PolicyName = (typeof policyNames)[number]

const policyName = (value: string): PolicyName => {
  const found = policyNames.find((name) => name === value)
  if (found !== undefined) return found
  throw new InvalidFlag(`--policy must be one of ${policyNames.join(", ")}, got "${value}"`)
}

export const parseFlags = (args: ReadonlyArray<string>): ParsedFlags => {
  try {
    const { values } = parseArgs({
      args: [...args],
      strict: true,
      allowPositionals: false,
      options: {
        kind: { type: "string", default: "subprocess" },
        workers: { type: "string", default: "4" },
        policy: { type: "string", default: "shortest-expected-delay" },
        duration: { type: "string", default: "5" },
        "crash-rate": { type: "string", default: "0.005" },
        "error-rate": { type: "string", default: "0.1" },
        concurrency: { type: "string", default: "16" },
        help: { type: "boolean", default: false }
      }
    })
    if (values.help) return { _tag: "Help" }
    const flags: Flags = {
      kind: kindName(values.kind),
      workers: integerAtLeast("workers", values.workers, 1),
      policy: policyName(values.policy),
      durationSeconds: positiveNumber("duration", values.duration),
      crashRate: probability("crash-rate", values["crash-rate"]),
      errorRate: probability("error-rate", values["error-rate"]),
      concurrency: integerAtLeast("concurrency", values.concurrency, 1)
    }
    return { _tag: "Run", flags }
  } catch (error) {
    // parseArgs throws a TypeError for unknown flags, missing values and positionals.
    if (error instanceof InvalidFlag || error instanceof TypeError) return { _tag: "Invalid", message: error.message }
    throw error
  }
}
