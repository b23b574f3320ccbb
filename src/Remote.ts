/**
 * Workers on other machines: a runner process serves a handler on a TCP
 * port (`serve`), and a remote worker kind (`make`) sends it requests over
 * `effect/rpc`, one connection per worker incarnation. A remote worker is a
 * worker like the others: same outcomes, health, policies, restarts.
 *
 * | the runner, or the network                    | the caller gets                         | the worker                        |
 * |-----------------------------------------------|-----------------------------------------|-----------------------------------|
 * | answers, or fails with a domain error         | the response, or the error              | stays up                          |
 * | cannot decode the request                     | `InvalidRequest`                        | stays up                          |
 * | handler raises `WorkerCrash` or dies          | `WorkerCrash` (`Reported`, `Defect`)    | reconnects                        |
 * | closes the connection, is killed, resets it   | `WorkerCrash` (`ConnectionLost`)        | reconnects with its restart schedule |
 * | stops answering pings (frozen, partitioned)   | `WorkerCrash` (`Unresponsive`)          | reconnects with its restart schedule |
 * | cannot be reached, refuses the client         | (never reached)                         | `Restarting`: start failed (`StartFailed`) |
 * | drains (`SIGTERM`)                            | the answers of what it holds            | `Restarting`, no crash counted: no new request goes there; reconnects after the schedule's first delay |
 * | closes an idle connection (`idleTimeout`)     | nothing: no request was on it           | `Restarting`, no crash counted; reconnects after the schedule's first delay |
 * | runs a request past the runner's deadline     | `WorkerCrash` (`TimedOut`)              | reconnects                        |
 *
 * Every request in flight on a connection that is lost fails at once with
 * the same `WorkerCrash`. Such a request may have run on the runner, in full
 * or in part: retry only idempotent requests.
 *
 * @since 0.2.0
 */
import * as Net from "node:net"
import type * as Tls from "node:tls"
import { Duration, Effect, Exit, Scope, Stream } from "effect"
import type * as SocketServer from "effect/socket/SocketServer"
import type { Codec } from "./internal/codec.ts"
import { describe } from "./internal/describe.ts"
import * as Rules from "./internal/options.ts"
import * as RemoteClient from "./internal/remote/client.ts"
import * as RemoteDns from "./internal/remote/dns.ts"
import type { Gate } from "./internal/remote/gate.ts"
import * as Health from "./internal/remote/health.ts"
import * as Membership from "./internal/remote/membership.ts"
import * as RemoteOptions from "./internal/remote/options.ts"
import * as RemoteServer from "./internal/remote/server.ts"
import * as Termination from "./internal/remote/termination.ts"
import * as Wire from "./internal/remote/wire.ts"
import * as Settings from "./internal/settings.ts"
import * as supervisor from "./internal/supervisor.ts"
import * as WorkerSettings from "./internal/workerOptions.ts"
import type * as Runner from "./Runner.ts"
import type { InvalidRequest } from "./WireError.ts"
import type * as Worker from "./Worker.ts"
import { type DomainError, InvalidOptions } from "./WorkerError.ts"
import type { WorkerId } from "./WorkerId.ts"
import type { WorkerKind } from "./WorkerKind.ts"
import * as WorkerPool from "./WorkerPool.ts"

/**
 * Where a runner listens: `"host:port"`, with an IPv6 host in brackets
 * (`"[::1]:7400"`).
 *
 * @example
 * ```ts
 * import type { Remote } from "effect-worker-pool/remote"
 *
 * const runners: ReadonlyArray<Remote.Address> = ["10.0.0.7:7400", "10.0.0.8:7400"]
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export type Address = string

/**
 * Options of a remote worker kind.
 *
 * | option           | default       | meaning                                                                  |
 * |------------------|---------------|--------------------------------------------------------------------------|
 * | `request`        | (required)    | schema of a request; the runner must have the same                        |
 * | `response`       | (required)    | schema of a response                                                     |
 * | `error`          | `DomainError` | schema of the handler's domain errors                                    |
 * | `token`          | none          | the shared secret the runner was given                                   |
 * | `tls`            | none (plain TCP) | `node:tls` connection options (`ca`, `cert`, `key`, `servername`, ...): connect with TLS |
 * | `concurrency`    | `32`          | requests one connection holds at once; a worker of this kind gets it as its default `maxInFlight` |
 * | `connectTimeout` | `"2 seconds"` | bound on connecting and the handshake; past it the start failed          |
 * | `pingInterval`   | `"500 millis"`| how often the connection is pinged                                       |
 * | `pingTimeout`    | `"1 second"`  | silence after which the runner is `Unresponsive` (found within `pingTimeout` + `pingInterval`) |
 * | `maxFrameBytes`  | `1048576`     | longest request or answer on the wire; a longer request is `InvalidRequest`, a longer answer a `ProtocolFault`. The runner must have the same |
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import type { Remote } from "effect-worker-pool/remote"
 *
 * const options: Remote.Options<string, number, never> = {
 *   request: Schema.String,
 *   response: Schema.Number,
 *   token: "a long random secret",
 *   concurrency: 64,
 *   pingTimeout: "2 seconds"
 * }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface Options<Req, Resp, E> {
  readonly request: Codec<Req>
  readonly response: Codec<Resp>
  readonly error?: Codec<E> | undefined
  readonly token?: string | undefined
  readonly tls?: Tls.ConnectionOptions | undefined
  readonly concurrency?: number | undefined
  readonly connectTimeout?: Duration.Input | undefined
  readonly pingInterval?: Duration.Input | undefined
  readonly pingTimeout?: Duration.Input | undefined
  readonly maxFrameBytes?: number | undefined
}

/** `host` and `port` of an address, or why it is not one. */
const parseAddress = (address: Address): { readonly host: string; readonly port: number } => {
  if (typeof address !== "string") return Rules.invalid(`address must be "host:port", got ${describe(address)}`)
  const colon = address.lastIndexOf(":")
  const rawHost = address.slice(0, colon)
  const host = rawHost.startsWith("[") && rawHost.endsWith("]") ? rawHost.slice(1, -1) : rawHost
  const port = Number(address.slice(colon + 1))
  if (colon <= 0 || host === "" || !Number.isInteger(port) || port < 1 || port > 65535) {
    return Rules.invalid(`address must be "host:port" with a port from 1 to 65535, got ${address}`)
  }
  return { host: host.toLowerCase(), port }
}

/** An address in one spelling: the same runner is the same address. */
const normalise = (address: Address): Address => {
  const { host, port } = parseAddress(address)
  return Net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`
}

/**
 * A remote worker kind: each incarnation connects to the runner at
 * `address` (bounded by `connectTimeout`), passes its handshake (the token,
 * and a fingerprint of the schemas: a runner with other schemas refuses it,
 * a clear start failure), then sends requests over `effect/rpc`. A lost
 * connection fails the requests on it with `WorkerCrash` (`ConnectionLost`)
 * and the worker reconnects with its restart schedule; a runner that stops
 * answering pings is `Unresponsive`; a runner that drains ends the
 * incarnation without a crash (the requests it holds finish, and the worker
 * connects again after its schedule's first delay). Cancelling a request
 * (its caller left, its timeout passed) interrupts the handler on the
 * runner. With invalid options it returns a kind that `Worker.fromKind`
 * fails with `InvalidOptions`.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Worker, WorkerPool } from "effect-worker-pool"
 * import { Remote } from "effect-worker-pool/remote"
 *
 * const options = { request: Schema.String, response: Schema.Number, token: "a long random secret" }
 *
 * const program = Effect.scoped(
 *   Effect.gen(function* () {
 *     const pool = yield* WorkerPool.make({
 *       size: 2,
 *       worker: (id) => Worker.fromKind(id, Remote.make(id === 0 ? "10.0.0.7:7400" : "10.0.0.8:7400", options))
 *     })
 *     return yield* pool.dispatch("how long is this?")
 *   })
 * )
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = <Req, Resp, E = DomainError>(
  address: Address,
  options: Options<Req, Resp, E>
): WorkerKind<Req, Resp, E | InvalidRequest> =>
  Settings.checkedKind("remote", () => kindAt<Req, Resp, E>(parseAddress(address), decodeKindOptions(options)))

/** Reads a kind's options, once; throws `InvalidOptions` when they are invalid. */
const decodeKindOptions = Rules.decode(RemoteOptions.KindOptions)

/** The kind of the runner at `host` and `port`, with `settings`. */
const kindAt = <Req, Resp, E>(
  { host, port }: { readonly host: string; readonly port: number },
  settings: RemoteOptions.KindSettings<Req, Resp, E>,
  gate?: Gate
): WorkerKind<Req, Resp, E | InvalidRequest> => {
  const fingerprint = Wire.fingerprint(settings.request, settings.response, settings.error)
  return {
    name: "remote",
    spawn: RemoteClient.spawn({ ...settings, host, port, fingerprint, gate }),
    concurrency: settings.concurrency
  }
}

/**
 * Options of a runner.
 *
 * | option             | default         | meaning                                                                  |
 * |--------------------|-----------------|--------------------------------------------------------------------------|
 * | `request`, `response`, `error`, `handler` | as `Runner.Options` | the handler a subprocess runner would take, and its schemas |
 * | `port`             | (required)      | the TCP port (`0`: one the system chooses, see `listen`)                 |
 * | `host`             | `"127.0.0.1"`   | the address to bind; one off loopback needs `tls`                        |
 * | `token`            | none            | the shared secret a client must present; compared in constant time      |
 * | `tls`              | none            | `node:tls` server options (`key`, `cert`, `ca`, `requestCert`, ...)      |
 * | `concurrency`      | `64`            | requests the runner handles at once, from all clients; more wait         |
 * | `requestTimeout`   | none            | a request's deadline on the runner: past it the handler is interrupted and the client gets `WorkerCrash` (`TimedOut`) |
 * | `drainTimeout`     | `"30 seconds"`  | on `SIGTERM`, how long the requests held and the clients have to finish  |
 * | `handshakeTimeout` | `"5 seconds"`   | how long a new connection has to present its handshake (and, with `tls`, to pass the TLS handshake); past it the client is told `HandshakeTimeout` and let go |
 * | `maxFrameBytes`    | `1048576`       | longest request or answer on the wire; the clients must have the same; a longer frame from a client ends its connection, and is logged |
 * | `maxConnections`   | `1024`          | connections held at once, counted from their accept (handshakes included); one more is refused, `Full` |
 * | `failedHandshakes` | `{ limit: 10, window: "1 minute", backoff: "1 second", maxBackoff: "5 minutes" }` | after `limit` failed handshakes from one address (each within `window` of the last), its connections are refused at once (`RateLimited`) for `backoff`, doubled by each further failure up to `maxBackoff`; a good handshake forgets them. `limit: Infinity`: no limit |
 * | `idleTimeout`      | none            | an admitted connection with no request for this long is closed; its client is told first, and reconnects without a crash |
 * | `refusalLogInterval` | `"1 minute"`  | refusals are logged once per source address per interval (the first at once, the rest as one count at its end) |
 * | `health`           | none            | `{ port, host? }`: a health endpoint on a port of its own (`host` `"127.0.0.1"` unless told), `GET /ready` 200 while the runner accepts requests and 503 before it listens or once it drains, `GET /live` 200 while it serves |
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import type { Remote } from "effect-worker-pool/remote"
 *
 * const options: Remote.ServeOptions<string, number, never, never> = {
 *   request: Schema.String,
 *   response: Schema.Number,
 *   handler: (text) => Effect.succeed(text.length),
 *   port: 7400,
 *   token: "a long random secret",
 *   concurrency: 16,
 *   requestTimeout: "1 minute"
 * }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface ServeOptions<Req, Resp, E = DomainError, R = never> extends Runner.Options<Req, Resp, E, R> {
  readonly port: number
  readonly host?: string | undefined
  readonly token?: string | undefined
  readonly tls?: Tls.TlsOptions | undefined
  readonly concurrency?: number | undefined
  readonly requestTimeout?: Duration.Input | undefined
  readonly drainTimeout?: Duration.Input | undefined
  readonly handshakeTimeout?: Duration.Input | undefined
  readonly maxFrameBytes?: number | undefined
  readonly maxConnections?: number | undefined
  readonly failedHandshakes?:
    | {
        readonly limit?: number | undefined
        readonly window?: Duration.Input | undefined
        readonly backoff?: Duration.Input | undefined
        readonly maxBackoff?: Duration.Input | undefined
      }
    | undefined
  readonly idleTimeout?: Duration.Input | undefined
  readonly refusalLogInterval?: Duration.Input | undefined
  readonly health?: { readonly port: number; readonly host?: string | undefined } | undefined
}

/**
 * A runner that listens: where, and how to drain it.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type { Remote } from "effect-worker-pool/remote"
 *
 * declare const runner: Remote.Listening
 *
 * const stop = Effect.andThen(Effect.log(`draining ${runner.host}:${runner.port}`), runner.drain("10 seconds"))
 * const probes = runner.health === undefined ? "none" : `http://${runner.health.host}:${runner.health.port}/ready`
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface Listening {
  readonly host: string
  readonly port: number
  /**
   * Stops accepting clients, tells the connected ones (which route new
   * requests elsewhere), and waits until the requests held have finished and
   * the clients have left, at most `timeout`.
   */
  readonly drain: (timeout: Duration.Input) => Effect.Effect<void>
  /** Where its health endpoint listens (the port the system chose for `0`), when it has one. */
  readonly health: { readonly host: string; readonly port: number } | undefined
}

/** `f`'s value, or its throw of `InvalidOptions` as a failure. */
const checked = <A>(f: () => A): Effect.Effect<A, InvalidOptions> =>
  Effect.suspend(() => {
    try {
      return Effect.succeed(f())
    } catch (error) {
      return error instanceof InvalidOptions ? Effect.fail(error) : Effect.die(error)
    }
  })

/** Reads a pool's options, once, or fails with `InvalidOptions`. */
const decodePoolOptions = Rules.decodeEffect(RemoteOptions.PoolOptions)

/** Reads a runner's options, once, or fails with `InvalidOptions`. */
const decodeServeOptions = Rules.decodeEffect(RemoteOptions.ServeOptions)

/** The runner, behind its health endpoint when it has one: the endpoint is up first, ready once the runner listens. */
const start = <Req, Resp, E, R>(settings: RemoteOptions.ServeSettings<Req, Resp, E, R>) =>
  Effect.gen(function* () {
    let runner: RemoteServer.Listening | undefined
    const health =
      settings.health === undefined
        ? undefined
        : yield* Health.listen(settings.health, () =>
            runner === undefined ? "starting" : runner.draining() ? "draining" : "ready"
          )
    runner = yield* RemoteServer.listen(settings)
    return { runner, health }
  })

/**
 * Starts a runner listening, for as long as the scope lives (its close stops
 * the listener and the connections, interrupting what they run, and its
 * health endpoint). Use
 * {@link serve} for a runner process; `listen` is for a runner embedded in
 * a program, or one on a port the system chooses (`port: 0`).
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Remote } from "effect-worker-pool/remote"
 *
 * const program = Effect.scoped(
 *   Effect.gen(function* () {
 *     const runner = yield* Remote.listen({
 *       request: Schema.Number,
 *       response: Schema.Number,
 *       handler: (n) => Effect.succeed(n * 2),
 *       port: 0
 *     })
 *     const kind = Remote.make(`${runner.host}:${runner.port}`, { request: Schema.Number, response: Schema.Number })
 *     return kind.name
 *   })
 * )
 * ```
 *
 * @since 0.2.0
 * @category running
 */
export const listen = <Req, Resp, E = DomainError, R = never>(
  options: ServeOptions<Req, Resp, E, R>
): Effect.Effect<Listening, InvalidOptions | SocketServer.SocketServerError, R | Scope.Scope> =>
  Effect.flatMap(
    decodeServeOptions(options) as Effect.Effect<RemoteOptions.ServeSettings<Req, Resp, E, R>, InvalidOptions>,
    (settings) =>
      Effect.map(start(settings), ({ runner, health }) => ({
        host: runner.host,
        port: runner.port,
        drain: (timeout: Duration.Input) =>
          Effect.suspend(() => Effect.asVoid(runner.drain(Duration.fromInputUnsafe(timeout)))),
        health
      }))
  )

/**
 * Serves `handler` on `host:port` until the process gets `SIGTERM` (or
 * `SIGINT`), then drains: no new clients, the connected ones are told and
 * route new requests elsewhere, the requests held finish (within
 * `drainTimeout`; past it they are interrupted), and it completes. Refused
 * clients (a wrong token, other schemas) are logged, once per source address
 * per `refusalLogInterval` with a count; the runner goes on. Its defences
 * (`maxConnections`, `failedHandshakes`, `idleTimeout`, ...) are in
 * {@link ServeOptions}; its metrics in `RemoteMetrics`.
 *
 * `serve` is a runner process's whole program, and drains however it is run:
 *
 * - Under `NodeRuntime.runMain`, whose own handler interrupts the program on
 *   the same signal, `serve` hears the signal first and drains before the
 *   interruption goes on; when the drain is over and the listener closed, it
 *   ends the process with code 0 itself (left to `runMain`, the interruption
 *   would end it with code 130, as if the stop had failed).
 * - Under `Effect.runFork`, it completes after the drain, and the program
 *   goes on.
 * - Interrupted without a signal, it drains too, then the interruption goes on.
 *
 * A second `SIGTERM` or `SIGINT` during the drain stops it at once: the
 * connections close, the requests still held are interrupted (their callers
 * get `WorkerCrash`), and `serve` completes without ending the process
 * (under `runMain`, the interruption ends it with code 130).
 *
 * @example
 * ```ts no-run
 * // runner.ts, started on each machine with: node runner.ts
 * import { NodeRuntime } from "@effect/platform-node"
 * import { Effect, Schema } from "effect"
 * import { Remote } from "effect-worker-pool/remote"
 *
 * NodeRuntime.runMain(
 *   Remote.serve({
 *     request: Schema.String,
 *     response: Schema.Number,
 *     handler: (text) => Effect.succeed(text.length),
 *     port: 7400,
 *     token: process.env.RUNNER_TOKEN
 *   })
 * )
 * ```
 *
 * @since 0.2.0
 * @category running
 */
export const serve = <Req, Resp, E = DomainError, R = never>(
  options: ServeOptions<Req, Resp, E, R>
): Effect.Effect<void, InvalidOptions | SocketServer.SocketServerError, R> =>
  // Interruptible only while it waits for a signal: an interruption then starts the drain, which nothing cuts
  // but a second signal or drainTimeout.
  Effect.uninterruptibleMask((restore) =>
    Effect.gen(function* () {
      const settings: RemoteOptions.ServeSettings<Req, Resp, E, R> = yield* decodeServeOptions(options)
      const stopped = yield* Effect.scoped(
        Effect.gen(function* () {
          // Listened for before the port opens: a SIGTERM right after start drains too.
          const signals = yield* Termination.listen
          const { runner: listening, health } = yield* start(settings)
          const annotate = Effect.annotateLogs({ host: listening.host, port: listening.port })
          yield* Effect.logInfo("remote runner listening").pipe(
            Effect.annotateLogs(health === undefined ? {} : { health: `${health.host}:${health.port}` }),
            annotate
          )
          yield* Effect.exit(restore(signals.first))
          const signal = signals.received()
          yield* Effect.logInfo("remote runner draining").pipe(
            Effect.annotateLogs(signal === undefined ? { interrupted: true } : { signal }),
            annotate
          )
          const drained = yield* Effect.raceFirst(
            listening.drain(settings.drainTimeout),
            Effect.as(signals.second, "cut" as const)
          )
          if (drained === true) {
            yield* Effect.logInfo("remote runner drained").pipe(annotate)
          } else if (drained === false) {
            yield* Effect.logWarning("remote runner drain timed out: the requests still held are interrupted").pipe(
              Effect.annotateLogs({ drainTimeout: Duration.format(settings.drainTimeout) }),
              annotate
            )
          } else {
            yield* Effect.logWarning("remote runner stopping at once: a second signal").pipe(annotate)
          }
          return { signal, cut: drained === "cut" }
        })
      )
      // Interrupted as well as signalled: runMain's handler heard the same signal. The drain is over and the
      // listener closed; the pending interruption would report the clean stop as a failure (code 130).
      const interrupted = Exit.hasInterrupts(yield* Effect.exit(restore(Effect.void)))
      if (interrupted && stopped.signal !== undefined && !stopped.cut) {
        yield* Effect.sync(() => globalThis.process.exit(0))
      }
    })
  )

/**
 * Options of {@link pool}: the kind's {@link Options}, and
 *
 * | option      | default | meaning                                                                 |
 * |-------------|---------|-------------------------------------------------------------------------|
 * | `addresses` | (required) | the runners: a list, or a `Stream` of lists that adds and removes workers as it changes, such as {@link dns}'s |
 * | `worker`    | the defaults | each worker's options (`Worker.WorkerOptions`: restart schedule, `maxInFlight`) |
 * | `pool`      | the defaults | the pool's options (`WorkerPool.Options` without `size` and `worker`) |
 * | `firstId`   | `0`     | the id of the first address; the next ones count up from it             |
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import type { Remote } from "effect-worker-pool/remote"
 *
 * const options: Remote.PoolOptions<string, number, never> = {
 *   addresses: ["10.0.0.7:7400", "10.0.0.8:7400"],
 *   request: Schema.String,
 *   response: Schema.Number,
 *   pool: { timeout: "30 seconds" }
 * }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface PoolOptions<Req, Resp, E> extends Options<Req, Resp, E> {
  readonly addresses: ReadonlyArray<Address> | Stream.Stream<ReadonlyArray<Address>, InvalidOptions>
  readonly worker?: Worker.WorkerOptions | undefined
  readonly pool?: Omit<WorkerPool.Options<Req, Resp, E | InvalidRequest, never, never>, "size" | "worker"> | undefined
  readonly firstId?: number | undefined
}

/**
 * A pool with its membership: the pool, and the id of each runner's worker.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type { Remote } from "effect-worker-pool/remote"
 *
 * declare const remote: Remote.RemotePool<string, number, never>
 *
 * const idOfFirst = Effect.sync(() => remote.workerIds().get("10.0.0.7:7400"))
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface RemotePool<Req, Resp, E> {
  readonly pool: WorkerPool.WorkerPool<Req, Resp, E | InvalidRequest>
  /** Every address seen so far (in the form `host:port`), with its worker's id; an address keeps its id. */
  readonly workerIds: () => ReadonlyMap<Address, WorkerId>
  /** The addresses that have a worker in the pool now. */
  readonly addresses: () => ReadonlySet<Address>
}

/**
 * A pool of remote workers, one per runner address. With a list, the
 * workers are there when it succeeds (each `Healthy`, or `Restarting` if its
 * runner could not be reached: the pool starts anyway). With a `Stream` of
 * lists, the first list is in place when it succeeds and each later one adds
 * the workers of new addresses and removes (gracefully) those of addresses
 * that left: such a worker takes no new request, what it holds finishes, then
 * it is removed. An address keeps its `WorkerId`, also when it leaves and
 * comes back. Invalid options (the kind's, the workers' or the pool's) fail
 * it with `InvalidOptions` before any worker starts; an address that is not
 * `host:port` is logged and skipped.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Remote } from "effect-worker-pool/remote"
 *
 * const program = Effect.scoped(
 *   Effect.gen(function* () {
 *     const { pool } = yield* Remote.pool({
 *       addresses: ["10.0.0.7:7400", "10.0.0.8:7400"],
 *       request: Schema.String,
 *       response: Schema.Number,
 *       token: "a long random secret"
 *     })
 *     return yield* pool.dispatch("how long is this?")
 *   })
 * )
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const pool = <Req, Resp, E = DomainError>(
  options: PoolOptions<Req, Resp, E>
): Effect.Effect<RemotePool<Req, Resp, E>, InvalidOptions, Scope.Scope> =>
  Effect.gen(function* () {
    const settings: RemoteOptions.PoolSettings<Req, Resp, E> = yield* decodePoolOptions(options)
    // Each worker's options, read once for all: their default maxInFlight is the kind's concurrency.
    const workerSettings = yield* Effect.fromResult(WorkerSettings.decode(settings.concurrency, settings.worker))
    const { addresses } = settings
    // A Remote.dns stream among the addresses re-resolves early when a worker loses its runner.
    const refresh = RemoteDns.makeRefresh()
    const sets: Stream.Stream<ReadonlyArray<Address>, InvalidOptions> = Stream.isStream(addresses)
      ? (addresses as Stream.Stream<ReadonlyArray<Address>, InvalidOptions>).pipe(
          Stream.provideService(RemoteDns.Refresh, refresh.service)
        )
      : Stream.make(addresses as ReadonlyArray<Address>)
    if (!Stream.isStream(addresses)) {
      yield* checked(() => (addresses as ReadonlyArray<Address>).forEach(normalise))
    }
    // The workers' scope is made first, so closed last: the pool drains and
    // stops its workers before the membership's scope goes.
    const workersScope = yield* Scope.fork(yield* Scope.Scope, "sequential")
    const made = yield* WorkerPool.make<Req, Resp, E | InvalidRequest>(settings.pool)
    const membership = yield* Membership.follow({
      pool: made,
      sets,
      worker: (id, address, gate) =>
        Effect.suspend(() => {
          const kind = Settings.checkedKind("remote", () => kindAt<Req, Resp, E>(parseAddress(address), settings, gate))
          return kind.invalid === undefined ? supervisor.make(id, kind, workerSettings) : Effect.fail(kind.invalid)
        }),
      firstId: settings.firstId,
      normalise: (address) => {
        try {
          return normalise(address)
        } catch {
          return address
        }
      }
    }).pipe(Scope.provide(workersScope))
    if (Stream.isStream(addresses)) {
      // A worker of a current address that crashed, failed to start or saw its runner drain.
      const idsNow = membership.ids
      yield* made.changes.pipe(
        Stream.runForEach(([id, health]) =>
          Effect.sync(() => {
            if (health.state !== "Restarting") return
            for (const address of membership.current()) if (idsNow().get(address) === id) return refresh.ask()
          })
        ),
        Effect.forkIn(workersScope)
      )
    }
    return { pool: made, workerIds: membership.ids, addresses: membership.current }
  })

/**
 * Options of {@link dns}.
 *
 * | option        | default        | meaning                                                                  |
 * |---------------|----------------|--------------------------------------------------------------------------|
 * | `port`        | none           | the runners' port: the name's A/AAAA records are used. Without it, the name is an SRV name (`_service._proto.name`) and each record gives a target and its port |
 * | `family`      | A, else AAAA   | `4`: A records only; `6`: AAAA records only. By default A records, or AAAA records when the name (or an SRV target) has no A records |
 * | `servers`     | the system's   | the DNS servers to ask (`"10.96.0.10"`, `"10.96.0.10:53"`, `"[::1]:5353"`), as `Resolver.setServers` takes them |
 * | `interval`    | `"30 seconds"` | time between two resolutions                                             |
 * | `minInterval` | `"5 seconds"`  | the shortest time between two resolutions: the floor of a short TTL, of an early re-resolution after a lost runner, and the first retry after a failure |
 * | `timeout`     | `"2 seconds"`  | how long one try of a DNS query waits for its answer (a query is tried twice) |
 *
 * @example
 * ```ts
 * import type { Remote } from "effect-worker-pool/remote"
 *
 * const options: Remote.DnsOptions = { port: 7400, interval: "10 seconds", servers: ["10.96.0.10"] }
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export interface DnsOptions {
  readonly port?: number | undefined
  readonly family?: 4 | 6 | undefined
  readonly servers?: ReadonlyArray<string> | undefined
  readonly interval?: Duration.Input | undefined
  readonly minInterval?: Duration.Input | undefined
  readonly timeout?: Duration.Input | undefined
}

/** Reads the options of a DNS name, once, or fails with `InvalidOptions`. */
const decodeDnsOptions = Rules.decodeResult(RemoteOptions.DnsOptions)

/** Whether `name` is a DNS name: dot-separated labels of letters, digits, `-` and `_`, a final dot allowed. */
const isDnsName = (name: string): boolean =>
  name.length <= 254 &&
  name
    .replace(/\.$/, "")
    .split(".")
    .every((label) => /^[A-Za-z0-9_-]{1,63}$/.test(label))

/**
 * The runners behind a DNS name, for {@link pool}'s `addresses`: a stream
 * of address sets that re-resolves the name and emits a set only when it
 * changed. With a `port`, the name's A (or AAAA) records are the runners
 * (a Kubernetes headless Service publishes one per ready pod). Without
 * one, the name is an SRV name (`_service._proto.name`, a Kubernetes named
 * port): the records of the lowest priority that has a target with
 * addresses are used (a target's addresses, each with the record's port),
 * the next priority only when none of them has; weights are not used (the
 * pool's policy balances the load by the workers' health and load).
 *
 * It resolves at once, then every `interval`, sooner when the shortest TTL
 * of the answer runs out, but never sooner than `minInterval` after the last
 * resolution. Given to {@link pool}, it also re-resolves as soon as
 * `minInterval` allows when a worker of the pool crashes, fails to start, or
 * its runner drains. A name that does not exist (NXDOMAIN) or has no records
 * (NODATA) has no runners: the set is empty and the workers leave. A failed
 * resolution (a timeout, SERVFAIL, REFUSED) keeps the last set; it is tried
 * again after `minInterval`, then less often, up to every `interval`, and is
 * logged once per streak of failures, and once when it ends. When the very
 * first resolution fails, the set is empty until one succeeds. Invalid
 * options make a stream that fails with `InvalidOptions` (and `pool` with
 * it).
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Remote } from "effect-worker-pool/remote"
 *
 * const program = Effect.scoped(
 *   Effect.gen(function* () {
 *     const { pool } = yield* Remote.pool({
 *       addresses: Remote.dns("runners.default.svc.cluster.local", { port: 7400 }),
 *       request: Schema.String,
 *       response: Schema.Number
 *     })
 *     return yield* pool.dispatch("how long is this?")
 *   })
 * )
 * ```
 *
 * @since 0.3.0
 * @category constructors
 */
export const dns = (name: string, options?: DnsOptions): Stream.Stream<ReadonlyArray<Address>, InvalidOptions> => {
  if (typeof name !== "string" || !isDnsName(name)) {
    return Stream.fail(new InvalidOptions({ reason: `name must be a DNS name, got ${describe(name)}` }))
  }
  const decoded = decodeDnsOptions(options)
  if (decoded._tag === "Failure") return Stream.fail(decoded.failure)
  const settings = decoded.success
  if (settings.port === undefined && !/^_[^.]+\._[^.]+\.[^.]/.test(name)) {
    return Stream.fail(
      new InvalidOptions({
        reason: `name ${name} needs a port for its A/AAAA records, or must be an SRV name (_service._proto.name)`
      })
    )
  }
  return RemoteDns.addresses({ ...settings, name })
}
