/**
 * Capacity: the subprocess kind with an adaptive per-worker limit against
 * fixed limits, on a CPU-bound and an I/O-bound load. A pool of 2 children;
 * the adaptive variant has `concurrency: 32` and `maxInFlight: { adaptive:
 * { max: 32 } }`, each fixed variant `concurrency: k` (its limit) for k in 1,
 * 2, 4, …, 32, and an A/A control: a second pool of fixed 32. Callers loop
 * for a set time, each dispatching a task and awaiting its answer; a round
 * gives every variant's tasks per second and the 99th percentile of its
 * answers' latency. Every pool stays open for its load, and runs one
 * unmeasured round first (the adaptive limit learns then).
 *
 * The best fixed setting is the one with the best median over the rounds
 * (the highest rate; for the p99, the lowest), and the adaptive variant is
 * compared with it round by round: medians of the per-round ratios. (The
 * best of the fixed settings in each round, as this section measured before,
 * is the lowest of six noisy figures: the control, identical to one of them,
 * read 1.1 to 1.3 × that on a busy machine.) The control's ratios, taken the
 * same way, are the noise.
 *
 * Goals: CPU-bound, adaptive p99 at most 1.2 × and rate at least 0.95 ×;
 * I/O-bound, rate at least 0.8 ×.
 */
import { NodeServices } from "@effect/platform-node"
import { Effect, Exit, Schema, Scope } from "effect"
import { Subprocess, Worker, WorkerPool } from "effect-worker-pool"
import { interleave, ratio, type Spread, spread } from "./rounds.ts"
import { LoadTask } from "./workers/schemas.ts"

const script = new URL("./workers/load.ts", import.meta.url)

/** The fixed limits measured against the adaptive one. */
export const fixedLimits = [1, 2, 4, 8, 16, 32] as const

/** The adaptive variant's bound, and its kind's `concurrency`. */
export const adaptiveMax = 32

/** The fixed limit measured twice: its second pool is the A/A control. */
export const controlLimit = 32

/** One load: what a task costs, how many callers loop, and for how long a round runs. */
export interface CapacityLoad {
  readonly name: string
  readonly cpuMicros: number
  readonly waitMillis: number
  readonly callers: number
  /** The goals: the adaptive variant's rate at least this × the best fixed one's; its p99 at most that × (if set). */
  readonly goal: { readonly rate: number; readonly p99?: number | undefined }
}

/** The loads of the section. */
export const capacityLoads: ReadonlyArray<CapacityLoad> = [
  {
    name: "CPU-bound: 500 µs of CPU a task",
    cpuMicros: 500,
    waitMillis: 0,
    callers: 64,
    goal: { rate: 0.95, p99: 1.2 }
  },
  {
    name: "I/O-bound: 20 µs of CPU, then a 20 ms wait",
    cpuMicros: 20,
    waitMillis: 20,
    callers: 256,
    goal: { rate: 0.8 }
  }
]

/** One variant under one load. */
export interface CapacityRow {
  readonly name: string
  readonly adaptive: boolean
  /** The A/A control: a second pool of a fixed setting. */
  readonly control: boolean
  /** Tasks per second. */
  readonly rate: Spread
  /** The 99th percentile of the answers' latency, in milliseconds. */
  readonly p99: Spread
}

/** One load's rows and the adaptive variant's ratios to the best fixed setting. */
export interface CapacityLoadResult {
  readonly load: CapacityLoad
  readonly rows: ReadonlyArray<CapacityRow>
  /** The fixed setting of the highest median rate, and of the lowest median p99. */
  readonly bestRate: string
  readonly bestP99: string
  /** Per round: the adaptive rate over the best fixed setting's rate in that round. */
  readonly rateToBest: Spread
  /** Per round: the adaptive p99 over the best fixed setting's p99 in that round. */
  readonly p99ToBest: Spread
  /** The same ratios of the A/A control: the noise. */
  readonly controlRateToBest: Spread
  readonly controlP99ToBest: Spread
  /** Every variant's figures, round by round (in the order of `rows`). */
  readonly samples: ReadonlyArray<ReadonlyArray<{ readonly rate: number; readonly p99: number }>>
}

/** What the section measured. */
export interface CapacityResult {
  readonly loads: ReadonlyArray<CapacityLoadResult>
  readonly roundMillis: number
  readonly rounds: number
}

interface Sample {
  readonly rate: number
  readonly p99: number
}

const variantName = (limit: number | "adaptive", control: boolean) =>
  limit === "adaptive"
    ? `adaptive (concurrency ${adaptiveMax}, maxInFlight { adaptive: { max: ${adaptiveMax} } })`
    : `fixed ${limit} (concurrency ${limit})${control ? ", again: the A/A control" : ""}`

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!

/** A pool of 2 subprocess workers at one limit; `run` loops its callers for `millis`. */
const makeVariant = async (limit: number | "adaptive", load: CapacityLoad, control = false) => {
  const scope = Scope.makeUnsafe()
  const concurrency = limit === "adaptive" ? adaptiveMax : limit
  const kind = Subprocess.node(script, {
    request: LoadTask,
    response: Schema.Number,
    concurrency,
    execArgv: ["--conditions=effect-worker-pool-source"]
  })
  const pool = await Effect.runPromise(
    WorkerPool.make({
      size: 2,
      worker: (id) =>
        Worker.fromKind(id, kind, limit === "adaptive" ? { maxInFlight: { adaptive: { max: adaptiveMax } } } : {})
    }).pipe(Scope.provide(scope), Effect.provide(NodeServices.layer))
  )
  const run = async (millis: number): Promise<Sample> => {
    const latencies: Array<number> = []
    const started = performance.now()
    const deadline = started + millis
    let n = 0
    const caller = Effect.gen(function* () {
      while (performance.now() < deadline) {
        const task = { n: n++, cpuMicros: load.cpuMicros, waitMillis: load.waitMillis }
        const sent = performance.now()
        if ((yield* pool.dispatch(task)) !== task.n) throw new Error(`task ${task.n}: a wrong answer`)
        latencies.push(performance.now() - sent)
      }
    })
    await Effect.runPromise(
      Effect.all(
        Array.from({ length: load.callers }, () => caller),
        { concurrency: "unbounded", discard: true }
      )
    )
    const elapsed = performance.now() - started
    latencies.sort((a, b) => a - b)
    return { rate: (latencies.length * 1000) / elapsed, p99: percentile(latencies, 99) }
  }
  return {
    name: variantName(limit, control),
    adaptive: limit === "adaptive",
    control,
    run,
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

/** Measures every load: `rounds` interleaved rounds of `roundMillis` per variant. */
export const measureCapacity = async (roundMillis: number, rounds: number): Promise<CapacityResult> => {
  const results: Array<CapacityLoadResult> = []
  for (const load of capacityLoads) {
    const limits: ReadonlyArray<number | "adaptive"> = ["adaptive", ...fixedLimits]
    const variants = []
    for (const limit of limits) variants.push(await makeVariant(limit, load))
    variants.push(await makeVariant(controlLimit, load, true))
    try {
      for (const variant of variants) await variant.run(roundMillis)
      const samples = await interleave(
        variants.map((variant) => () => variant.run(roundMillis)),
        rounds,
        (round) => console.error(`capacity, ${load.name}: round ${round + 1}/${rounds}`)
      )
      const adaptive = samples[0]!
      const control = samples[samples.length - 1]!
      const fixed = samples.slice(1, -1)
      const medianOf = (k: number, pick: (s: Sample) => number) => spread(fixed[k]!.map(pick)).median
      let bestRate = 0
      let bestP99 = 0
      for (let k = 1; k < fixed.length; k++) {
        if (medianOf(k, (s) => s.rate) > medianOf(bestRate, (s) => s.rate)) bestRate = k
        if (medianOf(k, (s) => s.p99) < medianOf(bestP99, (s) => s.p99)) bestP99 = k
      }
      const toBest = (variant: ReadonlyArray<Sample>, pick: (s: Sample) => number, best: number) =>
        ratio(variant.map(pick), fixed[best]!.map(pick))
      results.push({
        load,
        rows: variants.map((variant, k) => ({
          name: variant.name,
          adaptive: variant.adaptive,
          control: variant.control,
          rate: spread(samples[k]!.map((s) => s.rate)),
          p99: spread(samples[k]!.map((s) => s.p99))
        })),
        bestRate: variants[bestRate + 1]!.name,
        bestP99: variants[bestP99 + 1]!.name,
        rateToBest: toBest(adaptive, (s) => s.rate, bestRate),
        p99ToBest: toBest(adaptive, (s) => s.p99, bestP99),
        controlRateToBest: toBest(control, (s) => s.rate, bestRate),
        controlP99ToBest: toBest(control, (s) => s.p99, bestP99),
        samples
      })
    } finally {
      for (const variant of variants) await variant.close()
    }
  }
  return { loads: results, roundMillis, rounds }
}

/** Whether the adaptive variant meets a load's goals. */
export const capacityGoalsMet = (result: CapacityLoadResult): boolean =>
  result.rateToBest.median >= result.load.goal.rate &&
  (result.load.goal.p99 === undefined || result.p99ToBest.median <= result.load.goal.p99)
