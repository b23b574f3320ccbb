/**
 * The runner's health endpoint, probed with real HTTP requests: ready once
 * the runner listens, not ready from the moment a drain starts (while a
 * request is still held), live throughout, closed with the runner's scope;
 * not ready before the runner listens; bad `health` options refused with
 * `InvalidOptions`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Latch, Schedule, Schema } from "effect"
import { WorkerId } from "effect-worker-pool"
import * as Health from "../src/internal/remote/health.ts"
import * as Remote from "../src/Remote.ts"
import * as WorkerModule from "../src/Worker.ts"
import { httpRequest } from "./fixtures/http.ts"
import { freePort, healthUntil } from "./fixtures/remote-processes.ts"

/** One HTTP request to `port` of loopback, on a connection of its own. */
const probe = (port: number, path: string, method = "GET") => httpRequest({ port, path, method })

const schemas = { request: Schema.String, response: Schema.Number }

describe("the runner's health endpoint", { timeout: 60_000 }, () => {
  it.live("ready after start, not ready once a drain starts while a request is held, live throughout", () =>
    Effect.gen(function* () {
      const release = yield* Latch.make()
      const started = yield* Latch.make()
      const healthPort = yield* Effect.scoped(
        Effect.gen(function* () {
          const runner = yield* Remote.listen({
            ...schemas,
            handler: (text: string) =>
              text === "held"
                ? started.open.pipe(Effect.andThen(release.await), Effect.as(text.length))
                : Effect.succeed(text.length),
            port: 0,
            health: { port: 0 }
          })
          assert.isDefined(runner.health)
          const { host, port } = runner.health!
          assert.strictEqual(host, "127.0.0.1", "loopback unless told")
          assert.notStrictEqual(port, runner.port)
          assert.deepStrictEqual(yield* probe(port, "/ready"), { status: 200, body: "ready\n" })
          assert.deepStrictEqual(yield* probe(port, "/live"), { status: 200, body: "live\n" })
          const worker = yield* WorkerModule.fromKind(
            WorkerId.make(0),
            Remote.make(`${runner.host}:${runner.port}`, { ...schemas, connectTimeout: "20 seconds" }),
            { restart: Schedule.spaced("1 hour") }
          )
          const held = yield* Effect.forkChild(worker.dispatch("held"))
          yield* started.await
          const drained = yield* Effect.forkChild(runner.drain("30 seconds"))
          // The worker heard the drain: it started, and the request is still held.
          yield* healthUntil(worker, (h) => h.state === "Restarting")
          assert.deepStrictEqual(yield* probe(port, "/ready"), { status: 503, body: "draining\n" })
          assert.deepStrictEqual(yield* probe(port, "/live"), { status: 200, body: "live\n" })
          assert.isUndefined(held.pollUnsafe())
          yield* release.open
          assert.strictEqual(yield* Fiber.join(held), 4)
          yield* Fiber.join(drained)
          assert.strictEqual((yield* probe(port, "/ready")).status, 503)
          assert.strictEqual((yield* probe(port, "/live")).status, 200)
          return port
        })
      )
      // Closed with the runner's scope.
      const after = yield* Effect.exit(probe(healthPort, "/live"))
      assert.isTrue(Exit.isFailure(after))
      assert.match(String(Exit.isFailure(after) ? after.cause : ""), /ECONNREFUSED/)
    })
  )

  it.live("not ready before the runner listens; other paths and methods are refused", () =>
    Effect.scoped(
      Effect.gen(function* () {
        let state: Health.State = "starting"
        const { port } = yield* Health.listen({ host: "127.0.0.1", port: 0 }, () => state)
        assert.deepStrictEqual(yield* probe(port, "/ready"), { status: 503, body: "starting\n" })
        assert.deepStrictEqual(yield* probe(port, "/live"), { status: 200, body: "live\n" })
        state = "ready"
        assert.deepStrictEqual(yield* probe(port, "/ready?verbose"), { status: 200, body: "ready\n" })
        assert.deepStrictEqual(yield* probe(port, "/ready", "HEAD"), { status: 200, body: "" })
        assert.strictEqual((yield* probe(port, "/metrics")).status, 404)
        assert.strictEqual((yield* probe(port, "/ready", "POST")).status, 405)
        state = "draining"
        assert.deepStrictEqual(yield* probe(port, "/ready"), { status: 503, body: "draining\n" })
      })
    )
  )

  it.live("a health port already taken fails the runner's start, and nothing is left listening", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const taken = yield* Health.listen({ host: "127.0.0.1", port: 0 }, () => "ready")
        const port = yield* freePort
        const failed = yield* Effect.exit(
          Effect.scoped(
            Remote.listen({ ...schemas, handler: (t: string) => t.length, port, health: { port: taken.port } })
          )
        )
        assert.isTrue(Exit.isFailure(failed))
        assert.match(String(Exit.isFailure(failed) ? failed.cause : ""), /EADDRINUSE/)
        // The runner never listened.
        const free = yield* Effect.scoped(Remote.listen({ ...schemas, handler: (t: string) => t.length, port }))
        assert.strictEqual(free.port, port)
      })
    )
  )

  it.effect("bad health options are refused with InvalidOptions, and nothing listens", () =>
    Effect.gen(function* () {
      const cases: ReadonlyArray<readonly [unknown, RegExp]> = [
        [7401, /health must be an object, got 7401/],
        [{}, /health\.port must be an integer from 0 to 65535, got undefined/],
        [{ port: -1 }, /health\.port must be an integer from 0 to 65535, got -1/],
        [{ port: 70000 }, /health\.port must be an integer from 0 to 65535, got 70000/],
        [{ port: "7401" }, /health\.port must be an integer from 0 to 65535, got 7401/],
        [{ port: 7401, host: "" }, /health\.host must be a host name or an address/],
        [{ port: 7400 }, /health\.port must be a port of its own, got the runner's port 7400/]
      ]
      for (const [health, reason] of cases) {
        const refused = yield* Effect.flip(
          Effect.scoped(
            Remote.listen({
              ...schemas,
              handler: (t: string) => t.length,
              port: 7400,
              health: health as Remote.ServeOptions<string, number>["health"]
            })
          )
        )
        assert.strictEqual(refused._tag, "InvalidOptions", String(health))
        assert.match((refused as { reason: string }).reason, reason)
      }
      const fromServe = yield* Effect.flip(
        Remote.serve({ ...schemas, handler: (t: string) => t.length, port: 7400, health: { port: -2 } })
      )
      assert.strictEqual(fromServe._tag, "InvalidOptions")
    })
  )
})
