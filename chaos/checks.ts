/**
 * The checks of a chaos run: what the pool promises, judged against what the
 * run saw. Each check passes or fails with a line that says why.
 */
import { faultNames } from "./plan.ts"
import { canComeBack, type FaultFate, type Refusal, type RunResult, type WorkerRecord } from "./run.ts"

/** One check of one run. */
export interface Check {
  readonly name: string
  readonly passed: boolean
  readonly detail: string
}

/**
 * How late `pool.changes` may show a restart, on an idle machine. A restart
 * is seen when the stream's fiber runs, a little after the supervisor made
 * it; two restarts `restartWindow` apart may look closer by this much. On a
 * busy machine the supervisor's own restart delay also overruns, by as much
 * as any timer of the run (see `RunResult.timerLatenessMillis`). So the
 * budget check counts restarts within `restartWindow` less this slack and
 * that lateness.
 */
export const observationSlackMillis = 100

const seconds = (millis: number) => `${(millis / 1000).toFixed(millis < 10_000 ? 2 : 1)} s`

/** The restart times in the half-open window `[t, t + width)` that holds the most of them (the earliest such window). */
export const densestWithin = (times: ReadonlyArray<number>, width: number): ReadonlyArray<number> => {
  const sorted = [...times].sort((a, b) => a - b)
  let densest: ReadonlyArray<number> = []
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (j < sorted.length && sorted[j]! < sorted[i]! + width) j++
    if (j - i > densest.length) densest = sorted.slice(i, j)
  }
  return densest
}

/** The sums of the workers' counters, over every worker the run made. */
export const totalsOf = (workers: ReadonlyArray<WorkerRecord>) => {
  const sum = (f: (w: WorkerRecord) => number) => workers.reduce((n, w) => n + f(w), 0)
  return {
    completed: sum((w) => w.final.completed),
    errored: sum((w) => w.final.errored),
    timeouts: sum((w) => w.final.timeouts),
    interrupted: sum((w) => w.final.interrupted),
    inFlight: sum((w) => w.final.inFlight),
    crashes: sum((w) => w.final.crashes),
    restarts: sum((w) => w.final.restarts),
    ejections: sum((w) => w.final.ejections),
    /** Workers retired at some point (a retired worker that was removed since is `Stopped`, with its reason kept). */
    retired: workers.filter((w) => w.final.retiredBecause !== undefined).length
  }
}

/**
 * Whether a refusal was one the pool promises: its reason is `NoWorker`, and
 * the refused request's fiber saw no member that could take a request or
 * come back (see `canComeBack`). With no budget no worker is
 * ever retired and the run never removes the last two members, so only
 * members failing to start could allow one there; with a budget, retired
 * members too.
 */
export const refusalAllowed = (refusal: Refusal): boolean =>
  refusal.reason === "NoWorker" && refusal.seen !== undefined && !refusal.seen.some(canComeBack)

const describeRefusal = (refusal: Refusal): string => {
  const seen =
    refusal.seen === undefined
      ? "its fiber did not see the refusal"
      : refusal.seen.length === 0
        ? "no member"
        : refusal.seen
            .map(
              ({ id, state, failedStarts }) =>
                `${id} ${state}${failedStarts > 0 ? ` (failed starts ${failedStarts})` : ""}`
            )
            .join(", ")
  return `request ${refusal.request}, seen: ${seen}; ${refusal.reason}: "${refusal.message}"`
}

/** How many faults of a fate did not happen, for whatever reason. */
export const missedCount = (fate: FaultFate): number => [...fate.missed.values()].reduce((a, b) => a + b, 0)

/**
 * What went other than planned with the faults: a plan that does not hold
 * `faults` of each, a step the run did not take to its end, and each fault
 * whose outcome nothing allows. Empty when every planned fault was injected
 * and either happened or met an outcome the pool allows (see `FaultFate`).
 */
export const faultProblems = (result: RunResult): Array<string> =>
  faultNames.flatMap((name) => {
    const fate = result.faults[name]
    const taken = fate.happened + missedCount(fate) + fate.unexplained.length
    return [
      ...(fate.planned === result.settings.faults
        ? []
        : [`${name}: the plan holds ${fate.planned}, not ${result.settings.faults}`]),
      ...(taken === fate.planned ? [] : [`${name}: ${taken} of the ${fate.planned} planned were taken to their end`]),
      ...fate.unexplained.map((what) => `${name}: ${what}`)
    ]
  })

/** Judges a run. */
export const checksOf = (result: RunResult): Array<Check> => {
  const { settings } = result
  const tally = (tag: string) => result.outcomes.get(tag) ?? 0
  const checks: Array<Check> = []
  const check = (name: string, passed: boolean, detail: string) => checks.push({ name, passed, detail })

  check(
    "lost",
    result.lost === 0 && result.issued === settings.requests,
    result.lost === 0 && result.issued === settings.requests
      ? `lost 0: each of the ${settings.requests} requests got exactly one outcome`
      : `lost ${result.lost}: of ${settings.requests} planned requests, ${result.issued} were issued and ${result.lost} got no outcome or more than one`
  )
  check(
    "hung",
    result.hung === 0,
    `hung ${result.hung}: ${result.hung === 0 ? "every" : "not every"} request ended within ${seconds(settings.boundMillis)} (the slowest took ${seconds(result.maxLatencyMillis)})`
  )
  check(
    "outcomes",
    result.stray.length === 0,
    result.stray.length === 0
      ? "every outcome is a success, a typed error, or an interruption the run caused"
      : `${result.stray.length} outcomes are none of those a dispatch promises, first: request ${result.stray[0]!.request}, ${result.stray[0]!.what}`
  )

  // The workers' counters (summed over every worker the run made) against what the callers saw.
  const t = totalsOf(result.workers)
  const successes = t.completed - t.errored - t.interrupted
  const otherErrors = t.errored - t.timeouts
  const upTo = tally("DomainError") + (tally("WorkerCrash") - result.refusals.length) + tally("interrupted")
  const identities: Array<readonly [string, boolean]> = [
    [`successes ${successes} = ${tally("success")}`, successes === tally("success")],
    [`timeouts ${t.timeouts} = ${tally("RequestTimeout")}`, t.timeouts === tally("RequestTimeout")],
    [`interrupted ${t.interrupted} <= ${tally("interrupted")}`, t.interrupted <= tally("interrupted")],
    [
      `DomainError ${tally("DomainError")} <= errored - timeouts ${otherErrors} <= ${upTo}`,
      tally("DomainError") <= otherErrors && otherErrors <= upTo
    ],
    [`inFlight ${t.inFlight}, queued ${result.queuedAtEnd}`, t.inFlight === 0 && result.queuedAtEnd === 0]
  ]
  const broken = identities.filter(([, holds]) => !holds)
  check(
    "counters",
    broken.length === 0,
    broken.length === 0
      ? `counters add up over ${result.workers.length} workers: ${identities.map(([text]) => text).join(", ")}`
      : `counters do not add up over ${result.workers.length} workers: ${broken.map(([text]) => text).join(", ")}`
  )

  check(
    "processes",
    result.processesLeft.length === 0,
    result.processesLeft.length === 0
      ? "processes left 0 once the pool's scope closed"
      : `processes left ${result.processesLeft.length} once the pool's scope closed: ${result.processesLeft.join(", ")}`
  )
  check(
    "threads",
    result.threadsLeft === undefined || result.threadsLeft === 0,
    result.threadsLeft === undefined
      ? "threads not counted: this system has no /proc"
      : `threads left ${result.threadsLeft} once the pool's scope closed`
  )

  const wrong = faultProblems(result)
  const notHappened = faultNames.reduce((n, name) => n + missedCount(result.faults[name]), 0)
  check(
    "faults",
    wrong.length === 0,
    wrong.length > 0
      ? `${wrong.length} faults went other than planned, first: ${wrong[0]}`
      : `each fault was injected as planned, ${settings.faults} times; ${notHappened === 0 ? "every one happened" : `the ${notHappened} that did not happen met an outcome that allows it`}`
  )

  const refused = result.refusals.length
  const unexpected = result.refusals.filter((refusal) => !refusalAllowed(refusal))
  check(
    "refusals",
    unexpected.length === 0,
    unexpected.length > 0
      ? `${unexpected.length} of ${refused} refusals came while a worker could come back, first: ${describeRefusal(unexpected[0]!)}`
      : `refused ${refused}: ${refused === 0 ? "no request was refused" : "each refusal came while no member could come back (retired, or failing to start)"}`
  )

  const budget = settings.budget
  if (budget === undefined) {
    const retired = result.workers.filter((w) => w.final.retiredBecause !== undefined)
    check(
      "retired",
      retired.length === 0,
      retired.length === 0
        ? "no worker was retired"
        : `${retired.length} workers were retired, first: worker ${retired[0]!.id}, ${retired[0]!.final.retiredBecause}`
    )
  } else {
    const unseen = result.workers.filter((w) => w.restartTimes.length !== w.final.restarts - w.restartsBefore)
    check(
      "restarts seen",
      unseen.length === 0,
      unseen.length === 0
        ? `pool.changes showed all ${t.restarts} restarts`
        : `pool.changes missed restarts of ${unseen.map((w) => `worker ${w.id} (${w.restartTimes.length} of ${w.final.restarts - w.restartsBefore})`).join(", ")}`
    )
    const width = budget.windowMillis - observationSlackMillis - result.timerLatenessMillis
    const densest = result.workers.map((w) => ({ w, times: densestWithin(w.restartTimes, width) }))
    const most = Math.max(0, ...densest.map(({ times }) => times.length))
    const broke = densest.find(({ times }) => times.length > budget.maxRestarts)
    // Timers so late that less than half of the window is left cannot judge it: the check fails rather than pass unjudged.
    const judged = width >= budget.windowMillis / 2
    check(
      "budget",
      judged && broke === undefined,
      `${judged ? "" : "too busy to judge: "}at most ${most} restarts of one worker within any ${seconds(width)} (budget ${budget.maxRestarts} within ${seconds(budget.windowMillis)}, less ${observationSlackMillis} ms and the timers' lateness of ${Math.round(result.timerLatenessMillis)} ms${broke === undefined ? "" : `; worker ${broke.w.id}, a ${broke.w.kind}, broke it: restarts seen at ${broke.times.map((t) => (t / 1000).toFixed(2)).join(", ")} s into the run`})`
    )
  }
  return checks
}
