/**
 * A runner defends itself: it holds at most `maxConnections` (counted from
 * accept) and refuses one more with `Full`; it tells a client whose
 * handshake never comes why it closes the connection, and logs it once; it
 * refuses a source address with too many failed handshakes at once, with a
 * backoff, while other addresses are served; it logs refusals once per
 * source per interval, with a count; it closes an admitted connection that
 * carries no request for `idleTimeout`, telling the client, which
 * reconnects without a crash; it logs an oversized frame; and it reports
 * its metrics. The hostile clients connect from 127.0.0.2 (another source
 * on Linux loopback), the good ones from 127.0.0.1.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Logger, Metric, References, Schedule, Schema } from "effect"
import { DomainError, WorkerId } from "effect-worker-pool"
import * as RefusalLog from "../src/internal/remote/refusalLog.ts"
import * as SourceLimit from "../src/internal/remote/sourceLimit.ts"
import * as Remote from "../src/Remote.ts"
import * as RemoteMetrics from "../src/RemoteMetrics.ts"
import * as WorkerModule from "../src/Worker.ts"
import { closed, connect, fingerprintOf, handshake, hello, untilClosed } from "./fixtures/raw-clients.ts"
import { healthUntil } from "./fixtures/remote-processes.ts"
import { selfSigned } from "./fixtures/tls.ts"

const schemas = { request: Schema.String, response: Schema.Number }
const fingerprint = fingerprintOf(Schema.String, Schema.Number, DomainError)

/** A runner's options: `""` fails, `"hold"` waits for `held` (when given), anything else is its length. */
const serving = (held?: Deferred.Deferred<void>) => ({
  ...schemas,
  port: 0,
  handler: (text: string) => {
    if (text === "") return Effect.fail(new DomainError({ reason: "empty" }))
    if (text === "hold" && held !== undefined) return Effect.as(Deferred.await(held), 4)
    return Effect.succeed(text.length)
  }
})

/** A worker of the runner at `port`, from 127.0.0.1, that retries its start every 50 ms. */
const worker = (
  port: number,
  options: { readonly token?: string; readonly restart?: WorkerModule.WorkerOptions["restart"] } = {}
) =>
  WorkerModule.fromKind(
    WorkerId.make(0),
    Remote.make(`127.0.0.1:${port}`, { ...schemas, token: options.token, connectTimeout: "20 seconds" }),
    { restart: options.restart ?? Schedule.spaced("50 millis") }
  )

interface Line {
  readonly level: string
  readonly message: string
  readonly annotations: Record<string, unknown>
}

/** Runs `effect` with a logger that keeps every line above debug. */
const logged = <A, E, R>(effect: (lines: Array<Line>) => Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const lines: Array<Line> = []
    const logger = Logger.make<unknown, void>(({ fiber, logLevel, message }) => {
      if (logLevel === "Debug" || logLevel === "Trace") return
      const annotations = { ...(fiber.getRef(References.CurrentLogAnnotations) as Record<string, unknown>) }
      lines.push({ level: logLevel, message: String(Array.isArray(message) ? message[0] : message), annotations })
    })
    yield* effect(lines).pipe(Effect.provideService(Logger.CurrentLoggers, new Set([logger])))
    return lines
  })

const runnerOf = (runner: Remote.Listening) => `${runner.host}:${runner.port}`

const refusals = (runner: Remote.Listening, reason: RemoteMetrics.RefusalReason) =>
  Effect.map(
    Metric.value(Metric.withAttributes(RemoteMetrics.refusals, { runner: runnerOf(runner), reason })),
    (state) => state.count
  )

const gauge = (runner: Remote.Listening, metric: Metric.Gauge<number>) =>
  Effect.map(Metric.value(Metric.withAttributes(metric, { runner: runnerOf(runner) })), (state) => state.value)

/** Waits until `read` gives `ok`, looking every 10 ms; the bound is a safety net. */
const until = <A>(read: Effect.Effect<A>, ok: (a: A) => boolean, what: string) =>
  read.pipe(
    Effect.repeat({ until: ok, schedule: Schedule.spaced("10 millis") }),
    Effect.timeoutOrElse({
      duration: "30 seconds",
      orElse: () => Effect.flatMap(read, (a) => Effect.die(new Error(`${what}: still ${JSON.stringify(a)}`)))
    })
  )

describe("a runner's defences", { timeout: 60_000 }, () => {
  it.live("it holds at most maxConnections, counted from accept; one more is refused with Full", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const runner = yield* Remote.listen({ ...serving(), maxConnections: 3, handshakeTimeout: "1 minute" })
        // Three connections that never say their handshake fill the runner (it accepts in order).
        const idle = yield* Effect.forEach([1, 2, 3], () => connect(runner.port))
        const refused = yield* handshake(runner.port, hello(null, fingerprint))
        assert.deepStrictEqual(refused.reply, {
          refused: "Full",
          message: "the runner holds its maximum of 3 connections (maxConnections)"
        })
        yield* closed(refused.socket)
        yield* until(gauge(runner, RemoteMetrics.connections), (n) => n === 3, "connections")
        // A good client's start fails and says why.
        const good = yield* worker(runner.port)
        const down = yield* healthUntil(good, (h) => h.lastCrash !== undefined)
        assert.match(
          down.lastCrash!.reason,
          /runner 127\.0\.0\.1:\d+ refused the connection \(Full\): the runner holds its maximum of 3 connections/
        )
        // One leaves: the good client gets its place.
        idle[0]!.destroy()
        yield* healthUntil(good, (h) => h.state === "Healthy")
        assert.strictEqual(yield* good.dispatch("four"), 4)
        assert.isAtLeast(yield* refusals(runner, "Full"), 2)
      })
    )
  )

  it.live("over TLS, the runner counts a connection from its accept and says Full after the TLS handshake", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const pair = selfSigned("runner")
        const runner = yield* Remote.listen({
          ...serving(),
          maxConnections: 1,
          tls: { key: pair.key, cert: pair.cert }
        })
        const kind = Remote.make(`127.0.0.1:${runner.port}`, {
          ...schemas,
          connectTimeout: "20 seconds",
          tls: { ca: pair.cert }
        })
        const first = yield* WorkerModule.fromKind(WorkerId.make(0), kind)
        assert.strictEqual(yield* first.dispatch("tls"), 3)
        const second = yield* WorkerModule.fromKind(WorkerId.make(1), kind, { restart: Schedule.spaced("1 hour") })
        assert.match(
          (yield* second.health).lastCrash!.reason,
          /refused the connection \(Full\): the runner holds its maximum of 1 connections \(maxConnections\)/
        )
        assert.strictEqual(yield* refusals(runner, "Full"), 1)
      })
    )
  )

  it.live("a handshake that never comes: the client is told HandshakeTimeout, and it is logged once", () =>
    Effect.gen(function* () {
      let client = ""
      const lines = yield* logged(() =>
        Effect.scoped(
          Effect.gen(function* () {
            const runner = yield* Remote.listen({ ...serving(), handshakeTimeout: "200 millis" })
            const socket = yield* connect(runner.port)
            client = `${socket.localAddress}:${socket.localPort}`
            const said = yield* untilClosed(socket)
            assert.deepStrictEqual(
              said,
              `${JSON.stringify({ refused: "HandshakeTimeout", message: "no handshake within 200 ms (handshakeTimeout)" })}\n`
            )
            assert.strictEqual(yield* refusals(runner, "HandshakeTimeout"), 1)
          })
        )
      )
      assert.deepStrictEqual(lines, [
        {
          level: "Warn",
          message: "remote client refused",
          annotations: { client, refused: "HandshakeTimeout", message: "no handshake within 200 ms (handshakeTimeout)" }
        }
      ])
    })
  )

  it.live("failed handshakes per source: past the limit its connections are refused at once; others are served", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const runner = yield* Remote.listen({
          ...serving(),
          token: "secret",
          failedHandshakes: { limit: 3, backoff: "1 minute" }
        })
        for (let i = 0; i < 3; i++) {
          const { reply } = yield* handshake(runner.port, hello("wrong", fingerprint))
          assert.strictEqual(reply?.refused, "Unauthorized")
        }
        // Refused at once, even with the right token.
        const blocked = yield* handshake(runner.port, hello("secret", fingerprint))
        assert.strictEqual(blocked.reply?.refused, "RateLimited")
        assert.match(
          String(blocked.reply?.message),
          /^too many failed handshakes from 127\.0\.0\.2: its connections are refused for \d+ ms more$/
        )
        // Another address is served as before.
        const fromGood = yield* handshake(runner.port, hello("secret", fingerprint), "127.0.0.1")
        assert.deepStrictEqual(fromGood.reply, { ok: true })
        const good = yield* worker(runner.port, { token: "secret" })
        assert.strictEqual((yield* good.health).state, "Healthy")
        assert.strictEqual(yield* good.dispatch("abc"), 3)
        // A good handshake forgets the failures of its address.
        for (const token of ["wrong", "wrong", "secret", "wrong", "wrong"]) {
          const { reply } = yield* handshake(runner.port, hello(token, fingerprint), "127.0.0.3")
          assert.strictEqual(reply?.refused, token === "secret" ? undefined : "Unauthorized")
        }
        const third = yield* handshake(runner.port, hello("wrong", fingerprint), "127.0.0.3")
        assert.strictEqual(third.reply?.refused, "Unauthorized")
        const fourth = yield* handshake(runner.port, hello("secret", fingerprint), "127.0.0.3")
        assert.strictEqual(fourth.reply?.refused, "RateLimited")
        assert.strictEqual(yield* refusals(runner, "Unauthorized"), 8)
        assert.strictEqual(yield* refusals(runner, "RateLimited"), 2)
        // A client that closes before it sends a byte (a TCP health check) is counted, but is not a failure.
        for (let i = 0; i < 5; i++) (yield* connect(runner.port, "127.0.0.5")).destroy()
        yield* until(refusals(runner, "Malformed"), (n) => n === 5, "closed before the handshake")
        const checked = yield* handshake(runner.port, hello("secret", fingerprint), "127.0.0.5")
        assert.deepStrictEqual(checked.reply, { ok: true })
      })
    )
  )

  it.live(
    "a client of protocol 1 (before streams) is admitted; an unknown protocol is refused with ProtocolMismatch",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const runner = yield* Remote.listen(serving())
          const old = fingerprintOf(Schema.String, Schema.Number, DomainError, 1)
          assert.notStrictEqual(old, fingerprint)
          // Runners are upgraded before their clients: a client of protocol 1 uses Run and Events only, unchanged.
          const first = yield* handshake(runner.port, hello(null, old, 1), "127.0.0.1")
          assert.deepStrictEqual(first.reply, { ok: true })
          // Its fingerprint is its protocol's: another's is a schema mismatch.
          const mixed = yield* handshake(runner.port, hello(null, fingerprint, 1), "127.0.0.1")
          assert.strictEqual(mixed.reply?.refused, "SchemaMismatch")
          for (const protocol of [0, 3, "2", null]) {
            const { reply } = yield* handshake(runner.port, hello(null, fingerprint, protocol), "127.0.0.1")
            assert.deepStrictEqual(reply, {
              refused: "ProtocolMismatch",
              message: `the client speaks protocol ${String(protocol)}, the runner 1 to 2`
            })
          }
          // The current client is served as before.
          const good = yield* worker(runner.port)
          assert.strictEqual(yield* good.dispatch("abc"), 3)
        })
      )
  )

  it.live("refusals are logged once per source per interval; the rest are counted and summed up at its end", () =>
    Effect.gen(function* () {
      const lines = yield* logged((lines) =>
        Effect.scoped(
          Effect.gen(function* () {
            const runner = yield* Remote.listen({
              ...serving(),
              token: "secret",
              failedHandshakes: { limit: Infinity },
              refusalLogInterval: "1 hour"
            })
            for (let i = 0; i < 20; i++) yield* handshake(runner.port, hello("wrong", fingerprint))
            yield* handshake(runner.port, hello(null, "another fingerprint"), "127.0.0.3")
            yield* handshake(runner.port, hello("secret", "another fingerprint"))
            // One line per source so far.
            assert.deepStrictEqual(
              lines.map((line) => [line.message, line.annotations.refused]),
              [
                ["remote client refused", "Unauthorized"],
                ["remote client refused", "Unauthorized"]
              ]
            )
          })
        )
      )
      // The runner's end closes the interval: what it counted is said, nothing is lost.
      assert.strictEqual(lines.length, 3)
      const summary = lines[2]!
      assert.strictEqual(summary.level, "Warn")
      assert.strictEqual(summary.message, "remote client refusals")
      assert.strictEqual(summary.annotations.source, "127.0.0.2")
      assert.strictEqual(summary.annotations.more, 20)
      assert.strictEqual(summary.annotations.reasons, "Unauthorized: 19, SchemaMismatch: 1")
    })
  )

  it.live("at the end of each interval its counts are written, without waiting for the runner to stop", () =>
    Effect.gen(function* () {
      yield* logged((lines) =>
        Effect.scoped(
          Effect.gen(function* () {
            const runner = yield* Remote.listen({
              ...serving(),
              token: "secret",
              failedHandshakes: { limit: Infinity },
              refusalLogInterval: "200 millis"
            })
            for (let i = 0; i < 5; i++) yield* handshake(runner.port, hello("wrong", fingerprint))
            const summaries = () => lines.filter((line) => line.message === "remote client refusals")
            const firsts = () => lines.filter((line) => line.message === "remote client refused").length
            const counted = () => summaries().reduce((sum, line) => sum + (line.annotations.more as number), 0)
            // An interval ends on its own, and what it counted is written: every refusal is in a line.
            yield* until(
              Effect.sync(() => [summaries().length, firsts() + counted()]),
              ([written, all]) => written >= 1 && all === 5,
              "summaries"
            )
            assert.isAtMost(firsts(), 5)
          })
        )
      )
    })
  )

  it.live("an oversized frame from an admitted client is logged, once, with the client and the limit", () =>
    Effect.gen(function* () {
      let client = ""
      const lines = yield* logged(() =>
        Effect.scoped(
          Effect.gen(function* () {
            const runner = yield* Remote.listen({ ...serving(), maxFrameBytes: 4096 })
            const { socket, reply } = yield* handshake(runner.port, hello(null, fingerprint))
            assert.deepStrictEqual(reply, { ok: true })
            client = `${socket.localAddress}:${socket.localPort}`
            socket.write("x".repeat(10_000))
            yield* closed(socket)
            yield* until(refusals(runner, "FrameTooLarge"), (n) => n === 1, "FrameTooLarge")
          })
        )
      )
      assert.strictEqual(lines.length, 1)
      assert.strictEqual(lines[0]!.message, "remote client sent a frame over maxFrameBytes")
      assert.strictEqual(lines[0]!.annotations.client, client)
      assert.strictEqual(lines[0]!.annotations.refused, "FrameTooLarge")
      assert.match(
        String(lines[0]!.annotations.message),
        /^a frame of at least \d+ bytes, over the limit of 4096 \(maxFrameBytes\)$/
      )
    })
  )

  it.live("an idle connection is closed after idleTimeout, its client told: no crash, it reconnects", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const held = yield* Deferred.make<void>()
        const runner = yield* Remote.listen({ ...serving(held), idleTimeout: "500 millis" })
        // The restart's first delay, long enough to be seen between two connections.
        const good = yield* worker(runner.port, { restart: Schedule.spaced("1 second") })
        // A connection with a request in flight is not idle, however long the request runs.
        const holding = yield* Effect.forkChild(good.dispatch("hold"))
        yield* until(gauge(runner, RemoteMetrics.inFlight), (n) => n === 1, "in flight")
        // A connection admitted after it, that carries nothing: its timer, started later, fires later
        // than the held connection's would. It never opened its Events stream, so it is closed at once.
        const { socket: silent, reply } = yield* handshake(runner.port, hello(null, fingerprint))
        assert.deepStrictEqual(reply, { ok: true })
        yield* closed(silent)
        assert.strictEqual(yield* refusals(runner, "Idle"), 1, "only the silent connection was idle")
        assert.strictEqual((yield* good.health).state, "Healthy")
        yield* Deferred.succeed(held, undefined)
        assert.strictEqual(yield* Fiber.join(holding), 4)
        // Then idle: the runner tells it and closes it; the worker routes away without a crash and reconnects.
        const away = yield* healthUntil(good, (h) => h.state === "Restarting")
        assert.strictEqual(away.crashes, 0)
        assert.strictEqual(away.lastCrash, undefined)
        assert.strictEqual(yield* refusals(runner, "Idle"), 2)
        const back = yield* healthUntil(good, (h) => h.state === "Healthy")
        assert.strictEqual(back.crashes, 0)
        assert.strictEqual(yield* good.dispatch("abc"), 3)
      })
    )
  )

  it.live("a runner's metrics: connections from accept, requests by outcome, requests in flight", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const held = yield* Deferred.make<void>()
        const runner = yield* Remote.listen({ ...serving(held), handshakeTimeout: "1 minute" })
        const good = yield* worker(runner.port)
        const requests = (outcome: RemoteMetrics.RequestOutcome) =>
          Effect.map(
            Metric.value(Metric.withAttributes(RemoteMetrics.requests, { runner: runnerOf(runner), outcome })),
            (state) => state.count
          )
        assert.strictEqual(yield* good.dispatch("abc"), 3)
        assert.strictEqual(yield* good.dispatch("ab"), 2)
        assert.instanceOf(yield* Effect.flip(good.dispatch("")), DomainError)
        assert.strictEqual(yield* requests("Success"), 2)
        assert.strictEqual(yield* requests("Failure"), 1)
        const holding = yield* Effect.forkChild(good.dispatch("hold"))
        yield* until(gauge(runner, RemoteMetrics.inFlight), (n) => n === 1, "in flight")
        // A connection in its handshake counts.
        assert.strictEqual(yield* gauge(runner, RemoteMetrics.connections), 1)
        const silent = yield* connect(runner.port)
        yield* until(gauge(runner, RemoteMetrics.connections), (n) => n === 2, "connections")
        silent.destroy()
        yield* until(gauge(runner, RemoteMetrics.connections), (n) => n === 1, "connections")
        yield* Deferred.succeed(held, undefined)
        assert.strictEqual(yield* Fiber.join(holding), 4)
        yield* until(gauge(runner, RemoteMetrics.inFlight), (n) => n === 0, "in flight")
        assert.strictEqual(yield* requests("Success"), 3)
      })
    )
  )

  it.effect("invalid defences are InvalidOptions, with the option's name", () =>
    Effect.gen(function* () {
      const reasonOf = (options: Partial<Remote.ServeOptions<string, number>>) =>
        Effect.scoped(Effect.flip(Remote.listen({ ...serving(), ...options }))).pipe(
          Effect.map((error) => `${error._tag}: ${(error as { reason?: string }).reason}`)
        )
      assert.match(
        yield* reasonOf({ maxConnections: 0 }),
        /^InvalidOptions: maxConnections must be a positive integer, got 0/
      )
      assert.match(
        yield* reasonOf({ failedHandshakes: { limit: 0 } }),
        /^InvalidOptions: failedHandshakes\.limit must be a positive integer or Infinity, got 0/
      )
      assert.match(
        yield* reasonOf({ failedHandshakes: { backoff: "1 minute", maxBackoff: "1 second" } }),
        /^InvalidOptions: failedHandshakes\.maxBackoff must be at least failedHandshakes\.backoff/
      )
      assert.match(
        yield* reasonOf({ failedHandshakes: "often" as never }),
        /^InvalidOptions: failedHandshakes must be an object/
      )
      assert.match(
        yield* reasonOf({ idleTimeout: "0 millis" }),
        /^InvalidOptions: idleTimeout must be at least 1 millisecond/
      )
      assert.match(
        yield* reasonOf({ refusalLogInterval: "soon" as never }),
        /^InvalidOptions: refusalLogInterval must be a finite, non-negative duration, got soon/
      )
    })
  )
})

describe("the limit on failed handshakes per source", () => {
  const settings = { limit: 3, windowMillis: 60_000, backoffMillis: 1000, maxBackoffMillis: 8000, maxSources: 4 }
  const clock = () => {
    let now = 0
    return { now: () => now, advance: (ms: number) => (now += ms) }
  }

  it("refuses after the limit, for a period that doubles with each further failure, up to the maximum", () => {
    const time = clock()
    const limit = SourceLimit.make(settings, time.now)
    limit.failed("a")
    limit.failed("a")
    assert.strictEqual(limit.blockedFor("a"), 0)
    limit.failed("a")
    assert.strictEqual(limit.blockedFor("a"), 1000)
    assert.strictEqual(limit.blockedFor("b"), 0)
    const periods: Array<number> = []
    for (let i = 0; i < 5; i++) {
      time.advance(limit.blockedFor("a"))
      assert.strictEqual(limit.blockedFor("a"), 0)
      limit.failed("a")
      periods.push(limit.blockedFor("a"))
    }
    assert.deepStrictEqual(periods, [2000, 4000, 8000, 8000, 8000])
  })

  it("a good handshake forgets the failures; so does a quiet window after the last", () => {
    const time = clock()
    const limit = SourceLimit.make(settings, time.now)
    limit.failed("a")
    limit.failed("a")
    limit.succeeded("a")
    limit.failed("a")
    limit.failed("a")
    assert.strictEqual(limit.blockedFor("a"), 0)
    time.advance(60_000)
    limit.failed("a")
    assert.strictEqual(limit.blockedFor("a"), 0, "the two before the window are forgotten")
    limit.failed("a")
    limit.failed("a")
    assert.strictEqual(limit.blockedFor("a"), 1000)
    // The window counts from the end of the refusal.
    time.advance(1000 + 59_999)
    assert.strictEqual(limit.blockedFor("a"), 0)
    assert.strictEqual(limit.size(), 1)
    time.advance(1)
    limit.prune()
    assert.strictEqual(limit.size(), 0)
  })

  it("remembers at most maxSources addresses: the least recently failed go first", () => {
    const limit = SourceLimit.make(settings, clock().now)
    for (let i = 0; i < 100; i++) for (let j = 0; j < 3; j++) limit.failed(`10.0.0.${i}`)
    assert.strictEqual(limit.size(), 4)
    assert.isAbove(limit.blockedFor("10.0.0.99"), 0)
    assert.strictEqual(limit.blockedFor("10.0.0.0"), 0)
  })

  it("with limit Infinity, nothing is counted", () => {
    const limit = SourceLimit.make({ ...settings, limit: Infinity }, clock().now)
    for (let i = 0; i < 100; i++) limit.failed("a")
    assert.strictEqual(limit.blockedFor("a"), 0)
    assert.strictEqual(limit.size(), 0)
  })

  it("an IPv4 address given as IPv6 is the IPv4 address", () => {
    assert.strictEqual(SourceLimit.sourceOf("::ffff:127.0.0.2"), "127.0.0.2")
    assert.strictEqual(SourceLimit.sourceOf("::1"), "::1")
    assert.strictEqual(SourceLimit.sourceOf(undefined), "unknown")
  })
})

describe("the refusal log", () => {
  it("writes the first refusal of each source, counts the rest, and sums them up per source at the interval's end", () => {
    const written: Array<string> = []
    const log = RefusalLog.make({
      maxSources: 2,
      first: (entry) => written.push(`first ${entry.source} ${entry.reason}`),
      summary: (entry) => written.push(`summary ${entry.source ?? "others"} ${entry.count} (${entry.reasons})`)
    })
    for (let i = 0; i < 10; i++) log.record("a", "a:1", i % 2 === 0 ? "Unauthorized" : "Malformed", "")
    log.record("b", "b:1", "Full", "")
    // Past maxSources, the others are counted together.
    log.record("c", "c:1", "Unauthorized", "")
    log.record("d", "d:1", "Unauthorized", "")
    assert.strictEqual(log.size(), 2)
    log.flush()
    assert.deepStrictEqual(written, [
      "first a Unauthorized",
      "first b Full",
      "summary a 9 (Malformed: 5, Unauthorized: 4)",
      "summary others 2 (Unauthorized: 2)"
    ])
    assert.strictEqual(log.size(), 0)
    log.record("a", "a:2", "Unauthorized", "")
    assert.strictEqual(written.at(-1), "first a Unauthorized")
  })
})
