/**
 * The Schema of a pool's options (`WorkerPool.Options`): every option's rule
 * and default, decoded once by `WorkerPool.make` into the engine's config.
 */
import { Duration, type Effect, Schema, SchemaGetter } from "effect"
import { type DispatchPolicy, ShortestExpectedDelay } from "../../DispatchPolicy.ts"
import type { Worker } from "../../Worker.ts"
import type { WorkerId } from "../../WorkerId.ts"
import type { EjectionRules } from "../ejection.ts"
import * as Options from "../options.ts"
import type { PoolConfig, QueueStrategy } from "./config.ts"
import type { ElasticSize } from "./elastic.ts"

const queueStrategies: ReadonlyArray<QueueStrategy> = ["suspend", "fail", "dropOldest"]

/** `WorkerPool.EjectionOptions`. */
export const EjectionOptions = Schema.Struct({
  consecutiveFailures: Options.withDefault(Options.positiveInt("ejection.consecutiveFailures"), 5),
  baseDuration: Options.withDefault(Options.openDuration("ejection.baseDuration"), "30 seconds"),
  maxDuration: Options.withDefault(Options.openDuration("ejection.maxDuration"), "5 minutes"),
  maxEjectedShare: Options.withDefault(Options.share("ejection.maxEjectedShare"), 0.1),
  panicThreshold: Options.withDefault(Options.share("ejection.panicThreshold"), 0.5)
})

/** `WorkerPool.RetryOptions`. */
export const RetryOptions = Schema.Struct({
  maxRetries: Options.withDefault(Options.nonNegativeInt("retry.maxRetries"), 1),
  share: Options.withDefault(Options.nonNegativeNumber("retry.share"), 0.2),
  minPerWindow: Options.withDefault(Options.nonNegativeInt("retry.minPerWindow"), 10),
  window: Options.withDefault(Options.openDuration("retry.window"), "10 seconds")
})

/** `WorkerPool.MetricsOptions`. */
export const MetricsOptions = Schema.Struct({
  workerId: Options.withDefault(Options.boolean("metrics.workerId"), false)
})

/** `size: { min, max }`: an elastic pool's bounds. */
const ElasticFields = Schema.Struct({
  min: Options.required(Options.positiveInt("size.min")),
  max: Options.required(Options.positiveInt("size.max"))
}).check(
  Options.tie(
    (o) => o.min <= o.max,
    (o) => `size.min must not be above size.max, got ${o.min} and ${o.max}`
  )
)

/** `size`: a number of workers, or an elastic pool's bounds `{ min, max }`. */
const size = Options.refine<number | object>(
  (u) =>
    (typeof u === "number" && Number.isSafeInteger(u) && u >= 0) ||
    (typeof u === "object" && u !== null && !Array.isArray(u)),
  (u) =>
    typeof u === "number"
      ? `size must be a non-negative integer, got ${u}`
      : `size must be a non-negative integer or { min, max }, got ${String(u)}`
).pipe(Schema.decodeTo(Schema.Union([Schema.Number, Options.object("size", ElasticFields)])))

/** `ejection`: `false` turns it off (`undefined` once decoded), an object is {@link EjectionOptions}. */
const ejection = Options.rule<false | object>(
  "ejection",
  "false or an object",
  (u) => u === false || (typeof u === "object" && u !== null && !Array.isArray(u))
).pipe(
  Schema.decodeTo(
    Schema.Union([
      Schema.Literal(false).pipe(
        Schema.decodeTo(Schema.Undefined, {
          decode: SchemaGetter.transform(() => undefined),
          encode: SchemaGetter.forbiddenEncoding
        })
      ),
      EjectionOptions
    ])
  )
)

const isPolicy = (u: unknown): boolean =>
  typeof u === "object" &&
  u !== null &&
  typeof (u as DispatchPolicy<unknown>).select === "function" &&
  typeof (u as DispatchPolicy<unknown>).name === "string"

/** How a pool makes its first workers. */
type MakeWorker = (id: WorkerId) => Effect.Effect<Worker<any, any, any>, any, any>

/** The fields of `WorkerPool.Options`, as given, with their defaults. */
const Fields = Schema.Struct({
  size: Options.optional(size),
  idleTimeout: Options.optional(Options.interval("idleTimeout")),
  targetUtilization: Options.optional(
    Options.rule<number>("targetUtilization", "a number within (0, 1]", (u) => typeof u === "number" && u > 0 && u <= 1)
  ),
  utilizationWindow: Options.optional(Options.interval("utilizationWindow")),
  worker: Options.optional(Options.func<MakeWorker>("worker")),
  policy: Options.withDefaultFrom(
    Options.refine<DispatchPolicy<any, any>>(isPolicy, () => "policy must have a name and a select function"),
    () => ShortestExpectedDelay()
  ),
  ejection: Options.withDefault(ejection, {}),
  name: Options.withDefault(Options.nonEmptyString("name"), "default"),
  metrics: Options.nested("metrics", MetricsOptions),
  timeout: Options.optional(Options.openDuration("timeout")),
  queueTimeout: Options.withDefault(Options.openDuration("queueTimeout"), "30 seconds"),
  queueCapacity: Options.withDefault(Options.nonNegativeInt("queueCapacity"), 1024),
  queueStrategy: Options.withDefault(Options.oneOf("queueStrategy", queueStrategies), "suspend"),
  retry: Options.nested("retry", RetryOptions),
  drain: Options.withDefault(Options.openDuration("drain"), "10 seconds"),
  spares: Options.withDefault(Options.nonNegativeInt("spares"), 1)
}).check(
  Options.tie(
    (o) => (o.size === undefined) === (o.worker === undefined),
    () => "size and worker must be given together"
  ),
  Options.tie(
    (o) => o.idleTimeout === undefined || (typeof o.size === "object" && o.size !== null),
    () => "idleTimeout applies to an elastic size, { min, max }"
  ),
  Options.tie(
    (o) => o.targetUtilization === undefined || (typeof o.size === "object" && o.size !== null),
    () => "targetUtilization applies to an elastic size, { min, max }"
  ),
  Options.tie(
    (o) => o.utilizationWindow === undefined || (typeof o.size === "object" && o.size !== null),
    () => "utilizationWindow applies to an elastic size, { min, max }"
  )
)

/** A pool's settings: the engine's config, and the workers it starts with (`size` of them, made by `make`), if any. */
export interface PoolSettings extends PoolConfig {
  readonly workers:
    | { readonly size: number; readonly make: MakeWorker; readonly elastic: ElasticSize | undefined }
    | undefined
}

/** How long an elastic pool's worker may stay idle before it is retired, by default. */
const defaultIdleTimeout = "30 seconds"

/** An elastic pool grows by one worker after a window in which every slot was busy, by default (as Effect's `Pool`). */
const defaultTargetUtilization = 1

/** The window over which an elastic pool's utilization is averaged, by default. */
const defaultUtilizationWindow = "1 second"

const toEjection = (o: typeof EjectionOptions.Type): EjectionRules => ({
  consecutiveFailures: o.consecutiveFailures,
  baseMillis: Duration.toMillis(o.baseDuration),
  maxMillis: Duration.toMillis(o.maxDuration),
  maxEjectedShare: o.maxEjectedShare,
  panicThreshold: o.panicThreshold
})

/** `WorkerPool.Options`, decoded to a pool's settings. */
export const PoolOptions: Options.Rule<PoolSettings> = Options.map(
  Options.options(Fields),
  (o): PoolSettings => ({
    // Both or neither: the struct's check.
    workers:
      o.worker === undefined
        ? undefined
        : typeof o.size === "number"
          ? { size: o.size, make: o.worker, elastic: undefined }
          : {
              size: o.size!.min,
              make: o.worker,
              elastic: {
                min: o.size!.min,
                max: o.size!.max,
                idleTimeoutMillis: Duration.toMillis(o.idleTimeout ?? Duration.fromInputUnsafe(defaultIdleTimeout)),
                targetUtilization: o.targetUtilization ?? defaultTargetUtilization,
                utilizationWindowMillis: Duration.toMillis(
                  o.utilizationWindow ?? Duration.fromInputUnsafe(defaultUtilizationWindow)
                )
              }
            },
    name: o.name,
    workerIdMetrics: o.metrics.workerId,
    policy: o.policy,
    timeout: o.timeout,
    queueTimeoutMillis: Duration.toMillis(o.queueTimeout),
    queueCapacity: o.queueCapacity,
    queueStrategy: o.queueStrategy,
    ejection: o.ejection === undefined ? undefined : toEjection(o.ejection),
    retry: {
      maxRetries: o.retry.maxRetries,
      share: o.retry.share,
      minPerWindow: o.retry.minPerWindow,
      windowMillis: Duration.toMillis(o.retry.window)
    },
    drain: o.drain,
    spares: o.spares
  })
)
