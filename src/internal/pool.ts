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
import type { Clock, Random } from "effect"
import { Deferred, Duration, Effect, Exit, type Fiber, FiberSet, Option, PubSub, Scope, Stream } from "effect"
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
}

/** A member with the callbacks its requests settle through, made once. */
interface Seat<Req, Resp, E> extends Member<Req, Resp, E> {
  /** For requests whose admission is counted by the caller's own frame. */
  settled: OnSettled
  /** For requests on the fast path, whose settling also ends their admission. */
  settledFast: OnSettled
}

const shutdownError = new PoolShutdown({ reason: "the pool is shutting down: it admits no new request" })

export const make = Effect.fnUntraced(function* <Req, Resp, E>(
  config: PoolConfig,
  services: { readonly clock: Clock.Clock; readonly random: Random.Random }
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
  // Made before the shutdown's finalizer, so closed after it: spares (and
  // the scopes of promoted ones) outlive the drain.
  const spares = new Spares(config.spares, yield* Scope.fork(scope, "sequential"), background)
  const takeSpare = (kind: WorkerKind<any, any, any, any>) => (closing ? undefined : spares.take(kind))
  const hasSpare = (kind: WorkerKind<any, any, any, any>) => !closing && spares.has(kind)
  const selection = new Selection<Req, Resp, E>(membership, config.policy, config.ejection, random, now)
  const pump = () => admission.pump()
  const outcomes = new Outcomes<Req, Resp, E>(membership, selection, config.ejection, config.retry, {
    now,
    turnNow,
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
    abandoned: (waiter) => {
      if (!waiter.plan.idempotent) settledOne()
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
    selection.refresh(member)
    outcomes.settled(member, outcome, slot)
    pump()
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
    queueTimeoutMillis: number
  ): Effect.Effect<Resp, DispatchError<E>> => {
    if (admission.isEmpty) {
      const t = turnNow()
      const pick = selection.pick(request, t)
      if (pick !== undefined) {
        const member = pick.member as S
        return member.core.run(pick.slot, request, timeout, caller, member.settledFast, t) as Effect.Effect<
          Resp,
          E | WorkerCrash | RequestTimeout
        >
      }
    }
    if (membership.canComeBack === 0) {
      settledOne()
      return Effect.fail(refusal())
    }
    const waiting = admission.enqueue<Resp, DispatchError<E>>(
      request,
      { caller, timeout, idempotent: false, retries: 0 },
      queueTimeoutMillis
    )
    if (waiting instanceof PoolBusy) {
      settledOne()
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
      if (!plan.idempotent) settledOne()
    }
    later.run(() => {
      const resume = waiter.resume
      if (resume === undefined) return
      waiter.resume = undefined
      waiter.leave = undefined
      resume(
        plan.idempotent
          ? runIdempotent(pick, waiter.request, plan.timeout, waiter.queueTimeoutMillis, plan.retries)
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
      return place(plan.caller, request, plan.timeout, queueTimeoutMillis)
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
    retries: number
  ): Effect.Effect<Resp, DispatchError<E>> => {
    const member = pick.member as S
    return Effect.withFiber((caller) => {
      if (!member.core.startable(pick.slot)) {
        release(pick)
        return attemptIdempotent(request, timeout, queueTimeoutMillis, retries)
      }
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
          return runIdempotent(other, request, timeout, queueTimeoutMillis, retries + 1)
        }
      )
    ) as Effect.Effect<Resp, DispatchError<E>>
  }

  const attemptIdempotent = (
    request: Req,
    timeout: Duration.Duration | undefined,
    queueTimeoutMillis: number,
    retries: number
  ): Effect.Effect<Resp, DispatchError<E>> =>
    Effect.withFiber((caller) => {
      if (admission.isEmpty) {
        const pick = selection.pick(request, now())
        if (pick !== undefined) return runIdempotent(pick, request, timeout, queueTimeoutMillis, retries)
      }
      if (membership.canComeBack === 0) return Effect.fail(refusal())
      const waiting = admission.enqueue<Resp, DispatchError<E>>(
        request,
        { caller, timeout, idempotent: true, retries },
        queueTimeoutMillis
      )
      if (waiting instanceof PoolBusy) return Effect.fail(waiting)
      return waiting
    })

  const dispatch = (request: Req, options?: DispatchOptions): Effect.Effect<Resp, DispatchError<E>> =>
    Effect.withFiber((caller) => {
      if (closing) return Effect.fail(shutdownError)
      if (options === undefined && admission.isEmpty) {
        // The fast path: a free slot now, nobody waiting before this request.
        const t = turnNow()
        const pick = selection.pick(request, t)
        if (pick !== undefined) {
          active++
          const member = pick.member as S
          const run = member.core.run(pick.slot, request, config.timeout, caller, member.settledFast, t)
          outcomes.budget.request(t)
          return run as Effect.Effect<Resp, E | WorkerCrash | RequestTimeout>
        }
      }
      active++
      outcomes.budget.request(turnNow())
      if (options === undefined) return place(caller, request, config.timeout, config.queueTimeoutMillis)
      const timeout = options.timeout === undefined ? config.timeout : Duration.fromInputUnsafe(options.timeout)
      const queueTimeoutMillis =
        options.queueTimeout === undefined
          ? config.queueTimeoutMillis
          : Duration.toMillis(Duration.fromInputUnsafe(options.queueTimeout))
      if (options.idempotent !== true) return place(caller, request, timeout, queueTimeoutMillis)
      return Effect.ensuring(attemptIdempotent(request, timeout, queueTimeoutMillis, 0), Effect.sync(settledOne))
    })

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
      }
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
