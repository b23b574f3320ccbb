/**
 * An HTTP service that hashes passwords on a pool of worker threads:
 * `POST /hash` with `{ "password": "..." }`, and `GET /health`. It listens on
 * the port of the environment variable PORT (3000 by default; 0 picks a free
 * one).
 */
import { createServer } from "node:http"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Config, Effect, Layer } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { ScriptPool } from "effect-worker-pool"
import { Hashing, HashRequest } from "./hash.ts"

/** The pool: two threads running the worker script. */
class Hasher extends ScriptPool.Service<Hasher>()("app/Hasher", {
  thread: new URL("./hash-worker.ts", import.meta.url),
  ...Hashing,
  size: 2,
  // A hash that runs longer is a 504, and its thread is replaced.
  timeout: "5 seconds",
  // A request waits at most this long for a free thread (504 after it) ...
  queueTimeout: "2 seconds",
  // ... and at most 32 wait: beyond that a request is refused at once (429).
  queueCapacity: 32,
  queueStrategy: "fail"
}) {}

/** The status of each way a dispatch can fail. */
const statusOf = (error: ScriptPool.DispatchError): number => {
  switch (error._tag) {
    case "DomainError":
    case "InvalidRequest":
      return 400
    case "PoolBusy":
      return 429
    case "WorkerCrash":
    case "PoolShutdown":
      return 503
    case "RequestTimeout":
    case "QueueTimeout":
      return 504
  }
}

const failed = (status: number, error: { readonly _tag: string; readonly message: string }) =>
  HttpServerResponse.jsonUnsafe({ error: error._tag, message: error.message }, { status })

const HashRoute = HttpRouter.add(
  "POST",
  "/hash",
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.schemaBodyJson(HashRequest)
    const hasher = yield* Hasher
    const answer = yield* hasher.dispatch(request)
    return HttpServerResponse.jsonUnsafe(answer)
  }).pipe(
    Effect.catchTags({
      // The body is not JSON, or not a HashRequest.
      SchemaError: (error) => Effect.succeed(failed(400, { _tag: "BadRequest", message: error.message })),
      HttpServerError: (error) => Effect.succeed(failed(400, { _tag: "BadRequest", message: error.message }))
    }),
    Effect.catch((error) => Effect.succeed(failed(statusOf(error), error)))
  )
)

const HealthRoute = HttpRouter.add(
  "GET",
  "/health",
  Effect.gen(function* () {
    const hasher = yield* Hasher
    const workers = (yield* hasher.health).map(([id, health]) => ({ id, ...health }))
    const up = workers.some((worker) => worker.state === "Healthy")
    return HttpServerResponse.jsonUnsafe({ workers, spares: yield* hasher.spares }, { status: up ? 200 : 503 })
  })
)

/** The routes, served over Node's HTTP server, with the pool they use. */
const ServerLive = HttpRouter.serve(Layer.mergeAll(HashRoute, HealthRoute)).pipe(
  // After `serve`: the routes' need for Hasher is a plain requirement only from here on.
  Layer.provide(Hasher.layer),
  Layer.provide(NodeHttpServer.layerConfig(createServer, { port: Config.Int("PORT").pipe(Config.withDefault(3000)) }))
)

NodeRuntime.runMain(Layer.launch(ServerLive))
