/**
 * The Schemas of the remote kind's options (`Remote.Options`, and
 * `Remote.PoolOptions` around them) and of a runner's
 * (`Remote.ServeOptions`), and of DNS membership (`Remote.DnsOptions`): every
 * option's rule and default, decoded once by `Remote.make`, `Remote.pool`,
 * `Remote.listen`, `Remote.serve` and `Remote.dns`.
 */
import * as Dns from "node:dns"
import * as Net from "node:net"
import type * as Tls from "node:tls"
import { Duration, Schema, Stream } from "effect"
import type * as Worker from "../../Worker.ts"
import { DomainError, type InvalidOptions } from "../../WorkerError.ts"
import type * as WorkerPool from "../../WorkerPool.ts"
import type { Codec } from "../codec.ts"
import { describe } from "../describe.ts"
import * as Options from "../options.ts"
import type * as RemoteClient from "./client.ts"
import type * as RemoteDns from "./dns.ts"
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
  readonly addresses: ReadonlyArray<string> | Stream.Stream<ReadonlyArray<string>, InvalidOptions>
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

/** The connections a runner holds at most by default. */
export const defaultMaxConnections = 1024

/** `failedHandshakes` of `Remote.ServeOptions`: the limit on failed handshakes per source address. */
const FailedHandshakes = Schema.Struct({
  limit: Options.withDefault(
    Options.rule<number>(
      "failedHandshakes.limit",
      "a positive integer or Infinity",
      (u) => u === Infinity || (Number.isSafeInteger(u) && (u as number) >= 1)
    ),
    10
  ),
  window: Options.withDefault(Options.interval("failedHandshakes.window"), "1 minute"),
  backoff: Options.withDefault(Options.interval("failedHandshakes.backoff"), "1 second"),
  maxBackoff: Options.withDefault(Options.interval("failedHandshakes.maxBackoff"), "5 minutes")
}).check(
  Options.tie(
    (o) => Duration.toMillis(o.maxBackoff) >= Duration.toMillis(o.backoff),
    (o) =>
      `failedHandshakes.maxBackoff must be at least failedHandshakes.backoff, got ${Duration.format(o.maxBackoff)} and ${Duration.format(o.backoff)}`
  )
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
    maxConnections: Options.withDefault(Options.positiveInt("maxConnections"), defaultMaxConnections),
    idleTimeout: Options.optional(Options.interval("idleTimeout")),
    failedHandshakes: Options.nested("failedHandshakes", FailedHandshakes),
    refusalLogInterval: Options.withDefault(Options.interval("refusalLogInterval"), "1 minute"),
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

/** `Remote.DnsOptions`, decoded: how a name is resolved, but the name. */
export type DnsSettings = Omit<RemoteDns.Settings, "name">

/** Whether `servers` is a list of DNS servers a `node:dns` `Resolver` takes. */
const validServers = (u: unknown): boolean => {
  if (!Array.isArray(u) || u.length === 0 || !u.every((s) => typeof s === "string")) return false
  try {
    new Dns.Resolver().setServers(u)
    return true
  } catch {
    return false
  }
}

/** `Remote.DnsOptions`, decoded. */
export const DnsOptions: Options.Rule<DnsSettings> = Options.options(
  Schema.Struct({
    port: Options.optional(
      Options.rule<number>(
        "port",
        "an integer from 1 to 65535",
        (u) => Number.isInteger(u) && (u as number) >= 1 && (u as number) <= 65535
      )
    ),
    family: Options.optional(Options.rule<4 | 6>("family", "4 or 6", (u) => u === 4 || u === 6)),
    servers: Options.optional(
      Options.rule<ReadonlyArray<string>>(
        "servers",
        'a non-empty list of DNS servers ("10.96.0.10", "10.96.0.10:53", "[::1]:5353")',
        validServers
      )
    ),
    interval: Options.withDefault(Options.interval("interval"), "30 seconds"),
    minInterval: Options.withDefault(Options.interval("minInterval"), "5 seconds"),
    timeout: Options.withDefault(Options.interval("timeout"), "2 seconds")
  }).check(
    Options.tie(
      (o) => Duration.toMillis(o.minInterval) <= Duration.toMillis(o.interval),
      (o) =>
        `minInterval must be at most interval, got ${Duration.format(o.minInterval)} and ${Duration.format(o.interval)}`
    )
  )
)
