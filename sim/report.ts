/**
 * Tables of the simulation results (console and Markdown), and the check of
 * the goals of the default policy.
 */
import { type RunResult, type Scenario, SECOND_UNITS } from "./model.ts"

const num = (x: number, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : "–")
const percent = (share: number) => `${num(share * 100)} %`

export interface Row {
  readonly load: string
  readonly mode: string
  readonly cells: ReadonlyArray<string>
}

export const columns = [
  "p50",
  "p99",
  "p99.9",
  "max",
  "p99 / ref",
  "queue mean",
  "queue max",
  "grows",
  "failed",
  "timed out",
  "lost",
  "within 1 s",
  "to slow"
] as const

/** One row per (load, mode) of a scenario, loads in order, modes in `modes` order. */
export const rows = (
  all: ReadonlyArray<RunResult>,
  scenario: Scenario,
  modes: ReadonlyArray<string>,
  reference: string
): Array<Row> => {
  const out: Array<Row> = []
  const results = all.filter((r) => r.scenario === scenario.id)
  for (const load of scenario.loads) {
    const ref = results.find((r) => r.load === load && r.mode === reference)
    for (const mode of modes) {
      const r = results.find((x) => x.load === load && x.mode === mode)
      if (r === undefined) continue
      const ratio = ref === undefined ? Number.NaN : r.latency.p99 / ref.latency.p99
      out.push({
        load: `${Math.round(load * 100)} %`,
        mode,
        cells: [
          num(r.latency.p50),
          num(r.latency.p99),
          num(r.latency.p999),
          num(r.latency.max),
          num(ratio),
          num(r.queue.mean, 1),
          String(r.queue.max),
          r.queue.grows ? "yes" : "no",
          String(r.failed),
          String(r.timedOut),
          String(r.lost),
          percent(r.withinSecond),
          scenario.drift === undefined ? "" : String(r.sentToSlow)
        ]
      })
    }
  }
  return out
}

/** A fixed-width text table. */
export const textTable = (
  header: ReadonlyArray<string>,
  body: ReadonlyArray<ReadonlyArray<string>>,
  left = 2
): string => {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells.map((c, i) => (i < left ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ")
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n")
}

/** A Markdown table, numbers right-aligned. */
export const markdownTable = (
  header: ReadonlyArray<string>,
  body: ReadonlyArray<ReadonlyArray<string>>,
  left = 2
): string =>
  [
    `| ${header.join(" | ")} |`,
    `|${header.map((_, i) => (i < left ? "---" : "---:")).join("|")}|`,
    ...body.map((row) => `| ${row.join(" | ")} |`)
  ].join("\n")

export const scenarioTable = (
  results: ReadonlyArray<RunResult>,
  scenario: Scenario,
  modes: ReadonlyArray<string>,
  reference: string,
  format: "text" | "markdown"
): string => {
  const body = rows(results, scenario, modes, reference).map((row) => [row.load, row.mode, ...row.cells])
  const header = ["load", "mode", ...columns]
  return format === "text" ? textTable(header, body) : markdownTable(header, body)
}

/** The scenarios where the default policy's p99 must stay within 1.3 × the reference. */
export const latencyGoalScenarios: ReadonlyArray<string> = ["identical", "mixed", "one-slow"]
export const latencyGoalRatio = 1.3

/**
 * The scenarios where a policy must send the worker that slows down at most
 * {@link slowGoalRatio} × the requests the baseline (`PeakEwma`) sends it
 * while it is slow.
 */
export const slowGoalScenarios: ReadonlyArray<string> = ["slowdown"]
export const slowGoalRatio = 1.1

/** The goals of the issue at one scenario and load, for one policy. */
export interface GoalRow {
  readonly scenario: string
  readonly load: number
  /** p99 / work-pulling p99, where that goal applies. */
  readonly ratio: number | undefined
  readonly grows: boolean
  /** Timed out: this policy and full-scan least-loaded, in the hung scenario. */
  readonly timeouts: readonly [number, number] | undefined
  /** Requests sent to the worker while it was slow: this policy and the baseline, in the slowdown scenario. */
  readonly slow: readonly [number, number] | undefined
  readonly lost: number
}

/** Whether a policy that sent `mine` requests to the slow worker meets the goal against the baseline's `baseline`. */
export const meetsSlowGoal = ([mine, baseline]: readonly [number, number]): boolean => mine <= slowGoalRatio * baseline

export const goalRows = (
  results: ReadonlyArray<RunResult>,
  scenarios: ReadonlyArray<Scenario>,
  mode: string,
  reference: string,
  fullScan: string,
  slowBaseline: string
): Array<GoalRow> => {
  const out: Array<GoalRow> = []
  const find = (scenario: string, load: number, m: string) =>
    results.find((r) => r.scenario === scenario && r.load === load && r.mode === m)
  for (const scenario of scenarios) {
    for (const load of scenario.loads) {
      const mine = find(scenario.id, load, mode)
      if (mine === undefined) continue
      const ref = find(scenario.id, load, reference)
      const full = find(scenario.id, load, fullScan)
      const baseline = find(scenario.id, load, slowBaseline)
      out.push({
        scenario: scenario.id,
        load,
        ratio:
          latencyGoalScenarios.includes(scenario.id) && ref !== undefined
            ? mine.latency.p99 / ref.latency.p99
            : undefined,
        grows: mine.queue.grows,
        timeouts: scenario.fault?._tag === "Hang" && full !== undefined ? [mine.timedOut, full.timedOut] : undefined,
        slow:
          slowGoalScenarios.includes(scenario.id) && baseline !== undefined
            ? [mine.sentToSlow, baseline.sentToSlow]
            : undefined,
        lost: mine.lost
      })
    }
  }
  return out
}

const mark = (met: boolean) => (met ? "✓" : "✗")

/** The goals of one policy, one row per scenario and load. */
export const goalTable = (
  rows: ReadonlyArray<GoalRow>,
  fullScan: string,
  slowBaseline: string,
  format: "text" | "markdown"
): string => {
  const header = [
    "scenario",
    "load",
    `p99 / ref ≤ ${latencyGoalRatio}`,
    "queue bounded",
    `timed out < ${fullScan}`,
    `to slow ≤ ${slowGoalRatio} × ${slowBaseline}`,
    "lost = 0"
  ]
  const body = rows.map((r) => [
    r.scenario,
    `${Math.round(r.load * 100)} %`,
    r.ratio === undefined ? "" : `${num(r.ratio)} ${mark(r.ratio <= latencyGoalRatio)}`,
    r.grows ? `grows ${mark(false)}` : `yes ${mark(true)}`,
    r.timeouts === undefined ? "" : `${r.timeouts[0]} vs ${r.timeouts[1]} ${mark(r.timeouts[0] < r.timeouts[1])}`,
    r.slow === undefined ? "" : `${r.slow[0]} vs ${r.slow[1]} ${mark(meetsSlowGoal(r.slow))}`,
    `${r.lost} ${mark(r.lost === 0)}`
  ])
  return format === "text" ? textTable(header, body, 2) : markdownTable(header, body, 2)
}

/** Every policy as if it were the default: how many of the goals it meets. */
export const goalSummary = (
  results: ReadonlyArray<RunResult>,
  scenarios: ReadonlyArray<Scenario>,
  modes: ReadonlyArray<string>,
  reference: string,
  fullScan: string,
  slowBaseline: string,
  format: "text" | "markdown"
): string => {
  const header = [
    "policy",
    `p99 / ref ≤ ${latencyGoalRatio} (worst)`,
    "queues bounded",
    `timed out < ${fullScan}`,
    `to slow ≤ ${slowGoalRatio} × ${slowBaseline}`,
    "lost = 0"
  ]
  const body = modes
    .filter((m) => m !== reference)
    .map((mode) => {
      const rows = goalRows(results, scenarios, mode, reference, fullScan, slowBaseline)
      const ratios = rows.filter((r) => r.ratio !== undefined)
      const worst = ratios.reduce<GoalRow | undefined>(
        (w, r) => (w === undefined || r.ratio! > w.ratio! ? r : w),
        undefined
      )
      const hung = rows.filter((r) => r.timeouts !== undefined)
      const slowed = rows.filter((r) => r.slow !== undefined)
      const count = (xs: ReadonlyArray<GoalRow>, ok: (r: GoalRow) => boolean) =>
        `${xs.filter(ok).length} / ${xs.length}`
      return [
        mode,
        `${count(ratios, (r) => r.ratio! <= latencyGoalRatio)} (${worst === undefined ? "–" : `${num(worst.ratio!)}, ${worst.scenario} ${Math.round(worst.load * 100)} %`})`,
        count(rows, (r) => !r.grows),
        mode === fullScan ? "(itself)" : count(hung, (r) => r.timeouts![0] < r.timeouts![1]),
        mode === slowBaseline ? "(itself)" : count(slowed, (r) => meetsSlowGoal(r.slow!)),
        count(rows, (r) => r.lost === 0)
      ]
    })
  return format === "text" ? textTable(header, body, 1) : markdownTable(header, body, 1)
}

/**
 * The slowdown goal in the setting it is about: the default policy (`mode`)
 * and the baseline, both with workers that queue requests themselves, one
 * row per scenario and load: the requests each sent the slow worker while it
 * was slow, and the share of requests each answered within 1 s.
 */
export const slowGoalTable = (
  results: ReadonlyArray<RunResult>,
  scenarios: ReadonlyArray<Scenario>,
  mode: string,
  slowBaseline: string,
  format: "text" | "markdown"
): string => {
  const header = [
    "scenario",
    "load",
    `to slow: ${mode}`,
    `to slow: ${slowBaseline}`,
    `≤ ${slowGoalRatio} ×`,
    `within 1 s: ${mode}`,
    `within 1 s: ${slowBaseline}`
  ]
  const body: Array<Array<string>> = []
  for (const scenario of scenarios) {
    if (!slowGoalScenarios.includes(scenario.id)) continue
    for (const load of scenario.loads) {
      const find = (m: string) => results.find((r) => r.scenario === scenario.id && r.load === load && r.mode === m)
      const mine = find(mode)
      const baseline = find(slowBaseline)
      if (mine === undefined || baseline === undefined) continue
      body.push([
        scenario.id,
        `${Math.round(load * 100)} %`,
        String(mine.sentToSlow),
        String(baseline.sentToSlow),
        `${num(mine.sentToSlow / baseline.sentToSlow)} ${mark(meetsSlowGoal([mine.sentToSlow, baseline.sentToSlow]))}`,
        percent(mine.withinSecond),
        percent(baseline.withinSecond)
      ])
    }
  }
  return format === "text" ? textTable(header, body, 2) : markdownTable(header, body, 2)
}

/** The goal of adaptive concurrency: this share of the requests answered within 1 s, with the default options. */
export const capacityGoal = 0.999

/** Whether a run of an adaptive-concurrency scenario meets {@link capacityGoal}. */
export const meetsCapacityGoal = (result: RunResult): boolean => result.withinSecond >= capacityGoal

/**
 * The adaptive-concurrency scenarios: for each scenario, load and mode, the
 * arrival rate, the share answered within 1 s against the goal, the timeouts
 * and failures, whether the queue grows, and the requests lost.
 */
export const capacityTable = (
  results: ReadonlyArray<RunResult>,
  scenarios: ReadonlyArray<Scenario>,
  format: "text" | "markdown"
): string => {
  const header = [
    "scenario",
    "mode",
    "requests / s",
    "requests",
    `within 1 s ≥ ${num(capacityGoal * 100, 1)} %`,
    "p99",
    "timed out",
    "failed",
    "queue grows",
    "lost"
  ]
  const body: Array<Array<string>> = []
  for (const scenario of scenarios) {
    for (const load of scenario.loads) {
      for (const r of results.filter((x) => x.scenario === scenario.id && x.load === load)) {
        const perSecond = load * scenario.speeds.reduce((a, b) => a + b, 0) * SECOND_UNITS
        body.push([
          scenario.id,
          r.mode,
          String(perSecond),
          String(r.requests),
          `${percent(r.withinSecond)} ${meetsCapacityGoal(r) ? "✓" : "✗"}`,
          num(r.latency.p99),
          String(r.timedOut),
          String(r.failed),
          r.queue.grows ? "yes" : "no",
          String(r.lost)
        ])
      }
    }
  }
  return format === "text" ? textTable(header, body) : markdownTable(header, body)
}
