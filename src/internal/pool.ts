/**
 * A pool in a scope: the engine (`pool/engine.ts`) with the services it
 * runs with, the span of a traced dispatch, and the shutdown that closes it.
 */
import type { Clock, Context, Random } from "effect"
import { Duration, Effect, type Fiber, FiberSet, Option, PubSub, Scope, Stream, Tracer } from "effect"
import type { Worker } from "../Worker.ts"
import type { WorkerHealth } from "../WorkerHealth.ts"
import type { WorkerId } from "../WorkerId.ts"
import type { DispatchOptions, WorkerPool } from "../WorkerPool.ts"
import type { PoolConfig } from "./pool/config.ts"
import { type ElasticSize, Scaler } from "./pool/elastic.ts"
import { Engine } from "./pool/engine.ts"
import type { Plan } from "./request.ts"
import { makeTurnClock } from "./turnClock.ts"

export type { PoolConfig, QueueStrategy } from "./pool/config.ts"

/** Whether a dispatch on `fiber` gets a span: a tracer of the application's is installed and on. */
const traces = (fiber: Fiber.Fiber<unknown, unknown>): boolean => {
  const tracer = fiber.cache.tracer
  return tracer !== undefined && tracer !== Tracer.nativeTracer && fiber.cache.tracerEnabled
}

export const make = Effect.fnUntraced(function* <Req, Resp, E>(
  config: PoolConfig,
  services: {
    readonly clock: Clock.Clock
    readonly random: Random.Random
    /** Where the metrics go (their registry and current attributes). */
    readonly context: Context.Context<never>
  },
  /** An elastic pool's bounds, how it makes a worker, and the scope its workers live in (see `pool/elastic.ts`). */
  elastic?: {
    readonly size: ElasticSize
    readonly make: (id: WorkerId) => Effect.Effect<Worker<Req, Resp, E>, unknown, Scope.Scope>
    readonly workersScope: Scope.Scope
  }
): Effect.fn.Return<WorkerPool<Req, Resp, E>, unknown, Scope.Scope> {
  const scope = yield* Scope.Scope
  const fork = yield* FiberSet.runtime(yield* FiberSet.make<void>())<never>()
  const changes = yield* PubSub.unbounded<readonly [WorkerId, WorkerHealth]>()
  // Made before the shutdown's finalizer, so closed after it: spares (and
  // the scopes of promoted ones) outlive the drain.
  const sparesScope = yield* Scope.fork(scope, "sequential")
  const random = services.random
  const engine = new Engine<Req, Resp, E>(
    config,
    {
      clock: services.clock,
      random: () => random.nextDoubleUnsafe(),
      turnNow: makeTurnClock(services.clock),
      context: services.context,
      fork: (effect) => fork(effect),
      sparesScope
    },
    changes
  )
  yield* Scope.addFinalizer(scope, engine.close())
  if (elastic !== undefined) {
    const scaler = new Scaler(engine, elastic.size, elastic.make, {
      workersScope: elastic.workersScope,
      fork: (effect) => fork(effect),
      clock: services.clock
    })
    yield* scaler.start()
  }

  /**
   * A plan, every one of the same shape (the same fields, in the same order),
   * so that the engine's reads of a request's plan meet one shape, whether
   * the request calls an operation or not.
   */
  const makePlan = (
    timeout: Duration.Duration | undefined,
    queueTimeoutMillis: number,
    idempotent: boolean,
    operation: string | undefined,
    stream: boolean | undefined
  ): Plan => ({ timeout, queueTimeoutMillis, idempotent, operation, stream })

  /** What a dispatch without options asks for: the pool's defaults, made once. */
  const defaultPlan = makePlan(config.timeout, config.queueTimeoutMillis, false, undefined, undefined)

  /** The plans of an operation's calls without a timeout of their own: not idempotent, and idempotent. */
  const operationPlans = new Map<string, readonly [Plan, Plan]>()
  // The last call's operation first (the client's tag, the same string: a quick comparison), else a lookup.
  let lastOperation: string | undefined
  let lastPlans: readonly [Plan, Plan] = [defaultPlan, defaultPlan]
  const operationPlan = (operation: string, idempotent: boolean, stream: boolean | undefined): Plan => {
    if (operation === lastOperation) return lastPlans[idempotent ? 1 : 0]
    let plans = operationPlans.get(operation)
    if (plans === undefined) {
      // An operation is streamed or not, whatever the call: its plans are made once.
      const streamed = stream === true ? true : undefined
      plans = [
        makePlan(config.timeout, config.queueTimeoutMillis, false, operation, streamed),
        makePlan(config.timeout, config.queueTimeoutMillis, true, operation, streamed)
      ]
      operationPlans.set(operation, plans)
    }
    lastOperation = operation
    lastPlans = plans
    return plans[idempotent ? 1 : 0]
  }

  /** What a dispatch's options ask for; an operation's client names its operation (a local option). */
  const planOf = (
    options:
      | (DispatchOptions & { readonly operation?: string | undefined; readonly stream?: boolean | undefined })
      | undefined
  ): Plan =>
    options === undefined
      ? defaultPlan
      : options.operation !== undefined && options.timeout === undefined && options.queueTimeout === undefined
        ? operationPlan(options.operation, options.idempotent === true, options.stream)
        : makePlan(
            options.timeout === undefined ? config.timeout : Duration.fromInputUnsafe(options.timeout),
            options.queueTimeout === undefined
              ? config.queueTimeoutMillis
              : Duration.toMillis(Duration.fromInputUnsafe(options.queueTimeout)),
            options.idempotent === true,
            options.operation,
            options.stream === true ? true : undefined
          )

  const spanOptions: Tracer.SpanOptionsNoTrace = {
    attributes: { "worker_pool.name": config.name, "worker_pool.policy": config.policy.name }
  }
  const dispatchSpan = ["WorkerPool.dispatch", spanOptions] as const

  /** The span of a call of an operation: named after it, with a `worker_pool.operation` attribute. */
  const operationSpans = new Map<string, readonly [string, Tracer.SpanOptionsNoTrace]>()
  const operationSpan = (operation: string) => {
    let span = operationSpans.get(operation)
    if (span === undefined) {
      span = [
        `WorkerPool.dispatch ${operation}`,
        { attributes: { ...spanOptions.attributes, "worker_pool.operation": operation } }
      ]
      operationSpans.set(operation, span)
    }
    return span
  }

  /** A dispatch under a span of its own, the parent of the handler's spans. */
  const traced = (request: Req, plan: Plan) => {
    const [name, options] = plan.operation === undefined ? dispatchSpan : operationSpan(plan.operation)
    return Effect.useSpan(name, options, (span) =>
      // Without the stack frame `Effect.withParentSpan` would capture on every dispatch.
      Effect.provideService(engine.dispatch(request, plan, undefined, span), Tracer.ParentSpan, span)
    )
  }

  /** A dispatch whose caller's fiber has a tracer on runs under a span of its own. */
  const divert = (caller: Fiber.Fiber<unknown, unknown>, request: Req, plan: Plan) =>
    traces(caller) ? traced(request, plan) : undefined

  return {
    policy: config.policy.name,
    add: (worker) => engine.add(worker),
    remove: (id) => engine.remove(id),
    size: Effect.sync(() => engine.membership.members.length),
    isEmpty: Effect.sync(() => engine.membership.members.length === 0),
    queued: Effect.sync(() => engine.queue.length),
    select: Effect.suspend(() =>
      Effect.map(engine.peek(), (member) => Option.map(Option.fromNullishOr(member), (found) => found.worker))
    ),
    dispatch: (request, options) => engine.dispatch(request, planOf(options), divert),
    health: Effect.sync(() =>
      engine.membership.members.map((member) => [member.worker.id, member.core.health.snapshot()] as const)
    ),
    changes: Stream.fromPubSub(changes),
    spares: Effect.sync(() => engine.spares.health())
  }
})
