/**
 * The runs of one `npm run sim`: every scenario at every load, for the
 * work-pulling reference and every listed policy, as plain data (so that
 * they can be sent to worker threads), and how to run one.
 */
import { Effect } from "effect"
import { libraryDefaults, oneSlot, policyMode, type RunResult, simulate, workPulling } from "./model.ts"
import { policies } from "./policies.ts"
import { seedOf } from "./random.ts"
import { capacityScenarios, scenarios } from "./scenarios.ts"

export interface Job {
  readonly index: number
  readonly scenario: string
  readonly load: number
  readonly mode: string
  readonly requests: number
  readonly seed: number
}

export interface JobResult {
  readonly index: number
  readonly result: RunResult
  /** Real time the run took, in milliseconds (not part of the result: it varies). */
  readonly wallMillis: number
}

/** The mode labels in report order: the reference, the library's defaults, then the policies. */
export const modeLabels = (): ReadonlyArray<string> => [
  workPulling.label,
  libraryDefaults.label,
  ...policies.map((p) => p.label)
]

/** One seed per scenario and load, shared by every mode (common random numbers). */
export const seedFor = (baseSeed: number, scenario: string, load: number): number =>
  seedOf(`${baseSeed}/${scenario}/${load}`)

/** Requests in a run of the one-slot mode (see `makeJobs`). */
export const oneSlotRequests = 1_000

export const makeJobs = (options: {
  readonly requests: number
  readonly baseSeed: number
  readonly only?: ReadonlyArray<string> | undefined
}): ReadonlyArray<Job> => {
  const jobs: Array<Job> = []
  for (const scenario of [...scenarios, ...capacityScenarios]) {
    if (options.only !== undefined && !options.only.includes(scenario.id)) continue
    for (const load of scenario.loads) {
      for (const mode of scenario.modes ?? modeLabels()) {
        jobs.push({
          index: jobs.length,
          scenario: scenario.id,
          load,
          mode,
          // One slot per worker under an I/O-bound load: its queue grows without bound and the run
          // slows with it; its first requests show enough.
          requests: mode === oneSlot.label ? Math.min(options.requests, oneSlotRequests) : options.requests,
          seed: seedFor(options.baseSeed, scenario.id, load)
        })
      }
    }
  }
  return jobs
}

export const runJob = async (job: Job): Promise<JobResult> => {
  const scenario = [...scenarios, ...capacityScenarios].find((s) => s.id === job.scenario)
  if (scenario === undefined) throw new Error(`unknown scenario ${job.scenario}`)
  const entry = policies.find((p) => p.label === job.mode)
  const mode =
    job.mode === workPulling.label
      ? workPulling
      : job.mode === libraryDefaults.label
        ? libraryDefaults
        : job.mode === oneSlot.label
          ? oneSlot
          : entry === undefined
            ? undefined
            : policyMode(entry.policy, entry.label)
  if (mode === undefined) throw new Error(`unknown mode ${job.mode}`)
  const started = performance.now()
  const result = await Effect.runPromise(
    simulate({ scenario, load: job.load, mode, requests: job.requests, seed: job.seed })
  )
  return { index: job.index, result, wallMillis: performance.now() - started }
}
