/**
 * A retry budget: retries may add at most a share of recent traffic (plus a
 * small floor), so that a crash loop cannot multiply the load. Requests and
 * retries are counted in one-second buckets over a sliding window.
 */
export interface RetryBudget {
  /** Records a request at `now` (epoch millis). */
  readonly request: (now: number) => void
  /** Whether the budget has a retry left at `now` (nothing is taken). */
  readonly canRetry: (now: number) => boolean
  /** Takes one retry from the budget at `now` if there is one left. */
  readonly tryRetry: (now: number) => boolean
}

export const makeRetryBudget = (options: {
  readonly share: number
  readonly minPerWindow: number
  readonly windowMillis: number
}): RetryBudget => {
  const bucketCount = Math.max(1, Math.ceil(options.windowMillis / 1000))
  const requests = new Array<number>(bucketCount).fill(0)
  const retries = new Array<number>(bucketCount).fill(0)
  let current = 0 // the second of the newest bucket

  const advance = (now: number) => {
    const second = Math.floor(now / 1000)
    if (second <= current) return
    const steps = Math.min(bucketCount, second - current)
    for (let i = 1; i <= steps; i++) {
      const slot = (current + i) % bucketCount
      requests[slot] = 0
      retries[slot] = 0
    }
    current = second
  }
  const sum = (xs: ReadonlyArray<number>) => xs.reduce((a, b) => a + b, 0)

  return {
    request: (now) => {
      advance(now)
      requests[current % bucketCount]!++
    },
    canRetry: (now) => {
      advance(now)
      return sum(retries) + 1 <= options.minPerWindow + options.share * sum(requests)
    },
    tryRetry: (now) => {
      advance(now)
      const allowed = options.minPerWindow + options.share * sum(requests)
      if (sum(retries) + 1 > allowed) return false
      retries[current % bucketCount]!++
      return true
    }
  }
}
