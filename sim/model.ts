/**
 * The simulation model: a workload, a set of simulated workers, and one run
 * of the real pool (`WorkerPool.make`) with a real policy over them, in
 * virtual time.
 *
 * - Each simulated worker is an in-process `Worker.make` whose handler takes a
 *   semaphore of one permit (the worker's own FIFO: one request in service at
 *   a time, the others wait in arrival order) and then sleeps for the
 *   request's work divided by the worker's speed. The sleep is virtual: the
 *   run provides `TestClock.layer()` and moves the clock itself.
 * - An I/O-bound worker (`io`) takes no semaphore: it waits for each request
 *   at once, whatever else it holds, as a handler that calls another service
 *   does; its latency does not grow with its load.
 * - In policy mode every worker has a very large `maxInFlight`, so that the
 *   policy alone decides which worker's FIFO a request joins. In work-pulling
 *   mode every worker has `maxInFlight: 1`: requests wait in the pool's shared
 *   admission queue and the next worker to free its slot takes the head
 *   (M/M/n, the reference line); when several workers are idle, one is
 *   picked at random (`DispatchPolicy.Random`).
 * - The workload (Poisson arrivals, exponential service with mean 1 at speed
 *   1) comes from the simulator's own seeded generator, drawn per request in
 *   arrival order, so every mode sees the same requests. The pool's own
 *   randomness (policies, restart jitter, ejection jitter) comes from Effect's
 *   `Random` service, seeded with `Random.withSeed`.
 * - The driver sets the clock to each arrival in turn (`TestClock.setTime`
 *   runs every sleeper due before it, in time order, and waits until the
 *   fibers it woke are idle), samples the queue depth, then starts the
 *   request's dispatch synchronously (`startImmediately`), so that the pick
 *   happens at the arrival instant. After the last arrival it advances the
 *   clock until every request has an outcome.
 *
 * Times inside the pool are milliseconds; one unit of work (the mean service
 * time at speed 1) is {@link SERVICE_MILLIS} ms. Reported latencies are in
 * units of the mean service time.
 */
import { Cause, Duration, Effect, Exit, Option, Random, References, Semaphore } from "effect"
import { TestClock } from "effect/testing"
import type { InvalidOptions, WorkerPool } from "effect-worker-pool"
import { DispatchPolicy, WorkerPool as Pool, RequestTimeout, Worker, WorkerCrash } from "effect-worker-pool"
import { exponential, makeRng } from "./random.ts"

/** Milliseconds of virtual time in one unit of work (the mean service time at speed 1). */
export const SERVICE_MILLIS = 100

/** One second in units of work. */
export const SECOND_UNITS = 1000 / SERVICE_MILLIS

/** A fault injected into one worker from a point of the run on. */
export type Fault =
  /** The first request the worker starts serving after `at` fails with `WorkerCrash`; the worker restarts. */
  | { readonly _tag: "Crash"; readonly worker: number; readonly at: number }
  /** Every request the worker starts serving after `at` fails with `WorkerCrash`, until its restart budget is spent. */
  | { readonly _tag: "CrashLoop"; readonly worker: number; readonly at: number }
  /** Every request the worker starts serving after `at` never answers (`Effect.never`). */
  | { readonly _tag: "Hang"; readonly worker: number; readonly at: number }

/**
 * A scenario: the workers and what happens to them. Times (`at`, the drift)
 * are fractions of the span of arrivals, so that a scenario means the same at
 * every load and run length.
 */
export interface Scenario {
  readonly id: string
  readonly title: string
  readonly description: string
  /** Base speed of each worker; a request of work `w` takes `w / speed` units. */
  readonly speeds: ReadonlyArray<number>
  /** Utilisations to run at: arrival rate / sum of the base speeds. */
  readonly loads: ReadonlyArray<number>
  /**
   * Service times: exponential (default) or constant, both of mean 1 unit;
   * or `"io"`, uniform between 1 and 3 units (a call to another service).
   */
  readonly service?: "exponential" | "constant" | "io" | undefined
  /**
   * The workers are I/O-bound: each waits for all its requests at once (no
   * FIFO), so that their latency does not grow with their load.
   */
  readonly io?: boolean | undefined
  /**
   * One worker's speed multiplier as a function of the fraction of the run
   * elapsed, and of the virtual time in milliseconds.
   */
  readonly drift?:
    | { readonly worker: number; readonly factor: (fraction: number, millis: number) => number }
    | undefined
  readonly fault?: Fault | undefined
  /** The pool's request timeout, in units of the mean service time. */
  readonly timeoutUnits?: number | undefined
  /** `false` turns the pool's passive ejection off (it is on, with its defaults, otherwise). */
  readonly ejection?: false | undefined
  /** Options of every worker (restart schedule and budget); `maxInFlight` is set by the mode. */
  readonly worker?: Omit<Worker.WorkerOptions, "maxInFlight"> | undefined
  /** The modes to run it in, when not every mode (see `jobs.ts`). */
  readonly modes?: ReadonlyArray<string> | undefined
}

/** How requests reach the workers. */
export type Mode =
  | { readonly _tag: "Policy"; readonly label: string; readonly policy: DispatchPolicy.DispatchPolicy }
  | { readonly _tag: "WorkPulling"; readonly label: string }
  | { readonly _tag: "Defaults"; readonly label: string }
  | { readonly _tag: "OneSlot"; readonly label: string }

/**
 * The library's defaults: `WorkerPool.make` with no policy, queue or
 * `maxInFlight` option (the default policy, one slot per worker, a queue of
 * 1024 that holds callers back when full).
 */
export const libraryDefaults: Mode = { _tag: "Defaults", label: "defaults" }

/**
 * The library's defaults with one slot per worker (`maxInFlight: 1`), the
 * default before adaptive concurrency: what the adaptive limit is compared
 * with. Its queue holds every request (capacity 1,000,000), so that each is
 * placed at its arrival.
 */
export const oneSlot: Mode = { _tag: "OneSlot", label: "defaults, maxInFlight 1" }

/** The work-pulling reference: one slot per worker, a shared queue, a random pick when several workers are idle. */
export const workPulling: Mode = { _tag: "WorkPulling", label: "work-pulling" }

/** A policy mode, labelled with the policy's name. */
export const policyMode = (policy: DispatchPolicy.DispatchPolicy, label: string = policy.name): Mode => ({
  _tag: "Policy",
  label,
  policy
})

export interface RunSpec {
  readonly scenario: Scenario
  readonly load: number
  readonly mode: Mode
  readonly requests: number
  readonly seed: number
  /** Share of the first requests left out of latency and queue statistics (default 0.1). */
  readonly warmup?: number | undefined
}

export interface LatencySummary {
  /** Successful requests counted (after the warm-up). */
  readonly count: number
  readonly mean: number
  readonly p50: number
  readonly p99: number
  readonly p999: number
  readonly max: number
}

export interface QueueSummary {
  readonly mean: number
  readonly max: number
  /** Requests accumulated per arrival between the second and the last quarter of the run. */
  readonly trend: number
  /** The queue kept growing: see {@link grows}. */
  readonly grows: boolean
}

/** What one run measured. Deterministic: the same spec gives the same result. */
export interface RunResult {
  readonly scenario: string
  readonly load: number
  readonly mode: string
  readonly seed: number
  readonly requests: number
  /** Latency of successful requests, completion − arrival, in units of the mean service time. */
  readonly latency: LatencySummary
  /** Requests admitted and not finished beyond those in service, sampled at each arrival. */
  readonly queue: QueueSummary
  readonly succeeded: number
  /** Typed failures other than timeouts: `WorkerCrash`, `PoolBusy`, ... */
  readonly failed: number
  readonly timedOut: number
  /** Requests without an outcome after the final drain. */
  readonly lost: number
  /** Requests each worker started serving. */
  readonly served: ReadonlyArray<number>
  /**
   * Requests routed to the drifting worker (they reached its handler, where
   * they join its FIFO) while it ran below its base speed: what the policy
   * sent the slow worker. 0 in a scenario without a drift.
   */
  readonly sentToSlow: number
  /** Share of the requests after the warm-up that succeeded within 1 s ({@link SECOND_UNITS} units) of their arrival. */
  readonly withinSecond: number
  /**
   * Requests that, at their arrival, neither reached a worker's handler, nor
   * waited in the pool's queue, nor failed: must be 0, or the driver let the
   * clock move before the pool had placed a request.
   */
  readonly unplaced: number
  /** Virtual time of the last arrival, in units. */
  readonly span: number
}

/** The arrivals (ms) and the work of each request (units), for a scenario at a load. */
export const workload = (scenario: Scenario, load: number, requests: number, seed: number) => {
  const capacity = scenario.speeds.reduce((a, b) => a + b, 0)
  const rate = load * capacity
  const arrivalsRng = makeRng(seed, 1)
  const serviceRng = makeRng(seed, 2)
  const arrivals = new Float64Array(requests)
  const work = new Float64Array(requests)
  let t = 0
  for (let i = 0; i < requests; i++) {
    t += exponential(arrivalsRng(), 1 / rate)
    arrivals[i] = t * SERVICE_MILLIS
    work[i] =
      scenario.service === "constant"
        ? 1
        : scenario.service === "io"
          ? 1 + 2 * serviceRng()
          : exponential(serviceRng(), 1)
  }
  return { arrivals, work }
}

/** Nearest-rank percentile of sorted values. */
export const percentile = (sorted: Float64Array, p: number): number =>
  sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!

const mean = (xs: Float64Array | Int32Array, from: number, to: number) => {
  let sum = 0
  for (let i = from; i < to; i++) sum += xs[i]!
  return to > from ? sum / (to - from) : 0
}

/**
 * Whether a queue grows without bound, from the depths sampled at arrivals:
 * between the second and the last quarter of the run it gained more than 1 %
 * of the arrivals in between, and its mean rose by half and by more than the
 * number of workers. A heuristic with a finite run: it flags a queue that is
 * still filling at the end, not a proof of instability.
 */
export const grows = (trend: number, secondQuarter: number, lastQuarter: number, workers: number): boolean =>
  trend > 0.01 && lastQuarter > 1.5 * secondQuarter + workers

const summarise = (latencies: Array<number>): LatencySummary => {
  const sorted = Float64Array.from(latencies).sort()
  return {
    count: sorted.length,
    mean: sorted.length === 0 ? Number.NaN : sorted.reduce((a, b) => a + b, 0) / sorted.length,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    p999: percentile(sorted, 0.999),
    max: sorted.length === 0 ? Number.NaN : sorted[sorted.length - 1]!
  }
}

// Outcomes, in a Uint8Array: 0 is none yet.
const OUTCOME_OK = 1
const OUTCOME_FAILED = 2
const OUTCOME_TIMEOUT = 3

const identity = <A>(effect: A): A => effect

/** Runs one simulation. Self-contained: it provides its own clock, seed and (silent) logger. */
export const simulate = (spec: RunSpec): Effect.Effect<RunResult> => {
  const { scenario, mode, requests, seed } = spec
  const n = scenario.speeds.length
  const { arrivals, work } = workload(scenario, spec.load, requests, seed)
  const span = arrivals[requests - 1]!
  const fault = scenario.fault
  const faultAt = fault === undefined ? Number.POSITIVE_INFINITY : fault.at * span
  const drift = scenario.drift

  const outcome = new Uint8Array(requests)
  const latency = new Float64Array(requests)
  const depth = new Int32Array(requests)
  const entered = new Uint8Array(requests)
  const served = new Array<number>(n).fill(0)
  let outstanding = 0
  let busy = 0
  let unplaced = 0
  let crashed = false
  let sentToSlow = 0

  const speedOf = (w: number, t: number) =>
    scenario.speeds[w]! * (drift !== undefined && drift.worker === w ? drift.factor(t / span, t) : 1)

  return Effect.gen(function* () {
    const clock = yield* Effect.clockWith(Effect.succeed)
    const now = () => clock.currentTimeMillisUnsafe()
    const permits = scenario.speeds.map(() => Semaphore.makeUnsafe(1))
    const release = Effect.sync(() => {
      busy--
    })

    const handler =
      (w: number) =>
      (i: number): Effect.Effect<number, WorkerCrash> =>
        Effect.suspend(() => {
          entered[i] = 1
          if (drift !== undefined && drift.worker === w && drift.factor(now() / span, now()) < 1) sentToSlow++
          return (scenario.io === true ? identity : permits[w]!.withPermits(1))(
            Effect.suspend((): Effect.Effect<number, WorkerCrash> => {
              const t = now()
              if (fault !== undefined && fault.worker === w && t >= faultAt) {
                if (fault._tag === "Hang") {
                  busy++
                  served[w]!++
                  return Effect.ensuring(Effect.never, release)
                }
                if (fault._tag === "CrashLoop" || !crashed) {
                  crashed = true
                  return Effect.fail(WorkerCrash.report(`simulated ${fault._tag}`))
                }
              }
              busy++
              served[w]!++
              return Effect.sleep(Duration.millis((work[i]! * SERVICE_MILLIS) / speedOf(w, t))).pipe(
                Effect.ensuring(release),
                Effect.as(i)
              )
            })
          )
        })

    const defaults = mode._tag === "Defaults" || mode._tag === "OneSlot"
    const options: WorkerPool.Options<number, number, never, InvalidOptions, never> = {
      size: n,
      worker: (id) =>
        Worker.make<number, number, never>(id, handler(id), {
          ...scenario.worker,
          ...(mode._tag === "Defaults"
            ? {}
            : { maxInFlight: mode._tag === "WorkPulling" || mode._tag === "OneSlot" ? 1 : 1_000_000 })
        }),
      // One slot per worker holds every request it cannot serve in the queue (none waits outside it).
      ...(mode._tag === "Defaults" ? {} : { queueCapacity: 1_000_000 }),
      ...(scenario.ejection === false ? { ejection: false } : {}),
      drain: 0,
      // The reference picks at random among the idle workers, so that it
      // depends neither on the ids of the fast workers nor on the default policy.
      ...(defaults ? {} : { policy: mode._tag === "Policy" ? mode.policy : DispatchPolicy.Random }),
      ...(scenario.timeoutUnits === undefined
        ? {}
        : { timeout: Duration.millis(scenario.timeoutUnits * SERVICE_MILLIS) })
    }
    const pool = yield* Effect.orDie(Pool.make(options))

    const settle = (i: number) => (exit: Exit.Exit<number, unknown>) =>
      Effect.sync(() => {
        outstanding--
        latency[i] = (now() - arrivals[i]!) / SERVICE_MILLIS
        if (Exit.isSuccess(exit)) {
          outcome[i] = OUTCOME_OK
          return
        }
        const error = Option.getOrUndefined(Cause.findErrorOption(exit.cause))
        outcome[i] = error instanceof RequestTimeout ? OUTCOME_TIMEOUT : OUTCOME_FAILED
      })

    for (let i = 0; i < requests; i++) {
      yield* TestClock.setTime(arrivals[i]!)
      depth[i] = outstanding - busy
      outstanding++
      const queuedBefore = yield* pool.queued
      yield* Effect.forkChild(Effect.flatMap(Effect.exit(pool.dispatch(i)), settle(i)), { startImmediately: true })
      if (entered[i] === 0 && outcome[i] === 0 && (yield* pool.queued) <= queuedBefore) unplaced++
    }
    // Drain: move on until every request has an outcome (a queue that grew
    // without bound takes long to empty), or give up and count the rest lost.
    for (let step = 0; step < 1000 && outstanding > 0; step++) {
      yield* TestClock.adjust(Duration.millis(Math.max(span, 1000 * SERVICE_MILLIS)))
    }
    const lost = outstanding

    const warmup = Math.floor((spec.warmup ?? 0.1) * requests)
    const ok: Array<number> = []
    let succeeded = 0
    let failed = 0
    let timedOut = 0
    let inTime = 0
    for (let i = 0; i < requests; i++) {
      const o = outcome[i]
      if (o === OUTCOME_OK) {
        succeeded++
        if (i >= warmup) {
          ok.push(latency[i]!)
          if (latency[i]! <= SECOND_UNITS) inTime++
        }
      } else if (o === OUTCOME_FAILED) failed++
      else if (o === OUTCOME_TIMEOUT) timedOut++
    }
    const q2 = Math.floor(requests / 4)
    const q3 = Math.floor(requests / 2)
    const q4 = Math.floor((3 * requests) / 4)
    const second = mean(depth, q2, q3)
    const last = mean(depth, q4, requests)
    const trend = (last - second) / (q4 - q2)
    let maxDepth = 0
    for (let i = warmup; i < requests; i++) maxDepth = Math.max(maxDepth, depth[i]!)
    return {
      scenario: scenario.id,
      load: spec.load,
      mode: mode.label,
      seed,
      requests,
      latency: summarise(ok),
      queue: { mean: mean(depth, warmup, requests), max: maxDepth, trend, grows: grows(trend, second, last, n) },
      succeeded,
      failed,
      timedOut,
      lost,
      served,
      sentToSlow,
      withinSecond: inTime / (requests - warmup),
      unplaced,
      span: span / SERVICE_MILLIS
    }
  }).pipe(
    Effect.scoped,
    Effect.provide(TestClock.layer()),
    Random.withSeed(seed),
    Effect.provideService(References.MinimumLogLevel, "None")
  )
}
