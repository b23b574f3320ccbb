/**
 * The pool's engine: membership, the admission queue, selection, ejection,
 * retries and the drain at shutdown.
 *
 * Everything that decides where a request goes runs synchronously (a pick,
 * taking a slot on the picked worker, handing a queued request to a worker),
 * so that nothing changes between the decision and its effect. A request holds
 * a slot (it counts as in flight on its worker) from the moment it is
 * assigned; when a worker frees a slot, the head of the queue takes it.
 */
import type { Clock, Random } from "effect"
import { Deferred, Duration, Effect, Exit, FiberSet, Option, PubSub, Scope, Stream } from "effect"
import type { DispatchPolicy } from "../DispatchPolicy.ts"
import type { Worker } from "../Worker.ts"
import {
  DuplicateWorkerId,
  PoolBusy,
  PoolShutdown,
  RequestTimeout,
  UnknownWorkerId,
  WorkerCrash
} from "../WorkerError.ts"
import type { WorkerHealth } from "../WorkerHealth.ts"
import type { WorkerId } from "../WorkerId.ts"
import type { DispatchError, DispatchOptions, QueueStrategy, WorkerPool } from "../WorkerPool.ts"
import { type EjectionRules, inPanic, penaltyMillis, shouldEject } from "./ejection.ts"
import { Fifo, type FifoNode } from "./fifo.ts"
import { makeRetryBudget } from "./retryBudget.ts"
import { Roster } from "./roster.ts"
import { internals, NotStarted, type Ticket, type WorkerInternals } from "./worker.ts"

/** The pool's settings, validated, with defaults applied. */
export interface PoolConfig {
  readonly policy: DispatchPolicy<any, any>
  readonly timeout: Duration.Duration | undefined
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
}

interface Member<Req, Resp, E> {
  readonly worker: Worker<Req, Resp, E>
  readonly inner: WorkerInternals<Req, Resp, E>
  /** Ejections in a row, without a healthy period in between. */
  streak: number
  readmittedAt: number | undefined
  /** A probe request is on its way to this ejected worker. */
  probing: boolean
  /** Its position in id order among the members, -1 once removed. */
  rank: number
}

interface Assignment<Req, Resp, E> {
  readonly member: Member<Req, Resp, E>
  readonly ticket: Ticket
}

interface Waiter<Req, Resp, E> {
  readonly request: Req
  readonly deferred: Deferred.Deferred<Assignment<Req, Resp, E>, WorkerCrash | PoolBusy | PoolShutdown>
  node: FifoNode<Waiter<Req, Resp, E>> | undefined
  inOverflow: boolean
  assignment: Assignment<Req, Resp, E> | undefined
}

const isNotStarted = (u: unknown): u is NotStarted => u instanceof NotStarted

export const make = Effect.fnUntraced(function* <Req, Resp, E>(
  config: PoolConfig,
  services: { readonly clock: Clock.Clock; readonly random: Random.Random }
): Effect.fn.Return<WorkerPool<Req, Resp, E>, never, Scope.Scope> {
  type M = Member<Req, Resp, E>
  const scope = yield* Scope.Scope
  const { clock, random } = services
  const now = () => clock.currentTimeMillisUnsafe()
  const policy = config.policy
  const rules = config.ejection
  const changes = yield* PubSub.unbounded<readonly [WorkerId, WorkerHealth]>()
  const timers = yield* FiberSet.make()
  const budget = makeRetryBudget(config.retry)
  const queue = new Fifo<Waiter<Req, Resp, E>>()
  /** Callers suspended until the queue has room (the `"suspend"` strategy). */
  const overflow = new Fifo<Waiter<Req, Resp, E>>()
  const drained = Deferred.makeUnsafe<void>()

  let members: ReadonlyArray<M> = []
  let policyState: unknown = policy.initial()
  let closing = false
  let pumping = false
  let picking = false
  /** Requests admitted and not yet settled, queued or running. */
  let active = 0
  /** Members that can take requests (`Healthy` or `Ejected`), and those of them `Healthy`. */
  let live = 0
  let healthy = 0
  let panic = false
  /** Members under an ejection (live or not), for their probes. */
  const ejected = new Set<M>()
  const roster = new Roster()

  const health = (member: M) => member.inner.healthRef.ref.current
  const isLive = (h: WorkerHealth) => h.state === "Healthy" || h.state === "Ejected"

  // --- the roster of eligible workers ----------------------------------------

  /** A policy may pick a live worker with a free slot, and an ejected one only in panic. */
  const isEligible = (member: M, h: WorkerHealth) =>
    isLive(h) && h.inFlight < member.inner.maxInFlight && (h.ejectedUntil === undefined || panic)

  const updateRoster = (member: M) => {
    const h = health(member)
    roster.update(member.rank, isEligible(member, h), h)
  }

  const updatePanic = () => {
    const next = rules !== undefined && inPanic(rules, healthy, members.length)
    if (next === panic) return
    panic = next
    for (const member of ejected) updateRoster(member)
  }

  /** Rebuilds the roster after a change of membership. */
  const rebuild = () => {
    roster.reset(
      members.map((member) => ({ id: member.worker.id, maxInFlight: member.inner.maxInFlight, health: health(member) }))
    )
    members.forEach((member, rank) => {
      member.rank = rank
    })
    live = members.filter((member) => isLive(health(member))).length
    healthy = members.filter((member) => health(member).state === "Healthy").length
    panic = rules !== undefined && inPanic(rules, healthy, members.length)
    for (const member of members) updateRoster(member)
  }

  /** Follows every change of a member's health: roster, counts, the stream, the queue. */
  const onChange = (member: M, h: WorkerHealth, previous: WorkerHealth) => {
    if (member.rank === -1) return
    live += Number(isLive(h)) - Number(isLive(previous))
    healthy += Number(h.state === "Healthy") - Number(previous.state === "Healthy")
    if (h.ejectedUntil === undefined) ejected.delete(member)
    else ejected.add(member)
    updatePanic()
    updateRoster(member)
    const changed =
      h.state !== previous.state || h.attempt !== previous.attempt || h.ejectedUntil !== previous.ejectedUntil
    if (changed) PubSub.publishUnsafe(changes, [member.worker.id, h] as const)
    if (!picking && (changed || h.inFlight < previous.inFlight)) pump()
  }

  // --- selection -----------------------------------------------------------

  /**
   * The worker a request would go to now: a due probe of an ejected worker
   * first, else the policy's pick among the eligible workers. With
   * `reserve`, takes the slot.
   */
  const pick = (
    reserve: boolean,
    request: Req | undefined,
    exclude?: M
  ): { member: M; ticket: Ticket | undefined } | undefined => {
    const t = now()
    for (const member of ejected) {
      const h = health(member)
      if (member !== exclude && isLive(h) && h.ejectedUntil! <= t && h.inFlight === 0 && !member.probing) {
        // Half-open: exactly one probe decides the worker's fate.
        if (!reserve) return { member, ticket: undefined }
        member.probing = true
        picking = true
        try {
          return { member, ticket: member.inner.reserve() }
        } finally {
          picking = false
        }
      }
    }
    picking = true
    if (exclude !== undefined) roster.update(exclude.rank, false, health(exclude))
    try {
      if (roster.size === 0) return undefined
      const selection = policy.select({
        view: roster,
        state: policyState,
        random: () => random.nextDoubleUnsafe(),
        now: t,
        request
      })
      policyState = selection.state
      if (selection.worker === undefined) return undefined
      const rank = roster.rankOf(selection.worker)
      if (rank === undefined || !roster.has(selection.worker)) {
        throw new RangeError(
          `dispatch policy ${policy.name} picked worker ${selection.worker}, which is not one it was offered`
        )
      }
      const member = members[rank]!
      return { member, ticket: reserve ? member.inner.reserve() : undefined }
    } finally {
      if (exclude !== undefined && exclude.rank !== -1) updateRoster(exclude)
      picking = false
    }
  }

  const reservePick = (request: Req | undefined, exclude?: M): Assignment<Req, Resp, E> | undefined => {
    const picked = pick(true, request, exclude)
    return picked === undefined || picked.ticket === undefined
      ? undefined
      : { member: picked.member, ticket: picked.ticket }
  }

  const hasLiveWorker = () => live > 0

  const noWorkerReason = (): string => {
    if (members.length === 0) return "no worker available: the pool is empty"
    const states = new Map<string, number>()
    for (const member of members) {
      const h = health(member)
      const label = h.state === "Retired" && h.retiredBecause !== undefined ? `Retired (${h.retiredBecause})` : h.state
      states.set(label, (states.get(label) ?? 0) + 1)
    }
    const summary = [...states].map(([state, n]) => `${n} ${state}`).join(", ")
    return `no worker available: none of the ${members.length} workers is healthy (${summary})`
  }

  // --- the admission queue -------------------------------------------------

  const refill = () => {
    while (queue.length < config.queueCapacity && overflow.length > 0) {
      const waiter = overflow.shift()!
      waiter.inOverflow = false
      waiter.node = queue.push(waiter)
    }
  }

  const failWaiting = (error: WorkerCrash | PoolShutdown) => {
    for (const fifo of [queue, overflow]) {
      for (let waiter = fifo.shift(); waiter !== undefined; waiter = fifo.shift()) {
        waiter.node = undefined
        Deferred.doneUnsafe(waiter.deferred, Exit.fail(error))
      }
    }
  }

  /** Hands queued requests to workers with a free slot, in arrival order. */
  const pump = (): void => {
    if (pumping) return
    pumping = true
    try {
      while (queue.length > 0) {
        if (!hasLiveWorker()) {
          failWaiting(new WorkerCrash({ reason: noWorkerReason() }))
          return
        }
        const assignment = reservePick(queue.peek()!.request)
        if (assignment === undefined) return
        const waiter = queue.shift()!
        waiter.node = undefined
        waiter.assignment = assignment
        refill()
        Deferred.doneUnsafe(waiter.deferred, Exit.succeed(assignment))
      }
    } finally {
      pumping = false
    }
  }

  /** Gives back an assignment that was never used. */
  const release = (assignment: Assignment<Req, Resp, E>) => {
    if (assignment.member.inner.cancel(assignment.ticket)) {
      assignment.member.probing = false
      pump()
    }
  }

  /** A waiting caller gave up: it leaves the queue, or gives back the slot it was handed. */
  const leave = (waiter: Waiter<Req, Resp, E>) => {
    if (waiter.node !== undefined) {
      ;(waiter.inOverflow ? overflow : queue).remove(waiter.node)
      waiter.node = undefined
      refill()
    }
    if (waiter.assignment !== undefined) release(waiter.assignment)
  }

  // --- ejection --------------------------------------------------------------

  const eject = (member: M): Effect.Effect<void> =>
    Effect.suspend(() => {
      const t = now()
      const healthySince = member.readmittedAt
      member.streak = healthySince !== undefined && t - healthySince >= rules!.baseMillis ? 1 : member.streak + 1
      const penalty = penaltyMillis(rules!, member.streak, random.nextDoubleUnsafe())
      member.inner.setEjection(t + penalty)
      return Effect.logWarning("worker ejected").pipe(
        Effect.annotateLogs({ workerId: member.worker.id, penaltyMillis: Math.round(penalty) }),
        // When the penalty is over, a queued request may probe it.
        Effect.andThen(FiberSet.run(timers, Effect.andThen(Effect.sleep(penalty), Effect.sync(pump)))),
        Effect.asVoid
      )
    })

  const readmit = (member: M) =>
    Effect.suspend(() => {
      member.inner.setEjection(undefined)
      member.readmittedAt = now()
      return Effect.logInfo("worker readmitted").pipe(Effect.annotateLogs({ workerId: member.worker.id }))
    })

  /** What a settled request says about its worker: ejection, readmission. */
  const afterOutcome = (member: M, exit: Exit.Exit<unknown, unknown>, startedAt: number): Effect.Effect<void> =>
    Effect.suspend(() => {
      const error = Exit.isFailure(exit) ? Option.getOrUndefined(Exit.findErrorOption(exit)) : undefined
      if (error instanceof NotStarted) return Effect.sync(pump)
      const failed = error instanceof WorkerCrash || error instanceof RequestTimeout
      // A domain error is a success of the worker: it judged the request.
      const succeeded = Exit.isSuccess(exit) || (error !== undefined && !failed && !(error instanceof PoolShutdown))
      if (policy.onResult !== undefined && (succeeded || failed) && member.rank !== -1) {
        const t = now()
        policyState = policy.onResult(policyState, {
          worker: member.worker.id,
          millis: t - startedAt,
          failed,
          now: t
        })
      }
      let effect: Effect.Effect<void> = Effect.void
      if (rules !== undefined && member.rank !== -1) {
        if (member.probing) {
          member.probing = false
          if (succeeded) effect = readmit(member)
          else if (failed)
            effect = Effect.andThen(
              Effect.sync(() => member.inner.setEjection(undefined)),
              eject(member)
            )
        } else if (failed && shouldEject(rules, health(member), ejected.size, members.length)) {
          effect = eject(member)
        }
      }
      return Effect.ensuring(effect, Effect.sync(pump))
    })

  // --- running a request -----------------------------------------------------

  type Restore = <A, E2, R2>(effect: Effect.Effect<A, E2, R2>) => Effect.Effect<A, E2, R2>

  /**
   * Runs `request` in the slot of `assignment`. Called in an uninterruptible
   * region (`restore` makes the work interruptible again), so the slot is
   * given back whatever happens before the request starts on it.
   */
  const run = (
    assignment: Assignment<Req, Resp, E>,
    request: Req,
    timeout: Duration.Duration | undefined,
    retryable: boolean,
    retries: number,
    restore: Restore
  ): Effect.Effect<Resp, DispatchError<E>> =>
    restore(
      Effect.suspend(() => {
        const startedAt = now()
        return assignment.member.inner
          .start(assignment.ticket, request, timeout)
          .pipe(Effect.onExit((exit) => afterOutcome(assignment.member, exit, startedAt)))
      })
    ).pipe(
      Effect.ensuring(Effect.sync(() => release(assignment))),
      // The incarnation that gave the slot died before the request started.
      Effect.catchIf(isNotStarted, () => restore(attempt(request, timeout, retryable, retries))),
      Effect.catchIf(
        (error): error is WorkerCrash => retryable && error instanceof WorkerCrash && retries < config.retry.maxRetries,
        (crash) => {
          // An idempotent request is tried again on another worker, if one is
          // free now and the retry budget allows it.
          const other = reservePick(request, assignment.member)
          if (other === undefined) return Effect.fail(crash)
          if (!budget.tryRetry(now())) {
            release(other)
            return Effect.fail(crash)
          }
          return run(other, request, timeout, retryable, retries + 1, restore)
        }
      )
    )

  const enqueue = (
    request: Req,
    timeout: Duration.Duration | undefined,
    retryable: boolean,
    retries: number,
    restore: Restore
  ): Effect.Effect<Resp, DispatchError<E>> => {
    const waiter: Waiter<Req, Resp, E> = {
      request,
      deferred: Deferred.makeUnsafe(),
      node: undefined,
      inOverflow: false,
      assignment: undefined
    }
    if (queue.length < config.queueCapacity) {
      waiter.node = queue.push(waiter)
    } else if (config.queueStrategy === "suspend") {
      waiter.node = overflow.push(waiter)
      waiter.inOverflow = true
    } else if (config.queueStrategy === "dropOldest" && queue.length > 0) {
      const oldest = queue.shift()!
      oldest.node = undefined
      Deferred.doneUnsafe(
        oldest.deferred,
        Exit.fail(new PoolBusy({ reason: "dropped: the admission queue was full and a newer request arrived" }))
      )
      waiter.node = queue.push(waiter)
    } else {
      return Effect.fail(new PoolBusy({ reason: `the admission queue is full (${config.queueCapacity} waiting)` }))
    }
    return restore(Deferred.await(waiter.deferred)).pipe(
      Effect.onInterrupt(() => Effect.sync(() => leave(waiter))),
      Effect.flatMap((assignment) => run(assignment, request, timeout, retryable, retries, restore))
    )
  }

  const attempt = (
    request: Req,
    timeout: Duration.Duration | undefined,
    retryable: boolean,
    retries: number
  ): Effect.Effect<Resp, DispatchError<E>> =>
    Effect.uninterruptibleMask((restore) =>
      Effect.suspend(() => {
        if (queue.length === 0 && overflow.length === 0) {
          const assignment = reservePick(request)
          if (assignment !== undefined) return run(assignment, request, timeout, retryable, retries, restore)
        }
        if (!hasLiveWorker()) return Effect.fail(new WorkerCrash({ reason: noWorkerReason() }))
        return enqueue(request, timeout, retryable, retries, restore)
      })
    )

  const settled = Effect.sync(() => {
    active--
    if (closing && active === 0) Deferred.doneUnsafe(drained, Exit.void)
  })

  const dispatch = (request: Req, options?: DispatchOptions): Effect.Effect<Resp, DispatchError<E>> =>
    Effect.suspend(() => {
      if (closing) {
        return Effect.fail(new PoolShutdown({ reason: "the pool is shutting down: it admits no new request" }))
      }
      const timeout = options?.timeout === undefined ? config.timeout : Duration.fromInputUnsafe(options.timeout)
      budget.request(now())
      active++
      return Effect.ensuring(attempt(request, timeout, options?.idempotent === true, 0), settled)
    })

  // --- membership ------------------------------------------------------------

  const add = (worker: Worker<Req, Resp, E>): Effect.Effect<void, DuplicateWorkerId> =>
    Effect.suspend(() => {
      if (members.some((m) => m.worker.id === worker.id)) {
        return Effect.fail(new DuplicateWorkerId({ workerId: worker.id }))
      }
      const inner = internals(worker)
      if (closing) return inner.stop("it was added to a pool that had shut down")
      const member: M = { worker, inner, streak: 0, readmittedAt: undefined, probing: false, rank: 0 }
      members = [...members, member].sort((a, b) => a.worker.id - b.worker.id)
      const h = health(member)
      if (h.ejectedUntil !== undefined) ejected.add(member)
      rebuild()
      inner.onChange((h, previous) => onChange(member, h, previous))
      PubSub.publishUnsafe(changes, [worker.id, h] as const)
      pump()
      return Effect.void
    })

  const remove = (id: WorkerId): Effect.Effect<void, UnknownWorkerId> =>
    Effect.suspend(() => {
      const member = members.find((m) => m.worker.id === id)
      if (member === undefined) return Effect.fail(new UnknownWorkerId({ workerId: id }))
      members = members.filter((m) => m !== member)
      member.rank = -1
      ejected.delete(member)
      rebuild()
      return member.inner.stop("it was removed from the pool")
    })

  // --- shutdown --------------------------------------------------------------

  yield* Scope.addFinalizer(
    scope,
    Effect.gen(function* () {
      closing = true
      if (active > 0) yield* Effect.timeoutOption(Deferred.await(drained), config.drain)
      // The drain deadline has passed: what is still waiting never starts,
      // what is still running is cut.
      failWaiting(new PoolShutdown({ reason: "the pool shut down before the request started" }))
      yield* Effect.forEach(
        members,
        (member) =>
          member.inner.stop(
            "the pool shut down",
            () => new PoolShutdown({ reason: "the pool shut down before the request finished" })
          ),
        { concurrency: "unbounded", discard: true }
      )
      yield* PubSub.shutdown(changes)
    })
  )

  return {
    policy: policy.name,
    add,
    remove,
    size: Effect.sync(() => members.length),
    isEmpty: Effect.sync(() => members.length === 0),
    queued: Effect.sync(() => queue.length),
    select: Effect.sync(() => Option.map(Option.fromNullishOr(pick(false, undefined)), ({ member }) => member.worker)),
    dispatch,
    health: Effect.sync(() => members.map((member) => [member.worker.id, health(member)] as const)),
    changes: Stream.fromPubSub(changes)
  }
})
