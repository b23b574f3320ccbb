/**
 * The runner's limit on failed handshakes per source address: after `limit`
 * failures from one address (each within `window` of the one before), its
 * connections are refused at once for `backoff`, and every further failure
 * doubles that period, up to `maxBackoff`. A successful handshake from the
 * address forgets it; so does a quiet `window` after its last failure (or
 * after its refusal period ends).
 *
 * At most `maxSources` addresses are remembered: past that, the one looked
 * at least recently is forgotten first, so that memory stays bounded
 * whatever the number of addresses that try.
 */

/** The limit's settings, in milliseconds. */
export interface Settings {
  /** Failures before an address is refused; `Infinity`: no limit. */
  readonly limit: number
  readonly windowMillis: number
  readonly backoffMillis: number
  readonly maxBackoffMillis: number
  readonly maxSources: number
}

interface Record {
  failures: number
  /** Until when its connections are refused (0: they are not). */
  blockedUntil: number
  /** When it is forgotten, if nothing happens before. */
  forgetAt: number
}

/** The limit, with its state. */
export interface SourceLimit {
  /** For how many more milliseconds connections from `source` are refused (0: they are not). */
  readonly blockedFor: (source: string) => number
  /** A handshake from `source` failed. */
  readonly failed: (source: string) => void
  /** A handshake from `source` succeeded: its failures are forgotten. */
  readonly succeeded: (source: string) => void
  /** Forgets every address whose time has passed. */
  readonly prune: () => void
  /** How many addresses it remembers. */
  readonly size: () => number
}

/** The period of refusal after `failures` failures (at least `limit` of them). */
const periodOf = (settings: Settings, failures: number): number => {
  const doublings = failures - settings.limit
  // 2 ** 60 is far past any sensible maxBackoff: the exponent is capped so that the product stays finite.
  return Math.min(settings.maxBackoffMillis, settings.backoffMillis * 2 ** Math.min(doublings, 60))
}

/** A limit with `settings`, on the clock `now` (milliseconds). */
export const make = (settings: Settings, now: () => number): SourceLimit => {
  const records = new Map<string, Record>()
  const enabled = settings.limit !== Infinity

  const blockedFor = (source: string): number => {
    const record = records.get(source)
    if (record === undefined) return 0
    const at = now()
    if (at >= record.forgetAt) {
      records.delete(source)
      return 0
    }
    return Math.max(0, record.blockedUntil - at)
  }

  const failed = (source: string): void => {
    if (!enabled) return
    const at = now()
    let record = records.get(source)
    if (record !== undefined) {
      records.delete(source)
      if (at >= record.forgetAt) record = undefined
    }
    record ??= { failures: 0, blockedUntil: 0, forgetAt: 0 }
    record.failures++
    if (record.failures >= settings.limit) record.blockedUntil = at + periodOf(settings, record.failures)
    record.forgetAt = Math.max(at, record.blockedUntil) + settings.windowMillis
    // Re-inserted: the map's order is the order of last failure, the oldest first.
    records.set(source, record)
    while (records.size > settings.maxSources) {
      const oldest = records.keys().next().value as string
      records.delete(oldest)
    }
  }

  const prune = (): void => {
    const at = now()
    for (const [source, record] of records) if (at >= record.forgetAt) records.delete(source)
  }

  return {
    blockedFor,
    failed,
    succeeded: (source) => {
      records.delete(source)
    },
    prune,
    size: () => records.size
  }
}

/**
 * The address a limit counts by: an IPv4 address given as IPv6
 * (`::ffff:10.0.0.7`) is the IPv4 address.
 */
export const sourceOf = (address: string | undefined): string => {
  if (address === undefined) return "unknown"
  return address.startsWith("::ffff:") && address.includes(".") ? address.slice(7) : address
}
