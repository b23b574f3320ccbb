/**
 * Runner addresses from DNS: a name resolved through a `node:dns` `Resolver`
 * to its A/AAAA records (with a fixed port) or to its SRV records (each
 * target's addresses, with the record's port), again and again, as a stream
 * of address sets that emits only when the set changes.
 *
 * When: at once, then after `interval`, or sooner when the shortest TTL of
 * the answer runs out, but never sooner than `minInterval` after the last
 * resolution. A re-resolution asked for (`Refresh`: a worker of the pool
 * lost its runner) comes as soon as `minInterval` has passed since the last.
 *
 * What: a name that does not exist (NXDOMAIN) or has no records of the type
 * (NODATA) has no runners: the set is empty. Any other failure (a timeout,
 * SERVFAIL, REFUSED) says nothing about the runners: the last good set is
 * kept, and the resolution is tried again after `minInterval`, doubling up to
 * `interval`; a streak of failures is logged once, and its end once.
 */
import { Resolver, type SrvRecord } from "node:dns"
import { Clock, Context, Deferred, Duration, Effect, Exit, Queue, Stream } from "effect"

/** How a name is resolved, decoded (see `Remote.DnsOptions`). */
export interface Settings {
  readonly name: string
  /** The runners' port: the name's A/AAAA records are looked up. Without it, its SRV records. */
  readonly port: number | undefined
  /** Only A (4) or only AAAA (6) records; by default A, or AAAA when the name has no A records. */
  readonly family: 4 | 6 | undefined
  readonly servers: ReadonlyArray<string> | undefined
  readonly interval: Duration.Duration
  readonly minInterval: Duration.Duration
  readonly timeout: Duration.Duration
}

/**
 * Asks for early re-resolutions: `Remote.pool` provides one to the stream
 * of its addresses and asks when one of its workers loses its runner. A
 * stream run elsewhere has none.
 */
export const Refresh = Context.Reference<{ readonly subscribe: (listener: () => void) => () => void } | undefined>(
  "effect-worker-pool/remote/DnsRefresh",
  { defaultValue: () => undefined }
)

/** A refresh to provide as {@link Refresh}, and the function that asks for one. */
export const makeRefresh = () => {
  const listeners = new Set<() => void>()
  return {
    service: {
      subscribe: (listener: () => void) => {
        listeners.add(listener)
        return () => {
          listeners.delete(listener)
        }
      }
    },
    ask: () => {
      for (const listener of listeners) listener()
    }
  }
}

/** A resolution that failed: it says nothing about the runners. */
interface Failure {
  readonly message: string
}

/** A resolution's addresses, and the shortest TTL (seconds) among the records they came from. */
interface Answer {
  readonly addresses: ReadonlyArray<string>
  readonly ttl: number | undefined
}

/** Node's codes for "the name does not exist" (NXDOMAIN) and "it has no records of that type" (NODATA). */
const none = new Set(["ENOTFOUND", "ENODATA"])

/** One query: its answer, `undefined` when there are no records, or a `Failure`. */
const query = <A>(
  resolver: Resolver,
  ask: (done: (error: NodeJS.ErrnoException | null, answer: A) => void) => void
): Effect.Effect<A | undefined, Failure> =>
  Effect.callback<A | undefined, Failure>((resume) => {
    ask((error, answer) => {
      if (error === null) resume(Effect.succeed(answer))
      else if (none.has(error.code ?? "")) resume(Effect.succeed(undefined))
      else resume(Effect.fail({ message: error.message }))
    })
    return Effect.sync(() => resolver.cancel())
  })

type Records = ReadonlyArray<{ readonly address: string; readonly ttl: number }>

/** The A or AAAA records of `name`, as the family asks. */
const hostRecords = (resolver: Resolver, name: string, family: 4 | 6 | undefined): Effect.Effect<Records, Failure> => {
  const a = query<Records>(resolver, (done) => resolver.resolve4(name, { ttl: true }, done))
  const aaaa = query<Records>(resolver, (done) => resolver.resolve6(name, { ttl: true }, done))
  if (family === 4) return Effect.map(a, (records) => records ?? [])
  if (family === 6) return Effect.map(aaaa, (records) => records ?? [])
  return Effect.flatMap(a, (records) =>
    records !== undefined && records.length > 0 ? Effect.succeed(records) : Effect.map(aaaa, (more) => more ?? [])
  )
}

const addressOf = (ip: string, port: number) => (ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`)

const minTtl = (records: Records): number | undefined =>
  records.length === 0 ? undefined : Math.min(...records.map((r) => r.ttl))

/** Addresses in one order, so that sets compare and ids are given in a stable order. */
const sorted = (addresses: Iterable<string>): ReadonlyArray<string> =>
  [...new Set(addresses)].sort((x, y) => x.localeCompare(y, "en", { numeric: true }))

/**
 * The SRV records of `name`: the group of the lowest priority that has a
 * target with addresses, each target's addresses with its port.
 */
const srvAnswer = (resolver: Resolver, settings: Settings): Effect.Effect<Answer, Failure> =>
  Effect.gen(function* () {
    const records =
      (yield* query<ReadonlyArray<SrvRecord>>(resolver, (done) => resolver.resolveSrv(settings.name, done))) ?? []
    const priorities = [...new Set(records.map((r) => r.priority))].sort((x, y) => x - y)
    for (const priority of priorities) {
      // A target "." (the service is not offered there) or port 0 is no target.
      const targets = records.filter((r) => r.priority === priority && r.name !== "" && r.name !== "." && r.port > 0)
      const resolved = yield* Effect.forEach(
        targets,
        (target) => Effect.map(hostRecords(resolver, target.name, settings.family), (found) => ({ target, found })),
        { concurrency: "unbounded" }
      )
      const usable = resolved.filter(({ found }) => found.length > 0)
      if (usable.length === 0) continue
      return {
        addresses: sorted(usable.flatMap(({ found, target }) => found.map((r) => addressOf(r.address, target.port)))),
        ttl: minTtl(usable.flatMap(({ found }) => found))
      }
    }
    return { addresses: [], ttl: undefined }
  })

/** One resolution of the name. */
const resolve = (resolver: Resolver, settings: Settings): Effect.Effect<Answer, Failure> => {
  const port = settings.port
  if (port === undefined) return srvAnswer(resolver, settings)
  return Effect.map(hostRecords(resolver, settings.name, settings.family), (records) => ({
    addresses: sorted(records.map((r) => addressOf(r.address, port))),
    ttl: minTtl(records)
  }))
}

const same = (x: ReadonlyArray<string>, y: ReadonlyArray<string>) =>
  x.length === y.length && x.every((address, i) => address === y[i])

/** The addresses of `settings.name`, resolved again and again; a new set only when it changed. */
export const addresses = (settings: Settings): Stream.Stream<ReadonlyArray<string>> =>
  Stream.callback<ReadonlyArray<string>>(
    (queue) =>
      Effect.gen(function* () {
        const timeoutMillis = Duration.toMillis(settings.timeout)
        const resolver = new Resolver({ timeout: Math.max(1, Math.round(timeoutMillis)), tries: 2 })
        if (settings.servers !== undefined) resolver.setServers(settings.servers)
        yield* Effect.addFinalizer(() => Effect.sync(() => resolver.cancel()))
        const interval = Duration.toMillis(settings.interval)
        const minInterval = Duration.toMillis(settings.minInterval)
        const annotate = Effect.annotateLogs({ name: settings.name })

        // Asked for a re-resolution since the last one began; `wake` is the wait to cut short.
        let asked = false
        let wake: Deferred.Deferred<void> | undefined
        const refresh = yield* Refresh
        if (refresh !== undefined) {
          const off = refresh.subscribe(() => {
            asked = true
            if (wake !== undefined) Deferred.doneUnsafe(wake, Exit.void)
          })
          yield* Effect.addFinalizer(() => Effect.sync(off))
        }

        let last: ReadonlyArray<string> | undefined
        let failures = 0
        let failingSince = 0
        while (true) {
          asked = false
          const startedAt = yield* Clock.currentTimeMillis
          const outcome = yield* Effect.result(resolve(resolver, settings))
          let delay: number
          if (outcome._tag === "Success") {
            const answer = outcome.success
            if (failures > 0) {
              const now = yield* Clock.currentTimeMillis
              yield* Effect.logInfo("remote dns resolution recovered").pipe(
                Effect.annotateLogs({ failures, failingFor: Duration.format(Duration.millis(now - failingSince)) }),
                annotate
              )
              failures = 0
            }
            if (last === undefined || !same(last, answer.addresses)) {
              if (answer.addresses.length === 0) {
                yield* Effect.logInfo("remote dns name has no runners").pipe(annotate)
              } else {
                yield* Effect.logDebug("remote dns addresses").pipe(
                  Effect.annotateLogs({ addresses: answer.addresses.join(" ") }),
                  annotate
                )
              }
              last = answer.addresses
              Queue.offerUnsafe(queue, answer.addresses)
            }
            // A TTL shorter than the interval brings the next resolution forward, down to minInterval.
            delay = answer.ttl === undefined ? interval : Math.min(interval, Math.max(minInterval, answer.ttl * 1000))
          } else {
            failures++
            delay = Math.min(interval, minInterval * 2 ** Math.min(failures - 1, 30))
            if (failures === 1) {
              failingSince = startedAt
              yield* Effect.logWarning("remote dns resolution failed").pipe(
                Effect.annotateLogs({
                  reason: outcome.failure.message,
                  kept: last === undefined ? "no addresses yet" : `${last.length} addresses`,
                  retry: `after ${Duration.format(Duration.millis(delay))}, then less often, up to every ${Duration.format(settings.interval)}`
                }),
                annotate
              )
            }
            // The first resolution failed: the pool starts with no runners, and learns them on a success.
            if (last === undefined) {
              last = []
              Queue.offerUnsafe(queue, last)
            }
          }
          // The plan is made on the clock's reading before it is logged: a clock moved on after the
          // line (a test's) moves the wait's end with it.
          const resolvedAt = yield* Clock.currentTimeMillis
          yield* Effect.logDebug("remote dns resolved").pipe(
            Effect.annotateLogs({ ok: outcome._tag === "Success", addresses: last.length, next: delay }),
            annotate
          )
          // Until the delay is over, or a re-resolution is asked for and minInterval has passed.
          const woken = Deferred.makeUnsafe<void>()
          wake = woken
          if (asked) Deferred.doneUnsafe(woken, Exit.void)
          const until = (at: number) =>
            Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.sleep(Duration.millis(Math.max(0, at - now))))
          yield* Effect.raceFirst(
            until(resolvedAt + delay),
            Effect.andThen(Deferred.await(woken), until(startedAt + minInterval))
          )
          wake = undefined
        }
      }),
    // Only the newest set matters to whoever applies them.
    { bufferSize: 1, strategy: "sliding" }
  )
