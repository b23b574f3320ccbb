/**
 * A fuzz run: seeded plans played one after another (the in-process targets
 * in virtual time, then threads and subprocesses in real time), each judged
 * by every check; the failing ones shrunk and reported with the command that
 * replays them; then the leak check. See docs/fuzzing.md.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect } from "effect"
import { inProcess, type Target } from "./catalogue.ts"
import { type Finding, judge } from "./checks.ts"
import { defaults, type FuzzOptions } from "./flags.ts"
import { runInProcess } from "./inprocess.ts"
import { type LeakReport, runLeakCheck } from "./leak.ts"
import { runOutOfProcess } from "./outofprocess.ts"
import { describePool, describeStep, entriesOf, makePlan, opsOf, type Plan } from "./plan.ts"
import type { RunRecord } from "./record.ts"
import { type Shrunk, shrink } from "./shrink.ts"

/** Real time a run may take before its watchdog gives up on it. */
export const watchdogMillis = (plan: Plan): number =>
  inProcess(plan.target) ? 60_000 : 60_000 + 250 * plan.steps.length

/** Plays a plan on its target and returns what it saw. */
export const play = (plan: Plan): Effect.Effect<RunRecord> =>
  inProcess(plan.target) ? runInProcess(plan, watchdogMillis(plan)) : runOutOfProcess(plan, watchdogMillis(plan))

/** Plays a plan and judges it. */
export const playAndJudge = (
  plan: Plan
): Effect.Effect<{ readonly record: RunRecord; readonly findings: Array<Finding> }> =>
  Effect.map(play(plan), (record) => ({ record, findings: judge(record) }))

/** The command that replays run `seed` on `target`. */
export const replayCommand = (seed: number, target: Target, options: FuzzOptions): string => {
  const only = [target, ...(options.only ?? [])].join(",")
  const perRun = inProcess(target) ? options.opsPerRun : options.oopOpsPerRun
  const fallback = inProcess(target) ? defaults.opsPerRun : defaults.oopOpsPerRun
  const perRunFlag = perRun === fallback ? "" : ` --${inProcess(target) ? "" : "oop-"}ops-per-run ${perRun}`
  const except = options.except === undefined ? "" : ` --except ${[...options.except].join(",")}`
  return `npm run fuzz -- --seed ${seed} --only ${only}${except} --runs 1${perRunFlag}`
}

/** The plan of run `seed` on `target`, as a fuzz run with `options` draws it. */
export const planOf = (seed: number, target: Target, options: FuzzOptions): Plan =>
  makePlan({
    seed,
    target,
    ops: inProcess(target) ? options.opsPerRun : options.oopOpsPerRun,
    only: options.only,
    except: options.except
  })

/** One run of a fuzz run. */
export interface RunResult {
  readonly index: number
  readonly seed: number
  readonly target: Target
  readonly ops: number
  readonly requests: number
  readonly elapsedMillis: number
  readonly findings: ReadonlyArray<Finding>
  /** The smallest plans found for each new kind of finding of the run, and where each was saved. */
  readonly shrunk: ReadonlyArray<Shrunk & { readonly saved: string | undefined }>
}

/** A kind of finding: an invariant and what broke it, with its first run. */
export interface FindingKind {
  readonly signature: string
  readonly invariant: string
  readonly example: string
  readonly first: { readonly seed: number; readonly target: Target; readonly command: string }
  runs: number
}

export interface Report {
  readonly options: FuzzOptions
  readonly runs: ReadonlyArray<RunResult>
  readonly inProcessOps: number
  readonly outOfProcessOps: number
  readonly behaviours: ReadonlyMap<string, number>
  readonly kinds: ReadonlyArray<FindingKind>
  readonly leak: LeakReport | undefined
  /** The budget ran out before every planned operation ran. */
  readonly cut: boolean
  readonly elapsedMillis: number
  readonly passed: boolean
}

/** What a finding says, without the numbers that change from run to run: findings alike group under it. */
export const signatureOf = (finding: Finding): string =>
  `${finding.invariant}: ${finding.message
    .replace(/^request #\d+ [^:]*: /, "")
    .replace(/\(([A-Za-z]+)[^)]*\)/g, "($1)")
    .replace(/(request|worker|process|thread) \d+/g, "$1 N")
    .replace(/\d+(\.\d+)?/g, "N")
    .slice(0, 160)}`

const savePlan = (plan: Plan): string | undefined => {
  try {
    const dir = path.join(os.tmpdir(), "effect-worker-pool-fuzz")
    fs.mkdirSync(dir, { recursive: true })
    const file = path.join(dir, `${plan.seed}-${plan.target}-${plan.steps.length}.json`)
    fs.writeFileSync(file, `${JSON.stringify(plan)}\n`)
    return file
  } catch {
    return undefined
  }
}

/** The lines that report a failing run. */
export const describeFailure = (run: RunResult, options: FuzzOptions): Array<string> => {
  const invariants = [...new Set(run.findings.map((f) => f.invariant))]
  const lines = [
    `FAIL run ${run.index}, seed ${run.seed} (${run.target}, ${run.ops} ops): ${run.findings.length} findings, breaking ${invariants.join("; ")}`,
    ...run.findings.slice(0, 6).map((f) => `  ${f.invariant}: ${f.message}`),
    ...(run.findings.length > 6 ? [`  ... and ${run.findings.length - 6} more`] : []),
    `  replay: ${replayCommand(run.seed, run.target, options)}`
  ]
  for (const small of run.shrunk) {
    lines.push(
      `  shrunk to ${small.plan.steps.length} steps (of ${run.ops}) that still show "${small.findings[0]!.invariant}", in ${small.attempts} tries${small.saved === undefined ? "" : `; replay: npm run fuzz -- --plan ${small.saved}`}`,
      `    pool: ${describePool(small.plan)}`,
      ...small.plan.steps.map((step) => `    ${describeStep(step)}`),
      ...small.findings.slice(0, 2).map((f) => `    => ${f.invariant}: ${f.message}`)
    )
  }
  return lines
}

/** The line that reports a failing run whose findings are all of kinds seen before. */
export const describeRepeat = (run: RunResult, options: FuzzOptions): string => {
  const invariants = [...new Set(run.findings.map((f) => f.invariant))]
  return `FAIL run ${run.index}, seed ${run.seed} (${run.target}): ${run.findings.length} findings of known kinds (${invariants.join("; ")}); replay: ${replayCommand(run.seed, run.target, options)}`
}

/** A fuzz run; `print` gets each line of progress and of failure as it comes. */
export const fuzz = (options: FuzzOptions, print: (line: string) => void): Effect.Effect<Report> =>
  Effect.gen(function* () {
    const began = performance.now()
    const elapsed = () => performance.now() - began
    const leakReserve = options.leakPools > 0 ? Math.min(options.budgetMillis / 4, 120_000) : 0
    const runs: Array<RunResult> = []
    const behaviours = new Map<string, number>()
    const kinds = new Map<string, FindingKind>()
    let inProcessOps = 0
    let outOfProcessOps = 0
    let cut = false
    const phases = [
      { targets: options.targets.filter(inProcess), ops: options.ops, done: () => inProcessOps },
      { targets: options.targets.filter((t) => !inProcess(t)), ops: options.oopOps, done: () => outOfProcessOps }
    ]
    print(
      `fuzz: seed ${options.seed}; ${options.ops} in-process and ${options.oopOps} out-of-process operations on ${options.targets.join(", ")}${options.only === undefined ? "" : `; behaviours ${[...options.only].join(", ")}`}${options.except === undefined ? "" : `; except ${[...options.except].join(", ")}`}`
    )
    let index = 0
    for (const phase of phases) {
      if (phase.targets.length === 0) continue
      while (phase.done() < phase.ops) {
        if (options.runs !== undefined && index >= options.runs) break
        if (elapsed() > options.budgetMillis - leakReserve) {
          cut = true
          break
        }
        const seed = (options.seed + index) >>> 0
        const target = phase.targets[index % phase.targets.length]!
        const plan = planOf(seed, target, options)
        const { record, findings } = yield* playAndJudge(plan)
        const ops = opsOf(plan)
        if (inProcess(target)) inProcessOps += ops
        else outOfProcessOps += ops
        for (const [name, n] of entriesOf(plan)) behaviours.set(name, (behaviours.get(name) ?? 0) + n)
        for (const rec of record.requests) {
          if (rec.interruptStage === undefined || rec.interruptStage === "unknown") continue
          const name = `interrupt-${rec.interruptStage}`
          behaviours.set(name, (behaviours.get(name) ?? 0) + 1)
        }
        const bySignature = new Map<string, Finding>()
        for (const finding of findings)
          if (!bySignature.has(signatureOf(finding))) bySignature.set(signatureOf(finding), finding)
        const fresh: Array<string> = []
        for (const [signature, finding] of bySignature) {
          const kind = kinds.get(signature)
          if (kind !== undefined) {
            kind.runs++
            continue
          }
          fresh.push(signature)
          kinds.set(signature, {
            signature,
            invariant: finding.invariant,
            example: finding.message,
            first: { seed, target, command: replayCommand(seed, target, options) },
            runs: 1
          })
        }
        // Each kind of finding is shrunk once, in the first run that shows it: the others repeat what is known.
        const shrunk: Array<Shrunk> = []
        if (options.shrink && inProcess(target)) {
          for (const signature of fresh) {
            const small = yield* shrink(
              plan,
              (f) => signatureOf(f) === signature,
              (candidate) => Effect.map(playAndJudge(candidate), (r) => r.findings),
              { attempts: 200, millis: 20_000 }
            )
            if (small !== undefined) shrunk.push(small)
          }
        }
        const result: RunResult = {
          index,
          seed,
          target,
          ops,
          requests: record.requests.length,
          elapsedMillis: record.elapsedMillis,
          findings,
          shrunk: shrunk.map((small) => ({ ...small, saved: savePlan(small.plan) }))
        }
        runs.push(result)
        // A run that shows something new is described in full; one that repeats known kinds, in a line.
        if (fresh.length > 0) for (const line of describeFailure(result, options)) print(line)
        else if (findings.length > 0) print(describeRepeat(result, options))
        index++
        if (index % (inProcess(target) ? 50 : 10) === 0) {
          const failing = runs.filter((r) => r.findings.length > 0).length
          print(
            `  ${index} runs, ${inProcessOps} in-process and ${outOfProcessOps} out-of-process ops, ${failing} failing, ${kinds.size} kinds of finding, ${(elapsed() / 1000).toFixed(0)} s`
          )
        }
      }
    }
    let leak: LeakReport | undefined
    if (options.leakPools > 0) {
      const left = options.budgetMillis - elapsed()
      print(`leak check: ${options.leakPools} pools, each loaded with ${options.leakLoad} requests and closed...`)
      leak = yield* runLeakCheck({
        pools: options.leakPools,
        load: options.leakLoad,
        seed: options.seed,
        timeoutMillis: Math.max(60_000, left),
        heapMB: 1024
      })
      for (const finding of leak.findings) {
        const signature = signatureOf(finding)
        if (!kinds.has(signature)) {
          kinds.set(signature, {
            signature,
            invariant: finding.invariant,
            example: finding.message,
            first: {
              seed: options.seed,
              target: "caller",
              command: `npm run fuzz -- --seed ${options.seed} --ops 0 --oop-ops 0 --leak-pools ${options.leakPools} --leak-load ${options.leakLoad}`
            },
            runs: 1
          })
        }
      }
    }
    return {
      options,
      runs,
      inProcessOps,
      outOfProcessOps,
      behaviours,
      kinds: [...kinds.values()],
      leak,
      cut,
      elapsedMillis: elapsed(),
      passed: kinds.size === 0
    }
  })

/** The lines of the summary. */
export const summaryOf = (report: Report): Array<string> => {
  const failing = report.runs.filter((r) => r.findings.length > 0)
  const inProcessRuns = report.runs.filter((r) => inProcess(r.target)).length
  const lines = [
    `fuzz: ${report.passed ? "PASS" : "FAIL"}, seed ${report.options.seed}: ${report.runs.length} runs (${inProcessRuns} in process, ${report.runs.length - inProcessRuns} threads and subprocesses), ${report.inProcessOps} in-process ops, ${report.outOfProcessOps} out-of-process ops, ${failing.length} failing runs, ${(report.elapsedMillis / 1000).toFixed(1)} s${report.cut ? " (the budget ran out first)" : ""}`,
    `behaviours played: ${[...report.behaviours]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([name, n]) => `${name} ${n}`)
      .join(", ")}`
  ]
  const leak = report.leak
  if (leak !== undefined) {
    const median = (values: ReadonlyArray<number>) =>
      [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN
    const w = Math.min(100, Math.floor(leak.millis.length / 10))
    const heapStart = leak.heap.find((h) => h.after >= 10) ?? leak.heap[0]
    const heapEnd = leak.heap[leak.heap.length - 1]
    lines.push(
      `leak check: ${leak.millis.length} of ${leak.options.pools} pools in ${(leak.elapsedMillis / 1000).toFixed(1)} s; median ${median(leak.millis.slice(0, w)).toFixed(2)} ms (first ${w}), ${median(leak.millis.slice(-w)).toFixed(2)} ms (last ${w}); heap after GC ${heapStart === undefined ? "?" : (heapStart.bytes / 1e6).toFixed(1)} MB at pool ${heapStart?.after ?? "?"}, ${heapEnd === undefined ? "?" : (heapEnd.bytes / 1e6).toFixed(1)} MB at pool ${heapEnd?.after ?? "?"}; closed pools still reachable: ${heapEnd?.reachable ?? "?"}`
    )
  }
  if (report.kinds.length > 0) {
    lines.push(`${report.kinds.length} kinds of finding:`)
    for (const kind of report.kinds) {
      lines.push(
        `  ${kind.invariant} (${kind.runs} runs): ${kind.example}`,
        `    first: seed ${kind.first.seed} (${kind.first.target}): ${kind.first.command}`
      )
    }
  }
  return lines
}
