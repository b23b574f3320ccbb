/**
 * `npm run bench`: the pool's speed, as ratios against baselines measured in
 * the same run, in interleaved rounds (see rounds.ts). Sections:
 *
 * - dispatch: in-process dispatch against Effect's `Pool` and a bare call
 *   (dispatch.ts);
 * - selection: the cost of a pick among 1,024 workers against 4
 *   (selection.ts);
 * - wire: out-of-process throughput of the thread and subprocess kinds, the
 *   peer pools and the bare transports (wire.ts);
 * - start: start and replacement latency of the kinds against a bare spawn
 *   (start.ts);
 * - remote: remote workers' throughput with 1, 2 and 3 runner processes on
 *   trivial and I/O-bound tasks, and kill -9 → `WorkerCrash` latency
 *   (remote.ts);
 * - transfer: a 16 MiB buffer's round trip through a thread, moved against
 *   copied, and the `arrayBuffers` peak (transfer.ts);
 * - capacity: the subprocess kind with an adaptive per-worker limit against
 *   fixed limits, on CPU-bound and I/O-bound tasks (capacity.ts).
 *
 * Options: `--quick` (a short run, to check that everything works),
 * `--no-write` (print only), `--only <section>` (one section, printed only).
 * A full run writes docs/benchmarks.md and its chart docs/bench/throughput.svg.
 */
import { mkdirSync, writeFileSync } from "node:fs"
import { loadavg } from "node:os"
import { parseArgs } from "node:util"
import { describeMachine, machine } from "../sim/machine.ts"
import { unlisted } from "../sim/policies.ts"
import { measureCapacity } from "./capacity.ts"
import { throughputChart } from "./chart.ts"
import { measureDispatch } from "./dispatch.ts"
import { poolifierQueueOff } from "./peers.ts"
import { measureRemote } from "./remote.ts"
import { type Complete, chartGoalLabel, consoleTables, page, type Results, type Settings } from "./report.ts"
import { measureSelection } from "./selection.ts"
import { measureStart } from "./start.ts"
import { measureTransfer } from "./transfer.ts"
import { goalConcurrency, measureWire, wireCallers, wireGoal } from "./wire.ts"

const sections = ["dispatch", "selection", "wire", "start", "remote", "transfer", "capacity"] as const
type Section = (typeof sections)[number]

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    "no-write": { type: "boolean", default: false },
    only: { type: "string" }
  }
})
const only = values.only as Section | undefined
if (only !== undefined && !sections.includes(only)) {
  console.error(`--only takes one of: ${sections.join(", ")}`)
  process.exit(1)
}
const runs = (section: Section) => only === undefined || only === section

const settings: Settings = values.quick
  ? {
      dispatchRounds: 5,
      targetMillis: 10,
      wireTasks: 10_000,
      wireRounds: 2,
      concurrencies: [1, goalConcurrency, 64],
      startRounds: 2,
      remote: { trivialTasks: 3000, ioTasks: 1000, rounds: 2, crashRounds: 2 },
      transferRounds: 3,
      transferTrips: 4,
      capacity: { roundMillis: 500, rounds: 2 }
    }
  : {
      dispatchRounds: 31,
      targetMillis: 60,
      wireTasks: 100_000,
      wireRounds: 7,
      concurrencies: [1, goalConcurrency, 64],
      startRounds: 7,
      remote: { trivialTasks: 15_000, ioTasks: 3000, rounds: 5, crashRounds: 7 },
      transferRounds: 7,
      transferTrips: 10,
      capacity: { roundMillis: 1500, rounds: 7 }
    }

for (const name of unlisted())
  console.warn(`warning: DispatchPolicy.${name} is not benchmarked: add it to sim/policies.ts`)

const host = machine()
const loadAtStart = loadavg()[0]!
const started = performance.now()
const results: Results = {
  dispatch: runs("dispatch") ? await measureDispatch(settings.dispatchRounds, settings.targetMillis) : undefined,
  selection: runs("selection") ? await measureSelection(settings.dispatchRounds, settings.targetMillis) : undefined,
  wire: runs("wire") ? await measureWire(settings.wireTasks, settings.wireRounds, settings.concurrencies) : undefined,
  start: runs("start") ? await measureStart(settings.startRounds) : undefined,
  remote: runs("remote") ? await measureRemote(settings.remote) : undefined,
  transfer: runs("transfer") ? await measureTransfer(settings.transferRounds, settings.transferTrips) : undefined,
  capacity: runs("capacity")
    ? await measureCapacity(settings.capacity.roundMillis, settings.capacity.rounds)
    : undefined
}
const seconds = (performance.now() - started) / 1000
const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`

console.log(`\n${consoleTables(results)}`)
console.log(
  `\n${command}: ${seconds.toFixed(1)} s on ${describeMachine(host)}, load average ${loadAtStart.toFixed(2)} → ${loadavg()[0]!.toFixed(2)}`
)

if (values["no-write"] || only !== undefined) {
  console.log("docs/benchmarks.md left as it was")
} else {
  const wire = results.wire!
  const poolifier = wire.rows.find((row) => row.name === poolifierQueueOff)!
  const chart = throughputChart({
    title: "Out-of-process throughput: trivial tasks through a pool of 2",
    subtitle: `${settings.wireTasks.toLocaleString("en-US")} tasks per round, ${wireCallers} callers, ${settings.wireRounds} rounds; ${command} on ${describeMachine(host)}`,
    bars: wire.rows.map((row) => ({ name: row.name, family: row.family, ...row.rate })),
    goal: { value: wireGoal * poolifier.rate.median, label: chartGoalLabel }
  })
  mkdirSync(new URL("../docs/bench/", import.meta.url), { recursive: true })
  writeFileSync(new URL("../docs/bench/throughput.svg", import.meta.url), chart)
  const doc = page(results as Complete, {
    command,
    machine: describeMachine(host),
    seconds,
    load: { start: loadAtStart, end: loadavg()[0]! },
    settings,
    chart: "bench/throughput.svg"
  })
  writeFileSync(new URL("../docs/benchmarks.md", import.meta.url), doc)
  console.log("wrote docs/benchmarks.md and docs/bench/throughput.svg")
}
