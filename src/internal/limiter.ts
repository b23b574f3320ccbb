/**
 * Adaptive concurrency: how many requests one worker may hold, learned from
 * the latency of its answers (in the manner of Netflix's concurrency-limits,
 * Vegas and Gradient2, and Envoy's adaptive concurrency filter, which compare
 * the latency measured now with the latency without queueing).
 *
 * A pure function of its samples: each answer (its run time, how many
 * requests the worker held when it ended, whether it failed, and the time
 * from the pool's `Clock`) gives the next state. No clock is read here, so a
 * run in virtual time makes the same decisions from the same samples.
 *
 * - **No-load latency** (`baseline`): a slow moving average of the run times
 *   of requests that ran alone on the worker (nothing else in flight). The
 *   limit starts at 1, so the first answers are such samples; when latency
 *   grows, backing off brings the worker back to running alone, and the
 *   baseline follows a worker whose own speed changed. (Answers under load
 *   do not lower it: with noisy latencies, taking in only the low ones would
 *   pull it toward the fastest answer, and every average would look far.)
 * - **Latency now** (`recent`): a moving average of every run time.
 * - **Near** means both the sample and the average are within `tolerance` ×
 *   the no-load latency (plus a millisecond, for handlers faster than the
 *   clock). While latency is near, the limit grows: by 1 per answer in slow
 *   start (doubling per round trip), then by 1 / limit per answer (about 1
 *   per round trip). It grows only while the worker uses at least half of
 *   it (an application that sends little leaves it where it is).
 * - **Far**: the average above `tolerance` × the no-load latency. The limit
 *   shrinks by the ratio of the two (at most by half, at least by a tenth),
 *   at most once per average run time, so that one episode of queueing is
 *   not counted once per answer. Slow start ends.
 * - **A crash or a timeout** halves the limit at once, and ends slow start.
 *
 * The limit is a number in [1, max]; a worker holds `Math.floor` of it.
 */

/** What a limiter is told of one answer. */
export interface Sample {
  /** The request's run time on the worker, in milliseconds. */
  readonly millis: number
  /** Requests the worker held when it ended, this one included. */
  readonly inFlight: number
  /** It crashed the worker or ran past its timeout. */
  readonly failed: boolean
  /** The pool's clock, in milliseconds. */
  readonly now: number
}

/** A limiter's settings. */
export interface LimiterSettings {
  /** The largest limit, an integer of at least 1. */
  readonly max: number
  /** How far above the no-load latency still counts as near (a ratio above 1). */
  readonly tolerance: number
}

/** The default settings, for a given `max`. */
export const settings = (max: number): LimiterSettings => ({ max, tolerance: 1.2 })

/** A limiter's state. */
export interface Limiter {
  readonly settings: LimiterSettings
  /** The limit, in [1, max]. */
  limit: number
  /** The no-load latency, once an answer gave it. */
  baseline: number | undefined
  /** How many answers alone it has taken in. */
  alone: number
  /** The average latency now. */
  recent: number | undefined
  slowStart: boolean
  /** When the limit last shrank for latency. */
  cutAt: number
}

/** Weight of a new sample in the average latency now. */
const recentWeight = 0.2
/** The no-load latency is the plain average of the first answers alone, this many. */
const firstAlone = 10
/**
 * Weight of a new sample in the no-load latency after the first ones. A
 * small weight: a worker slow for a while (its answers alone, once its limit
 * fell to 1) is not taken for a worker with a new no-load latency before
 * some 50 answers.
 */
const baselineWeight = 0.02
/** Below this (ms), latencies are the clock's noise: near whatever the ratio. */
const slackMillis = 1

/** A fresh limiter: limit 1, slow start, nothing measured. */
export const make = (settings: LimiterSettings): Limiter => ({
  settings,
  limit: 1,
  baseline: undefined,
  alone: 0,
  recent: undefined,
  slowStart: true,
  cutAt: Number.NEGATIVE_INFINITY
})

/** The number of requests the worker may hold now. */
export const slots = (limiter: Limiter): number => Math.floor(limiter.limit)

/**
 * Learns from one answer: updates `limiter` in place and returns whether the
 * number of slots changed.
 */
export const sample = (limiter: Limiter, s: Sample): boolean => {
  const before = slots(limiter)
  update(limiter, s)
  return slots(limiter) !== before
}

const update = (limiter: Limiter, s: Sample): void => {
  const { max, tolerance } = limiter.settings
  if (s.failed) {
    limiter.limit = Math.max(1, limiter.limit / 2)
    limiter.slowStart = false
    return
  }
  const millis = Math.max(0, s.millis)
  const recent = limiter.recent === undefined ? millis : limiter.recent + recentWeight * (millis - limiter.recent)
  limiter.recent = recent
  let baseline = limiter.baseline
  if (baseline === undefined || s.inFlight <= 1) {
    const n = ++limiter.alone
    baseline =
      baseline === undefined ? millis : baseline + (n <= firstAlone ? 1 / n : baselineWeight) * (millis - baseline)
  }
  limiter.baseline = baseline
  const near = baseline * tolerance + slackMillis
  if (recent > near) {
    limiter.slowStart = false
    if (s.now - limiter.cutAt < recent) return
    limiter.cutAt = s.now
    const ratio = Math.min(0.9, Math.max(0.5, near / recent))
    limiter.limit = Math.max(1, limiter.limit * ratio)
    return
  }
  // Far answers, and an application that uses less than half the limit, do not grow it.
  if (millis > near || s.inFlight * 2 < Math.floor(limiter.limit)) return
  const grown = limiter.slowStart ? limiter.limit + 1 : limiter.limit + 1 / limiter.limit
  if (grown >= max) {
    limiter.limit = max
    limiter.slowStart = false
  } else limiter.limit = grown
}
