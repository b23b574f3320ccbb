/**
 * The chaos run: two runs of a seeded plan of requests and faults against a
 * pool of real threads and processes, one with no restart budget given and
 * one with a tight budget, each judged by `checksOf`. See docs/chaos.md.
 */
import { Effect } from "effect"
import { describeMachine, machine } from "../sim/machine.ts"
import { type Check, checksOf, totalsOf } from "./checks.ts"
import { faultNames } from "./plan.ts"
import { type Budget, type RunResult, type RunSettings, run } from "./run.ts"

/** The settings of a chaos run, as the flags give them. */
export interface ChaosOptions {
  readonly seed: number
  /** Requests of each run. */
  readonly requests: number
  /** How many times each fault is injected in each run. */
  readonly faults: number
  readonly workers: number
  readonly callers: number
  readonly boundMillis: number
  readonly hangTimeoutMillis: number
}

/** The defaults of every setting but the seed. */
export const defaults: Omit<ChaosOptions, "seed"> = {
  requests: 10_000,
  faults: 70,
  workers: 8,
  callers: 16,
  boundMillis: 45_000,
  hangTimeoutMillis: 100
}

/** The budget of the second run: tight enough that crash-looping workers are retired. */
export const budget: Budget = { maxRestarts: 3, windowMillis: 5_000 }

/** A run and its checks. */
export interface Judged {
  readonly result: RunResult
  readonly checks: ReadonlyArray<Check>
}

/** What a chaos run returns: each run with its checks, and whether all passed. */
export interface Report {
  readonly seed: number
  readonly runs: ReadonlyArray<Judged>
  readonly passed: boolean
  readonly elapsedMillis: number
}

/** The two runs of `options`. */
export const runsOf = (options: ChaosOptions): ReadonlyArray<RunSettings> => {
  const common = {
    seed: options.seed,
    requests: options.requests,
    faults: options.faults,
    workers: options.workers,
    callers: options.callers,
    hangTimeoutMillis: options.hangTimeoutMillis,
    boundMillis: options.boundMillis
  }
  return [
    { ...common, name: "default", stream: 0, budget: undefined },
    { ...common, name: "budget", stream: 1, budget }
  ]
}

const seconds = (millis: number) => `${(millis / 1000).toFixed(1)} s`

/** The lines that describe one judged run. */
export const describeRun = ({ result, checks }: Judged): Array<string> => {
  const s = result.settings
  const threads = Math.ceil(s.workers / 2)
  const t = totalsOf(result.workers)
  const refused = result.refusals.length
  // QueueTimeout is listed even when none happened: a request that waited its whole queue timeout is news.
  const outcomes = [...result.outcomes, ...(result.outcomes.has("QueueTimeout") ? [] : [["QueueTimeout", 0] as const])]
    .sort(([a, x], [b, y]) => (a === "success" ? -1 : b === "success" ? 1 : y - x))
    .map(([tag, n]) =>
      tag === "WorkerCrash" && refused > 0 ? `${tag} ${n} (${refused} refused: no worker available)` : `${tag} ${n}`
    )
  const o = result.outages
  // The faults that did not happen, one line per reason.
  const missed = new Map<string, Array<string>>()
  for (const name of faultNames) {
    for (const [because, n] of result.faults[name].missed)
      missed.set(because, [...(missed.get(because) ?? []), `${name} ${n}`])
  }
  const missedLines = [...missed].map(
    ([because, counts], i) => `  ${i === 0 ? "missed   " : "         "} ${because}: ${counts.join(", ")}`
  )
  return [
    `run ${s.name}: ${s.budget === undefined ? "no restart budget given (the library's default)" : `restart budget ${s.budget.maxRestarts} within ${seconds(s.budget.windowMillis)}`}`,
    `  ${s.requests} requests by ${s.callers} callers, ${s.workers} workers at the start (${threads} threads, ${s.workers - threads} subprocesses), ${seconds(result.elapsedMillis)}`,
    `  faults    planned ${s.faults} of each; happened ${faultNames.map((name) => `${name} ${result.faults[name].happened}`).join(", ")}`,
    ...missedLines,
    `  outcomes  ${outcomes.join(", ")}`,
    `  workers   made ${result.workers.length}, crashes ${t.crashes}, restarts ${t.restarts}, ejections ${t.ejections}, retired ${t.retired}`,
    `  no worker up ${o.count} times, ${seconds(o.totalMillis)} in all, the longest ${(o.longestMillis / 1000).toFixed(2)} s`,
    ...checks.map((c) => `  ${c.passed ? "ok  " : "FAIL"} ${c.name.padEnd(13)} ${c.detail}`)
  ]
}

/** Runs both runs, printing each as it ends, and returns the report. */
export const chaos = (options: ChaosOptions, print: (line: string) => void): Effect.Effect<Report> =>
  Effect.gen(function* () {
    const began = performance.now()
    print(`chaos: seed ${options.seed}, on ${describeMachine(machine())}`)
    const runs: Array<Judged> = []
    for (const settings of runsOf(options)) {
      const result = yield* run(settings)
      const judged = { result, checks: checksOf(result) }
      runs.push(judged)
      for (const line of describeRun(judged)) print(line)
    }
    return {
      seed: options.seed,
      runs,
      passed: runs.every(({ checks }) => checks.every((c) => c.passed)),
      elapsedMillis: performance.now() - began
    }
  })

/** The one-line summary of a report. */
export const summaryOf = (report: Report): string => {
  const requests = report.runs.reduce((n, { result }) => n + result.issued, 0)
  const failed = report.runs.flatMap(({ result, checks }) =>
    checks.filter((c) => !c.passed).map((c) => `${result.settings.name}/${c.name}`)
  )
  return failed.length === 0
    ? `chaos: PASS, seed ${report.seed}, ${report.runs.length} runs, ${requests} requests, every check passed in ${seconds(report.elapsedMillis)}`
    : `chaos: FAIL, seed ${report.seed}, ${report.runs.length} runs, ${requests} requests, failed: ${failed.join(", ")}`
}

/** The failed checks, one line each, for stderr. */
export const failuresOf = (report: Report): Array<string> =>
  report.runs.flatMap(({ result, checks }) =>
    checks.filter((c) => !c.passed).map((c) => `FAILED ${result.settings.name}/${c.name}: ${c.detail}`)
  )
