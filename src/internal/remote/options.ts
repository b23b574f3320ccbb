/**
 * The Schemas of the remote kind's options (`Remote.Options`, and
 * `Remote.PoolOptions` around them) and of a runner's
 * (`Remote.ServeOptions`): every option's rule and default, decoded once by
 * `Remote.make`, `Remote.pool`, `Remote.listen` and `Remote.serve`.
 */
import * as Net from "node:net"
import type * as Tls from "node:tls"
import { Duration, Schema, Stream } from "effect"
import type * as Worker from "../../Worker.ts"
import { DomainError } from "../../WorkerError.ts"
import type * as WorkerPool from "../../WorkerPool.ts"
import type { Codec } from "../codec.ts"
import { describe } from "../describe.ts"
import * as Options from "../options.ts"
import type * as RemoteClient from "./client.ts"
import type * as Health from "./health.ts"
import type * as RemoteServer from "./server.ts"

/** The longest frame (a request or an answer as one JSON line) by default: 1 MiB. */
export const defaultMaxFrameBytes = 1024 * 1024

/** The schemas of a handler: the same on both ends. */
const schemas = {
  request: Options.required(Options.schema<Codec<any>>("request")),
  response: Options.required(Options.schema<Codec<any>>("response")),
  error: Options.withDefault(Options.schema<Codec<any>>("error"), DomainError)
}

const token = Options.optional(
  Options.refine<string>(
    (u) => typeof u === "string" && u !== "",
    () => "token must be a non-empty string"
  )
)

const maxFrameBytes = Options.withDefault(Options.positiveInt("maxFrameBytes"), defaultMaxFrameBytes)

/** The fields of `Remote.Options`, with their defaults. */
const kindFields = {
  ...schemas,
  token,
  tls: Options.optional(Options.any<Tls.ConnectionOptions>()),
  concurrency: Options.withDefault(Options.positiveInt("concurrency"), 32),
  connectTimeout: Options.withDefault(Options.duration("connectTimeout"), "2 seconds"),
  pingInterval: Options.withDefault(Options.interval("pingInterval"), "500 millis"),
  pingTimeout: Options.withDefault(Options.duration("pingTimeout"), "1 second"),
  maxFrameBytes
}

const pingTimeoutOverInterval = Options.tie<{
  readonly pingInterval: Duration.Duration
  readonly pingTimeout: Duration.Duration
}>(
  (o) => Duration.toMillis(o.pingTimeout) >= Duration.toMillis(o.pingInterval),
  (o) =>
    `pingTimeout must be at least pingInterval, got ${Duration.format(o.pingTimeout)} and ${Duration.format(o.pingInterval)}`
)

/** `Remote.Options`, decoded: a client's settings but where it connects, and the kind's concurrency. */
export interface KindSettings<Req = any, Resp = any, E = any>
  extends Omit<RemoteClient.Settings<Req, Resp, E>, "host" | "port" | "fingerprint"> {
  readonly concurrency: number
}

/** `Remote.Options`, decoded to a remote kind's settings. */
export const KindOptions: Options.Rule<KindSettings> = Options.options(
  Schema.Struct(kindFields).check(pingTimeoutOverInterval)
)

/** `Remote.PoolOptions`, decoded: the kind's settings, and the pool's own options. */
export interface PoolSettings<Req = any, Resp = any, E = any> extends KindSettings<Req, Resp, E> {
  readonly addresses: ReadonlyArray<string> | Stream.Stream<ReadonlyArray<string>>
  /** Each worker's options, decoded by the pool (their default `maxInFlight` is the kind's `concurrency`). */
  readonly worker: Worker.WorkerOptions | undefined
  /** The pool's options, decoded by `WorkerPool.make`. */
  readonly pool: Omit<WorkerPool.Options<Req, Resp, any, never, never>, "size" | "worker">
  readonly firstId: number
}

/** `Remote.PoolOptions`, decoded. */
export const PoolOptions: Options.Rule<PoolSettings> = Options.options(
  Schema.Struct({
    ...kindFields,
    addresses: Options.required(
      Options.rule<PoolSettings["addresses"]>(
        "addresses",
        "a list of addresses or a Stream of lists",
        (u) => Array.isArray(u) || Stream.isStream(u)
      )
    ),
    worker: Options.optional(Options.any<Worker.WorkerOptions>()),
    pool: Options.withDefault(Options.any<PoolSettings["pool"]>(), {}),
    firstId: Options.withDefault(Options.nonNegativeInt("firstId"), 0)
  }).check(pingTimeoutOverInterval)
)

/** Whether `host` names the loopback interface. */
const isLoopback = (host: string): boolean =>
  host === "localhost" || host === "::1" || (Net.isIPv4(host) && host.startsWith("127."))

/** `Remote.ServeOptions`, decoded: a runner's settings, and how long it drains on `SIGTERM`. */
export interface ServeSettings<Req = any, Resp = any, E = any, R = any> extends RemoteServer.Settings<Req, Resp, E, R> {
  readonly drainTimeout: Duration.Duration
  /** Where its health endpoint listens, if it has one. */
  readonly health: Health.Settings | undefined
}

/** A TCP port, or `0` for one the system chooses. */
const tcpPort = (name: string) =>
  Options.refine<number>(
    (u) => Number.isInteger(u) && (u as number) >= 0 && (u as number) <= 65535,
    (u) => `${name} must be an integer from 0 to 65535, got ${describe(u)}`
  )

/** The runner's health endpoint: a port of its own, on loopback unless told. */
const health = Options.optional(
  Options.object(
    "health",
    Schema.Struct({
      port: Options.required(tcpPort("health.port")),
      host: Options.withDefault(
        Options.refine<string>(
          (u) => typeof u === "string" && u !== "",
          (u) => `health.host must be a host name or an address, got ${describe(u)}`
        ),
        "127.0.0.1"
      )
    })
  )
)

const healthPortOwn = Options.tie<{ readonly port: number; readonly health: Health.Settings | undefined }>(
  (o) => o.health === undefined || o.health.port === 0 || o.health.port !== o.port,
  (o) => `health.port must be a port of its own, got the runner's port ${o.port}`
)

/** `Remote.ServeOptions`, decoded to a runner's settings. */
export const ServeOptions: Options.Rule<ServeSettings> = Options.options(
  Schema.Struct({
    host: Options.withDefault(
      Options.refine<string>(
        (u) => typeof u === "string" && u !== "",
        () => "host must be a host name or an address"
      ),
      "127.0.0.1"
    ),
    port: Options.required(
      Options.refine<number>(
        (u) => Number.isInteger(u) && (u as number) >= 0 && (u as number) <= 65535,
        (u) => `port must be an integer from 0 to 65535, got ${describe(u)}`
      )
    ),
    handler: Options.required(
      Options.refine<RemoteServer.Settings<any, any, any, any>["handler"]>(
        (u) => typeof u === "function",
        () => "handler must be a function"
      )
    ),
    ...schemas,
    token,
    tls: Options.optional(Options.any<Tls.TlsOptions>()),
    concurrency: Options.withDefault(Options.positiveInt("concurrency"), 64),
    requestTimeout: Options.optional(Options.duration("requestTimeout")),
    drainTimeout: Options.withDefault(Options.duration("drainTimeout"), "30 seconds"),
    handshakeTimeout: Options.withDefault(Options.duration("handshakeTimeout"), "5 seconds"),
    maxFrameBytes,
    health
  }).check(
    healthPortOwn,
    Options.tie(
      (o) => isLoopback(o.host) || o.tls !== undefined,
      (o) =>
        `host ${o.host} is not a loopback address: a runner listens off loopback only with tls (its key and cert), so that its traffic is encrypted`
    )
  )
)
