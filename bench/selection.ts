/**
 * Selection cost: `pool.select` (the pool's whole pick: eligibility, the
 * policy, its state) for every listed policy, among 4 and among 1,024
 * workers, each worker holding about two requests that never finish (so that
 * loads differ, as in a busy pool). The figure is the ratio of a pick among
 * 1,024 to a pick among 4, per round. Goal: at most 1.5.
 */
import { Deferred, Effect, Exit, Scope } from "effect"
import { type InvalidOptions, Worker, WorkerPool } from "effect-worker-pool"
import { type PolicyEntry, policies } from "../sim/policies.ts"
import { cpuTimed, interleave, type Loop, nanosPerOperation, ratio, type Spread, spread } from "./rounds.ts"

/** The goal: a pick among 1,024 workers costs at most this many times a pick among 4. */
export const selectionGoal = 1.5

/** One policy's figures. */
export interface SelectionRow {
  readonly policy: string
  /** Nanoseconds per pick among 4 workers. */
  readonly small: Spread
  /** Nanoseconds per pick among 1,024 workers. */
  readonly large: Spread
  /** Per-round ratio large / small. */
  readonly ratio: Spread
}

const handler = (n: number) => Effect.sync(() => n + 1)

/** A pool of `size` workers with the policy, each holding about two requests that never finish. */
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
  const loop: Loop = (iterations) =>
    cpuTimed(() =>
      Effect.runSync(
        Effect.gen(function* () {
          for (let i = 0; i < iterations; i++) yield* pool.select
        })
      )
    )
  const close = () => Effect.runPromise(Scope.close(scope, Exit.void))
  return { loop, close }
}

/** Measures every listed policy: `rounds` interleaved rounds of about `targetMillis` each. */
export const measureSelection = async (rounds: number, targetMillis: number): Promise<Array<SelectionRow>> => {
  const rows: Array<SelectionRow> = []
  for (const entry of policies) {
    const small = await selectionPool(entry, 4)
    const large = await selectionPool(entry, 1024)
    try {
      const [smallNs, largeNs] = await interleave(
        await nanosPerOperation([small.loop, large.loop], targetMillis),
        rounds
      )
      rows.push({
        policy: entry.label,
        small: spread(smallNs!),
        large: spread(largeNs!),
        ratio: ratio(largeNs!, smallNs!)
      })
    } finally {
      await small.close()
      await large.close()
    }
    const row = rows.at(-1)!
    console.log(
      `select ${entry.label}: ${row.small.median.toFixed(0)} ns (4), ${row.large.median.toFixed(0)} ns (1,024), ratio ${row.ratio.median.toFixed(2)}`
    )
  }
  return rows
}
