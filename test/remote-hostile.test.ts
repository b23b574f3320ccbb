/**
 * Hostile clients against a runner, while a good client is served. From
 * other loopback addresses (127.0.0.2, .3, .4: other sources to the
 * runner), a seeded mix of connections, many at once: wrong tokens,
 * connections that never say a word, handshakes that never end, admitted
 * clients that send a frame over `maxFrameBytes`, admitted clients that
 * never send a request. The good client, on 127.0.0.1, sends requests
 * back to back throughout.
 *
 * What the runner guarantees, checked: every good request is answered,
 * within a generous ratio of the good client's own latency measured before
 * the attack (in the same test, on the same machine); every hostile
 * connection is closed by the runner (none is held past its defence); each
 * refusal a hostile client was told is counted in the runner's metrics;
 * the runner's connections, this process's file descriptors and its heap
 * come back once the hostile clients are gone; and the log stays under 10
 * lines, every refusal written or counted in one of them.
 *
 * The seed is drawn for each run and printed when the test fails;
 * `HOSTILE_SEED=<seed>` replays it.
 */
import * as Fs from "node:fs"
import * as V8 from "node:v8"
import * as Vm from "node:vm"
import { assert, describe, it } from "@effect/vitest"
import { Console, Effect, Exit, Fiber, Logger, Metric, References, Schedule, Schema } from "effect"
import { DomainError } from "effect-worker-pool"
import * as Remote from "../src/Remote.ts"
import * as RemoteMetrics from "../src/RemoteMetrics.ts"
import { connect, fingerprintOf, firstLine, hello, untilClosed } from "./fixtures/raw-clients.ts"
import { generator } from "./fixtures/seeded.ts"

const seed =
  process.env.HOSTILE_SEED === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(process.env.HOSTILE_SEED)

/** The most log lines the whole run may write. */
const logBudget = 10
/** How much slower than before the attack the good client's median request may be. */
const latencyRatio = 10

const maxFrameBytes = 64 * 1024
const schemas = { request: Schema.String, response: Schema.Number }
const fingerprint = fingerprintOf(Schema.String, Schema.Number, DomainError)

type Action = "wrongToken" | "silent" | "partial" | "oversized" | "idleAdmitted"

/** Where each kind of hostile client comes from. */
const sourceOf: Record<Action, string> = {
  wrongToken: "127.0.0.2",
  partial: "127.0.0.2",
  silent: "127.0.0.3",
  oversized: "127.0.0.4",
  idleAdmitted: "127.0.0.4"
}

/** One hostile connection, to its end (the runner closes it): what the runner answered it, if anything. */
const play = (port: number, action: Action): Effect.Effect<string | undefined> =>
  Effect.scoped(
    Effect.gen(function* () {
      const socket = yield* connect(port, sourceOf[action])
      const reply = firstLine(socket)
      switch (action) {
        case "wrongToken":
          socket.write(hello("not the secret", fingerprint))
          break
        case "partial":
          socket.write(hello("secret", fingerprint).slice(0, 20))
          break
        case "oversized":
        case "idleAdmitted":
          socket.write(hello("secret", fingerprint))
          break
        case "silent":
          break
      }
      const answer = yield* reply
      if (answer?.ok === true && action === "oversized") socket.write("x".repeat(maxFrameBytes + 1))
      yield* untilClosed(socket)
      return answer?.ok === true ? "admitted" : (answer?.refused as string | undefined)
    })
  )

const median = (values: ReadonlyArray<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

const openFiles = () => Fs.readdirSync("/proc/self/fd").length

V8.setFlagsFromString("--expose-gc")
const gc = Vm.runInNewContext("gc") as () => void
const heapAfterGc = () => {
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

interface Line {
  readonly message: string
  readonly annotations: Record<string, unknown>
}

describe("a runner under hostile clients", { timeout: 180_000 }, () => {
  it.live("serves its good client throughout; connections, descriptors and memory come back; the log stays short", () =>
    Effect.gen(function* () {
      const random = generator(seed)
      const between = (low: number, high: number) => low + Math.floor(random() * (high - low + 1))
      const counts: Record<Action, number> = {
        wrongToken: between(200, 400),
        silent: between(100, 200),
        partial: between(20, 50),
        oversized: between(3, 10),
        idleAdmitted: between(10, 30)
      }
      const actions: Array<Action> = []
      for (const [action, count] of Object.entries(counts) as Array<[Action, number]>) {
        for (let i = 0; i < count; i++) actions.push(action)
      }
      for (let i = actions.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1))
        ;[actions[i], actions[j]] = [actions[j]!, actions[i]!]
      }
      const concurrency = between(32, 128)

      const lines: Array<Line> = []
      const logger = Logger.make<unknown, void>(({ fiber, logLevel, message }) => {
        if (logLevel === "Debug" || logLevel === "Trace") return
        const annotations = { ...(fiber.getRef(References.CurrentLogAnnotations) as Record<string, unknown>) }
        lines.push({ message: String(Array.isArray(message) ? message[0] : message), annotations })
      })
      const told = new Map<string, number>()
      let refusalsCounted = 0

      yield* Effect.scoped(
        Effect.gen(function* () {
          const runner = yield* Remote.listen({
            ...schemas,
            handler: (text: string) => Effect.as(Effect.sleep("5 millis"), text.length),
            port: 0,
            token: "secret",
            maxFrameBytes,
            maxConnections: 64,
            handshakeTimeout: "300 millis",
            idleTimeout: "1 second",
            refusalLogInterval: "1 hour"
          })
          const at = { runner: `${runner.host}:${runner.port}` }
          const connectionsOpen = Effect.map(
            Metric.value(Metric.withAttributes(RemoteMetrics.connections, at)),
            (state) => state.value
          )
          const { pool } = yield* Remote.pool({
            ...schemas,
            addresses: [at.runner],
            token: "secret",
            maxFrameBytes,
            connectTimeout: "20 seconds",
            pingTimeout: "10 seconds",
            worker: { restart: Schedule.spaced("50 millis") }
          })
          const timed = Effect.gen(function* () {
            const start = performance.now()
            assert.strictEqual(yield* pool.dispatch("good"), 4)
            return performance.now() - start
          })
          const baseline: Array<number> = []
          for (let i = 0; i < 40; i++) baseline.push(yield* timed)
          const filesBefore = openFiles()
          const heapBefore = heapAfterGc()

          // The good client, back to back, for as long as the attack lasts.
          let attacking = true
          const during: Array<number> = []
          const good = yield* Effect.forkChild(
            Effect.whileLoop({
              while: () => attacking,
              body: () => timed,
              step: (ms) => during.push(ms)
            })
          )
          const answers = yield* Effect.forEach(actions, (action) => play(runner.port, action), { concurrency })
          attacking = false
          yield* Fiber.join(good)
          for (const answer of answers) told.set(String(answer), (told.get(String(answer)) ?? 0) + 1)

          // Every good request was answered (a failure would have failed the loop), and in its usual time.
          assert.isAtLeast(during.length, 1)
          const usual = median(baseline)
          const underAttack = median(during)
          console.log(
            `seed ${seed}: ${actions.length} hostile connections (${JSON.stringify(counts)}, ${concurrency} at once); good client median ${usual.toFixed(2)} ms before, ${underAttack.toFixed(2)} ms during (${during.length} requests); answers ${JSON.stringify(Object.fromEntries(told))}`
          )
          assert.isAtMost(underAttack, latencyRatio * usual, "the good client's median latency under attack")

          // What each hostile client was told is what the runner counted.
          const refusals = (reason: RemoteMetrics.RefusalReason) =>
            Effect.map(
              Metric.value(Metric.withAttributes(RemoteMetrics.refusals, { ...at, reason })),
              (state) => state.count
            )
          for (const reason of ["Unauthorized", "RateLimited", "Full", "HandshakeTimeout"] as const) {
            assert.strictEqual(yield* refusals(reason), told.get(reason) ?? 0, `refusals ${reason}`)
          }
          const admitted = told.get("admitted") ?? 0
          const tooLarge = yield* refusals("FrameTooLarge")
          const idle = yield* refusals("Idle")
          // Each admitted hostile connection was closed for cause: a frame over the limit, or idle.
          assert.strictEqual(tooLarge + idle, admitted)
          assert.strictEqual(yield* refusals("Malformed"), 0)
          refusalsCounted = actions.length - admitted + tooLarge

          // The runner's connections, the process's descriptors and its heap come back.
          yield* connectionsOpen.pipe(
            Effect.repeat({ until: (n) => n === 1, schedule: Schedule.spaced("10 millis") }),
            Effect.timeoutOrElse({
              duration: "30 seconds",
              orElse: () => Effect.die(new Error("the hostile connections were not all closed"))
            })
          )
          // Sockets still closing have their descriptors for a moment: looked at until they are back.
          yield* Effect.sync(openFiles).pipe(
            Effect.repeat({ until: (n) => n <= filesBefore + 2, schedule: Schedule.spaced("10 millis") }),
            Effect.timeoutOrElse({
              duration: "30 seconds",
              orElse: () =>
                Effect.die(new Error(`file descriptors did not come back: ${openFiles()}, ${filesBefore} before`))
            })
          )
          const heapAfter = heapAfterGc()
          assert.isAtMost(heapAfter, heapBefore * 1.5, `heap ${heapAfter} after, ${heapBefore} before`)
        })
      ).pipe(Effect.provideService(Logger.CurrentLoggers, new Set([logger])))

      // The log: a line per source (its first refusal), and at the runner's end one count per source.
      assert.isAtMost(lines.length, logBudget, JSON.stringify(lines))
      const firsts = lines.filter(
        (line) =>
          line.message === "remote client refused" || line.message === "remote client sent a frame over maxFrameBytes"
      )
      const summaries = lines.filter((line) => line.message === "remote client refusals")
      assert.strictEqual(firsts.length + summaries.length, lines.length, JSON.stringify(lines))
      const counted = summaries.reduce((sum, line) => sum + (line.annotations.more as number), 0)
      assert.strictEqual(firsts.length + counted, refusalsCounted, "every refusal is written or counted")
    }).pipe(
      Effect.onExit((exit) =>
        Exit.isFailure(exit)
          ? Console.error(`remote-hostile failed with seed ${seed}: HOSTILE_SEED=${seed} replays it`)
          : Effect.void
      )
    )
  )
})
