/**
 * The runner and the statistics of every section: variants measured in
 * interleaved rounds (each round runs every variant once, in an order that
 * alternates from round to round, so that a busy moment of the machine hits
 * them alike), ratios taken within each round, and medians over the rounds.
 */

/** The median of a non-empty list. */
export const median = (xs: ReadonlyArray<number>): number => {
  const sorted = [...xs].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** A summary of one figure over the rounds: its median, lowest and highest value. */
export interface Spread {
  readonly median: number
  readonly low: number
  readonly high: number
}

/** The median and range of a non-empty list. */
export const spread = (xs: ReadonlyArray<number>): Spread => ({
  median: median(xs),
  low: Math.min(...xs),
  high: Math.max(...xs)
})

/** The ratio `numerator / denominator` in every round, summarised over the rounds. */
export const ratio = (numerator: ReadonlyArray<number>, denominator: ReadonlyArray<number>): Spread =>
  spread(numerator.map((x, round) => x / denominator[round]!))

/** One measurement: runs once, returns what it measured (such as nanoseconds per operation). */
export type Measure<A = number> = () => Promise<A>

/**
 * Runs every measurement once per round, `rounds` times, forwards in even
 * rounds and backwards in odd ones; returns the figures, per measurement one
 * per round (so `samples[m][r]` is measurement `m` in round `r`). `onRound`
 * is told when a round is over.
 */
export const interleave = async <A>(
  measures: ReadonlyArray<Measure<A>>,
  rounds: number,
  onRound?: (round: number) => void
): Promise<Array<Array<A>>> => {
  const samples: Array<Array<A>> = measures.map(() => [])
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < measures.length; k++) {
      const m = round % 2 === 0 ? k : measures.length - 1 - k
      samples[m]!.push(await measures[m]!())
    }
    onRound?.(round)
  }
  return samples
}

/** A timed loop: runs `iterations` operations, resolves with the milliseconds they took. */
export type Loop = (iterations: number) => Promise<number>

/** The elapsed milliseconds of `run`. */
export const timed = async (run: () => unknown): Promise<number> => {
  const start = performance.now()
  await run()
  return performance.now() - start
}

/**
 * The CPU milliseconds (user and system, every thread of the process) that
 * `run` took. For work that runs in this process alone, it is the wall time
 * of a quiet machine, without the time the process waited for a CPU while
 * other processes had it: on a shared machine, a far steadier figure.
 */
export const cpuTimed = async (run: () => unknown): Promise<number> => {
  const start = process.cpuUsage()
  await run()
  const { user, system } = process.cpuUsage(start)
  return (user + system) / 1000
}

/**
 * How many iterations make one run of `loop` last about `targetMillis`
 * (the runs it takes to find out are its warm-up).
 */
export const calibrate = async (loop: Loop, targetMillis: number): Promise<number> => {
  let iterations = 16
  for (;;) {
    const elapsed = await loop(iterations)
    if (elapsed >= targetMillis / 4 || iterations >= 1 << 26) {
      return Math.max(1, Math.round((iterations * targetMillis) / Math.max(elapsed, 0.001)))
    }
    iterations *= 4
  }
}

/**
 * Calibrates each loop, runs it once more at size (a warm-up), and returns
 * measurements of nanoseconds per operation, ready for {@link interleave}.
 */
export const nanosPerOperation = async (loops: ReadonlyArray<Loop>, targetMillis: number): Promise<Array<Measure>> => {
  const measures: Array<Measure> = []
  for (const loop of loops) {
    const iterations = await calibrate(loop, targetMillis)
    await loop(iterations)
    measures.push(async () => ((await loop(iterations)) * 1e6) / iterations)
  }
  return measures
}
