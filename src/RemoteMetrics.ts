/**
 * The metrics a runner (`Remote.serve`, `Remote.listen`) reports through
 * Effect's `Metric`: its connections, the clients it refused and why, the
 * requests it answered by outcome, and the requests it holds.
 *
 * A runner reads its own counters when the metrics are read (by
 * `Metric.snapshot`, or an exporter such as `@effect/opentelemetry`'s), so a
 * request or a connection costs an increment and no effect. The series go
 * to the `Metric.MetricRegistry` of the context the runner was started in,
 * with the attributes of `Metric.CurrentMetricAttributes` there added to the
 * runner's. Every series has the attribute `runner`: where it listens,
 * `host:port`.
 *
 * | metric                                 | type    | attributes           | what it counts                                                          |
 * |----------------------------------------|---------|----------------------|-------------------------------------------------------------------------|
 * | `effect_worker_pool_runner_connections`| gauge   | `runner`             | connections open, from their accept (those in their handshake included) |
 * | `effect_worker_pool_runner_refusals`   | counter | `runner`, `reason`   | connections refused or closed for cause (see {@link RefusalReason})     |
 * | `effect_worker_pool_runner_requests`   | counter | `runner`, `outcome`  | requests answered, by outcome (see {@link RequestOutcome})              |
 * | `effect_worker_pool_runner_in_flight`  | gauge   | `runner`             | requests received and not yet answered (running, or waiting for a slot) |
 *
 * @since 0.3.0
 */
import { Metric } from "effect"

/**
 * Why a runner refused a connection, or closed it for cause, as the
 * `reason` attribute of {@link refusals}: `"Unauthorized"` (the token),
 * `"SchemaMismatch"`, `"ProtocolMismatch"`, `"Malformed"` (not a handshake,
 * or the client closed before it sent one), `"HandshakeTimeout"`, `"Tls"`
 * (the TLS handshake failed), `"Draining"`, `"Full"` (`maxConnections`),
 * `"RateLimited"` (too many failed handshakes from its address),
 * `"FrameTooLarge"` (an admitted client sent a frame over `maxFrameBytes`),
 * and `"Idle"` (an admitted connection carried no request for `idleTimeout`).
 *
 * @example
 * ```ts
 * import type { RemoteMetrics } from "effect-worker-pool/remote"
 *
 * const hostile = (reason: RemoteMetrics.RefusalReason) => reason === "Unauthorized" || reason === "RateLimited"
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export type RefusalReason =
  | "Unauthorized"
  | "SchemaMismatch"
  | "ProtocolMismatch"
  | "Malformed"
  | "HandshakeTimeout"
  | "Tls"
  | "Draining"
  | "Full"
  | "RateLimited"
  | "FrameTooLarge"
  | "Idle"

/**
 * How a request ended on the runner, as the `outcome` attribute of
 * {@link requests}: `"Success"`, `"Failure"` (a domain error), `"Rejected"`
 * (it did not decode), `"Crash"` (the handler reported a crash or died),
 * `"Deadline"` (`requestTimeout` passed), `"Interrupted"` (its client
 * cancelled it, or left).
 *
 * @example
 * ```ts
 * import type { RemoteMetrics } from "effect-worker-pool/remote"
 *
 * const answered = (outcome: RemoteMetrics.RequestOutcome) => outcome !== "Interrupted"
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export type RequestOutcome = "Success" | "Failure" | "Rejected" | "Crash" | "Deadline" | "Interrupted"

/**
 * Connections open now, from their accept: those still in their handshake
 * (or their TLS handshake) and those being refused count too.
 *
 * @example
 * ```ts
 * import { Effect, Metric } from "effect"
 * import { RemoteMetrics } from "effect-worker-pool/remote"
 *
 * const open = Metric.value(Metric.withAttributes(RemoteMetrics.connections, { runner: "127.0.0.1:7400" })).pipe(
 *   Effect.map((state) => state.value)
 * )
 * ```
 *
 * @since 0.3.0
 * @category metrics
 */
export const connections: Metric.Gauge<number> = Metric.gauge("effect_worker_pool_runner_connections", {
  description: "connections open to a remote runner, from their accept"
})

/**
 * Connections refused, or closed for cause, by reason (attribute `reason`,
 * see {@link RefusalReason}).
 *
 * @example
 * ```ts
 * import { Effect, Metric } from "effect"
 * import { RemoteMetrics } from "effect-worker-pool/remote"
 *
 * const unauthorized = Metric.value(
 *   Metric.withAttributes(RemoteMetrics.refusals, { runner: "127.0.0.1:7400", reason: "Unauthorized" })
 * ).pipe(Effect.map((state) => state.count))
 * ```
 *
 * @since 0.3.0
 * @category metrics
 */
export const refusals: Metric.Counter<number> = Metric.counter("effect_worker_pool_runner_refusals", {
  description: "connections a remote runner refused or closed for cause, by reason",
  incremental: true
})

/**
 * Requests answered (or cancelled), by outcome (attribute `outcome`, see
 * {@link RequestOutcome}).
 *
 * @example
 * ```ts
 * import { RemoteMetrics } from "effect-worker-pool/remote"
 *
 * console.log(RemoteMetrics.requests.id) // effect_worker_pool_runner_requests
 * ```
 *
 * @since 0.3.0
 * @category metrics
 */
export const requests: Metric.Counter<number> = Metric.counter("effect_worker_pool_runner_requests", {
  description: "requests a remote runner answered, by outcome",
  incremental: true
})

/**
 * Requests received and not yet answered: running, or waiting for one of
 * the runner's `concurrency` slots.
 *
 * @example
 * ```ts
 * import { RemoteMetrics } from "effect-worker-pool/remote"
 *
 * console.log(RemoteMetrics.inFlight.type) // Gauge
 * ```
 *
 * @since 0.3.0
 * @category metrics
 */
export const inFlight: Metric.Gauge<number> = Metric.gauge("effect_worker_pool_runner_in_flight", {
  description: "requests a remote runner holds: running, or waiting for a slot"
})
