/**
 * What a pool is made with: its settings, validated and with their defaults
 * (the public options are read once, in `WorkerPool.make`), and the services
 * its engine runs with.
 */
import type { Clock, Context, Duration, Effect, Fiber, Scope } from "effect"
import type { DispatchPolicy } from "../../DispatchPolicy.ts"
import type { EjectionRules } from "../ejection.ts"

/** What a full queue does with a new request. */
export type QueueStrategy = "suspend" | "fail" | "dropOldest"

/** The pool's settings, validated, with defaults applied. */
export interface PoolConfig {
  /** The pool's name, in its metrics and spans. */
  readonly name: string
  /** Whether the per-worker metrics have a `worker_id` attribute. */
  readonly workerIdMetrics: boolean
  readonly policy: DispatchPolicy<any, any>
  readonly timeout: Duration.Duration | undefined
  /** How long a request may wait for a slot, in milliseconds (`Infinity`: no bound). */
  readonly queueTimeoutMillis: number
  readonly queueCapacity: number
  readonly queueStrategy: QueueStrategy
  readonly ejection: EjectionRules | undefined
  readonly retry: {
    readonly maxRetries: number
    readonly share: number
    readonly minPerWindow: number
    readonly windowMillis: number
  }
  readonly drain: Duration.Duration
  /** Spare incarnations kept started ahead (see `spares.ts`). */
  readonly spares: number
}

/** The services the engine runs with. */
export interface EngineServices {
  readonly clock: Clock.Clock
  readonly random: () => number
  /** The time on the request path (read once per turn of the event loop with Effect's own clock). */
  readonly turnNow: () => number
  /** Where the metrics go (their registry and current attributes). */
  readonly context: Context.Context<never>
  /** Runs `effect` on a fiber of the pool. */
  readonly fork: (effect: Effect.Effect<void>) => Fiber.Fiber<void>
  /** A scope for the spares, closed after the workers. */
  readonly sparesScope: Scope.Closeable
}
