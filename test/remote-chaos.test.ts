/**
 * A seeded chaos run over remote workers: 300 requests in waves over a pool
 * of 3 real runner processes on loopback (answers, domain errors, crashes
 * reported by the handler, slow requests, timeouts, callers that leave),
 * while runners are killed with SIGKILL or drained with SIGTERM mid-wave and
 * started again on the same port. The invariants are the local kinds': every
 * request has exactly one typed outcome, and the workers' counters add up to
 * what the callers saw (`Testing.checkOutcomes`, `Testing.checkTotals`).
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Fiber, References, Schedule, Schema } from "effect"
import { WorkerCrash } from "effect-worker-pool"
import { Testing } from "effect-worker-pool/testing"
import * as Remote from "../src/Remote.ts"
import { job, RemoteJob } from "./fixtures/remote-jobs.ts"
import { freePort, type Runner, startRunner } from "./fixtures/remote-processes.ts"

/** A small seeded generator (mulberry32), so that a run can be replayed. */
const generator = (seed: number) => {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const seed = 11
const waves = 10
const perWave = 30
/** The fault of each wave: a runner killed, a runner drained, or none. */
const faultOf = (wave: number): "kill" | "drain" | undefined =>
  wave % 3 === 1 ? "kill" : wave % 3 === 2 && wave < 8 ? "drain" : undefined

describe("Remote chaos", { timeout: 120_000 }, () => {
  it.live("every request has one typed outcome and the counters add up, under kills and drains", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const random = generator(seed)
        const ports = yield* Effect.forEach([0, 1, 2], () => freePort)
        const runners: Array<Runner> = yield* Effect.forEach(ports, (port) => startRunner(port))
        const remote = yield* Remote.pool({
          request: RemoteJob,
          response: Schema.Number,
          pingInterval: "200 millis",
          pingTimeout: "500 millis",
          addresses: ports.map((port) => `127.0.0.1:${port}`),
          worker: { restart: Schedule.spaced("50 millis") }
        })
        const fibers: Array<Fiber.Fiber<number, unknown>> = []
        const crashReasons = new Set<string>()
        let n = 0
        for (let wave = 0; wave < waves; wave++) {
          const inWave: Array<Fiber.Fiber<number, unknown>> = []
          for (let i = 0; i < perWave; i++, n++) {
            const r = random()
            const dispatch =
              r < 0.55
                ? remote.pool.dispatch(job("echo", n))
                : r < 0.65
                  ? remote.pool.dispatch(job("fail", n))
                  : r < 0.67
                    ? remote.pool.dispatch(job("crash", n))
                    : r < 0.85
                      ? remote.pool.dispatch(job("sleep", n, 5 + Math.floor(random() * 40), `r${n}`))
                      : r < 0.92
                        ? remote.pool.dispatch(job("sleep", n, 5_000, `r${n}`), { timeout: "100 millis" })
                        : remote.pool.dispatch(job("sleep", n, 300, `r${n}`))
            const fiber = yield* Effect.forkChild(
              dispatch.pipe(
                Effect.tapError((error) =>
                  Effect.sync(() => error instanceof WorkerCrash && crashReasons.add(error.reason._tag))
                )
              )
            )
            // A caller that leaves after a while.
            if (r >= 0.92) yield* Effect.forkChild(Effect.delay(Fiber.interrupt(fiber), Duration.millis(random() * 50)))
            inWave.push(fiber)
          }
          fibers.push(...inWave)
          const fault = faultOf(wave)
          const victim = wave % 3
          if (fault !== undefined) {
            // Mid-wave: some requests are on the runner, some on their way.
            yield* Effect.sleep(Duration.millis(5 + random() * 20))
            runners[victim]!.child.kill(fault === "kill" ? "SIGKILL" : "SIGTERM")
          }
          yield* Fiber.awaitAll(inWave)
          if (fault !== undefined) {
            yield* runners[victim]!.exited
            runners[victim] = yield* startRunner(ports[victim]!)
          }
        }
        // Every worker back, every request ended: the counters are final.
        yield* remote.pool.health.pipe(
          Effect.repeat({
            until: (all) => all.every(([, h]) => h.state === "Healthy" && h.inFlight === 0),
            schedule: Schedule.spaced("10 millis")
          }),
          Effect.timeout("20 seconds")
        )
        const outcomes = yield* Testing.checkOutcomes(fibers)
        const totals = yield* Testing.checkTotals(outcomes, yield* remote.pool.health)
        assert.strictEqual(outcomes.requests, waves * perWave)
        for (const kind of ["succeeded", "domainErrors", "crashed", "timeouts", "interrupted"] as const) {
          assert.isAbove(outcomes[kind], 0, `${kind} in ${JSON.stringify(outcomes)}`)
        }
        assert.include([...crashReasons], "Reported")
        assert.include([...crashReasons], "ConnectionLost")
        assert.isAbove(totals.restarts, 0)
      })
    ).pipe(
      // The faults are on purpose: the pool's warnings about them are left out.
      Effect.provideService(References.MinimumLogLevel, "Error")
    )
  )
})
