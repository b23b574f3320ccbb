/**
 * Peak-EWMA latency estimates per worker (Finagle, tower, Linkerd): a sample
 * above the estimate replaces it at once (the peak); a lower one is blended
 * in with weight `1 - exp(-Δt / τ)`. An estimate decays toward 0 while no
 * sample arrives, so the age of a worker's oldest request in flight is a
 * floor on it: a hung worker answers nothing, yet must not look fast.
 */
import type { Candidate } from "../DispatchPolicy.ts"

interface Ewma {
  cost: number
  stamp: number
}

export class LatencyEstimates {
  private readonly entries = new Map<number, Ewma>()
  /** Sum of the stored estimates, for their average. */
  private total = 0

  private readonly tauMillis: number
  private readonly defaultMillis: number

  constructor(tauMillis: number, defaultMillis: number) {
    this.tauMillis = tauMillis
    this.defaultMillis = defaultMillis
  }

  /** Records that a request on `worker` took `millis`, at `now`. */
  record(worker: number, millis: number, now: number): void {
    const ewma = this.entries.get(worker)
    if (ewma === undefined) {
      this.entries.set(worker, { cost: millis, stamp: now })
      this.total += millis
      return
    }
    const before = ewma.cost
    if (millis > ewma.cost) {
      ewma.cost = millis
    } else {
      const w = Math.exp(-Math.max(0, now - ewma.stamp) / this.tauMillis)
      ewma.cost = ewma.cost * w + millis * (1 - w)
    }
    ewma.stamp = now
    this.total += ewma.cost - before
  }

  /** When each worker's last request failed, if its last request failed. */
  private readonly failedAt = new Map<number, number>()

  /** Records whether the last request of `worker` failed. */
  mark(worker: number, failed: boolean, now: number): void {
    if (failed) this.failedAt.set(worker, now)
    else this.failedAt.delete(worker)
  }

  /** Whether the last request of `worker` failed less than τ ago. */
  suspect(worker: number, now: number): boolean {
    const at = this.failedAt.get(worker)
    return at !== undefined && now - at < this.tauMillis
  }

  /** The stored estimate of `worker`, before decay (for tests). */
  stored(worker: number): number | undefined {
    return this.entries.get(worker)?.cost
  }

  /**
   * The latency expected of `candidate` at `now`: its decayed estimate (or,
   * if never measured, the average estimate of the others when `average`,
   * else the default), floored by the age of its oldest request in flight.
   */
  estimate(candidate: Candidate, now: number, average: boolean): number {
    const ewma = this.entries.get(candidate.id)
    const decayed =
      ewma === undefined
        ? average && this.entries.size > 0
          ? this.total / this.entries.size
          : this.defaultMillis
        : ewma.cost * Math.exp(-Math.max(0, now - ewma.stamp) / this.tauMillis)
    const oldest = candidate.health.oldestInFlightSince
    return Math.max(decayed, oldest === undefined ? 0 : now - oldest)
  }
}
