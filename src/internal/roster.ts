/**
 * The roster: which workers a policy may pick, kept up to date one change at
 * a time so that a pick costs the same among 4 workers as among 1,024.
 *
 * Workers are numbered by rank (their position in id order). The roster
 * keeps:
 * - the eligible workers in an array with O(1) random access and removal
 *   (swap-remove), for random and power-of-two-choices picks;
 * - a bitset of eligible ranks, for the next worker in id order (round robin);
 * - per load (requests in flight), the eligible workers at that load, as a
 *   bitset (lowest id first) and an array (random tie-break), and the lowest
 *   load with a worker, for least-loaded picks.
 */
import type { Candidate, WorkerView } from "../DispatchPolicy.ts"
import type { WorkerId } from "../WorkerId.ts"

/** A set of small integers. */
class Bitset {
  private words: Uint32Array

  constructor(size: number) {
    this.words = new Uint32Array(Math.max(1, Math.ceil(size / 32)))
  }

  add(i: number) {
    this.words[i >>> 5]! |= 1 << (i & 31)
  }

  delete(i: number) {
    this.words[i >>> 5]! &= ~(1 << (i & 31))
  }

  /** The smallest member ≥ `from`, or -1. */
  next(from: number): number {
    const words = this.words
    let w = from >>> 5
    if (w >= words.length) return -1
    let word = words[w]! & (~0 << (from & 31))
    while (true) {
      if (word !== 0) return (w << 5) + (31 - Math.clz32(word & -word))
      if (++w >= words.length) return -1
      word = words[w]!
    }
  }
}

/**
 * A set of ranks (small integers) with O(1) insertion, removal and access by
 * position: positions are kept in an array indexed by rank, no hashing.
 */
class IndexedSet {
  readonly items: Array<number> = []
  private positions: Int32Array

  constructor(capacity: number) {
    this.positions = new Int32Array(Math.max(1, capacity)).fill(-1)
  }

  get size() {
    return this.items.length
  }

  add(rank: number) {
    if (this.positions[rank] !== -1) return
    this.positions[rank] = this.items.length
    this.items.push(rank)
  }

  delete(rank: number) {
    const at = this.positions[rank]!
    if (at === -1) return
    const last = this.items.pop()!
    if (last !== rank) {
      this.items[at] = last
      this.positions[last] = at
    }
    this.positions[rank] = -1
  }
}

interface Bucket {
  readonly bits: Bitset
  readonly set: IndexedSet
}

/** One member as the roster sees it; its health is kept current by `update`. */
export interface RosterEntry extends Candidate {
  readonly rank: number
  health: Candidate["health"]
  /** Kept current by `update` (an adaptive limit changes). */
  maxInFlight: number
}

export class Roster implements WorkerView {
  private entries: Array<RosterEntry> = []
  /** By worker id (ids are small integers): an array, no hashing on the hot path. */
  private byId: Array<RosterEntry | undefined> = []
  /** Per rank: its load while eligible, or -1. */
  private loads: Array<number> = []
  private eligibleBits = new Bitset(0)
  private eligibleSet = new IndexedSet(0)
  /** Per load, the eligible workers at that load (a bucket is kept once made). */
  private buckets: Array<Bucket | undefined> = []
  /** Per load, how many eligible workers are at that load. */
  private counts: Array<number> = []
  private minLoad = Infinity
  /**
   * Whether the per-load buckets are kept. While every eligible worker is at
   * load 0 (the common pool of one slot per worker), the eligible workers are
   * the lowest bucket, and nothing else is kept; the first eligible worker at
   * a higher load starts the buckets.
   */
  private loaded = false

  /** Every member of the pool, healthy or not, sorted by id. */
  get members(): ReadonlyArray<Candidate> {
    return this.entries
  }

  membersVersion = 0

  /** Replaces the members (sorted by id); none is eligible until `update`. */
  reset(entries: ReadonlyArray<Candidate>) {
    this.entries = entries.map((entry, rank) => ({
      id: entry.id,
      health: entry.health,
      maxInFlight: entry.maxInFlight,
      rank
    }))
    this.byId = []
    for (const entry of this.entries) this.byId[entry.id] = entry
    this.loads = this.entries.map(() => -1)
    this.eligibleBits = new Bitset(this.entries.length)
    this.eligibleSet = new IndexedSet(this.entries.length)
    this.buckets = []
    this.counts = []
    this.minLoad = Infinity
    this.loaded = false
    this.membersVersion++
  }

  /** The rank of worker `id` if it is eligible, else -1. */
  eligibleRank(id: WorkerId): number {
    const entry = this.byId[id]
    return entry !== undefined && this.loads[entry.rank] !== -1 ? entry.rank : -1
  }

  /** Records the health of the member at `rank`: whether it is eligible, and at what load. */
  update(rank: number, eligible: boolean, health: Candidate["health"]) {
    const entry = this.entries[rank]!
    entry.health = health
    const limit = health.maxInFlight
    if (limit !== undefined) entry.maxInFlight = limit
    const load = health.inFlight
    const previous = this.loads[rank]!
    const next = eligible ? load : -1
    if (previous === next) return
    if (!this.loaded) {
      if (next > 0) this.keepLoads()
      else {
        if (next === -1) {
          this.eligibleBits.delete(rank)
          this.eligibleSet.delete(rank)
        } else {
          this.eligibleBits.add(rank)
          this.eligibleSet.add(rank)
        }
        this.loads[rank] = next
        return
      }
    }
    if (previous !== -1) {
      const bucket = this.buckets[previous]!
      bucket.bits.delete(rank)
      bucket.set.delete(rank)
      if (--this.counts[previous]! === 0 && previous === this.minLoad) this.minLoad = this.lowestLoad(previous)
    }
    if (next === -1) {
      this.eligibleBits.delete(rank)
      this.eligibleSet.delete(rank)
    } else {
      this.eligibleBits.add(rank)
      this.eligibleSet.add(rank)
      this.enterBucket(rank, next)
    }
    this.loads[rank] = next
  }

  /** Puts the eligible member at `rank` in the bucket of `load`. */
  private enterBucket(rank: number, load: number): void {
    let bucket = this.buckets[load]
    if (bucket === undefined) {
      bucket = { bits: new Bitset(this.entries.length), set: new IndexedSet(this.entries.length) }
      this.buckets[load] = bucket
      this.counts[load] = 0
    }
    bucket.bits.add(rank)
    bucket.set.add(rank)
    this.counts[load]!++
    if (load < this.minLoad) this.minLoad = load
  }

  /** Starts keeping the per-load buckets, from the loads so far (all eligible ones at 0). */
  private keepLoads(): void {
    this.loaded = true
    for (let rank = 0; rank < this.loads.length; rank++) {
      const load = this.loads[rank]!
      if (load !== -1) this.enterBucket(rank, load)
    }
  }

  /** The lowest load above `from` with an eligible worker, or Infinity. */
  private lowestLoad(from: number): number {
    const counts = this.counts
    for (let load = from + 1; load < counts.length; load++) if (counts[load]! > 0) return load
    return Infinity
  }

  // --- WorkerView ------------------------------------------------------------

  get size(): number {
    return this.eligibleSet.size
  }

  at(index: number): Candidate {
    return this.entries[this.eligibleSet.items[index]!]!
  }

  has(id: WorkerId): boolean {
    const entry = this.byId[id]
    return entry !== undefined && this.loads[entry.rank] !== -1
  }

  next(after: number): Candidate | undefined {
    // The first eligible rank whose id is greater than `after`, wrapping.
    const known = after >= 0 ? this.byId[after] : undefined
    let low = known === undefined ? 0 : known.rank + 1
    if (known === undefined) {
      let high = this.entries.length
      while (low < high) {
        const mid = (low + high) >>> 1
        if (this.entries[mid]!.id <= after) low = mid + 1
        else high = mid
      }
    }
    let rank = this.eligibleBits.next(low)
    if (rank === -1) rank = this.eligibleBits.next(0)
    return rank === -1 ? undefined : this.entries[rank]
  }

  leastLoaded(random?: number): Candidate | undefined {
    if (!this.loaded) {
      // Every eligible worker is at load 0.
      const set = this.eligibleSet
      if (set.size === 0) return undefined
      if (random === undefined) return this.entries[this.eligibleBits.next(0)]
      return this.entries[set.items[Math.floor(random * set.size)]!]
    }
    if (this.minLoad === Infinity) return undefined
    const bucket = this.buckets[this.minLoad]!
    if (random === undefined) return this.entries[bucket.bits.next(0)]
    return this.entries[bucket.set.items[Math.floor(random * bucket.set.size)]!]
  }

  toArray(): ReadonlyArray<Candidate> {
    return this.entries.filter((entry) => this.loads[entry.rank] !== -1)
  }
}
