/**
 * A seeded chaos run over remote workers: 300 requests in waves over a pool
 * of 3 real runner processes on loopback (answers, domain errors, crashes
 * reported by the handler, slow requests, timeouts, callers that leave),
 * while runners are killed with SIGKILL or drained with SIGTERM mid-wave and
 * started again on the same port. The invariants are the local kinds': every
 * request has exactly one typed outcome, and the workers' counters add up to
 * what the callers saw (`Testing.checkOutcomes`, `Testing.checkTotals`).
 *
 * The crash reasons checked are those the code guarantees on any machine,
 * however fast: a kill fails the requests on its runner with
 * `ConnectionLost` (each kill wave kills the runner on which a request that
 * never ends on its own has started, so that one is there), and a crash the
 * handler reports fails its request with `Reported`, unless a kill in its
 * wave took its runner first.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Duration, Effect, Exit, Fiber, References, Schedule, Schema } from "effect"
import { WorkerCrash } from "effect-worker-pool"
import { Testing } from "effect-worker-pool/testing"
import * as Remote from "../src/Remote.ts"
import { job, RemoteJob } from "./fixtures/remote-jobs.ts"
import { freePort, type Runner, startRunner } from "./fixtures/remote-processes.ts"
import { generator } from "./fixtures/seeded.ts"

const seed = 11
const waves = 10
const perWave = 30
/** The fault of each wave: a runner killed, a runner drained, or none. */
const faultOf = (wave: number): "kill" | "drain" | undefined =>
  wave % 3 === 1 ? "kill" : wave % 3 === 2 && wave < 8 ? "drain" : undefined

/** The `_tag` of the reason of the `WorkerCrash` an ended request failed with, or what it ended with instead. */
const crashReasonOf = (fiber: Fiber.Fiber<number, unknown>): string => {
  const exit = fiber.pollUnsafe()
  if (exit === undefined) return "still running"
  if (Exit.isSuccess(exit)) return "a success"
  const error = Cause.findErrorOption(exit.cause)
  if (error._tag === "None") return "no error"
  return error.value instanceof WorkerCrash ? error.value.reason._tag : String(error.value)
}

// Most of the run is starting runner processes again (8 in all) and draining: 9 s on an idle
// 2-vCPU machine, several times that on a busy one.
describe("Remote chaos", { timeout: 300_000 }, () => {
  it.live("every request has one typed outcome and the counters add up, under kills and drains", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const random = generator(seed)
        const ports = yield* Effect.forEach([0, 1, 2], () => freePort)
        const runners: Array<Runner> = yield* Effect.forEach(ports, (port) => startRunner(port))
        const remote = yield* Remote.pool({
          request: RemoteJob,
          response: Schema.Number,
          // No runner here freezes (remote.test.ts finds a frozen one by ping): a runner that a busy
          // machine keeps from answering a ping for a while must not be taken for a frozen one.
          pingTimeout: "10 seconds",
          addresses: ports.map((port) => `127.0.0.1:${port}`),
          worker: { restart: Schedule.spaced("50 millis") }
        })
        const fibers: Array<Fiber.Fiber<number, unknown>> = []
        /** The requests whose handler reports a crash, with their wave. */
        const crashJobs: Array<{ readonly wave: number; readonly fiber: Fiber.Fiber<number, unknown> }> = []
        /** Per kill wave, the request that was running on the killed runner. */
        const sentinels: Array<{ readonly wave: number; readonly fiber: Fiber.Fiber<number, unknown> }> = []
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
            const fiber = yield* Effect.forkChild(dispatch)
            if (r >= 0.65 && r < 0.67) crashJobs.push({ wave, fiber })
            // A caller that leaves after a while.
            if (r >= 0.92) yield* Effect.forkChild(Effect.delay(Fiber.interrupt(fiber), Duration.millis(random() * 50)))
            inWave.push(fiber)
          }
          const fault = faultOf(wave)
          let victim = wave % 3
          if (fault === "kill") {
            // A request that never ends on its own: the runner it starts on is the one killed.
            const tag = `sentinel${wave}`
            const sentinel = yield* Effect.forkChild(remote.pool.dispatch(job("sleep", -1, 3_600_000, tag)))
            sentinels.push({ wave, fiber: sentinel })
            inWave.push(sentinel)
            yield* Effect.sleep(Duration.millis(5 + random() * 20))
            const started = new RegExp(`^started ${tag}$`)
            victim = yield* Effect.raceAll(runners.map((runner, index) => Effect.as(runner.waitFor(started), index)))
            runners[victim]!.child.kill("SIGKILL")
          } else if (fault === "drain") {
            // Mid-wave: some requests are on the runner, some on their way.
            yield* Effect.sleep(Duration.millis(5 + random() * 20))
            runners[victim]!.child.kill("SIGTERM")
          }
          fibers.push(...inWave)
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
        assert.strictEqual(outcomes.requests, waves * perWave + sentinels.length)
        for (const kind of ["succeeded", "domainErrors", "crashed", "timeouts", "interrupted"] as const) {
          assert.isAbove(outcomes[kind], 0, `${kind} in ${JSON.stringify(outcomes)}`)
        }
        // Each kill failed the request running on its runner with ConnectionLost.
        assert.deepStrictEqual(
          sentinels.map(({ wave }) => wave),
          [1, 4, 7]
        )
        for (const { wave, fiber } of sentinels) {
          assert.strictEqual(crashReasonOf(fiber), "ConnectionLost", `the request on the runner killed in wave ${wave}`)
        }
        // A crash the handler reported is Reported, unless a kill took its runner first.
        assert.isTrue(
          crashJobs.some(({ wave }) => faultOf(wave) !== "kill"),
          "the seed puts a reported crash in a wave without a kill"
        )
        for (const { wave, fiber } of crashJobs) {
          const allowed = faultOf(wave) === "kill" ? ["Reported", "ConnectionLost"] : ["Reported"]
          assert.include(allowed, crashReasonOf(fiber), `a reported crash in wave ${wave}`)
        }
        assert.isAbove(totals.restarts, 0)
      })
    ).pipe(
      // The faults are on purpose: the pool's warnings about them are left out.
      Effect.provideService(References.MinimumLogLevel, "Error")
    )
  )
})
