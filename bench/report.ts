/**
 * The tables of every section, as markdown, and the page docs/benchmarks.md
 * that holds them with the command, the machine and the method.
 */
import { adaptiveMax, type CapacityLoadResult, type CapacityResult, controlLimit, fixedLimits } from "./capacity.ts"
import { concurrentCallers, type DispatchResult, dispatchGoals, groupDispatchGoal } from "./dispatch.ts"
import { kindName } from "./kinds.ts"
import { poolifierQueueOff } from "./peers.ts"
import { ioConcurrency, ioWaitMillis, type RemoteResult, type RemoteSettings, remoteCallers } from "./remote.ts"
import type { Spread } from "./rounds.ts"
import { type SelectionRow, selectionGoal } from "./selection.ts"
import { bareSpawnName, replacementSlackMillis, type StartResult } from "./start.ts"
import { type TransferResult, transferBytes, transferMemoryGoal, transferSpeedGoal } from "./transfer.ts"
import { bareBatch, bareGoal, goalConcurrency, groupGoal, type WireResult, wireCallers, wireGoal } from "./wire.ts"

/** How each section was run. */
export interface Settings {
  readonly dispatchRounds: number
  readonly targetMillis: number
  readonly wireTasks: number
  readonly wireRounds: number
  readonly concurrencies: ReadonlyArray<number>
  readonly startRounds: number
  readonly remote: RemoteSettings
  readonly transferRounds: number
  readonly transferTrips: number
  readonly capacity: { readonly roundMillis: number; readonly rounds: number }
}

/** What a run measured: the sections it ran. */
export interface Results {
  readonly dispatch?: DispatchResult | undefined
  readonly selection?: ReadonlyArray<SelectionRow> | undefined
  readonly wire?: WireResult | undefined
  readonly start?: StartResult | undefined
  readonly remote?: RemoteResult | undefined
  readonly transfer?: TransferResult | undefined
  readonly capacity?: CapacityResult | undefined
}

/** A markdown table; `align` has one letter per column: `l` (left) or `r` (right). */
const table = (head: ReadonlyArray<string>, align: string, rows: ReadonlyArray<ReadonlyArray<string>>): string =>
  [
    `| ${head.join(" | ")} |`,
    `|${[...align].map((a) => (a === "r" ? "---:" : "---")).join("|")}|`,
    ...rows.map((row) => `| ${row.join(" | ")} |`)
  ].join("\n")

const ratioText = (s: Spread) => `${s.median.toFixed(2)} (${s.low.toFixed(2)}–${s.high.toFixed(2)})`
const nanos = (s: Spread) => s.median.toFixed(0)
const millis = (s: Spread) => `${s.median.toFixed(1)} (${s.low.toFixed(1)}–${s.high.toFixed(1)})`
/** Microseconds per task: the median and, in parentheses, the range over the rounds. */
const microsRange = (s: Spread) => `${s.median.toFixed(1)} (${s.low.toFixed(1)}–${s.high.toFixed(1)})`
const perSecond = (n: number) => Math.round(n).toLocaleString("en-US")
const verdict = (met: boolean) => (met ? "met" : "**not met**")
/** Whether every round's ratio lies within ±20 % of the median: the rounds agree. */
const agrees = (s: Spread) => s.low >= 0.8 * s.median && s.high <= 1.2 * s.median

/** The in-process dispatch table: per caller shape, the ratios to `Pool.use` and to a bare call. */
export const dispatchTable = (result: DispatchResult): string =>
  table(
    [
      "caller shape",
      "ns per request: dispatch",
      "Pool.use",
      "bare call",
      "dispatch / Pool.use",
      `goal ≤ ${dispatchGoals.poolUse}`,
      "dispatch / bare call",
      `goal ≤ ${dispatchGoals.bareCall}`,
      "rounds within ±20 %"
    ],
    "lrrrrlrll",
    result.shapes.map((row) => [
      row.shape,
      nanos(row.dispatch),
      nanos(row.poolUse),
      nanos(row.bare),
      ratioText(row.toPoolUse),
      verdict(row.toPoolUse.median <= dispatchGoals.poolUse),
      ratioText(row.toBare),
      verdict(row.toBare.median <= dispatchGoals.bareCall),
      agrees(row.toPoolUse) && agrees(row.toBare) ? "yes" : "**no**"
    ])
  )

/** A one-operation group against the single form of the same task, per caller shape. */
export const groupDispatchTable = (result: DispatchResult): string =>
  table(
    ["caller shape", "ns per request: single form", "group", "group / single form", `goal ≤ ${groupDispatchGoal}`],
    "lrrrl",
    result.groups.map((row) => [
      row.shape,
      nanos(row.single),
      nanos(row.group),
      ratioText(row.groupToSingle),
      verdict(row.groupToSingle.median <= groupDispatchGoal)
    ])
  )

/** Every policy under concurrent callers, against `Pool.use`. */
export const policyTable = (result: DispatchResult): string =>
  table(
    ["policy", "ns per request", "requests / s", "dispatch / Pool.use"],
    "lrrr",
    result.policies.map((row) => [
      row.policy === result.defaultPolicy ? `${row.policy} (the default)` : row.policy,
      nanos(row.dispatch),
      perSecond(1e9 / row.dispatch.median),
      ratioText(row.toPoolUse)
    ])
  )

/** The selection cost table. */
export const selectionTable = (rows: ReadonlyArray<SelectionRow>): string =>
  table(
    ["policy", "ns per pick, 4 workers", "ns per pick, 1,024 workers", "ratio 1,024 / 4", `goal ≤ ${selectionGoal}`],
    "lrrrl",
    rows.map((r) => [
      r.policy,
      nanos(r.small),
      nanos(r.large),
      ratioText(r.ratio),
      verdict(r.ratio.median <= selectionGoal)
    ])
  )

/** Tasks per second of every out-of-process variant. */
export const wireTable = (result: WireResult): string =>
  table(
    [
      "variant",
      "tasks / s (median)",
      "lowest round",
      "highest round",
      "CPU µs / task: parent",
      "workers",
      "helper threads"
    ],
    "lrrrrrr",
    result.rows.map((row) => [
      row.family === "library" ? `**${row.name}**` : row.name,
      perSecond(row.rate.median),
      perSecond(row.rate.low),
      perSecond(row.rate.high),
      row.parentCpu === undefined ? "" : microsRange(row.parentCpu),
      row.workerCpu === undefined ? "" : microsRange(row.workerCpu),
      row.helperCpu === undefined ? "" : microsRange(row.helperCpu)
    ])
  )

/** The kinds against poolifier and against the bare transport each rides on. */
export const wireRatioTable = (result: WireResult): string =>
  table(
    [
      "variant",
      "/ poolifier (task queue off)",
      `goal ≥ ${wireGoal} (at concurrency ${goalConcurrency})`,
      `/ bare echo of its transport, ${bareBatch} per message`,
      `goal ≥ ${bareGoal} (at concurrency ${goalConcurrency})`,
      "/ bare echo, unbatched",
      `/ bare echo, ${goalConcurrency} in flight per worker`
    ],
    "lrlrlrr",
    result.ratios.map((r) => [
      kindName(r.kind, r.concurrency),
      ratioText(r.toPoolifier),
      r.concurrency === goalConcurrency ? verdict(r.toPoolifier.median >= wireGoal) : "",
      ratioText(r.toBareBatched),
      r.concurrency === goalConcurrency ? verdict(r.toBareBatched.median >= bareGoal) : "",
      ratioText(r.toBareUnbatched),
      r.toBareCapped === undefined ? "" : ratioText(r.toBareCapped)
    ])
  )

/** What the concurrency limit alone leaves of each bare transport: capped at the goal's concurrency, / batched. */
export const wireCeilingTable = (result: WireResult): string =>
  table(
    ["transport", `bare echo, ${goalConcurrency} in flight per worker / ${bareBatch} tasks per message`],
    "lr",
    result.ceilings.map((c) => [
      c.kind === "thread" ? "`worker_threads` messages" : "JSON-lines pipe",
      ratioText(c.cappedToBatched)
    ])
  )

/** A one-operation group against the single form, at the goal's concurrency. */
export const wireGroupTable = (result: WireResult): string =>
  table(
    ["kind", `one-operation group / single form, concurrency ${goalConcurrency}`, `goal ≥ ${groupGoal}`],
    "lrl",
    result.groups.map((g) => [g.kind, ratioText(g.toSingle), verdict(g.toSingle.median >= groupGoal)])
  )

/** Start-to-ready and start-to-first-answer. */
export const startTable = (result: StartResult): string =>
  table(
    ["what starts", "ms to Healthy", "ms to a first answer"],
    "lrr",
    result.starts.map((row) => [row.name, row.healthy === undefined ? "" : millis(row.healthy), millis(row.answered)])
  )

/** Crash to first answer from the replacement, against a bare spawn of the same transport. */
export const replacementTable = (result: StartResult): string =>
  table(
    [
      "kind",
      "death",
      "restart",
      "ms to the crash noticed",
      "ms to Healthy again",
      "ms to a first answer",
      "first answer − bare spawn",
      `goal ≤ ${replacementSlackMillis} ms`
    ],
    "lllrrrrl",
    result.replacements.map((row) => [
      row.kind,
      row.death,
      row.withSpare ? "default options (a spare)" : "`spares: 0`",
      millis(row.noticed),
      millis(row.healthy),
      millis(row.answered),
      millis(row.overBare),
      row.withSpare ? verdict(row.overBare.median <= replacementSlackMillis) : ""
    ])
  )

const micros = (s: Spread | undefined) => (s === undefined ? "" : s.median.toFixed(0))

/** Remote throughput per load and number of runners, with the speed-up over one runner and the CPU per task. */
export const remoteTable = (result: RemoteResult): string =>
  table(
    [
      "tasks",
      "runners",
      "tasks / s (median)",
      "lowest round",
      "highest round",
      "/ 1 runner",
      "client CPU µs per task",
      "runners' CPU µs per task"
    ],
    "lrrrrrrr",
    result.rows.map((row) => [
      row.load === "trivial" ? "trivial" : `wait ${ioWaitMillis} ms, ${ioConcurrency} per worker`,
      String(row.runners),
      perSecond(row.rate.median),
      perSecond(row.rate.low),
      perSecond(row.rate.high),
      row.runners === 1 ? "" : ratioText(row.toOne),
      micros(row.clientCpu),
      micros(row.runnerCpu)
    ])
  )

/** kill -9 of a runner to the `WorkerCrash` of a request it held. */
export const remoteCrashTable = (result: RemoteResult): string =>
  table(["death", "ms to the caller's `WorkerCrash` (`ConnectionLost`)"], "lr", [
    ["`kill -9` of the runner", millis(result.crash)]
  ])

/** A 16 MiB round trip through a thread, moved and copied, with the `arrayBuffers` peak. */
export const transferTable = (result: TransferResult): string =>
  table(
    ["field", "ms per round trip", "`arrayBuffers` peak / payload"],
    "lrr",
    result.rows.map((row) => [row.name, millis(row.millis), ratioText(row.peak)])
  )

/** The goals of the transfer section: moved against copied, and the A/A control. */
export const transferRatioTable = (result: TransferResult): string => {
  const moved = result.rows[0]!
  return table(["figure", "median (range)", "goal"], "lrl", [
    [
      "copied / moved, time per round trip",
      ratioText(result.speedup),
      `≥ ${transferSpeedGoal}: ${verdict(result.speedup.median >= transferSpeedGoal)}`
    ],
    [
      "moved: `arrayBuffers` peak / payload",
      ratioText(moved.peak),
      `≤ ${transferMemoryGoal}: ${verdict(moved.peak.median <= transferMemoryGoal)}`
    ],
    ["copied (A/A) / copied, time per round trip", ratioText(result.control), "about 1: the noise"]
  ])
}

/** Every table of the run, for the console. */
/** One load of the capacity section: every variant's rate and p99, and the adaptive variant against the best fixed one. */
export const capacityTable = (result: CapacityLoadResult): string =>
  table(
    [
      "variant",
      "tasks / s (median)",
      "lowest round",
      "highest round",
      "p99 ms (median)",
      "lowest round",
      "highest round"
    ],
    "lrrrrrr",
    result.rows.map((row) => [
      row.adaptive
        ? `**${row.name}**`
        : `${row.name}${row.name === result.bestRate ? " (best rate)" : ""}${row.name === result.bestP99 ? " (best p99)" : ""}`,
      perSecond(row.rate.median),
      perSecond(row.rate.low),
      perSecond(row.rate.high),
      row.p99.median.toFixed(1),
      row.p99.low.toFixed(1),
      row.p99.high.toFixed(1)
    ])
  )

/** The adaptive variant (and the A/A control) against the best fixed setting, round by round, per load. */
export const capacityGoalTable = (result: CapacityResult): string =>
  table(
    ["load", "variant", "rate / best fixed rate", "goal", "p99 / best fixed p99", "goal"],
    "llrlrl",
    result.loads.flatMap((r) => [
      [
        r.load.name,
        "adaptive",
        ratioText(r.rateToBest),
        `≥ ${r.load.goal.rate}: ${verdict(r.rateToBest.median >= r.load.goal.rate)}`,
        ratioText(r.p99ToBest),
        r.load.goal.p99 === undefined ? "" : `≤ ${r.load.goal.p99}: ${verdict(r.p99ToBest.median <= r.load.goal.p99)}`
      ],
      [
        r.load.name,
        `fixed ${controlLimit} again (A/A)`,
        ratioText(r.controlRateToBest),
        "about 1: the noise",
        ratioText(r.controlP99ToBest),
        "about 1: the noise"
      ]
    ])
  )

export const consoleTables = (results: Results): string =>
  [
    results.dispatch &&
      `In-process dispatch\n${dispatchTable(results.dispatch)}\n\n${policyTable(results.dispatch)}\n\n${groupDispatchTable(results.dispatch)}`,
    results.selection && `Selection cost\n${selectionTable(results.selection)}`,
    results.wire &&
      `Out-of-process throughput\n${wireTable(results.wire)}\n\n${wireRatioTable(results.wire)}\n\n${wireCeilingTable(results.wire)}\n\n${wireGroupTable(results.wire)}`,
    results.start && `Start and replacement\n${startTable(results.start)}\n\n${replacementTable(results.start)}`,
    results.remote && `Remote workers\n${remoteTable(results.remote)}\n\n${remoteCrashTable(results.remote)}`,
    results.transfer &&
      `Zero-copy buffers\n${transferTable(results.transfer)}\n\n${transferRatioTable(results.transfer)}`,
    results.capacity &&
      `Capacity\n${results.capacity.loads.map((load) => `${load.load.name}\n${capacityTable(load)}`).join("\n\n")}\n\n${capacityGoalTable(results.capacity)}`
  ]
    .filter((text) => text !== undefined)
    .join("\n\n")

/** The results of a run of every section. */
export type Complete = { readonly [K in keyof Results]-?: NonNullable<Results[K]> }

/** Where and how the figures were produced. */
export interface RunInfo {
  readonly command: string
  readonly machine: string
  readonly seconds: number
  /** The machine's 1-minute load average when the run started and when it ended. */
  readonly load: { readonly start: number; readonly end: number }
  readonly settings: Settings
  /** The chart's path, relative to docs/. */
  readonly chart: string
}

/** The page docs/benchmarks.md, from a run of every section. */
export const page = (results: Complete, run: RunInfo): string => {
  const s = run.settings
  return [
    "# Benchmarks",
    "",
    "<!-- Generated by `npm run bench` (bench/main.ts): edit the generator, not this file. -->",
    "",
    `Produced by \`${run.command}\` (\`node --conditions=effect-worker-pool-source bench/main.ts\`) on ${run.machine}, in ${run.seconds.toFixed(0)} s.`,
    `The machine's load average (1 min) was ${run.load.start.toFixed(2)} when the run started and ${run.load.end.toFixed(2)} when it ended.`,
    "",
    "## Method",
    "",
    "Every figure that matters is a ratio between variants measured in the same run, never an absolute figure to",
    "compare across machines. Each section runs its variants in rounds: a round runs every variant once, in an order",
    "that alternates from round to round (forwards, then backwards), so that a busy moment of the machine hits them",
    "alike. A ratio is taken within each round, and the table gives its median over the rounds, with the lowest and",
    "the highest round in parentheses. A goal is met when the median meets it.",
    "",
    `- In-process dispatch and selection: ${s.dispatchRounds} rounds; in each, a variant runs as many requests (picks) as`,
    `  take it about ${s.targetMillis} ms, a count calibrated once per variant before the rounds, after a warm-up. Their`,
    "  time is the CPU time of the benchmark's process (`process.cpuUsage`, every thread of it): all their work runs",
    "  in it, and CPU time leaves out the moments it waited while other processes had the CPUs.",
    `- Out-of-process throughput: ${s.wireRounds} rounds of ${perSecond(s.wireTasks)} tasks per variant, ${wireCallers} callers at a time, after a`,
    "  warm-up of a tenth of that; every pool and transport stays open for the whole section. Wall time.",
    `- Start and replacement: ${s.startRounds} rounds; every start is a new thread or process. Wall time.`,
    `- Remote workers: ${s.remote.rounds} rounds of ${perSecond(s.remote.trivialTasks)} trivial and ${perSecond(s.remote.ioTasks)} I/O-bound tasks per variant,`,
    `  ${remoteCallers} callers at a time, after a warm-up of a tenth of that; then ${s.remote.crashRounds} rounds of \`kill -9\`. Wall time.`,
    "",
    "Wall time on a machine that other work shares swings from round to round (see the ranges): the load average",
    "above says how busy it was.",
    "",
    "The library is loaded from its TypeScript source (`--conditions=effect-worker-pool-source`, types stripped by Node), in the",
    "benchmark's process and in every worker script alike.",
    "",
    "## In-process dispatch",
    "",
    "A pool of 4 in-process workers made with the library's defaults (`WorkerPool.make({ size: 4, worker: (id) =>",
    `Worker.make(id, handler) })\`: the default policy, ${results.dispatch.defaultPolicy}; one request per worker at a time),`,
    "and the handler `x => Effect.sync(() => x + 1)` (`Effect.sync`, so that no shortcut for a ready value flatters",
    "any figure). Its baselines, in the same loop shapes: `Pool.use(pool, (h) => h(x))` on Effect's own",
    "`Pool.make({ acquire: Effect.succeed(handler), size: 4 })`, and a bare `handler(x)`. Two caller shapes: one caller,",
    `a loop of \`yield* pool.dispatch(i)\`; and ${concurrentCallers} concurrent callers, \`Effect.forEach(requests, ..., { concurrency: ${concurrentCallers} })\`.`,
    `The goals: dispatch costs at most ${dispatchGoals.poolUse} × \`Pool.use\` and at most ${dispatchGoals.bareCall} × a bare call, in a run`,
    "whose rounds agree: every round's ratio within ±20 % of the median (the last column).",
    "",
    dispatchTable(results.dispatch),
    "",
    `Every policy in a pool of 4 (defaults otherwise), ${concurrentCallers} concurrent callers, against \`Pool.use\` in the same rounds:`,
    "",
    policyTable(results.dispatch),
    "",
    "A one-operation group (`Worker.fromGroup` workers, called through `WorkerPool.client`) against the single form of",
    "the same task (`{ a, b } → a + b`, `Effect.sync`), each a pool of 4 with the defaults, in the same rounds. The goal:",
    `a call of the group costs at most ${groupDispatchGoal} × the single form's dispatch.`,
    "",
    groupDispatchTable(results.dispatch),
    "",
    "## Selection cost",
    "",
    "The cost of one `pool.select` (the pool's whole pick: which workers are eligible, the policy, its state) among 4",
    "and among 1,024 healthy workers, each holding two requests in flight on average, placed by the policy itself.",
    `The goal: a pick among 1,024 workers costs at most ${selectionGoal} × a pick among 4, for every policy.`,
    "",
    selectionTable(results.selection),
    "",
    "## Out-of-process throughput",
    "",
    `Trivial tasks (\`{ a, b } → a + b\`), ${wireCallers} callers at a time, through pools of 2 threads or processes:`,
    "",
    "- this library's thread kind (`Thread.make(script, { request, response, concurrency })`, `Worker.fromKind`,",
    "  `WorkerPool.make({ size: 2, ... })`) and subprocess kind (`Subprocess.node`, the same otherwise), defaults but",
    `  for \`concurrency\`: 1 (the default), ${goalConcurrency} (the goal's setting: one crash takes at most ${goalConcurrency} requests down) and`,
    `  ${s.concurrencies.filter((c) => c !== 1 && c !== goalConcurrency).join(", ")}; the worker script calls \`Runner.run\`; the callers are one \`Effect.forEach\`;`,
    "- the peer pools at their defaults with 2 threads, and as named; their callers are async loops that await",
    "  each task;",
    "- the bare transports without any pool, with the same callers: 2 `worker_threads` Workers running an echo",
    `  script (one message per task, or up to ${bareBatch} tasks per message), and 2 \`node\` children answering JSON lines on`,
    `  their stdin (one write per task each way, or up to ${bareBatch} tasks per write); and each capped as a pool of`,
    `  \`concurrency\` ${goalConcurrency} is: at most ${goalConcurrency} tasks in flight per thread (child), the rest waiting in order, and what a`,
    "  thread has room for sent in one message at the end of the microtask queue: a concurrency limit with nothing",
    "  else of a pool, the most a pool of that `concurrency` could carry on the transport;",
    `- each kind at \`concurrency\` ${goalConcurrency} serving the task as the one operation of a group (\`Runner.run({ group, handlers })\`,`,
    "  called through `WorkerPool.client`), measured next to its single form in every round.",
    "",
    `The goals: each kind at \`concurrency\` ${goalConcurrency} carries at least ${wireGoal} × the tasks per second of poolifier's`,
    `\`FixedThreadPool\` with its task queue off, and at least ${bareGoal} × those of the bare echo of its transport batching ${bareBatch}`,
    "tasks per message.",
    "",
    "The CPU per task, over each variant's run (median and range over the rounds): the parent is the benchmark's main",
    "thread (`process.threadCpuUsage`); the workers are its worker threads (named `WorkerThread` by Node) and its child",
    "processes, whole; the helper threads are the rest of the benchmark's process (V8's garbage collection and",
    "compilation, which serve the main thread and the worker threads alike). Threads and children are read from",
    "`/proc` in clock ticks (10 ms), so a short run reads coarsely; the columns are empty off Linux.",
    "",
    `![Out-of-process throughput: tasks per second per variant](${run.chart})`,
    "",
    wireTable(results.wire),
    "",
    wireRatioTable(results.wire),
    "",
    `The concurrency limit alone, on each transport: the bare echo capped at ${goalConcurrency} in flight per worker, against the`,
    `same echo batching ${bareBatch} tasks per message with every caller's task in flight (a ceiling for the goal's ${bareGoal}: a pool of`,
    `\`concurrency\` ${goalConcurrency} does everything the capped echo does, and more):`,
    "",
    wireCeilingTable(results.wire),
    "",
    `A one-operation group costs at most 10 % over the single form: the goal is ${groupGoal} × its tasks per second.`,
    "",
    wireGroupTable(results.wire),
    "",
    "## Start and replacement latency",
    "",
    "Start: from `Worker.fromKind` (default options) to a `Healthy` worker, which is when it returns, and to its first",
    "answer. Beside it, a bare spawn: a `worker_threads` Worker (a `node` child) running an echo script, from",
    "`new Worker` (`spawn`) to its answer to one message (one line); and the same echo script after it has loaded",
    "this library, which is the part of a start that is loading code.",
    "",
    startTable(results.start),
    "",
    "Replacement: a pool of 1 worker with default options; the worker dies (its handler calls `process.exit(1)`, or a",
    "subprocess is killed with `SIGKILL` from outside); the times run from the death to the crash being noticed (the",
    "first change of the worker's state), to the replacement being `Healthy`, and to its first successful answer.",
    "With default options the pool keeps one spare incarnation started ahead (ready by the time the worker dies, as in",
    "a pool that has been running), which the crashed worker takes at once; the rows with `spares: 0` show a restart",
    "without one (the default restart schedule's first delay, about 100 ms, then a start). The goal: the first answer comes at most",
    `${replacementSlackMillis} ms after a bare spawn of the same transport (\`${bareSpawnName.thread}\` for threads, \`${bareSpawnName.subprocess}\` for`,
    "subprocesses) would have answered, per round.",
    "",
    replacementTable(results.start),
    "",
    "## Remote workers",
    "",
    "Three runner processes on loopback (`Remote.listen`, defaults, on `127.0.0.1`), and pools of 1, 2 and 3 remote",
    `workers (\`Remote.pool\`, one worker per runner), ${remoteCallers} callers at a time. Two loads: trivial tasks (\`{ a, b } → a + b\`,`,
    `each worker holding up to 32 at once, the default), and tasks whose handler waits ${ioWaitMillis} ms first (I/O bound), each worker`,
    `holding ${ioConcurrency} at once, so that a worker's rate is set by the wait rather than by the CPUs: the target is close to linear`,
    "in the number of runners. The CPU columns are the time the client process and the runner processes spent per",
    "task (the runners' from `/proc`, in 10 ms ticks): every process here shares the same machine, so the trivial",
    "tasks are capped by the CPU a task costs on both sides of the connection (JSON, the rpc envelope, the socket),",
    "not by the number of runners.",
    "",
    remoteTable(results.remote),
    "",
    "A runner killed with `kill -9` while it holds a request (a pool of 1 remote worker, a fresh runner per round):",
    "the time from the kill to the caller's `WorkerCrash`.",
    "",
    remoteCrashTable(results.remote),
    "",
    "## Zero-copy buffers",
    "",
    `A ${transferBytes / (1024 * 1024)} MiB \`Uint8Array\` round trip through a pool of 1 thread worker (\`Thread.make\`, defaults), the worker`,
    "answering with the buffer it got: a field marked `Transferable.Uint8Array` (moved through `postMessage`'s transfer",
    "list, both ways) against a plain `Schema.Uint8Array` (copied by structured clone, both ways), and the copy again as",
    `an A/A control. ${s.transferRounds} interleaved rounds of ${s.transferTrips} round trips per variant, each trip sending the buffer of the answer`,
    "before it; wall time from the dispatch to the answer. Each variant has a caller process of its own (its pool, its",
    "heap, its garbage), started without V8's memory reducer: a heap that the reducer shrank while it waited for the",
    "other variants' rounds, or that a forced collection left small, pays a full collection nearly every moved trip,",
    "which a caller that keeps sending does not (with the reducer on, six runs of this section on a 2-CPU machine read",
    "copied / moved 2.6 to 7.5: an application that idles for seconds and then moves large buffers can meet the same",
    "collections, which are V8's and not the pool's). The peak is the caller's `process.memoryUsage().arrayBuffers` over",
    "a round, above its level before the payload was made (after a full garbage collection), read at the round's start",
    "and whenever an answer is in hand (the caller still holding its request), as a multiple of the payload; a copy's",
    "garbage counts until it is collected.",
    `The goals: moved at least ${transferSpeedGoal} × faster than copied, and its peak at most ${transferMemoryGoal} × the payload.`,
    "",
    transferTable(results.transfer),
    "",
    transferRatioTable(results.transfer),
    "",
    "## Capacity: adaptive concurrency out of process",
    "",
    "A pool of 2 subprocess workers (`Subprocess.node`, `WorkerPool.make({ size: 2, ... })`) with an adaptive",
    `per-worker limit (\`concurrency: ${adaptiveMax}\`, \`maxInFlight: { adaptive: { max: ${adaptiveMax} } }\`) against the same pool with`,
    `fixed limits (\`concurrency: k\`, its default \`maxInFlight\`) for k in ${fixedLimits.join(", ")}, under two loads: tasks that spend`,
    "500 µs of CPU in the child (CPU-bound: a second request on a child only waits behind the first), and tasks that",
    "spend 20 µs and then wait 20 ms (I/O-bound: a child serves as many at once as it is given). Each round runs every",
    `variant for ${run.settings.capacity.roundMillis} ms (${run.settings.capacity.rounds} rounds, after an unmeasured one in which the adaptive limit learns);`,
    "callers loop, each dispatching a task and awaiting its answer (64 callers for the CPU-bound load, 256 for the",
    "I/O-bound one); the rate is the answers per second, the p99 the 99th percentile of their latency, from the",
    "dispatch to the answer, queueing in the parent included. The goals compare the adaptive variant, round by round,",
    "with the best fixed setting (the highest median rate; for the p99, the lowest median p99; medians of the",
    `per-round ratios): CPU-bound, p99 at most 1.2 × and rate at least 0.95 ×; I/O-bound, rate at least 0.8 ×. A second`,
    `pool of fixed ${controlLimit}, the A/A control, is compared the same way: its ratios are the noise.`,
    "",
    ...results.capacity.loads.flatMap((load) => [`${load.load.name}:`, "", capacityTable(load), ""]),
    capacityGoalTable(results.capacity),
    ""
  ].join("\n")
}

/** What the dashed goal line of the chart stands for. */
export const chartGoalLabel = `goal: ${wireGoal} × ${poolifierQueueOff}`
