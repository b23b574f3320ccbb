/**
 * The metrics a pool reports through Effect's `Metric`: what every request
 * came to, how long requests waited for a slot and ran, the crashes,
 * restarts, ejections and retries, and the queue, the requests in flight and
 * the workers by state.
 *
 * A pool reads its own counters when the metrics are read (by
 * `Metric.snapshot`, or an exporter such as `@effect/opentelemetry`'s), so a
 * request costs a few increments and no effect. The series go to the
 * `Metric.MetricRegistry` of the context the pool was made in, with the
 * attributes of `Metric.CurrentMetricAttributes` there added to the pool's.
 *
 * Every series has the attributes `pool` (the pool's `name` option) and
 * `policy` (its dispatch policy's name). The per-worker ones add `kind` (the
 * worker's kind, such as `"thread"`) and, with the pool option
 * `metrics: { workerId: true }`, `worker_id`. Pools of the same name (in the
 * same registry) report together: their figures add up, and the counts of a
 * pool or a worker that is gone stay in the counters.
 *
 * | metric                                | type      | attributes                                   | what it counts                                                       |
 * |---------------------------------------|-----------|----------------------------------------------|----------------------------------------------------------------------|
 * | `effect_worker_pool_requests`         | counter   | `pool`, `policy`, `outcome`                  | requests by what their caller got (see {@link Outcome})              |
 * | `effect_worker_pool_retries`          | counter   | `pool`, `policy`                             | retries of idempotent requests on another worker                     |
 * | `effect_worker_pool_queue_wait`       | histogram | `pool`, `policy`                             | milliseconds a request waited for a slot (0: it found one at once)   |
 * | `effect_worker_pool_queued`           | gauge     | `pool`, `policy`                             | requests waiting in the admission queue                              |
 * | `effect_worker_pool_run_time`         | histogram | `pool`, `policy`, `kind`, (`worker_id`)      | milliseconds a request ran on its worker, whatever its outcome       |
 * | `effect_worker_pool_in_flight`        | gauge     | `pool`, `policy`, `kind`, (`worker_id`)      | requests holding a slot on a worker                                  |
 * | `effect_worker_pool_max_in_flight`    | gauge     | `pool`, `policy`, `kind`, (`worker_id`)      | slots of workers now: fixed `maxInFlight`, or the adaptive limit     |
 * | `effect_worker_pool_crashes`          | counter   | `pool`, `policy`, `kind`, (`worker_id`)      | crashes of workers, failed starts included                           |
 * | `effect_worker_pool_restarts`         | counter   | `pool`, `policy`, `kind`, (`worker_id`)      | restarts of workers                                                  |
 * | `effect_worker_pool_ejections`        | counter   | `pool`, `policy`, `kind`, (`worker_id`)      | ejections of workers that kept failing                               |
 * | `effect_worker_pool_workers`          | gauge     | `pool`, `policy`, `kind`, `state`, (`worker_id`) | workers in each `WorkerState`                                    |
 *
 * @since 0.2.0
 */
import { Metric } from "effect"

/**
 * The bucket boundaries of the two histograms, in milliseconds. The first,
 * `0`, holds the requests that did not wait (or ran in less than the
 * clock's resolution).
 *
 * @example
 * ```ts
 * import { PoolMetrics } from "effect-worker-pool"
 *
 * console.log(PoolMetrics.boundaries.length) // 16
 * ```
 *
 * @since 0.2.0
 * @category constants
 */
export const boundaries: ReadonlyArray<number> = [
  0, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000
]

/**
 * What a request came to, as the `outcome` attribute of
 * {@link requests}: `"Success"`, the `_tag` of the handler's domain error
 * (`"DomainError"` by default), `"InvalidRequest"`, `"WorkerCrash"`,
 * `"RequestTimeout"`, `"QueueTimeout"`, `"PoolBusy"`, `"PoolShutdown"`,
 * `"Interrupted"` (its caller left), or `"Defect"` (a dispatch policy threw
 * while the request waited).
 *
 * @example
 * ```ts
 * import type { PoolMetrics } from "effect-worker-pool"
 *
 * const failed = (outcome: PoolMetrics.Outcome) => outcome !== "Success"
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export type Outcome =
  | "Success"
  | "InvalidRequest"
  | "WorkerCrash"
  | "RequestTimeout"
  | "QueueTimeout"
  | "PoolBusy"
  | "PoolShutdown"
  | "Interrupted"
  | "Defect"
  | (string & {})

/**
 * Requests by outcome (attribute `outcome`, see {@link Outcome}): one count
 * per request, when its caller gets its result, whatever the number of
 * attempts. A request that waited and was refused counts too.
 *
 * @example
 * ```ts
 * import { Effect, Metric } from "effect"
 * import { PoolMetrics } from "effect-worker-pool"
 *
 * const successes = Metric.value(
 *   Metric.withAttributes(PoolMetrics.requests, { pool: "hashing", policy: "RoundRobin", outcome: "Success" })
 * ).pipe(Effect.map((state) => state.count))
 * ```
 *
 * @since 0.2.0
 * @category metrics
 */
export const requests: Metric.Counter<number> = Metric.counter("effect_worker_pool_requests", {
  description: "requests of a worker pool, by what their caller got",
  incremental: true
})

/**
 * Retries of idempotent requests (`dispatch(request, { idempotent: true })`)
 * on another worker, after a `WorkerCrash`.
 *
 * @example
 * ```ts
 * import { PoolMetrics } from "effect-worker-pool"
 *
 * console.log(PoolMetrics.retries.id) // effect_worker_pool_retries
 * ```
 *
 * @since 0.2.0
 * @category metrics
 */
export const retries: Metric.Counter<number> = Metric.counter("effect_worker_pool_retries", {
  description: "retries of idempotent requests of a worker pool on another worker",
  incremental: true
})

/**
 * How long requests waited for a slot, in milliseconds: 0 for a request that
 * found a free worker at once; a request that left the queue without a slot
 * (timed out, refused, dropped, or its caller left) counts the time it
 * waited.
 *
 * @example
 * ```ts
 * import { PoolMetrics } from "effect-worker-pool"
 *
 * console.log(PoolMetrics.queueWait.type) // Histogram
 * ```
 *
 * @since 0.2.0
 * @category metrics
 */
export const queueWait: Metric.Histogram<number> = Metric.histogram("effect_worker_pool_queue_wait", {
  description: "milliseconds a request of a worker pool waited for a slot",
  boundaries
})

/**
 * Requests waiting in the admission queue now.
 *
 * @example
 * ```ts
 * import { PoolMetrics } from "effect-worker-pool"
 *
 * console.log(PoolMetrics.queued.type) // Gauge
 * ```
 *
 * @since 0.2.0
 * @category metrics
 */
export const queued: Metric.Gauge<number> = Metric.gauge("effect_worker_pool_queued", {
  description: "requests waiting in the admission queue of a worker pool"
})

/**
 * How long requests ran on their worker, in milliseconds, from the moment
 * they took their slot to their outcome (every attempt of an idempotent
 * request counts). The pool reads the clock once per turn of the event loop
 * (see the admission guide), so a request that finishes in the turn it
 * started counts 0.
 *
 * @example
 * ```ts
 * import { PoolMetrics } from "effect-worker-pool"
 *
 * console.log(PoolMetrics.runTime.id) // effect_worker_pool_run_time
 * ```
 *
 * @since 0.2.0
 * @category metrics
 */
export const runTime: Metric.Histogram<number> = Metric.histogram("effect_worker_pool_run_time", {
  description: "milliseconds a request of a worker pool ran on its worker",
  boundaries
})

/**
 * Requests holding a slot on a worker now.
 *
 * @example
 * ```ts
 * import { PoolMetrics } from "effect-worker-pool"
 *
 * console.log(PoolMetrics.inFlight.id) // effect_worker_pool_in_flight
 * ```
 *
 * @since 0.2.0
 * @category metrics
 */
export const inFlight: Metric.Gauge<number> = Metric.gauge("effect_worker_pool_in_flight", {
  description: "requests of a worker pool holding a slot on a worker"
})

/**
 * How many requests workers may hold now (`WorkerHealth.maxInFlight`): a
 * worker's fixed `maxInFlight`, or its adaptive limit as learned so far.
 * Without `worker_id`, the workers of a kind add up: the pool's slots.
 *
 * @example
 * ```ts
 * import { PoolMetrics } from "effect-worker-pool"
 *
 * console.log(PoolMetrics.maxInFlight.id) // effect_worker_pool_max_in_flight
 * ```
 *
 * @since 0.3.0
 * @category metrics
 */
export const maxInFlight: Metric.Gauge<number> = Metric.gauge("effect_worker_pool_max_in_flight", {
  description: "requests the workers of a worker pool may hold now (their adaptive or fixed limits)"
})

/**
 * Crashes of workers (`WorkerHealth.crashes`): incarnations that died, and
 * starts that failed.
 *
 * @example
 * ```ts
 * import { PoolMetrics } from "effect-worker-pool"
 *
 * console.log(PoolMetrics.crashes.id) // effect_worker_pool_crashes
 * ```
 *
 * @since 0.2.0
 * @category metrics
 */
export const crashes: Metric.Counter<number> = Metric.counter("effect_worker_pool_crashes", {
  description: "crashes of the workers of a worker pool, failed starts included",
  incremental: true
})

/**
 * Restarts of workers (`WorkerHealth.restarts`).
 *
 * @example
 * ```ts
 * import { PoolMetrics } from "effect-worker-pool"
 *
 * console.log(PoolMetrics.restarts.id) // effect_worker_pool_restarts
 * ```
 *
 * @since 0.2.0
 * @category metrics
 */
export const restarts: Metric.Counter<number> = Metric.counter("effect_worker_pool_restarts", {
  description: "restarts of the workers of a worker pool",
  incremental: true
})

/**
 * Ejections of workers that kept failing (`WorkerHealth.ejections`).
 *
 * @example
 * ```ts
 * import { PoolMetrics } from "effect-worker-pool"
 *
 * console.log(PoolMetrics.ejections.id) // effect_worker_pool_ejections
 * ```
 *
 * @since 0.2.0
 * @category metrics
 */
export const ejections: Metric.Counter<number> = Metric.counter("effect_worker_pool_ejections", {
  description: "ejections of the workers of a worker pool",
  incremental: true
})

/**
 * Recycles of workers (`WorkerHealth.recycles`), by reason (attribute
 * `reason`: `requests`, `age`, `memory`; see `Worker.RecycleOptions`).
 *
 * @example
 * ```ts
 * import { PoolMetrics } from "effect-worker-pool"
 *
 * console.log(PoolMetrics.recycles.id) // effect_worker_pool_recycles
 * ```
 *
 * @since 0.3.0
 * @category metrics
 */
export const recycles: Metric.Counter<number> = Metric.counter("effect_worker_pool_recycles", {
  description:
    "recycles of the workers of a worker pool (their incarnation replaced by their recycling rules), by reason",
  incremental: true
})

/**
 * Scale decisions of an elastic pool (`size: { min, max }`): workers started
 * because requests waited (attribute `direction`: `up`), and workers retired
 * because they were idle for `idleTimeout` (`down`). A pool of a fixed size
 * has no such series.
 *
 * @example
 * ```ts
 * import { PoolMetrics } from "effect-worker-pool"
 *
 * console.log(PoolMetrics.scaling.id) // effect_worker_pool_scaling
 * ```
 *
 * @since 0.3.0
 * @category metrics
 */
export const scaling: Metric.Counter<number> = Metric.counter("effect_worker_pool_scaling", {
  description: "scale decisions of an elastic worker pool: workers started (up) and idle workers retired (down)",
  incremental: true
})

/**
 * Workers in each state (attribute `state`: `Starting`, `Healthy`,
 * `Ejected`, `Restarting`, `Retired`, `Stopped`).
 *
 * @example
 * ```ts
 * import { PoolMetrics } from "effect-worker-pool"
 *
 * console.log(PoolMetrics.workers.id) // effect_worker_pool_workers
 * ```
 *
 * @since 0.2.0
 * @category metrics
 */
export const workers: Metric.Gauge<number> = Metric.gauge("effect_worker_pool_workers", {
  description: "workers of a worker pool, by state"
})
