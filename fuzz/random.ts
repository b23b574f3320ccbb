/**
 * The fuzzer's own seeded randomness: every decision of a plan is drawn from
 * it, so that a seed gives the same plan on every machine. It is the
 * simulator's generator (xoshiro128**), with the draws a plan needs.
 */
import { makeRng } from "../sim/random.ts"

/** A seeded source of draws. */
export interface Rng {
  /** A number in [0, 1). */
  readonly next: () => number
  /** An integer in [0, n). */
  readonly below: (n: number) => number
  /** An integer in [min, max]. */
  readonly between: (min: number, max: number) => number
  /** `true` with probability `p`. */
  readonly chance: (p: number) => boolean
  /** One of `items`, each as likely. */
  readonly pick: <A>(items: ReadonlyArray<A>) => A
  /** One of `items`, each with its weight. */
  readonly weighted: <A>(items: ReadonlyArray<readonly [A, number]>) => A
}

/** The draws of `seed`; `stream` separates independent uses of one seed. */
export const makeRandom = (seed: number, stream = 0): Rng => {
  const next = makeRng(seed >>> 0, stream)
  const below = (n: number) => Math.floor(next() * n)
  return {
    next,
    below,
    between: (min, max) => min + below(max - min + 1),
    chance: (p) => next() < p,
    pick: (items) => items[below(items.length)]!,
    weighted: (items) => {
      const total = items.reduce((sum, [, w]) => sum + w, 0)
      let x = next() * total
      for (const [item, w] of items) {
        if (x < w) return item
        x -= w
      }
      return items[items.length - 1]![0]
    }
  }
}
