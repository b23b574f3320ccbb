/**
 * Remote workers over TLS, with certificates made for the test: a client
 * that trusts the runner's certificate (`ca`) is served; one that does not is
 * refused with a clear start failure; a runner that asks for client
 * certificates refuses a client without one, and goes on serving.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schedule, Schema } from "effect"
import { type Worker, WorkerId } from "effect-worker-pool"
import * as Remote from "../src/Remote.ts"
import * as WorkerModule from "../src/Worker.ts"
import { selfSigned } from "./fixtures/tls.ts"

const schemas = { request: Schema.String, response: Schema.Number } as const
/**
 * A client's options: a connectTimeout well past what a busy machine's TLS handshake takes, so
 * that only the runner's answer, never the clock, decides how a start ends.
 */
const client = { ...schemas, connectTimeout: "20 seconds" } as const
/** A refused client is not started again within the test: it stays `Restarting`, with the refusal as its last crash. */
const once = { restart: Schedule.spaced("1 hour") }

const lastCrash = <Req, Resp, E>(worker: Worker.Worker<Req, Resp, E>) =>
  Effect.map(worker.health, (health) => {
    assert.strictEqual(health.state, "Restarting")
    return health.lastCrash!.reason
  })

describe("Remote over TLS", { timeout: 30_000 }, () => {
  it.live("a client that trusts the runner's certificate is served; one that does not is refused", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const runnerPair = selfSigned("runner")
        const runner = yield* Remote.listen({
          ...schemas,
          handler: (s: string) => Effect.succeed(s.length),
          port: 0,
          tls: { key: runnerPair.key, cert: runnerPair.cert }
        })
        const address = `127.0.0.1:${runner.port}`
        const trusting = yield* WorkerModule.fromKind(
          WorkerId.make(0),
          Remote.make(address, { ...client, tls: { ca: runnerPair.cert } })
        )
        assert.strictEqual(yield* trusting.dispatch("over tls"), 8, `certificate from ${runnerPair.source}`)

        const distrusting = yield* WorkerModule.fromKind(
          WorkerId.make(1),
          Remote.make(address, { ...client, tls: {} }),
          once
        )
        assert.match(
          yield* lastCrash(distrusting),
          /^could not connect to runner 127\.0\.0\.1:\d+: .*self[- ]signed certificate/
        )
        // Plain TCP to a TLS runner does not get through either.
        const plain = yield* WorkerModule.fromKind(WorkerId.make(2), Remote.make(address, client), once)
        assert.match(
          yield* lastCrash(plain),
          /^could not connect to runner 127\.0\.0\.1:\d+: the connection was closed during the handshake/
        )
        assert.strictEqual(yield* trusting.dispatch("still"), 5)
      })
    )
  )

  it.live("a runner that asks for client certificates refuses a client without one", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const runnerPair = selfSigned("runner")
        const clientPair = selfSigned("client")
        const runner = yield* Remote.listen({
          ...schemas,
          handler: (s: string) => Effect.succeed(s.length),
          port: 0,
          tls: {
            key: runnerPair.key,
            cert: runnerPair.cert,
            ca: clientPair.cert,
            requestCert: true,
            rejectUnauthorized: true
          }
        })
        const address = `127.0.0.1:${runner.port}`
        const anonymous = yield* WorkerModule.fromKind(
          WorkerId.make(0),
          Remote.make(address, { ...client, tls: { ca: runnerPair.cert } }),
          once
        )
        assert.match(
          yield* lastCrash(anonymous),
          /^could not connect to runner 127\.0\.0\.1:\d+: .*certificate required/
        )
        const known = yield* WorkerModule.fromKind(
          WorkerId.make(1),
          Remote.make(address, {
            ...client,
            tls: { ca: runnerPair.cert, key: clientPair.key, cert: clientPair.cert }
          })
        )
        // The runner logged the refusal and goes on serving.
        assert.strictEqual(yield* known.dispatch("mutual"), 6)
      })
    )
  )
})
