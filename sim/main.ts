/**
 * `npm run sim`: runs every scenario at every load for the work-pulling
 * reference and every listed policy, prints the tables and the goals, and
 * writes docs/sim/*.svg and docs/simulation.md.
 *
 * Options: `--requests N` (per run, default 20000), `--seed S` (base seed,
 * default 1), `--jobs J` (worker threads, default: the number of CPUs),
 * `--only id,id` (scenarios), `--no-write` (print only), `--save FILE` (the
 * results as JSON), `--load FILE` (report saved results instead of running).
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { parseArgs } from "node:util"
import { Worker as Thread } from "node:worker_threads"
import { Effect } from "effect"
import { WorkerPool } from "effect-worker-pool"
import { type Job, type JobResult, makeJobs, modeLabels, oneSlotRequests, runJob } from "./jobs.ts"
import { describeMachine, machine } from "./machine.ts"
import { libraryDefaults, SERVICE_MILLIS, workPulling } from "./model.ts"
import { fullScanLeastLoaded, policies, slowBaseline, unlisted } from "./policies.ts"
import {
  capacityGoal,
  capacityTable,
  goalRows,
  goalSummary,
  goalTable,
  scenarioTable,
  slowGoalRatio,
  slowGoalTable
} from "./report.ts"
import { capacityScenarios, scenarios } from "./scenarios.ts"
import { chart } from "./svg.ts"

const { values } = parseArgs({
  options: {
    requests: { type: "string", default: "20000" },
    seed: { type: "string", default: "1" },
    jobs: { type: "string" },
    only: { type: "string" },
    save: { type: "string" },
    load: { type: "string" },
    "no-write": { type: "boolean", default: false }
  }
})
const requests = Number(values.requests)
const baseSeed = Number(values.seed)
const only = values.only?.split(",")
const host = machine()
let threads = Math.max(1, Number(values.jobs ?? host.cpus))
const write = !values["no-write"]
if (!Number.isSafeInteger(requests) || requests < 100) throw new Error(`--requests must be an integer ≥ 100`)

const started = performance.now()
const defaultPolicy = await Effect.runPromise(
  Effect.scoped(Effect.map(Effect.orDie(WorkerPool.make({})), (p) => p.policy))
)
const defaultEntry = policies.find((p) => p.policy.name === defaultPolicy)
const defaultMode = defaultEntry?.label ?? defaultPolicy
for (const name of unlisted()) {
  console.warn(`warning: DispatchPolicy.${name} is not simulated: add it to sim/policies.ts`)
}
if (defaultEntry === undefined) console.warn(`warning: the default policy ${defaultPolicy} is not in sim/policies.ts`)

const jobs = makeJobs({ requests, baseSeed, only })
const done: Array<JobResult> = []
const total = jobs.length
const progress = (r: JobResult) => {
  done.push(r)
  const { result } = r
  console.log(
    `[${String(done.length).padStart(String(total).length)}/${total}] ${result.scenario} ${Math.round(result.load * 100)} % ${result.mode}: ` +
      `p99 ${result.latency.p99.toFixed(2)}, ${(r.wallMillis / 1000).toFixed(1)} s`
  )
}

const runAll = async (): Promise<void> => {
  if (threads === 1) {
    for (const job of jobs) progress(await runJob(job))
    return
  }
  const queue = [...jobs]
  await Promise.all(
    Array.from({ length: Math.min(threads, jobs.length) }, () => {
      const thread = new Thread(new URL("./thread.ts", import.meta.url))
      return new Promise<void>((resolve, reject) => {
        const next = () => {
          const job = queue.shift()
          if (job === undefined) {
            thread.terminate().then(() => resolve(), reject)
            return
          }
          thread.postMessage(job satisfies Job)
        }
        thread.on("message", (message: { _tag: "Done"; done: JobResult } | { _tag: "Failed"; error: string }) => {
          if (message._tag === "Failed") {
            reject(new Error(message.error))
            return
          }
          progress(message.done)
          next()
        })
        thread.on("error", reject)
        next()
      })
    })
  )
}
interface Saved {
  readonly wallSeconds: number
  readonly threads: number
  readonly done: ReadonlyArray<JobResult>
}
let saved: Saved | undefined
if (values.load === undefined) await runAll()
else {
  saved = JSON.parse(readFileSync(values.load, "utf8")) as Saved
  done.push(...saved.done)
  threads = saved.threads
}
const wallSeconds = saved?.wallSeconds ?? (performance.now() - started) / 1000
if (values.save !== undefined)
  writeFileSync(values.save, JSON.stringify({ wallSeconds, threads, done } satisfies Saved))
const results = done.sort((a, b) => a.index - b.index).map((r) => r.result)
const runSeconds = done.reduce((sum, r) => sum + r.wallMillis, 0) / 1000

const modes = modeLabels()
const reference = workPulling.label
const chosen = scenarios.filter((s) => only === undefined || only.includes(s.id))
const capacityChosen = capacityScenarios.filter((s) => only === undefined || only.includes(s.id))
const goalList = goalRows(results, chosen, libraryDefaults.label, reference, fullScanLeastLoaded, slowBaseline)
const seedOfRun = (scenario: string, load: number) =>
  results.find((r) => r.scenario === scenario && r.load === load)?.seed ?? Number.NaN

console.log("")
for (const scenario of chosen) {
  console.log(`== ${scenario.id}: ${scenario.title}`)
  console.log(scenario.description)
  console.log(
    `seeds: ${scenario.loads.map((l) => `${Math.round(l * 100)} % → ${seedOfRun(scenario.id, l)}`).join(", ")}`
  )
  console.log(scenarioTable(results, scenario, modes, reference, "text"))
  console.log("")
}
console.log(`== goals of the defaults (${defaultMode}, one slot per worker)`)
console.log(goalTable(goalList, fullScanLeastLoaded, slowBaseline, "text"))
console.log(`\n== the default policy (${defaultMode}) with workers that queue requests themselves: the slowdown goal`)
console.log(slowGoalTable(results, chosen, defaultMode, slowBaseline, "text"))
console.log(`\n== every policy as if it were the default`)
console.log(goalSummary(results, chosen, modes, reference, fullScanLeastLoaded, slowBaseline, "text"))
if (capacityChosen.length > 0) {
  console.log(`\n== adaptive concurrency: I/O-bound workers, at least ${capacityGoal * 100} % within 1 s`)
  console.log(capacityTable(results, capacityChosen, "text"))
}
const insane = results.filter((r) => r.lost > 0 || r.unplaced > 0)
for (const r of insane) {
  console.error(
    `error: ${r.scenario} ${r.load} ${r.mode}: ${r.lost} requests lost, ${r.unplaced} not placed at their arrival (driver bug)`
  )
}
console.log(
  `\n${results.length} runs of ${requests} requests in ${wallSeconds.toFixed(1)} s (${runSeconds.toFixed(1)} s of runs on ${threads} threads) on ${describeMachine(host)}`
)

if (write) {
  const docs = new URL("../docs/", import.meta.url)
  mkdirSync(new URL("sim/", docs), { recursive: true })
  for (const scenario of chosen) {
    const svg = chart({
      title: `${scenario.title}: latency percentiles per policy`,
      subtitle: `${requests} requests per run, seeds ${scenario.loads.map((l) => seedOfRun(scenario.id, l)).join(", ")} · npm run sim`,
      modes,
      loads: scenario.loads,
      results: results.filter((r) => r.scenario === scenario.id),
      reference
    })
    writeFileSync(new URL(`sim/${scenario.id}.svg`, docs), svg)
  }
  writeFileSync(
    new URL("simulation.md", docs),
    markdown({ wallSeconds, defaultMode, goalList, seedOfRun, chosen, capacityChosen, results, modes, reference })
  )
  console.log("wrote docs/simulation.md and docs/sim/*.svg")
}
if (insane.length > 0) process.exitCode = 1

function markdown(input: {
  readonly wallSeconds: number
  readonly defaultMode: string
  readonly goalList: ReturnType<typeof goalRows>
  readonly seedOfRun: (scenario: string, load: number) => number
  readonly chosen: typeof scenarios
  readonly capacityChosen: typeof scenarios
  readonly results: typeof results
  readonly modes: ReadonlyArray<string>
  readonly reference: string
}): string {
  const args = [
    values.requests === "20000" ? "" : ` --requests ${requests}`,
    values.seed === "1" ? "" : ` --seed ${baseSeed}`,
    only === undefined ? "" : ` --only ${only.join(",")}`
  ].join("")
  const command = args === "" ? "npm run sim" : `npm run sim --${args}`
  const lines: Array<string> = []
  const push = (...more: Array<string>) => lines.push(...more)
  push(
    "# Simulation of the dispatch policies",
    "",
    "<!-- Generated by `npm run sim` (sim/main.ts): edit the generator, not this file. -->",
    "",
    `Produced by \`${command}\` (\`node --conditions=effect-worker-pool-source sim/main.ts\`) on ${describeMachine(host)}, ` +
      `in ${input.wallSeconds.toFixed(0)} s ${threads === 1 ? "in one thread" : `on ${threads} worker threads`}. ` +
      `Each run: ${requests} requests, base seed ${baseSeed}; the seed of each scenario and load is listed with it ` +
      "and is the same for every policy. The same seeds give the same tables and byte-identical charts.",
    "",
    "## What is simulated",
    "",
    "The simulator drives the real pool (`WorkerPool.make`) and the real policies (`DispatchPolicy.*`) in virtual time, not copies of them.",
    "",
    `- **Workers.** Each worker is an in-process \`Worker.make\` whose handler takes a semaphore of one permit, then sleeps for the request's work divided by the worker's speed: a single server with its own FIFO. One unit of work (the mean service time at speed 1) is ${SERVICE_MILLIS} ms of virtual time; **latencies are in units of the mean service time**.`,
    "- **Policy mode.** Every worker has `maxInFlight: 1000000`, so the policy alone decides which worker's FIFO a request joins (least-loaded is then join-the-shortest-queue: in-flight counts the requests waiting at the worker).",
    "- **Work-pulling reference.** The same workers with `maxInFlight: 1`: requests wait in the pool's shared admission queue (capacity 1,000,000) and the next worker to free its slot takes the head, i.e. M/M/n; a request that finds several workers idle goes to one of them at random (`DispatchPolicy.Random`), so that the reference depends neither on which ids the fast workers have nor on the default policy. This is the ideal a local pool can reach, and the reference line of every chart. With `maxInFlight: 1` every policy behaves like work pulling, which is why the policies are compared with the large `maxInFlight`.",
    "- **Workload.** Poisson arrivals at rate load × (sum of the base speeds); service work exponential with mean 1 (constant in one test). Drawn per request in arrival order from the simulator's own seeded generator (xoshiro128**), arrivals and work from separate streams, so every mode sees exactly the same requests. The pool's own randomness (random policies, restart and ejection jitter) comes from Effect's `Random` service seeded with `Random.withSeed(seed)`.",
    "- **Time.** The run provides `TestClock.layer()` and moves the clock to each arrival in turn (`TestClock.setTime` wakes every sleeper due before it, in time order); the request's dispatch then starts synchronously, so the policy picks at the arrival instant. After the last arrival the clock is advanced until every request has an outcome.",
    `- **Policies.** The work-pulling reference, then ${policies.map((p) => `\`${p.label}\``).join(", ")} (the list is sim/policies.ts; a policy with options is shown with them). The simulator's requests are numbers (the request's index), so \`ConsistentHash\` keys each request by itself: it shows what routing by key alone costs in latency, not what stickiness wins.`,
    "- **Failures** use the real lifecycle: a crash is the handler failing with `WorkerCrash` (the worker restarts on its restart schedule, every request queued on it fails); the crash loop retires the worker once its restart budget is spent; the hung worker's handler never answers (`Effect.never`) and the pool's `timeout` fails its requests with `RequestTimeout`. The pool's other options are its defaults (passive ejection on).",
    "",
    "**Columns.** p50, p99, p99.9 and max: latency (completion − arrival) of the successful requests, nearest-rank percentiles, leaving out the first 10 % of requests (warm-up). p99 / ref: p99 over the work-pulling p99 at the same load. Queue: requests admitted and not finished beyond those in service (the per-worker FIFOs plus the pool's queue), sampled at each arrival after the warm-up. Grows: between the second and the last quarter of the run the queue gained more than 1 % of the arrivals in between and its mean rose by half (a heuristic: the run is finite). Failed: typed errors other than timeouts (`WorkerCrash` here). Timed out: `RequestTimeout`. Lost: no outcome after the final drain (must be 0). Within 1 s: the share of the requests after the warm-up that succeeded within 1 s (10 units) of their arrival. To slow: where a worker drifts, the requests routed to it (they reached its handler, where they join its FIFO) while it ran below its base speed.",
    "",
    "**Checks.** Every run also verifies that each request was placed at its arrival instant (it reached its worker's handler, waited in the pool's queue, or failed at once), so that no policy ever picked at a later time than the request arrived, and that none was lost; `npm run sim` exits with an error otherwise. test/sim.test.ts checks the simulator on cases with known answers: one worker at load 0.5 gives the M/M/1 mean latency 2 and answers 1 − e^−5 of its requests within 1 s, round robin over identical workers with constant service times gives equal counts, a seed reproduces its report, work pulling is never worse than round robin, a worker that slows down is counted exactly the requests routed to it while it is slow, and the default policy meets the slowdown goal at 70 %.",
    "",
    `## Goals of the defaults (${input.defaultMode})`,
    "",
    `The \`defaults\` rows are \`WorkerPool.make\` with no policy, queue or \`maxInFlight\` option: the default policy (\`${input.defaultMode}\`) and each worker's limit adaptive (it starts at 1 and grows only while latency stays near the worker's latency alone, so a worker that computes keeps it near 1 and requests wait in the pool's queue rather than behind a busy worker). The goals: p99 within 1.3 × the work-pulling p99 in the identical, mixed and one-slow scenarios; no queue that grows without bound in any scenario; fewer requests timed out than full-scan least-loaded in the hung-worker scenarios (with and without ejection); in the slowdown scenario, at most ${slowGoalRatio} × the requests \`${slowBaseline}\` (with workers that queue requests themselves) sends the slow worker while it is slow; no request lost. The tables after it hold the default policy, then every policy, to the same goals when workers queue requests themselves (the large \`maxInFlight\`), where the policy alone decides.`,
    "",
    goalTable(input.goalList, fullScanLeastLoaded, slowBaseline, "markdown"),
    "",
    `### The default policy when workers queue requests themselves`,
    "",
    `The slowdown goal is about the policy itself, where \`maxInFlight\` does not bind: a dozen workers, one of them five times slower for the middle third of the run. While it is slow, the default policy \`${input.defaultMode}\` must send it at most ${slowGoalRatio} × the requests \`${slowBaseline}\` sends it; the share of requests answered within 1 s is shown for both. The simulated clock is read exactly at every step, so what a policy learns here is each request's whole time on its worker; in real time, the synchronous work of an in-process handler is not in it yet (see the note on \`onResult\` in [the policies guide](policies.md#the-contract)).`,
    "",
    slowGoalTable(input.results, input.chosen, input.defaultMode, slowBaseline, "markdown"),
    "",
    "### Every policy as if it were the default",
    "",
    "The same goals for each mode: how many of the scenario-and-load cells meet each, and the worst p99 ratio.",
    "",
    goalSummary(
      input.results,
      input.chosen,
      input.modes,
      input.reference,
      fullScanLeastLoaded,
      slowBaseline,
      "markdown"
    ),
    ""
  )
  if (input.capacityChosen.length > 0) {
    push(
      "## Adaptive concurrency: I/O-bound workers",
      "",
      `A dozen in-process workers whose handler waits 100 to 300 ms for every request at once (a call to another service: its latency does not grow with the worker's load), at 240 and 480 requests a second, with the library's defaults (\`defaults\`: each worker's limit adaptive, from 1 up to 64) and with the defaults but one slot per worker (\`defaults, maxInFlight 1\`, the default before adaptive concurrency; its queue holds every request; its runs stop at ${oneSlotRequests} requests, as its queue grows without bound). The goal: at least ${capacityGoal * 100} % of the requests after the warm-up answered within 1 s with the defaults, also while one worker waits three times longer for half a minute (\`io-slow\`, from 10 s to 40 s), and while one worker stops answering under a pool \`timeout\` of 1 s (\`io-hung\`, from one third of the run on). One slot per worker serves 60 requests a second: its queue grows without bound. See [capacity](capacity.md#adaptive-concurrency).`,
      "",
      ...input.capacityChosen.map(
        (s) =>
          `- \`${s.id}\`: ${s.description} Seeds: ${s.loads.map((l) => `\`${input.seedOfRun(s.id, l)}\``).join(", ")}.`
      ),
      "",
      capacityTable(input.results, input.capacityChosen, "markdown"),
      ""
    )
  }
  for (const scenario of input.chosen) {
    push(
      `## ${scenario.title}`,
      "",
      scenario.description,
      "",
      `Seeds: ${scenario.loads.map((l) => `${Math.round(l * 100)} % → \`${input.seedOfRun(scenario.id, l)}\``).join(", ")}.`,
      "",
      `![${scenario.title}: p50, p99 and p99.9 latency per policy and load](sim/${scenario.id}.svg)`,
      "",
      scenarioTable(input.results, scenario, input.modes, input.reference, "markdown"),
      ""
    )
  }
  return `${lines.join("\n")}\n`
}
