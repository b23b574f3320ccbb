/**
 * Peak-EWMA latency estimates per worker (Finagle, tower, Linkerd): a sample
 * above the estimate replaces it at once (the peak); a lower one is blended
 * in with weight `1 - exp(-Δt / τ)`. An estimate decays toward 0 while no
 * sample arrives, so the age of a worker's oldest request in flight is a
 * floor on it: a hung worker answers nothing, yet must not look fast.
 */
/** What an estimate needs of a worker (a policy's candidate has it). */
export interface Measured {
  readonly id: number
  readonly health: { readonly inFlight: number; readonly oldestInFlightSince?: number | undefined }
}

interface Ewma {
  cost: number
  stamp: number
  /** The decayed cost at `decayedAt`: picks within one millisecond share one computation of the decay. */
  decayed: number
  decayedAt: number
}

export class LatencyEstimates {
  /** By worker id (ids are small integers): an array, no hashing on the hot path. */
  private readonly entries: Array<Ewma | undefined> = []

  /** The estimate of `worker`, if it has one (a read past the array's end is slow in V8: it is never made). */
  private entry(worker: number): Ewma | undefined {
    const entries = this.entries
    return worker < entries.length ? entries[worker] : undefined
  }
  /** How many workers have an estimate, and the sum of the estimates, for their average. */
  private measured = 0
  private total = 0

  private readonly tauMillis: number
  private readonly defaultMillis: number

  constructor(tauMillis: number, defaultMillis: number) {
    this.tauMillis = tauMillis
    this.defaultMillis = defaultMillis
  }

  /** `exp(-Δt / τ)`, the weight of the past after `Δt` ms. */
  private decay(elapsed: number): number {
    if (elapsed <= 0) return 1
    const x = elapsed / this.tauMillis
    // Requests microseconds apart: the series is exact to 1e-10 and far cheaper.
    return x < 1e-3 ? 1 - x + (x * x) / 2 : Math.exp(-x)
  }

  /** Records that a request on `worker` took `millis`, at `now`. */
  record(worker: number, millis: number, now: number): void {
    const ewma = this.entry(worker)
    if (ewma === undefined) {
      this.entries[worker] = { cost: millis, stamp: now, decayed: millis, decayedAt: now }
      this.measured++
      this.total += millis
      return
    }
    const before = ewma.cost
    if (millis > ewma.cost) {
      ewma.cost = millis
    } else {
      const w = this.decay(now - ewma.stamp)
      ewma.cost = ewma.cost * w + millis * (1 - w)
    }
    ewma.stamp = now
    ewma.decayed = ewma.cost
    ewma.decayedAt = now
    this.total += ewma.cost - before
  }

  /** The cost of `ewma` decayed to `now`. */
  private decayed(ewma: Ewma, now: number): number {
    if (ewma.decayedAt === now) return ewma.decayed
    const decayed = ewma.cost === 0 ? 0 : ewma.cost * this.decay(now - ewma.stamp)
    ewma.decayed = decayed
    ewma.decayedAt = now
    return decayed
  }

  /** When each worker's last request failed, if its last request failed. */
  private readonly failedAt = new Map<number, number>()

  /** Records whether the last request of `worker` failed. */
  mark(worker: number, failed: boolean, now: number): void {
    if (failed) this.failedAt.set(worker, now)
    else if (this.failedAt.size > 0) this.failedAt.delete(worker)
  }

  /** Whether the last request of `worker` failed less than τ ago. */
  suspect(worker: number, now: number): boolean {
    if (this.failedAt.size === 0) return false
    const at = this.failedAt.get(worker)
    return at !== undefined && now - at < this.tauMillis
  }

  /** The stored estimate of `worker`, before decay (for tests). */
  stored(worker: number): number | undefined {
    return this.entry(worker)?.cost
  }

  /**
   * The latency expected of `candidate` at `now`: its decayed estimate (or,
   * if never measured, the average estimate of the others when `average`,
   * else the default), floored by the age of its oldest request in flight.
   */
  estimate(candidate: Measured, now: number, average: boolean): number {
    const ewma = this.entry(candidate.id)
    const decayed =
      ewma === undefined
        ? average && this.measured > 0
          ? this.total / this.measured
          : this.defaultMillis
        : this.decayed(ewma, now)
    const oldest = candidate.health.oldestInFlightSince
    return Math.max(decayed, oldest === undefined ? 0 : now - oldest)
  }

  /**
   * The delay a request should expect on `candidate`: its estimate (never
   * measured: the average) × (in flight + 1). (`estimate` written out for
   * the pick of every request: an idle worker has no oldest request to read.)
   */
  delay(candidate: Measured, now: number): number {
    const health = candidate.health
    const inFlight = health.inFlight
    const ewma = this.entry(candidate.id)
    let estimate =
      ewma === undefined
        ? this.measured > 0
          ? this.total / this.measured
          : this.defaultMillis
        : ewma.decayedAt === now
          ? ewma.decayed
          : this.decayed(ewma, now)
    if (inFlight > 0) {
      const oldest = health.oldestInFlightSince
      if (oldest !== undefined && now - oldest > estimate) estimate = now - oldest
    }
    return estimate * (inFlight + 1)
  }
}
