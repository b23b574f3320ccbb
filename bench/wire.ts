/**
 * Out-of-process throughput: trivial tasks (`{ a, b } → a + b`) through a
 * pool of 2 (this library's thread and subprocess kinds at several
 * `concurrency` settings, the peer pools), and through the bare transports
 * without a pool, 256 callers at a time. Every variant stays open for the
 * whole section; each round runs every variant once, in an order that
 * alternates; the ratios are taken within a round and their medians reported.
 * Goal: each kind at `concurrency` 8 carries at least 2 × the tasks per
 * second of poolifier (task queue off), and at least 0.3 × its bare
 * transport batching 64 tasks per message. Beside the rates, the CPU per task
 * in the parent and in the workers (cpu.ts). Each kind also runs the task as
 * the one operation of a group at `concurrency` 8, against its single form.
 */
import { type CpuReading, perTask, readCpu } from "./cpu.ts"
import { groupKindName, type Kind, kindName, makeGroupKind, makeKind } from "./kinds.ts"
import { makePeers, poolifierQueueOff } from "./peers.ts"
import { interleave, ratio, type Spread, spread, timed } from "./rounds.ts"
import { pipeEcho, pipeEchoName, threadEcho, threadEchoName } from "./transports.ts"
import { type Family, makeTasks, type WireVariant } from "./wireVariant.ts"

/** The goal: a kind at the goal's concurrency carries at least this many times poolifier's tasks per second. */
export const wireGoal = 2

/** The `concurrency` of a kind that the goal is set at: one crash takes at most this many requests down. */
export const goalConcurrency = 8

/** How many callers wait on a pool at once. */
export const wireCallers = 256

/** How many tasks a batched bare transport sends per message or write. */
export const bareBatch = 64

/** The goal: a kind at the goal's concurrency carries at least this share of its bare transport's tasks per second, batched. */
export const bareGoal = 0.3

/** One variant's tasks per second. */
export interface WireRow {
  readonly name: string
  readonly family: Family
  readonly rate: Spread
  /** Microseconds of CPU per task in the parent's main thread; none off Linux. */
  readonly parentCpu: Spread | undefined
  /** Microseconds of CPU per task in the workers (worker threads and child processes); none off Linux. */
  readonly workerCpu: Spread | undefined
  /** Microseconds of CPU per task in the helper threads of the parent's process (V8's, for every thread); none off Linux. */
  readonly helperCpu: Spread | undefined
}

/** A kind at one concurrency, against poolifier and against the bare transport it rides on. */
export interface KindRatios {
  readonly kind: Kind
  readonly concurrency: number
  readonly toPoolifier: Spread
  readonly toBareBatched: Spread
  readonly toBareUnbatched: Spread
  /** Against the bare transport capped at {@link goalConcurrency} in flight per thread (child): at the goal's concurrency only. */
  readonly toBareCapped: Spread | undefined
}

/** What a concurrency limit alone costs a transport: its bare echo capped at the goal's concurrency, against it batched. */
export interface Ceiling {
  readonly kind: Kind
  readonly cappedToBatched: Spread
}

/** What the section measured. */
export interface WireResult {
  readonly rows: ReadonlyArray<WireRow>
  readonly ratios: ReadonlyArray<KindRatios>
  readonly ceilings: ReadonlyArray<Ceiling>
  readonly groups: ReadonlyArray<GroupCost>
}

/** What a one-operation group carries against the single form, at the goal's concurrency. */
export interface GroupCost {
  readonly kind: Kind
  readonly toSingle: Spread
}

/** The goal: a one-operation group carries at least this share of the single form's tasks per second. */
export const groupGoal = 0.9

/** The names of the bare transport a kind rides on, batched and unbatched. */
const bareNames = (kind: Kind) => {
  const name = kind === "thread" ? threadEchoName : pipeEchoName
  return { batched: name({ batch: bareBatch }), unbatched: name({ batch: 1 }), capped: name({ cap: goalConcurrency }) }
}

/**
 * Opens every variant, warms each up with a tenth of the tasks, runs
 * `rounds` rounds of `taskCount` tasks per variant, and closes them all
 * (also on failure). `concurrencies` are the kinds' settings to measure; it
 * must hold {@link goalConcurrency}.
 */
export const measureWire = async (
  taskCount: number,
  rounds: number,
  concurrencies: ReadonlyArray<number>
): Promise<WireResult> => {
  const variants: Array<WireVariant> = []
  try {
    for (const kind of ["thread", "subprocess"] as const) {
      for (const concurrency of concurrencies) {
        variants.push(await makeKind(kind, concurrency))
        // What a group costs over the single form, at the goal's concurrency:
        // next to it in every round's order, so that the ratio of the two
        // compares moments of the machine as close as the rounds allow.
        if (concurrency === goalConcurrency) variants.push(await makeGroupKind(kind, goalConcurrency))
      }
    }
    variants.push(...makePeers())
    for (const echo of [threadEcho, pipeEcho]) {
      variants.push(await echo({ batch: 1 }), await echo({ batch: bareBatch }), await echo({ cap: goalConcurrency }))
    }

    const tasks = makeTasks(taskCount)
    const warmUp = makeTasks(Math.max(1000, Math.round(taskCount / 10)))
    for (const variant of variants) await variant.run(warmUp, wireCallers)

    const cpu: Array<Array<CpuReading | undefined>> = variants.map(() => [])
    const measures = variants.map((variant, i) => async () => {
      let wrong = 0
      const before = readCpu()
      const elapsed = await timed(async () => {
        wrong = await variant.run(tasks, wireCallers)
      })
      cpu[i]!.push(perTask(before, readCpu(), taskCount))
      if (wrong > 0) throw new Error(`${variant.name}: ${wrong} wrong answers`)
      return (taskCount * 1000) / elapsed
    })
    const samples = await interleave(measures, rounds, (round) =>
      console.log(`wire: round ${round + 1} of ${rounds} done`)
    )
    const cpuSpread = (i: number, part: keyof CpuReading): Spread | undefined => {
      const readings = cpu[i]!
      return readings.every((r) => r !== undefined) ? spread(readings.map((r) => r![part])) : undefined
    }
    const rows = variants.map((variant, i) => ({
      name: variant.name,
      family: variant.family,
      rate: spread(samples[i]!),
      parentCpu: cpuSpread(i, "parent"),
      workerCpu: cpuSpread(i, "workers"),
      helperCpu: cpuSpread(i, "helpers")
    }))
    for (const row of rows) {
      const cpuText =
        row.parentCpu === undefined || row.workerCpu === undefined
          ? ""
          : `, CPU per task ${row.parentCpu.median.toFixed(1)} µs in the parent, ${row.workerCpu.median.toFixed(1)} µs in the workers, ${row.helperCpu?.median.toFixed(1)} µs in helper threads`
      console.log(`wire ${row.name}: ${Math.round(row.rate.median).toLocaleString("en-US")} tasks/s${cpuText}`)
    }

    const samplesOf = (name: string) => {
      const at = variants.findIndex((variant) => variant.name === name)
      if (at === -1) throw new Error(`no variant named ${name}`)
      return samples[at]!
    }
    const groups = (["thread", "subprocess"] as const).map((kind) => {
      const toSingle = ratio(
        samplesOf(groupKindName(kind, goalConcurrency)),
        samplesOf(kindName(kind, goalConcurrency))
      )
      console.log(
        `wire ${kind} kind, concurrency ${goalConcurrency}: a one-operation group carries ${toSingle.median.toFixed(2)} × the single form's tasks per second (${toSingle.low.toFixed(2)}-${toSingle.high.toFixed(2)})`
      )
      return { kind, toSingle }
    })
    const ratios = (["thread", "subprocess"] as const).flatMap((kind) =>
      concurrencies.map((concurrency) => {
        const own = samplesOf(kindName(kind, concurrency))
        const bare = bareNames(kind)
        return {
          kind,
          concurrency,
          toPoolifier: ratio(own, samplesOf(poolifierQueueOff)),
          toBareBatched: ratio(own, samplesOf(bare.batched)),
          toBareUnbatched: ratio(own, samplesOf(bare.unbatched)),
          toBareCapped: concurrency === goalConcurrency ? ratio(own, samplesOf(bare.capped)) : undefined
        }
      })
    )
    const ceilings = (["thread", "subprocess"] as const).map((kind) => {
      const bare = bareNames(kind)
      return { kind, cappedToBatched: ratio(samplesOf(bare.capped), samplesOf(bare.batched)) }
    })
    return { rows, ratios, ceilings, groups }
  } finally {
    for (const variant of variants) {
      await variant.close().catch((error) => console.error(`could not close ${variant.name}: ${error}`))
    }
  }
}
