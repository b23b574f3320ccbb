/**
 * The runner's log of refused clients, one line per source address per
 * interval rather than one per refusal: the first refusal of an address in
 * an interval is written at once (with its reason), the later ones are
 * counted, and at the end of the interval (`flush`) one line per address
 * says how many more there were, by reason. At most `maxSources` addresses
 * are told apart in an interval; the refusals of the others are counted
 * together. Nothing is kept from one interval to the next.
 */

/** A refusal written as it happens: the first of its address in the interval. */
export interface First {
  readonly source: string
  /** The client's address and port. */
  readonly client: string
  readonly reason: string
  readonly message: string
}

/** The refusals of an address after its first in an interval. */
export interface Summary {
  /** The address, or `undefined` for the addresses past `maxSources`, counted together. */
  readonly source: string | undefined
  readonly count: number
  /** By reason, such as `"Unauthorized: 950, RateLimited: 41"`. */
  readonly reasons: string
}

/** The log, with what it counted in this interval. */
export interface RefusalLog {
  readonly record: (source: string, client: string, reason: string, message: string) => void
  /** Writes the summaries of the interval and starts a new one. */
  readonly flush: () => void
  /** How many addresses it holds counts for. */
  readonly size: () => number
}

interface Counts {
  count: number
  readonly reasons: Map<string, number>
}

const add = (counts: Counts, reason: string) => {
  counts.count++
  counts.reasons.set(reason, (counts.reasons.get(reason) ?? 0) + 1)
}

const reasonsOf = (counts: Counts): string =>
  Array.from(counts.reasons, ([reason, count]) => `${reason}: ${count}`).join(", ")

/** A log that writes through `first` and `summary`. */
export const make = (options: {
  readonly maxSources: number
  readonly first: (entry: First) => void
  readonly summary: (entry: Summary) => void
}): RefusalLog => {
  let sources = new Map<string, Counts>()
  let others: Counts = { count: 0, reasons: new Map() }

  const record = (source: string, client: string, reason: string, message: string): void => {
    const counts = sources.get(source) ?? (sources.size >= options.maxSources ? others : undefined)
    if (counts !== undefined) {
      add(counts, reason)
      return
    }
    sources.set(source, { count: 0, reasons: new Map() })
    options.first({ source, client, reason, message })
  }

  const flush = (): void => {
    const ended = sources
    const endedOthers = others
    sources = new Map()
    others = { count: 0, reasons: new Map() }
    for (const [source, counts] of ended) {
      if (counts.count > 0) options.summary({ source, count: counts.count, reasons: reasonsOf(counts) })
    }
    if (endedOthers.count > 0) {
      options.summary({ source: undefined, count: endedOthers.count, reasons: reasonsOf(endedOthers) })
    }
  }

  return { record, flush, size: () => sources.size }
}
