/**
 * Membership from DNS (`Remote.dns`), resolved through a real `node:dns`
 * Resolver against a DNS server the test starts (fixtures/dns-server.ts):
 * the first resolution gives the set, later ones emit only a changed set;
 * the interval, the TTLs and the floor decide when the next comes (in
 * virtual time: each resolution logs its plan, and the test moves the clock
 * on from there); no records and a failed resolution are told apart (the
 * last good set is kept, the failure logged once, its end once); SRV
 * priorities; invalid options. Then pools of real runner processes, each
 * on its own loopback address and one port, as a headless Service's A
 * records name them: records that come and go add and remove workers under
 * stable ids, and a worker whose record left finishes what it holds before
 * it is removed; a runner lost re-resolves the name at once; a rollout that
 * replaces every runner one by one under a steady load fails no request.
 */

import * as Net from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Exit, Fiber, Logger, References, Schedule, Schema, Stream } from "effect"
import { TestClock } from "effect/testing"
import { InvalidOptions, WorkerId } from "effect-worker-pool"
import * as Rules from "../src/internal/options.ts"
import * as RemoteOptions from "../src/internal/remote/options.ts"
import * as Remote from "../src/Remote.ts"
import { startDnsServer } from "./fixtures/dns-server.ts"
import { job, RemoteJob } from "./fixtures/remote-jobs.ts"
import { startRunner } from "./fixtures/remote-processes.ts"

/** A log line: its level, message and annotations. */
interface Line {
  readonly level: string
  readonly message: string
  readonly annotations: Record<string, unknown>
}

/** Keeps every log line of `effect` (debug included), and lets it wait for the n-th line with a message. */
const withLog = <A, E, R>(
  effect: (log: {
    readonly lines: ReadonlyArray<Line>
    readonly nth: (message: string, n: number) => Effect.Effect<Line>
  }) => Effect.Effect<A, E, R>
) =>
  Effect.suspend(() => {
    const lines: Array<Line> = []
    const waiting: Array<{ readonly message: string; readonly n: number; readonly found: Deferred.Deferred<Line> }> = []
    const matching = (message: string) => lines.filter((line) => line.message === message)
    const logger = Logger.make<unknown, void>(({ fiber, logLevel, message }) => {
      const annotations = { ...(fiber.getRef(References.CurrentLogAnnotations) as Record<string, unknown>) }
      const line = { level: logLevel, message: String(Array.isArray(message) ? message[0] : message), annotations }
      lines.push(line)
      for (const w of waiting) {
        const found = matching(w.message)
        if (found.length >= w.n) Deferred.doneUnsafe(w.found, Exit.succeed(found[w.n - 1]!))
      }
    })
    const nth = (message: string, n: number) =>
      Effect.suspend(() => {
        const found = matching(message)
        if (found.length >= n) return Effect.succeed(found[n - 1]!)
        const deferred = Deferred.makeUnsafe<Line>()
        waiting.push({ message, n, found: deferred })
        return Deferred.await(deferred)
      })
    return effect({ lines, nth }).pipe(
      Effect.provideService(Logger.CurrentLoggers, new Set([logger])),
      Effect.provideService(References.MinimumLogLevel, "Debug")
    )
  })

const resolved = "remote dns resolved"

/** The next set a stream's pull gives (the newest, should it give several). */
const nextSet = <E>(pull: Effect.Effect<ReadonlyArray<ReadonlyArray<string>>, E>) =>
  Effect.map(pull, (sets) => sets[sets.length - 1]!)

const a = (...addresses: ReadonlyArray<string>) => ({ a: addresses.map((address) => ({ address, ttl: 300 })) })

describe("Remote.dns", { timeout: 60_000 }, () => {
  it.effect("the first resolution gives the set; a changed set comes at the next interval, an unchanged one not", () =>
    withLog((log) =>
      Effect.gen(function* () {
        const server = yield* startDnsServer
        server.set("runners.test", a("10.0.0.1"))
        const pull = yield* Stream.toPull(Remote.dns("runners.test", { port: 7400, servers: [server.address] }))
        assert.deepStrictEqual(yield* nextSet(pull), ["10.0.0.1:7400"])
        // A TTL longer than the interval delays nothing: the interval, 30 seconds by default.
        assert.strictEqual((yield* log.nth(resolved, 1)).annotations.next, 30_000)
        server.set("runners.test", a("10.0.0.2", "10.0.0.1"))
        yield* TestClock.adjust("30 seconds")
        assert.deepStrictEqual(yield* nextSet(pull), ["10.0.0.1:7400", "10.0.0.2:7400"])
        yield* log.nth(resolved, 2)
        // The same answer again: no set.
        yield* TestClock.adjust("30 seconds")
        yield* log.nth(resolved, 3)
        server.set("runners.test", a("10.0.0.2", "10.0.0.10"))
        yield* TestClock.adjust("30 seconds")
        // Addresses in numeric order: the ids of the pool are given in this order.
        assert.deepStrictEqual(yield* nextSet(pull), ["10.0.0.2:7400", "10.0.0.10:7400"])
        assert.strictEqual(server.asked("runners.test", "A"), 4)
        assert.strictEqual(server.asked("runners.test", "AAAA"), 0)
      })
    )
  )

  it.effect("a TTL shorter than the interval brings the next resolution forward, never below minInterval", () =>
    withLog((log) =>
      Effect.gen(function* () {
        const server = yield* startDnsServer
        const name = "runners.test"
        server.set(name, { a: [{ address: "10.0.0.1", ttl: 10 }] })
        const pull = yield* Stream.toPull(
          Remote.dns(name, { port: 7400, servers: [server.address], interval: "1 minute", minInterval: "3 seconds" })
        )
        assert.deepStrictEqual(yield* nextSet(pull), ["10.0.0.1:7400"])
        assert.strictEqual((yield* log.nth(resolved, 1)).annotations.next, 10_000)
        // The shortest TTL counts; below the floor, the floor.
        server.set(name, {
          a: [
            { address: "10.0.0.1", ttl: 10 },
            { address: "10.0.0.2", ttl: 1 }
          ]
        })
        yield* TestClock.adjust("10 seconds")
        assert.deepStrictEqual(yield* nextSet(pull), ["10.0.0.1:7400", "10.0.0.2:7400"])
        assert.strictEqual((yield* log.nth(resolved, 2)).annotations.next, 3_000)
        server.set(name, { a: [{ address: "10.0.0.2", ttl: 0 }] })
        yield* TestClock.adjust("3 seconds")
        assert.deepStrictEqual(yield* nextSet(pull), ["10.0.0.2:7400"])
        assert.strictEqual((yield* log.nth(resolved, 3)).annotations.next, 3_000)
        assert.strictEqual(server.asked(name, "A"), 3)
      })
    )
  )

  it.effect(
    "a failed resolution keeps the last set, retries with a bounded backoff, logged once and recovered once",
    () =>
      withLog((log) =>
        Effect.gen(function* () {
          const server = yield* startDnsServer
          const name = "runners.test"
          server.set(name, a("10.0.0.1"))
          const pull = yield* Stream.toPull(
            Remote.dns(name, {
              port: 7400,
              servers: [server.address],
              interval: "30 seconds",
              minInterval: "5 seconds",
              timeout: "100 millis"
            })
          )
          assert.deepStrictEqual(yield* nextSet(pull), ["10.0.0.1:7400"])
          yield* log.nth(resolved, 1)
          // SERVFAIL, REFUSED, no answer at all: each says nothing about the runners.
          const plans: Array<unknown> = []
          for (const [fault, wait] of [
            ["servfail", "30 seconds"],
            ["refused", "5 seconds"],
            ["drop", "10 seconds"],
            ["servfail", "20 seconds"],
            ["servfail", "30 seconds"]
          ] as const) {
            server.fault(fault)
            yield* TestClock.adjust(wait)
            const line = yield* log.nth(resolved, plans.length + 2)
            assert.strictEqual(line.annotations.ok, false)
            assert.strictEqual(line.annotations.addresses, 1, "the last good set is kept")
            plans.push(line.annotations.next)
          }
          // After minInterval, doubling up to the interval.
          assert.deepStrictEqual(plans, [5_000, 10_000, 20_000, 30_000, 30_000])
          const failed = log.lines.filter((line) => line.message === "remote dns resolution failed")
          assert.strictEqual(failed.length, 1, "one line per streak of failures")
          assert.strictEqual(failed[0]!.level, "Warn")
          assert.match(String(failed[0]!.annotations.reason), /ESERVFAIL/)
          assert.strictEqual(failed[0]!.annotations.kept, "1 addresses")
          server.fault(undefined)
          server.set(name, a("10.0.0.1", "10.0.0.2"))
          yield* TestClock.adjust("30 seconds")
          assert.deepStrictEqual(yield* nextSet(pull), ["10.0.0.1:7400", "10.0.0.2:7400"])
          const recovered = log.lines.filter((line) => line.message === "remote dns resolution recovered")
          assert.strictEqual(recovered.length, 1)
          assert.strictEqual(recovered[0]!.level, "Info")
          assert.strictEqual(recovered[0]!.annotations.failures, 5)
          yield* log.nth(resolved, 7)
          // No records is not a failure: the name has no runners.
          server.set(name, undefined)
          yield* TestClock.adjust("30 seconds")
          assert.deepStrictEqual(yield* nextSet(pull), [])
          yield* log.nth(resolved, 8)
          server.set(name, a("10.0.0.3"))
          yield* TestClock.adjust("30 seconds")
          assert.deepStrictEqual(yield* nextSet(pull), ["10.0.0.3:7400"])
          yield* log.nth(resolved, 9)
          // NODATA (the name, but no A nor AAAA records): no runners either.
          server.set(name, {})
          yield* TestClock.adjust("30 seconds")
          assert.deepStrictEqual(yield* nextSet(pull), [])
          assert.isTrue(log.lines.filter((line) => line.message === "remote dns name has no runners").length === 2)
          assert.strictEqual(log.lines.filter((line) => line.message === "remote dns resolution failed").length, 1)
        })
      )
  )

  it.effect("A records, else AAAA records; family picks one", () =>
    Effect.gen(function* () {
      const server = yield* startDnsServer
      server.set("six.test", { aaaa: [{ address: "fd00::7" }, { address: "::1" }] })
      server.set("both.test", { a: [{ address: "10.0.0.1" }], aaaa: [{ address: "fd00::1" }] })
      const first = (name: string, options: Remote.DnsOptions) =>
        Effect.scoped(
          Effect.flatMap(Stream.toPull(Remote.dns(name, { servers: [server.address], ...options })), nextSet)
        )
      assert.deepStrictEqual(yield* first("six.test", { port: 7400 }), ["[::1]:7400", "[fd00::7]:7400"])
      assert.deepStrictEqual(yield* first("both.test", { port: 7400 }), ["10.0.0.1:7400"])
      assert.deepStrictEqual(yield* first("both.test", { port: 7400, family: 6 }), ["[fd00::1]:7400"])
      assert.deepStrictEqual(yield* first("six.test", { port: 7400, family: 4 }), [])
    })
  )

  it.effect(
    "SRV: the lowest priority with a usable target, every target of it (weights aside), each with its port",
    () =>
      withLog((log) =>
        Effect.gen(function* () {
          const server = yield* startDnsServer
          const name = "_runner._tcp.runners.test"
          server.set(name, {
            srv: [
              // Priority 1 has no usable target: one without addresses, one that is "." (no service).
              { priority: 1, port: 7401, target: "first.test" },
              { priority: 1, port: 7409, target: "." },
              { priority: 2, weight: 1, port: 7402, target: "second.test" },
              { priority: 2, weight: 100, port: 7403, target: "third.test" },
              { priority: 3, port: 7404, target: "last.test" }
            ]
          })
          server.set("first.test", {})
          server.set("second.test", a("10.0.0.2"))
          server.set("third.test", a("10.0.0.3", "10.0.0.4"))
          server.set("last.test", a("10.0.0.5"))
          const pull = yield* Stream.toPull(Remote.dns(name, { servers: [server.address] }))
          assert.deepStrictEqual(yield* nextSet(pull), ["10.0.0.2:7402", "10.0.0.3:7403", "10.0.0.4:7403"])
          assert.strictEqual(
            server.asked("last.test", "A"),
            0,
            "a lower group that answered: the next is not looked at"
          )
          yield* log.nth(resolved, 1)
          // The first group gets an address: it is used, alone.
          server.set("first.test", a("10.0.0.1"))
          yield* TestClock.adjust("30 seconds")
          assert.deepStrictEqual(yield* nextSet(pull), ["10.0.0.1:7401"])
          yield* log.nth(resolved, 2)
          // A target whose resolution fails makes the resolution fail: the set is kept.
          server.fault("servfail", "first.test")
          yield* TestClock.adjust("30 seconds")
          const failed = yield* log.nth(resolved, 3)
          assert.strictEqual(failed.annotations.ok, false)
          assert.strictEqual(failed.annotations.addresses, 1)
          assert.match(String((yield* log.nth("remote dns resolution failed", 1)).annotations.reason), /first\.test/)
          server.fault(undefined, "first.test")
          server.set("first.test", a("10.0.0.9"))
          yield* TestClock.adjust("5 seconds")
          assert.deepStrictEqual(yield* nextSet(pull), ["10.0.0.9:7401"])
          yield* log.nth(resolved, 4)
          // No SRV records: no runners.
          server.set(name, undefined)
          yield* TestClock.adjust("30 seconds")
          assert.deepStrictEqual(yield* nextSet(pull), [])
        })
      )
  )

  it.effect("a first resolution that fails gives an empty set, and the runners once it succeeds", () =>
    withLog((log) =>
      Effect.gen(function* () {
        const server = yield* startDnsServer
        server.set("runners.test", a("10.0.0.1"))
        server.fault("servfail")
        const pull = yield* Stream.toPull(
          Remote.dns("runners.test", { port: 7400, servers: [server.address], minInterval: "1 second" })
        )
        assert.deepStrictEqual(yield* nextSet(pull), [])
        assert.strictEqual((yield* log.nth(resolved, 1)).annotations.next, 1_000)
        server.fault(undefined)
        yield* TestClock.adjust("1 second")
        assert.deepStrictEqual(yield* nextSet(pull), ["10.0.0.1:7400"])
      })
    )
  )

  it("the defaults: the system's servers, A else AAAA, every 30 seconds, at least 5 seconds apart, 2 seconds a try", () => {
    const settings = Rules.decode(RemoteOptions.DnsOptions)(undefined)
    assert.isUndefined(settings.port)
    assert.isUndefined(settings.family)
    assert.isUndefined(settings.servers)
    assert.strictEqual(Duration.toMillis(settings.interval), 30_000)
    assert.strictEqual(Duration.toMillis(settings.minInterval), 5_000)
    assert.strictEqual(Duration.toMillis(settings.timeout), 2_000)
  })

  it.effect("invalid options: the stream fails with InvalidOptions, and Remote.pool with it", () =>
    Effect.gen(function* () {
      const reasonOf = (stream: Stream.Stream<unknown, InvalidOptions>) =>
        Effect.map(Effect.flip(Stream.runHead(stream)), (error) => {
          assert.instanceOf(error, InvalidOptions)
          return error.reason
        })
      assert.match(yield* reasonOf(Remote.dns("not a name!", { port: 7400 })), /name must be a DNS name/)
      assert.match(
        yield* reasonOf(Remote.dns("runners.test")),
        /name runners\.test needs a port for its A\/AAAA records, or must be an SRV name/
      )
      assert.match(yield* reasonOf(Remote.dns("runners.test", { port: 0 })), /port must be an integer from 1 to 65535/)
      assert.match(yield* reasonOf(Remote.dns("runners.test", { port: 1, family: 5 as 4 })), /family must be 4 or 6/)
      assert.match(
        yield* reasonOf(Remote.dns("runners.test", { port: 1, servers: ["not a server"] })),
        /servers must be a non-empty list of DNS servers/
      )
      assert.match(
        yield* reasonOf(Remote.dns("runners.test", { port: 1, interval: "1 second", minInterval: "2 seconds" })),
        /minInterval must be at most interval/
      )
      assert.match(yield* reasonOf(Remote.dns("runners.test", { port: 1, timeout: "0 millis" })), /timeout must be/)
      const refused = yield* Effect.flip(
        Effect.scoped(
          Remote.pool({
            addresses: Remote.dns("_runner._tcp.runners.test", { interval: -1 }),
            request: Schema.String,
            response: Schema.Number
          })
        )
      )
      assert.instanceOf(refused, InvalidOptions)
      assert.match(refused.reason, /interval must be a finite, non-negative duration/)
    })
  )
})

/** Whether `port` can be bound on `host` now. */
const bindable = (host: string, port: number) =>
  Effect.callback<boolean>((resume) => {
    const server = Net.createServer()
    server.once("error", () => resume(Effect.succeed(false)))
    server.listen(port, host, () => server.close(() => resume(Effect.succeed(true))))
  })

/** A port that was free a moment ago on each of `hosts` (loopback addresses). */
const portFreeOn = (hosts: ReadonlyArray<string>): Effect.Effect<number> =>
  Effect.gen(function* () {
    while (true) {
      const port = yield* Effect.callback<number>((resume) => {
        const server = Net.createServer()
        server.listen(0, hosts[0], () => {
          const { port } = server.address() as Net.AddressInfo
          server.close(() => resume(Effect.succeed(port)))
        })
      })
      const free = yield* Effect.forEach(hosts, (host) => bindable(host, port))
      if (free.every(Boolean)) return port
    }
  })

/** Polls `read` every 10 ms until `ok`; past `bound`, fails with what it read last. */
const until = <A>(read: Effect.Effect<A>, ok: (a: A) => boolean, what: string, bound: Duration.Input = "20 seconds") =>
  read.pipe(
    Effect.repeat({ until: ok, schedule: Schedule.spaced("10 millis") }),
    Effect.timeoutOrElse({
      duration: bound,
      orElse: () => Effect.flatMap(read, (last) => Effect.die(new Error(`${what}: still ${JSON.stringify(last)}`)))
    })
  )

const fast = {
  request: RemoteJob,
  response: Schema.Number,
  pingInterval: Duration.millis(200),
  pingTimeout: Duration.millis(500),
  connectTimeout: "20 seconds",
  worker: { restart: Schedule.spaced("50 millis") }
} as const

describe("Remote.pool with Remote.dns, real runners", { timeout: 120_000 }, () => {
  it.live("records that come and go add and remove workers; an address keeps its id", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const hosts = ["127.0.0.21", "127.0.0.22"]
        const port = yield* portFreeOn(hosts)
        const [one, two] = yield* Effect.forEach(hosts, (host) => startRunner(port, undefined, host), {
          concurrency: "unbounded"
        })
        const server = yield* startDnsServer
        const name = "runners.default.svc.cluster.local"
        server.set(name, { a: [{ address: hosts[0]!, ttl: 0 }] })
        const remote = yield* Remote.pool({
          ...fast,
          addresses: Remote.dns(name, {
            port,
            servers: [server.address],
            interval: "100 millis",
            minInterval: "50 millis"
          })
        })
        assert.deepStrictEqual([...remote.addresses()], [one!.address])
        assert.strictEqual(yield* remote.pool.dispatch(job("echo", 1)), 1)
        server.set(name, { a: hosts.map((address) => ({ address, ttl: 0 })) })
        yield* until(remote.pool.size, (n) => n === 2, "the second runner joins")
        server.set(name, { a: [{ address: hosts[1]!, ttl: 0 }] })
        yield* until(remote.pool.size, (n) => n === 1, "the first runner leaves")
        assert.deepStrictEqual([...remote.addresses()], [two!.address])
        assert.strictEqual(yield* remote.pool.dispatch(job("echo", 2)), 2)
        server.set(name, { a: hosts.map((address) => ({ address, ttl: 0 })) })
        yield* until(remote.pool.size, (n) => n === 2, "the first runner comes back")
        assert.deepStrictEqual(
          [...remote.workerIds()],
          [
            [one!.address, 0],
            [two!.address, 1]
          ]
        )
        const health = yield* until(
          remote.pool.health,
          (all) => all.every(([, h]) => h.state === "Healthy"),
          "both workers healthy"
        )
        assert.deepStrictEqual(
          health.map(([id]) => id),
          [WorkerId.make(0), WorkerId.make(1)]
        )
      })
    )
  )

  it.live("a runner lost: the name is resolved again at once, not at the next interval", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const hosts = ["127.0.0.23", "127.0.0.24"]
        const port = yield* portFreeOn(hosts)
        const [one, two] = yield* Effect.forEach(hosts, (host) => startRunner(port, undefined, host), {
          concurrency: "unbounded"
        })
        const server = yield* startDnsServer
        const name = "runners.test"
        server.set(name, { a: hosts.map((address) => ({ address, ttl: 3600 })) })
        const remote = yield* Remote.pool({
          ...fast,
          addresses: Remote.dns(name, {
            port,
            servers: [server.address],
            interval: "1 hour",
            minInterval: "100 millis"
          })
        })
        assert.strictEqual(yield* remote.pool.size, 2)
        assert.strictEqual(server.asked(name, "A"), 1)
        // The pod goes: its record leaves, its process dies. The pool learns it from the lost connection.
        server.set(name, { a: [{ address: hosts[0]!, ttl: 3600 }] })
        two!.child.kill("SIGKILL")
        yield* server.askedAtLeast(name, "A", 2).pipe(
          Effect.timeoutOrElse({
            duration: "20 seconds",
            orElse: () => Effect.die(new Error("the name was not resolved again after the runner was lost"))
          })
        )
        yield* until(remote.pool.size, (n) => n === 1, "the lost runner's worker leaves")
        assert.deepStrictEqual([...remote.addresses()], [one!.address])
        assert.strictEqual(yield* remote.pool.dispatch(job("echo", 3)), 3)
      })
    )
  )

  it.live("a worker whose record leaves finishes what it holds, then goes; back before that, it stays", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const hosts = ["127.0.0.25", "127.0.0.26"]
        const port = yield* portFreeOn(hosts)
        const [one, two] = yield* Effect.forEach(hosts, (host) => startRunner(port, undefined, host), {
          concurrency: "unbounded"
        })
        const server = yield* startDnsServer
        const name = "runners.test"
        const records = (...addresses: ReadonlyArray<string>) => ({
          a: addresses.map((address) => ({ address, ttl: 0 }))
        })
        server.set(name, records(hosts[0]!))
        const remote = yield* Remote.pool({
          ...fast,
          addresses: Remote.dns(name, {
            port,
            servers: [server.address],
            interval: "100 millis",
            minInterval: "50 millis"
          })
        })
        const healthOf = (id: number) =>
          Effect.map(remote.pool.health, (all) => all.find(([worker]) => worker === id)?.[1])
        yield* Effect.forEach([1, 2, 3], (n) => remote.pool.dispatch(job("echo", n)))
        // A request held on the first runner while its record leaves: it finishes, then the worker goes.
        const held = yield* Effect.forkChild(remote.pool.dispatch(job("sleep", 11, 1_000, "held")))
        yield* one!.waitFor(/started held/)
        server.set(name, records(hosts[1]!))
        yield* until(
          Effect.sync(() => [...remote.addresses()]),
          (a) => a.join() === two!.address,
          "the record left"
        )
        assert.strictEqual(yield* remote.pool.dispatch(job("echo", 4)), 4)
        assert.strictEqual(yield* Fiber.join(held), 11)
        yield* until(remote.pool.size, (n) => n === 1, "the worker is removed once its request has finished")
        assert.isFalse(one!.child.exitCode !== null, "the runner itself is still up")
        // Again, and the record comes back while the worker still holds its request: the same worker stays.
        server.set(name, records(...hosts))
        yield* until(remote.pool.size, (n) => n === 2, "the first runner is back")
        yield* until(remote.pool.health, (all) => all.every(([, h]) => h.state === "Healthy"), "both are healthy")
        const crashesBefore = new Map((yield* remote.pool.health).map(([id, h]) => [id, h.crashes]))
        const long = yield* Effect.forkChild(remote.pool.dispatch(job("sleep", 12, 60_000, "long")))
        // Whichever runner the policy picked: its record leaves, and comes back.
        const onFirst = yield* Effect.raceFirst(
          Effect.as(one!.waitFor(/started long/), true),
          Effect.as(two!.waitFor(/started long/), false)
        )
        const [holder, other] = onFirst ? [one!, hosts[1]!] : [two!, hosts[0]!]
        const holderId = remote.workerIds().get(holder.address)!
        server.set(name, records(other))
        yield* until(
          Effect.sync(() => remote.addresses().size),
          (n) => n === 1,
          "the record left again"
        )
        server.set(name, records(...hosts))
        yield* until(
          Effect.sync(() => remote.addresses().size),
          (n) => n === 2,
          "the record is back"
        )
        const kept = (yield* healthOf(holderId))!
        assert.strictEqual(kept.inFlight, 1, "the same worker, still holding the long request")
        assert.strictEqual(kept.crashes, crashesBefore.get(holderId), "leaving is not a crash")
        // Once what it holds has ended, it connects again, and stays.
        yield* Fiber.interrupt(long)
        yield* holder.waitFor(/interrupted long/)
        yield* until(healthOf(holderId), (h) => h?.state === "Healthy", "the kept worker connects again")
        assert.strictEqual(yield* remote.pool.size, 2)
        assert.deepStrictEqual([...remote.workerIds().values()], [0, 1])
      })
    )
  )

  it.live("a rollout replaces every runner one by one under a steady load: no request fails", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const oldHosts = ["127.0.0.31", "127.0.0.32", "127.0.0.33"]
        const newHosts = ["127.0.0.41", "127.0.0.42", "127.0.0.43"]
        const port = yield* portFreeOn([...oldHosts, ...newHosts])
        const olds = yield* Effect.forEach(oldHosts, (host) => startRunner(port, undefined, host), {
          concurrency: "unbounded"
        })
        const server = yield* startDnsServer
        const name = "runners.default.svc.cluster.local"
        const live = new Set(oldHosts)
        const publish = () => server.set(name, { a: [...live].map((address) => ({ address, ttl: 5 })) })
        publish()
        const remote = yield* Remote.pool({
          ...fast,
          addresses: Remote.dns(name, {
            port,
            servers: [server.address],
            interval: "200 millis",
            minInterval: "50 millis"
          })
        })
        assert.strictEqual(yield* remote.pool.size, 3)

        // The load: four callers, each sending one request after another until told to stop.
        let stop = false
        let succeeded = 0
        const failures: Array<string> = []
        const caller = (n: number) =>
          Effect.gen(function* () {
            let i = 0
            while (!stop) {
              const exit = yield* Effect.exit(remote.pool.dispatch(job("sleep", n * 100_000 + i, 30)))
              if (Exit.isSuccess(exit) && exit.value === n * 100_000 + i) succeeded++
              else failures.push(`caller ${n}, request ${i}: ${JSON.stringify(exit)}`)
              i++
            }
          })
        const load = yield* Effect.forkChild(Effect.forEach([0, 1, 2, 3], caller, { concurrency: "unbounded" }))
        const servedSince = (count: number) =>
          until(
            Effect.sync(() => succeeded),
            (n) => n >= count + 20,
            "requests go on being served"
          )

        for (const [i, old] of olds.entries()) {
          // The new pod starts and becomes ready: its record is published; its worker is healthy.
          const fresh = yield* startRunner(port, undefined, newHosts[i]!)
          live.add(newHosts[i]!)
          publish()
          yield* until(
            Effect.flatMap(remote.pool.health, (all) =>
              Effect.sync(() => all.find(([id]) => id === remote.workerIds().get(fresh.address))?.[1].state)
            ),
            (state) => state === "Healthy",
            `the worker of ${fresh.address} is healthy`
          )
          // The old pod terminates: its record goes and it gets SIGTERM. Kubernetes does both at once; each
          // order is tried too: the pool drops the record before the runner drains, or the other way round.
          const order = (["record first", "SIGTERM first", "together"] as const)[i]!
          const dropRecord = Effect.gen(function* () {
            live.delete(oldHosts[i]!)
            publish()
            yield* until(
              Effect.sync(() => remote.addresses().has(old.address)),
              (has) => !has,
              `${old.address} left the membership`
            )
          })
          const terminate = Effect.gen(function* () {
            old.child.kill("SIGTERM")
            yield* old.waitFor(/drained/)
          })
          if (order === "record first") yield* Effect.andThen(dropRecord, terminate)
          else if (order === "SIGTERM first") yield* Effect.andThen(terminate, dropRecord)
          else yield* Effect.all([dropRecord, terminate], { concurrency: "unbounded" })
          assert.deepStrictEqual(yield* old.exited, { code: 0, signal: null })
          yield* until(remote.pool.size, (n) => n === 3, "the old worker is removed")
          yield* servedSince(succeeded)
        }
        stop = true
        yield* Fiber.join(load)
        assert.deepStrictEqual(failures, [])
        assert.deepStrictEqual(
          [...remote.addresses()].sort(),
          newHosts.map((host) => `${host}:${port}`)
        )
        assert.deepStrictEqual(
          newHosts.map((host) => remote.workerIds().get(`${host}:${port}`)),
          [3, 4, 5].map((id) => WorkerId.make(id))
        )
        console.log(`rollout of 3 runners under load: ${succeeded} requests, none failed`)
      })
    )
  )
})
