/**
 * The pool's engine: it puts the rooms together and runs a request through
 * them. Membership knows the workers and what can come back; selection picks
 * a worker and takes its slot; admission holds the requests that wait for a
 * slot; outcomes turn what a request did into ejections and the policy's
 * learning.
 *
 * A request that finds a free slot (and nobody waiting before it) runs at
 * once on its caller's fiber: one synchronous pick, then the worker's run. A
 * request that finds none waits in the admission queue while a worker that
 * can come back exists, and is refused at once when none does.
 */
import type { Clock, Context, Random } from "effect"
import {
  Cause,
  Deferred,
  Duration,
  Effect,
  Exit,
  type Fiber,
  FiberSet,
  Option,
  PubSub,
  Scope,
  Stream,
  Tracer
} from "effect"
import type { DispatchPolicy } from "../DispatchPolicy.ts"
import type { Worker } from "../Worker.ts"
import {
  DuplicateWorkerId,
  NoWorker,
  PoolBusy,
  PoolShutdown,
  QueueTimeout,
  type RequestTimeout,
  UnknownWorkerId,
  WorkerCrash
} from "../WorkerError.ts"
import type { WorkerHealth } from "../WorkerHealth.ts"
import type { WorkerId } from "../WorkerId.ts"
import type { WorkerKind } from "../WorkerKind.ts"
import type { DispatchError, DispatchOptions, WorkerPool } from "../WorkerPool.ts"
import type { EjectionRules } from "./ejection.ts"
import type { Outcome, Slot } from "./health.ts"
import { PoolMeter, type WorkerMetrics } from "./metrics.ts"
import { onExitSync } from "./onExit.ts"
import { Admission, type QueueStrategy, type Waiter } from "./pool/admission.ts"
import { Later } from "./pool/later.ts"
import { type Member, Membership } from "./pool/membership.ts"
import { Outcomes } from "./pool/outcomes.ts"
import { type Pick, Selection } from "./pool/selection.ts"
import { Spares } from "./pool/spares.ts"
import { makeTurnClock } from "./turnClock.ts"
import { coreOf, type OnSettled } from "./worker.ts"

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
  /** Spare incarnations kept started ahead (see `pool/spares.ts`). */
  readonly spares: number
}

/** What the pool needs to serve a waiting request. */
interface Plan {
  readonly caller: Fiber.Fiber<unknown, unknown>
  readonly timeout: Duration.Duration | undefined
  readonly idempotent: boolean
  readonly retries: number
  /** The span of its dispatch, when traced. */
  readonly span: Tracer.Span | undefined
}

/** A member with the callbacks its requests settle through, made once. */
interface Seat<Req, Resp, E> extends Member<Req, Resp, E> {
  /** For requests whose admission is counted by the caller's own frame. */
  settled: OnSettled
  /** For requests on the fast path, whose settling also ends their admission. */
  settledFast: OnSettled
  metrics: WorkerMetrics
}

const shutdownError = new PoolShutdown({ reason: "the pool is shutting down: it admits no new request" })

/** What a request's caller got, from how it ended on its worker (see `PoolMetrics.Outcome`). */
const outcomeOf = (outcome: Outcome, slot: Slot): string => {
  switch (outcome) {
    case "succeeded":
      return "Success"
    case "domainError":
      return slot.tag ?? "DomainError"
    case "rejected":
      return "InvalidRequest"
    case "crashed":
    case "torn":
      return slot.tag ?? "WorkerCrash"
    case "timedOut":
      return "RequestTimeout"
    case "interrupted":
      return "Interrupted"
  }
}

/** What a request's caller got, from its exit. */
const outcomeOfExit = (exit: Exit.Exit<unknown, unknown>): string => {
  if (Exit.isSuccess(exit)) return "Success"
  const error = Cause.findErrorOption(exit.cause)
  if (error._tag === "Some") return (error.value as { readonly _tag?: string } | null)?._tag ?? "DomainError"
  return Cause.hasDies(exit.cause) ? "Defect" : "Interrupted"
}

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
  }
): Effect.fn.Return<WorkerPool<Req, Resp, E>, never, Scope.Scope> {
  type S = Seat<Req, Resp, E>
  const scope = yield* Scope.Scope
  const { clock } = services
  const now = () => clock.currentTimeMillisUnsafe()
  /** The time on the request path: read once per turn of the event loop. */
  const turnNow = makeTurnClock(clock)
  const random = () => services.random.nextDoubleUnsafe()
  const later = new Later()
  const background = yield* FiberSet.runtime(yield* FiberSet.make<void>())<never>()
  const changes = yield* PubSub.unbounded<readonly [WorkerId, WorkerHealth]>()
  const drained = Deferred.makeUnsafe<void>()

  const membership = new Membership<Req, Resp, E>()
  const meter = new PoolMeter(
    services.context,
    { name: config.name, policy: config.policy.name, workerId: config.workerIdMetrics },
    () => admission.length
  )
  // Made before the shutdown's finalizer, so closed after it: spares (and
  // the scopes of promoted ones) outlive the drain.
  const spares = new Spares(config.spares, yield* Scope.fork(scope, "sequential"), background)
  const takeSpare = (kind: WorkerKind<any, any, any, any>) => (closing ? undefined : spares.take(kind))
  const hasSpare = (kind: WorkerKind<any, any, any, any>) => !closing && spares.has(kind)
  const selection = new Selection<Req, Resp, E>(membership, config.policy, config.ejection, random, now)
  const pump = () => admission.pump()
  const outcomes = new Outcomes<Req, Resp, E>(membership, selection, config.ejection, config.retry, {
    now,
    random,
    background: (effect) => {
      background(effect)
    },
    pump
  })
  const admission: Admission<Req, Plan> = new Admission(config.queueCapacity, config.queueStrategy, {
    now,
    later,
    serve: (waiter) => serve(waiter),
    abandoned: (waiter, outcome) => {
      meter.queueWait.observe(now() - waiter.since)
      if (waiter.plan.idempotent) return
      settledOne()
      meter.failed(outcome)
    },
    background,
    busy: (reason) => new PoolBusy({ reason }),
    expired: (waiter) =>
      new QueueTimeout({ queueTimeoutMillis: waiter.queueTimeoutMillis, waitedMillis: now() - waiter.since })
  })

  let closing = false
  /** Requests admitted and not yet settled, waiting or running. */
  let active = 0
  /** Removed workers that stop once the requests running on their callers' fibers end. */
  const leaving = new Set<Member<Req, Resp, E>>()
  /** No worker can serve or come back (and the pool has workers): said once, loudly. */
  let stranded = false

  const settledOne = () => {
    active--
    if (closing && active === 0) Deferred.doneUnsafe(drained, Exit.void)
  }

  const refusal = () => new WorkerCrash({ reason: new NoWorker({ message: membership.noWorkerReason() }) })

  /** When no worker can serve or come back, nobody waits for one. */
  const checkHope = () => {
    if (membership.canComeBack > 0) {
      stranded = false
      return
    }
    if (!admission.isEmpty) admission.failAll(refusal())
    if (!stranded && membership.members.length > 0 && !closing) {
      stranded = true
      const reason = membership.noWorkerReason()
      background(
        Effect.logError("the pool has no worker that can serve or come back").pipe(Effect.annotateLogs({ reason }))
      )
    }
  }

  /** Follows a change of a member's state, told by the worker. */
  const changed = (member: S) => {
    const published = membership.recount(member)
    const source = member.core.spareSource
    if (source !== undefined && member.core.health.isLive) spares.started(source.kind)
    selection.refresh(member)
    if (published !== undefined) later.run(() => PubSub.publishUnsafe(changes, [member.worker.id, published]))
    checkHope()
    pump()
  }

  /** Follows a request that settled on `member`. */
  const afterSettle = (member: S, outcome: Outcome, slot: Slot) => {
    const t = turnNow()
    member.metrics.runTime.observe(t - slot.startedAt)
    selection.refresh(member)
    outcomes.settled(member, outcome, slot, t)
    pump()
  }

  /** A request of `span` takes `slot` on `member`, for its `attempt`-th try. */
  const mark = (span: Tracer.Span, member: S, slot: Slot, attempt: number) => {
    slot.span = span
    span.attribute("worker_pool.worker_id", member.worker.id)
    span.attribute("worker_pool.kind", member.core.kind)
    span.attribute("worker_pool.attempt", attempt)
  }

  /** Gives back a slot that was never used. */
  const release = (pick: Pick<Req, Resp, E>) => {
    const member = pick.member as S
    member.core.release(pick.slot)
    if (member.probing) outcomes.probeReturned(member)
    selection.refresh(member)
    pump()
  }

  // --- running a request -----------------------------------------------------
  //
  // A request's admission (`active`) ends with its outcome. For most requests
  // that is counted where it happens, without a frame of their own: when it
  // settles on a worker (`settledFast`), or when it leaves the queue without a
  // slot (`abandoned`). An idempotent request, which may run more than once,
  // is counted by an `ensuring` around all its attempts.

  /**
   * Places a request that is not idempotent: on a free slot now, else in the
   * queue while a worker can come back, else refused. Runs on `caller`'s fiber.
   */
  const place = (
    caller: Fiber.Fiber<unknown, unknown>,
    request: Req,
    timeout: Duration.Duration | undefined,
    queueTimeoutMillis: number,
    span: Tracer.Span | undefined
  ): Effect.Effect<Resp, DispatchError<E>> => {
    if (admission.isEmpty) {
      const t = turnNow()
      const pick = selection.pick(request, t)
      if (pick !== undefined) {
        const member = pick.member as S
        meter.queueWait.observe(0)
        if (span !== undefined) {
          span.attribute("worker_pool.queued_ms", 0)
          mark(span, member, pick.slot, 1)
        }
        return member.core.run(pick.slot, request, timeout, caller, member.settledFast, t) as Effect.Effect<
          Resp,
          E | WorkerCrash | RequestTimeout
        >
      }
    }
    if (membership.canComeBack === 0) {
      settledOne()
      meter.failed("WorkerCrash")
      return Effect.fail(refusal())
    }
    const waiting = admission.enqueue<Resp, DispatchError<E>>(
      request,
      { caller, timeout, idempotent: false, retries: 0, span },
      queueTimeoutMillis
    )
    if (waiting instanceof PoolBusy) {
      settledOne()
      meter.failed("PoolBusy")
      return Effect.fail(waiting)
    }
    return waiting
  }

  /**
   * Serves a waiting request on a free slot, if a worker can take it now. A
   * request the worker's incarnation can take without a fiber is sent at
   * once, and its caller wakes only with the outcome; any other is run by its
   * caller, woken after this step.
   */
  const serve = (waiter: Waiter<Req, Plan>): boolean => {
    const t = turnNow()
    const pick = selection.pick(waiter.request, t)
    if (pick === undefined) return false
    const member = pick.member as S
    const plan = waiter.plan
    meter.queueWait.observe(t - waiter.since)
    if (plan.span !== undefined) {
      plan.span.attribute("worker_pool.queued_ms", t - waiter.since)
      mark(plan.span, member, pick.slot, plan.retries + 1)
    }
    if (!plan.idempotent && plan.timeout === undefined && member.core.submits()) {
      waiter.leave = member.core.submit(pick.slot, waiter.request, member.settledFast, t, (outcome) => {
        const resume = waiter.resume
        if (resume === undefined) return
        waiter.resume = undefined
        waiter.leave = undefined
        resume(outcome)
      })
      return true
    }
    waiter.leave = () => {
      release(pick)
      if (plan.idempotent) return
      settledOne()
      meter.failed("Interrupted")
    }
    later.run(() => {
      const resume = waiter.resume
      if (resume === undefined) return
      waiter.resume = undefined
      waiter.leave = undefined
      resume(
        plan.idempotent
          ? runIdempotent(pick, waiter.request, plan.timeout, waiter.queueTimeoutMillis, plan.retries, plan.span)
          : startServed(pick, waiter.request, plan, waiter.queueTimeoutMillis)
      )
    })
    return true
  }

  /** Runs a request that was served a slot while it waited. */
  const startServed = (
    pick: Pick<Req, Resp, E>,
    request: Req,
    plan: Plan,
    queueTimeoutMillis: number
  ): Effect.Effect<Resp, DispatchError<E>> => {
    const member = pick.member as S
    // The incarnation that gave the slot may have ended before the caller woke.
    if (!member.core.startable(pick.slot)) {
      release(pick)
      return place(plan.caller, request, plan.timeout, queueTimeoutMillis, plan.span)
    }
    return member.core.run(
      pick.slot,
      request,
      plan.timeout,
      plan.caller,
      member.settledFast,
      turnNow()
    ) as Effect.Effect<Resp, E | WorkerCrash | RequestTimeout>
  }

  /** Runs an idempotent request in `pick`; after a `WorkerCrash` it is tried again on another worker. */
  const runIdempotent = (
    pick: Pick<Req, Resp, E>,
    request: Req,
    timeout: Duration.Duration | undefined,
    queueTimeoutMillis: number,
    retries: number,
    span: Tracer.Span | undefined
  ): Effect.Effect<Resp, DispatchError<E>> => {
    const member = pick.member as S
    return Effect.withFiber((caller) => {
      if (!member.core.startable(pick.slot)) {
        release(pick)
        return attemptIdempotent(request, timeout, queueTimeoutMillis, retries, span)
      }
      if (span !== undefined) mark(span, member, pick.slot, retries + 1)
      return member.core.run(pick.slot, request, timeout, caller, member.settled, now()) as Effect.Effect<
        Resp,
        DispatchError<E>
      >
    }).pipe(
      Effect.catchIf(
        (error): error is WorkerCrash => error instanceof WorkerCrash && retries < config.retry.maxRetries,
        (crash) => {
          // Tried again on another worker, if one is free now and the retry
          // budget allows it.
          const other = selection.pick(request, now(), member)
          if (other === undefined) return Effect.fail(crash)
          if (!outcomes.budget.tryRetry(now())) {
            release(other)
            return Effect.fail(crash)
          }
          meter.retries++
          return runIdempotent(other, request, timeout, queueTimeoutMillis, retries + 1, span)
        }
      )
    ) as Effect.Effect<Resp, DispatchError<E>>
  }

  const attemptIdempotent = (
    request: Req,
    timeout: Duration.Duration | undefined,
    queueTimeoutMillis: number,
    retries: number,
    span: Tracer.Span | undefined
  ): Effect.Effect<Resp, DispatchError<E>> =>
    Effect.withFiber((caller) => {
      if (admission.isEmpty) {
        const pick = selection.pick(request, now())
        if (pick !== undefined) {
          meter.queueWait.observe(0)
          span?.attribute("worker_pool.queued_ms", 0)
          return runIdempotent(pick, request, timeout, queueTimeoutMillis, retries, span)
        }
      }
      if (membership.canComeBack === 0) return Effect.fail(refusal())
      const waiting = admission.enqueue<Resp, DispatchError<E>>(
        request,
        { caller, timeout, idempotent: true, retries, span },
        queueTimeoutMillis
      )
      if (waiting instanceof PoolBusy) return Effect.fail(waiting)
      return waiting
    })

  /** Admits a request on its caller's fiber; `span`: the span of its dispatch, when traced. */
  const admit = (
    caller: Fiber.Fiber<unknown, unknown>,
    request: Req,
    options: DispatchOptions | undefined,
    span: Tracer.Span | undefined
  ): Effect.Effect<Resp, DispatchError<E>> => {
    if (closing) {
      meter.failed("PoolShutdown")
      return Effect.fail(shutdownError)
    }
    if (options === undefined && admission.isEmpty) {
      // The fast path: a free slot now, nobody waiting before this request.
      const t = turnNow()
      const pick = selection.pick(request, t)
      if (pick !== undefined) {
        active++
        const member = pick.member as S
        meter.queueWait.observe(0)
        if (span !== undefined) {
          span.attribute("worker_pool.queued_ms", 0)
          mark(span, member, pick.slot, 1)
        }
        const run = member.core.run(pick.slot, request, config.timeout, caller, member.settledFast, t)
        outcomes.budget.request(t)
        return run as Effect.Effect<Resp, E | WorkerCrash | RequestTimeout>
      }
    }
    active++
    outcomes.budget.request(turnNow())
    if (options === undefined) return place(caller, request, config.timeout, config.queueTimeoutMillis, span)
    const timeout = options.timeout === undefined ? config.timeout : Duration.fromInputUnsafe(options.timeout)
    const queueTimeoutMillis =
      options.queueTimeout === undefined
        ? config.queueTimeoutMillis
        : Duration.toMillis(Duration.fromInputUnsafe(options.queueTimeout))
    if (options.idempotent !== true) return place(caller, request, timeout, queueTimeoutMillis, span)
    return onExitSync(attemptIdempotent(request, timeout, queueTimeoutMillis, 0, span), (exit) => {
      settledOne()
      const outcome = outcomeOfExit(exit)
      if (outcome === "Success") meter.successes++
      else meter.failed(outcome)
    })
  }

  const spanOptions: Tracer.SpanOptionsNoTrace = {
    attributes: { "worker_pool.name": config.name, "worker_pool.policy": config.policy.name }
  }

  /** A dispatch under a span of its own, the parent of the handler's spans. */
  const traced = (request: Req, options: DispatchOptions | undefined): Effect.Effect<Resp, DispatchError<E>> =>
    Effect.useSpan("WorkerPool.dispatch", spanOptions, (span) =>
      // Without the stack frame `Effect.withParentSpan` would capture on every dispatch.
      Effect.provideService(
        Effect.withFiber((caller) => admit(caller, request, options, span)),
        Tracer.ParentSpan,
        span
      )
    )

  const dispatch = (request: Req, options?: DispatchOptions): Effect.Effect<Resp, DispatchError<E>> =>
    Effect.withFiber((caller) =>
      traces(caller) ? traced(request, options) : admit(caller, request, options, undefined)
    )

  // --- membership ------------------------------------------------------------

  const add = (worker: Worker<Req, Resp, E>): Effect.Effect<void, DuplicateWorkerId> =>
    Effect.suspend(() => {
      if (membership.find(worker.id) !== undefined) {
        return Effect.fail(new DuplicateWorkerId({ workerId: worker.id }))
      }
      const core = coreOf<Req, Resp, E>(worker)
      if (core === undefined) {
        return Effect.die(new TypeError(`worker ${worker.id} was not made by Worker.make, makeScoped or fromKind`))
      }
      if (core.listener !== undefined) return Effect.die(new TypeError(`worker ${worker.id} belongs to another pool`))
      if (closing) return core.stop("it was added to a pool that had shut down")
      const member = membership.add(worker, core) as S
      member.settled = (outcome, slot) => afterSettle(member, outcome, slot)
      member.settledFast = (outcome, slot) => {
        afterSettle(member, outcome, slot)
        settledOne()
        if (outcome === "succeeded") meter.successes++
        else meter.failed(outcomeOf(outcome, slot))
      }
      member.metrics = meter.worker(worker.id, core.kind, core.health)
      core.listener = () => changed(member)
      core.takeSpare = takeSpare
      core.hasSpare = hasSpare
      if (core.spareSource !== undefined) {
        spares.offer(core.spareSource)
        if (core.health.isLive) spares.started(core.spareSource.kind)
      }
      selection.reset()
      const health = core.health.snapshot()
      later.run(() => PubSub.publishUnsafe(changes, [worker.id, health]))
      checkHope()
      pump()
      return Effect.void
    })

  const remove = (id: WorkerId): Effect.Effect<void, UnknownWorkerId> =>
    Effect.suspend(() => {
      const member = membership.find(id)
      if (member === undefined) return Effect.fail(new UnknownWorkerId({ workerId: id }))
      membership.remove(member)
      ;(member as S).metrics.detach()
      member.core.listener = undefined
      member.core.takeSpare = undefined
      member.core.hasSpare = undefined
      selection.reset()
      checkHope()
      const stop = member.core.stop("it was removed from the pool", { graceful: true })
      if (!member.core.holdsCallers()) return stop
      // Its request runs on the caller's fiber: the worker stops once it ends.
      leaving.add(member)
      background(
        Effect.ensuring(
          stop,
          Effect.sync(() => leaving.delete(member))
        )
      )
      return Effect.void
    })

  // --- shutdown --------------------------------------------------------------

  yield* Scope.addFinalizer(
    scope,
    Effect.gen(function* () {
      closing = true
      if (active > 0) yield* Effect.timeoutOption(Deferred.await(drained), config.drain)
      // The drain deadline has passed: what is still waiting never starts,
      // what is still running is cut.
      admission.failAll(new PoolShutdown({ reason: "the pool shut down before the request started" }))
      yield* Effect.forEach(
        [...membership.members, ...leaving],
        (member) =>
          member.core.stop("the pool shut down", {
            cut: () => new PoolShutdown({ reason: "the pool shut down before the request finished" })
          }),
        { concurrency: "unbounded", discard: true }
      )
      yield* spares.close()
      // The last changes (workers stopped) reach the stream before it ends.
      later.flush()
      yield* PubSub.shutdown(changes)
      meter.close()
    })
  )

  return {
    policy: config.policy.name,
    add,
    remove,
    size: Effect.sync(() => membership.members.length),
    isEmpty: Effect.sync(() => membership.members.length === 0),
    queued: Effect.sync(() => admission.length),
    select: Effect.sync(() => Option.map(Option.fromNullishOr(selection.peek()), (member) => member.worker)),
    dispatch,
    health: Effect.sync(() =>
      membership.members.map((member) => [member.worker.id, member.core.health.snapshot()] as const)
    ),
    changes: Stream.fromPubSub(changes),
    spares: Effect.sync(() => spares.health())
  }
})
