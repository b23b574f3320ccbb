/**
 * `npm run bench`: the pool's speed, as ratios against a baseline measured in
 * the same run (never as absolute figures to compare across machines).
 *
 * 1. Selection cost: `pool.select` (the pool's whole pick: eligibility, the
 *    policy, its state) for every listed policy, with 4 and with 1,024
 *    workers, each worker holding two requests that never finish on average
 *    (so that loads differ, as in a busy pool). Reported as the ratio of the
 *    cost of a pick among 1,024 to a pick among 4. Goal: at most 1.5.
 * 2. Dispatch throughput of trivial in-process requests (`Effect.sync`, so no
 *    `Exit` shortcut flatters the figures), 64 callers at a time, against
 *    `Effect.forEach` of the same handler without a pool, and against
 *    Effect's own `Pool` of 4 handlers.
 *
 * Method: each measurement is calibrated to last about `--target` ms, warmed
 * up, then repeated (`--repeats`, default 7) with the variants interleaved,
 * and the median is kept. Options: `--quick` (fewer, shorter repeats),
 * `--no-write` (print only).
 */
import { writeFileSync } from "node:fs"
import { loadavg } from "node:os"
import { parseArgs } from "node:util"
import { Deferred, Effect, Exit, Pool, Scope } from "effect"
import { type InvalidOptions, Worker, WorkerPool } from "effect-worker-pool"
import { describeMachine, machine } from "../sim/machine.ts"
import { type PolicyEntry, policies, unlisted } from "../sim/policies.ts"

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    repeats: { type: "string" },
    target: { type: "string" },
    "no-write": { type: "boolean", default: false }
  }
})
const repeats = Number(values.repeats ?? (values.quick ? 5 : 31))
const targetMillis = Number(values.target ?? (values.quick ? 10 : 25))
const host = machine()
const started = performance.now()

for (const name of unlisted())
  console.warn(`warning: DispatchPolicy.${name} is not benchmarked: add it to sim/policies.ts`)

const median = (xs: ReadonlyArray<number>) => {
  const sorted = [...xs].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** A measurement: runs `iterations` operations, returns the elapsed milliseconds. */
type Body = (iterations: number) => Promise<number>

/** How many iterations make one repeat last about `targetMillis`. */
const calibrate = async (body: Body): Promise<number> => {
  let iterations = 16
  for (;;) {
    const elapsed = await body(iterations)
    if (elapsed >= targetMillis / 4 || iterations >= 1 << 26) {
      return Math.max(1, Math.round((iterations * targetMillis) / Math.max(elapsed, 0.001)))
    }
    iterations *= 4
  }
}

/**
 * Nanoseconds per operation of each body: the median and the minimum over the
 * repeats. The bodies are interleaved repeat by repeat, in an order that
 * alternates, so that a busy moment of the machine hits them alike.
 */
const compare = async (bodies: ReadonlyArray<Body>): Promise<Array<{ median: number; min: number }>> => {
  const counts: Array<number> = []
  for (const body of bodies) counts.push(await calibrate(body)) // also the warm-up
  for (let b = 0; b < bodies.length; b++) await bodies[b]!(counts[b]!) // one more warm-up at size
  const samples: Array<Array<number>> = bodies.map(() => [])
  for (let r = 0; r < repeats; r++) {
    for (let k = 0; k < bodies.length; k++) {
      const b = r % 2 === 0 ? k : bodies.length - 1 - k
      const elapsed = await bodies[b]!(counts[b]!)
      samples[b]!.push((elapsed * 1e6) / counts[b]!)
    }
  }
  return samples.map((xs) => ({ median: median(xs), min: Math.min(...xs) }))
}

const timed = async (run: () => unknown): Promise<number> => {
  const t0 = performance.now()
  await run()
  return performance.now() - t0
}

// --- 1. selection cost -------------------------------------------------------

const handler = (n: number) => Effect.sync(() => n + 1)

/** A pool of `size` workers with the policy; each worker holds about two requests that never finish. */
const selectionPool = async (entry: PolicyEntry, size: number) => {
  const scope = Scope.makeUnsafe()
  const hold = Deferred.makeUnsafe<number>()
  const pool = await Effect.runPromise(
    WorkerPool.make<number, number, never, InvalidOptions>({
      policy: entry.policy,
      size,
      worker: (id) =>
        Worker.make(id, (n: number) => (n < 0 ? Deferred.await(hold) : handler(n)), { maxInFlight: 1_000_000 }),
      ejection: false,
      drain: 0
    }).pipe(Scope.provide(scope))
  )
  // Requests that stay in flight, placed by the policy itself.
  await Effect.runPromise(
    Effect.forEach(
      Array.from({ length: 2 * size }, () => -1),
      (n) => Effect.forkIn(Effect.exit(pool.dispatch(n)), scope, { startImmediately: true }),
      { discard: true }
    )
  )
  const loop = (iterations: number) =>
    Effect.gen(function* () {
      for (let i = 0; i < iterations; i++) yield* pool.select
    })
  const body: Body = (iterations) => timed(() => Effect.runSync(loop(iterations)))
  const close = () => Effect.runPromise(Scope.close(scope, Exit.void))
  return { body, close }
}

interface SelectionRow {
  readonly policy: string
  readonly small: number
  readonly large: number
  /** The ratio of the fastest repeats: less sensitive to a busy machine. */
  readonly minRatio: number
}

const selection: Array<SelectionRow> = []
for (const entry of policies) {
  const small = await selectionPool(entry, 4)
  const large = await selectionPool(entry, 1024)
  const [smallNs, largeNs] = await compare([small.body, large.body])
  await small.close()
  await large.close()
  selection.push({
    policy: entry.label,
    small: smallNs!.median,
    large: largeNs!.median,
    minRatio: largeNs!.min / smallNs!.min
  })
  console.log(`select ${entry.label}: ${smallNs!.median.toFixed(0)} ns (4) ${largeNs!.median.toFixed(0)} ns (1024)`)
}

// --- 2. dispatch throughput --------------------------------------------------

const concurrency = 64
const batch = 256

/** A body that runs requests in batches of `batch`, 64 callers at a time. */
const batched =
  (one: (n: number) => Effect.Effect<unknown, unknown>): Body =>
  async (iterations) => {
    const rounds = Math.max(1, Math.round(iterations / batch))
    const items = Array.from({ length: batch }, (_, i) => i)
    const all = Effect.gen(function* () {
      for (let r = 0; r < rounds; r++) yield* Effect.forEach(items, one, { concurrency, discard: true })
    })
    const elapsed = await timed(() => Effect.runPromise(all))
    // Normalise to the requested count, so ns/op stays right.
    return (elapsed * iterations) / (rounds * batch)
  }

interface ThroughputRow {
  readonly name: string
  readonly nsPerRequest: number
}

const scope = Scope.makeUnsafe()
const baselines: Array<[string, Body]> = [["Effect.forEach, no pool (baseline)", batched(handler)]]
const effectPool = await Effect.runPromise(
  Pool.make({ acquire: Effect.succeed(handler), size: 4 }).pipe(Scope.provide(scope))
)
baselines.push([
  "Effect Pool of 4 (Pool.get per request)",
  batched((n) => Effect.scoped(Effect.flatMap(Pool.get(effectPool), (h) => h(n))))
])
const variants: Array<[string, Body]> = [...baselines]
for (const entry of policies) {
  for (const maxInFlight of [1, 16]) {
    const pool = await Effect.runPromise(
      WorkerPool.make<number, number, never, InvalidOptions>({
        policy: entry.policy,
        size: 4,
        worker: (id) => Worker.make(id, handler, { maxInFlight }),
        drain: 0
      }).pipe(Scope.provide(scope))
    )
    variants.push([`WorkerPool of 4, ${entry.label}, maxInFlight ${maxInFlight}`, batched((n) => pool.dispatch(n))])
  }
}
const throughputNs = await compare(variants.map(([, body]) => body))
const throughput: Array<ThroughputRow> = variants.map(([name], i) => ({ name, nsPerRequest: throughputNs[i]!.median }))
await Effect.runPromise(Scope.close(scope, Exit.void))
const seconds = (performance.now() - started) / 1000

// --- report ------------------------------------------------------------------

const selectionTable = [
  "| policy | ns per pick, 4 workers | ns per pick, 1,024 workers | ratio 1,024 / 4 | ratio of the fastest repeats | goal ≤ 1.5 |",
  "|---|---:|---:|---:|---:|---|",
  ...selection.map(
    (r) =>
      `| ${r.policy} | ${r.small.toFixed(0)} | ${r.large.toFixed(0)} | ${(r.large / r.small).toFixed(2)} | ${r.minRatio.toFixed(2)} | ${r.large / r.small <= 1.5 ? "met" : "**not met**"} |`
  )
].join("\n")
const base = throughput[0]!.nsPerRequest
const throughputTable = [
  "| variant | requests / s | ns per request | throughput vs baseline |",
  "|---|---:|---:|---:|",
  ...throughput.map(
    (r) =>
      `| ${r.name} | ${Math.round(1e9 / r.nsPerRequest).toLocaleString("en-US")} | ${r.nsPerRequest.toFixed(0)} | ${(base / r.nsPerRequest).toFixed(2)} |`
  )
].join("\n")
const command = `npm run bench${values.quick || values.repeats || values.target ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`

console.log(`\nSelection cost (pool.select)\n${selectionTable}\n\nDispatch throughput\n${throughputTable}`)
console.log(`\n${command}: ${seconds.toFixed(1)} s on ${describeMachine(host)}`)

if (!values["no-write"]) {
  const doc = [
    "# Benchmarks",
    "",
    "<!-- Generated by `npm run bench` (bench/main.ts): edit the generator, not this file. -->",
    "",
    `Produced by \`${command}\` (\`node --conditions=source bench/main.ts\`) on ${describeMachine(host)}, in ${seconds.toFixed(0)} s.`,
    "Figures are ratios against a baseline measured in the same run; the absolute numbers only say what this machine did",
    `that time. Each figure is the median of ${repeats} repeats of about ${targetMillis} ms each, after a warm-up, with the`,
    "variants compared interleaved (in alternating order) so that a busy moment of the machine hits them alike.",
    `The machine's load average when the run ended: ${loadavg()
      .map((x) => x.toFixed(2))
      .join(", ")} (1, 5, 15 min); on a shared`,
    "machine, the ratio of the fastest repeats is the steadier figure.",
    "",
    "## Selection cost",
    "",
    "The cost of one `pool.select` (the pool's whole pick: which workers are eligible, the policy, its state) among 4",
    "and among 1,024 healthy workers, each holding two requests in flight on average, placed by the policy itself.",
    "The goal: a pick among 1,024 workers costs at most 1.5 × a pick among 4, for every policy.",
    "",
    selectionTable,
    "",
    "## Dispatch throughput",
    "",
    `Trivial in-process requests (\`Effect.sync(() => n + 1)\`: an \`Effect.succeed\` handler would skip the fiber and flatter every figure), ${concurrency} callers at a time. The baseline is the same handler run by \`Effect.forEach\` without any pool; Effect's own \`Pool\` (LIFO, no policy, no health) is shown beside it. A ratio of 0.25 means a quarter of the baseline's throughput.`,
    "",
    throughputTable,
    ""
  ].join("\n")
  writeFileSync(new URL("../docs/benchmarks.md", import.meta.url), doc)
  console.log("wrote docs/benchmarks.md")
}
