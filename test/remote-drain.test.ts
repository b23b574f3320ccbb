/**
 * The runner file that docs/remote.md shows, `NodeRuntime.runMain(Remote.serve(...))`,
 * run as it is written in a real process: SIGTERM while it holds a request
 * drains it (the request is answered, its worker routes away without a
 * crash, the runner says it drains and exits 0); a second signal during the
 * drain cuts it short. `serve` interrupted without a signal drains too, for
 * at most `drainTimeout`.
 */
import * as fs from "node:fs"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Latch, Logger, Schedule } from "effect"
import { WorkerCrash, WorkerId } from "effect-worker-pool"
import * as Remote from "../src/Remote.ts"
import * as WorkerModule from "../src/Worker.ts"
import { fromMarkdown } from "./examples/extract.ts"
import { schemas } from "./fixtures/documented-runner/work.ts"
import { freePort, healthUntil, startScript } from "./fixtures/remote-processes.ts"

const root = fileURLToPath(new URL("..", import.meta.url))
const runnerFile = fileURLToPath(new URL("./fixtures/documented-runner/runner.ts", import.meta.url))
const token = "a long random secret"

/** The block of docs/remote.md that is the runner file (it starts with `// runner.ts`). */
const documentedRunner = (): string => {
  const blocks = fromMarkdown("docs/remote.md", fs.readFileSync(`${root}/docs/remote.md`, "utf8")).examples
  const runner = blocks.filter((block) => block.code.startsWith("// runner.ts"))
  assert.strictEqual(runner.length, 1, "docs/remote.md has one runner file")
  return runner[0]!.code
}

/** The documented runner on a free port, and a worker of it that does not reconnect within the test. */
const runnerAndWorker = Effect.gen(function* () {
  const port = yield* freePort
  const runner = yield* startScript(runnerFile, port, { env: { RUNNER_PORT: String(port), RUNNER_TOKEN: token } })
  const worker = yield* WorkerModule.fromKind(
    WorkerId.make(0),
    Remote.make(runner.address, { ...schemas, token, connectTimeout: "20 seconds" }),
    { restart: Schedule.spaced("1 hour") }
  )
  return { runner, worker }
})

describe("the documented runner, under NodeRuntime.runMain", { timeout: 120_000 }, () => {
  it("is the runner file of docs/remote.md, word for word", () => {
    assert.strictEqual(fs.readFileSync(runnerFile, "utf8"), documentedRunner())
  })

  it.live("SIGTERM mid-request: the request is answered, the worker routes away without a crash, exit 0", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { runner, worker } = yield* runnerAndWorker
        assert.strictEqual(yield* worker.dispatch("four"), 4)
        const held = yield* Effect.forkChild(Effect.exit(worker.dispatch("hold on")))
        yield* runner.waitFor(/started hold on/)
        runner.child.kill("SIGTERM")
        const answer = yield* Fiber.join(held)
        assert.isTrue(Exit.isSuccess(answer), `the held request failed: ${String(answer)}`)
        assert.deepStrictEqual(answer, Exit.succeed(7))
        yield* runner.waitFor(/remote runner draining/)
        assert.deepStrictEqual(yield* runner.exited, { code: 0, signal: null })
        const down = yield* healthUntil(worker, (h) => h.state === "Restarting")
        assert.strictEqual(down.crashes, 0, "a drain is not a crash")
        assert.strictEqual(down.lastCrash, undefined)
      })
    )
  )

  it.live("a second SIGTERM during the drain cuts it: what is held is interrupted, exit 130", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { runner, worker } = yield* runnerAndWorker
        const held = yield* Effect.forkChild(Effect.exit(worker.dispatch("stay on")))
        yield* runner.waitFor(/started stay on/)
        runner.child.kill("SIGTERM")
        yield* runner.waitFor(/remote runner draining/)
        runner.child.kill("SIGTERM")
        const answer = yield* Fiber.join(held)
        assert.isTrue(Exit.isFailure(answer))
        const crash = Exit.isFailure(answer) ? answer.cause.reasons.find((r) => r._tag === "Fail") : undefined
        assert.instanceOf((crash as { error?: unknown } | undefined)?.error, WorkerCrash)
        yield* runner.waitFor(/interrupted stay on/)
        assert.deepStrictEqual(yield* runner.exited, { code: 130, signal: null })
      })
    )
  )
})

describe("Remote.serve interrupted", { timeout: 60_000 }, () => {
  it.live("drains before the interruption goes on: what it holds is answered", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const port = yield* freePort
        const release = yield* Latch.make()
        const started = yield* Latch.make()
        const serving = yield* Effect.forkChild(
          Remote.serve({
            ...schemas,
            handler: (text: string) =>
              text === "held"
                ? started.open.pipe(Effect.andThen(release.await), Effect.as(text.length))
                : Effect.succeed(text.length),
            port
          })
        )
        const worker = yield* WorkerModule.fromKind(
          WorkerId.make(0),
          Remote.make(`127.0.0.1:${port}`, { ...schemas, connectTimeout: "20 seconds" }),
          { restart: Schedule.spaced("1 hour") }
        ).pipe(Effect.retry(Schedule.spaced("20 millis")))
        const held = yield* Effect.forkChild(Effect.exit(worker.dispatch("held")))
        yield* started.await
        const stopped = yield* Effect.forkChild(Fiber.interrupt(serving))
        // The runner drains: its worker hears it and leaves selection, while the request is still held.
        yield* healthUntil(worker, (h) => h.state === "Restarting")
        assert.isUndefined(stopped.pollUnsafe(), "serve waits for what it holds")
        yield* release.open
        assert.deepStrictEqual(yield* Fiber.join(held), Exit.succeed(4))
        yield* Fiber.join(stopped)
        assert.isTrue(Exit.hasInterrupts(yield* Fiber.await(serving)))
      })
    )
  )

  it.live("a drain ends at drainTimeout: what is still held is interrupted, and it says so", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const port = yield* freePort
        const started = yield* Latch.make()
        const logged: Array<string> = []
        const logger = Logger.make<unknown, void>(({ message }) => {
          logged.push(String(message))
        })
        const serving = yield* Effect.forkChild(
          Remote.serve({
            ...schemas,
            handler: (text: string) =>
              text === "stay" ? started.open.pipe(Effect.andThen(Effect.never)) : text.length,
            port,
            drainTimeout: "300 millis"
          }).pipe(Effect.provideService(Logger.CurrentLoggers, new Set([logger])))
        )
        const worker = yield* WorkerModule.fromKind(
          WorkerId.make(0),
          Remote.make(`127.0.0.1:${port}`, { ...schemas, connectTimeout: "20 seconds" }),
          { restart: Schedule.spaced("1 hour") }
        ).pipe(Effect.retry(Schedule.spaced("20 millis")))
        const held = yield* Effect.forkChild(Effect.exit(worker.dispatch("stay")))
        yield* started.await
        // Returns once serve has ended: the drain gave up at drainTimeout, as the request never ends.
        yield* Fiber.interrupt(serving)
        const answer = yield* Fiber.join(held)
        const crash = Exit.isFailure(answer) ? answer.cause.reasons.find((r) => r._tag === "Fail") : undefined
        assert.instanceOf((crash as { error?: unknown } | undefined)?.error, WorkerCrash)
        assert.includeMembers(logged, [
          "remote runner draining",
          "remote runner drain timed out: the requests still held are interrupted"
        ])
        assert.notInclude(logged, "remote runner drained")
      })
    )
  )
})
