/**
 * The simulator's own seeded randomness, for the workload (arrivals and
 * service times). It is separate from Effect's `Random` service, which the
 * pool's policies draw from, so that every policy sees the same workload.
 *
 * xoshiro128** (Blackman and Vigna), seeded through splitmix32: 32-bit integer
 * arithmetic only, so a seed gives the same sequence on every machine.
 */

const rotl = (x: number, k: number) => (x << k) | (x >>> (32 - k))

/** A generator of numbers in [0, 1) for `seed` and one of its `stream`s. */
export const makeRng = (seed: number, stream: number): (() => number) => {
  let s = (seed ^ Math.imul(stream + 1, 0x9e3779b9)) >>> 0
  const splitmix32 = () => {
    s = (s + 0x9e3779b9) | 0
    let z = s
    z = Math.imul(z ^ (z >>> 16), 0x21f0aaad)
    z = Math.imul(z ^ (z >>> 15), 0x735a2d97)
    return (z ^ (z >>> 15)) >>> 0
  }
  let a = splitmix32()
  let b = splitmix32()
  let c = splitmix32()
  let d = splitmix32()
  if ((a | b | c | d) === 0) a = 1
  return () => {
    const result = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0
    const t = b << 9
    c ^= a
    d ^= b
    b ^= c
    a ^= d
    c ^= t
    d = rotl(d, 11)
    return result / 4294967296
  }
}

/** An exponential variate of mean `mean` from a uniform draw in [0, 1). */
export const exponential = (u: number, mean: number): number => -Math.log(1 - u) * mean

/** A 32-bit seed from a string (FNV-1a), to derive one seed per scenario and load. */
export const seedOf = (text: string): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}
