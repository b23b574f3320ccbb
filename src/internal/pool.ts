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
import type { Candidate, DispatchPolicy } from "../DispatchPolicy.ts"
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
import { internals, NotStarted, type Ticket, type WorkerInternals } from "./worker.ts"

/** The pool's settings, validated, with defaults applied. */
export interface PoolConfig {
  readonly policy: DispatchPolicy
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
}

interface Assignment<Req, Resp, E> {
  readonly member: Member<Req, Resp, E>
  readonly ticket: Ticket
}

interface Waiter<Req, Resp, E> {
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
  let policyState: unknown = policy.initialState
  let closing = false
  let pumping = false
  /** Requests admitted and not yet settled, queued or running. */
  let active = 0

  const health = (member: M) => member.inner.healthRef.ref.current

  // --- selection -----------------------------------------------------------

  /**
   * The worker a request would go to now: a due probe of an ejected worker
   * first, else the policy's pick among the healthy workers with a free slot
   * (and the ejected ones too, in panic). With `reserve`, takes the slot.
   */
  const pick = (reserve: boolean, exclude?: WorkerId): { member: M; ticket: Ticket | undefined } | undefined => {
    const t = now()
    const candidates: Array<Candidate> = []
    const picks: Array<M> = []
    const ejectedCandidates: Array<readonly [Candidate, M]> = []
    let healthy = 0
    for (const member of members) {
      if (!member.inner.isLive()) continue
      const h = health(member)
      const free = h.inFlight < member.inner.maxInFlight
      if (h.ejectedUntil === undefined) {
        healthy++
        if (free && member.worker.id !== exclude) {
          candidates.push({ id: member.worker.id, health: h })
          picks.push(member)
        }
        continue
      }
      if (member.worker.id === exclude) continue
      if (h.ejectedUntil <= t && h.inFlight === 0 && !member.probing) {
        // Half-open: exactly one probe decides the worker's fate.
        if (reserve) member.probing = true
        return { member, ticket: reserve ? member.inner.reserve() : undefined }
      }
      if (free) ejectedCandidates.push([{ id: member.worker.id, health: h }, member])
    }
    if (rules !== undefined && ejectedCandidates.length > 0 && inPanic(rules, healthy, members.length)) {
      for (const [candidate, member] of ejectedCandidates) {
        const at = candidates.findIndex((c) => c.id > candidate.id)
        const index = at === -1 ? candidates.length : at
        candidates.splice(index, 0, candidate)
        picks.splice(index, 0, member)
      }
    }
    if (candidates.length === 0) return undefined
    const selection = policy.select({
      workers: candidates,
      state: policyState,
      random: () => random.nextDoubleUnsafe(),
      now: t
    })
    const index = selection.index
    if (!Number.isInteger(index) || index < 0 || index >= candidates.length) {
      throw new RangeError(`dispatch policy ${policy.name} picked index ${index} among ${candidates.length} workers`)
    }
    policyState = selection.state
    const member = picks[index]!
    return { member, ticket: reserve ? member.inner.reserve() : undefined }
  }

  const reservePick = (exclude?: WorkerId): Assignment<Req, Resp, E> | undefined => {
    const picked = pick(true, exclude)
    return picked === undefined ? undefined : { member: picked.member, ticket: picked.ticket! }
  }

  const hasLiveWorker = () => members.some((member) => member.inner.isLive())

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
        const assignment = reservePick()
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

  /** A waiting caller gave up: it leaves the queue, or gives back its slot. */
  const leave = (waiter: Waiter<Req, Resp, E>) => {
    if (waiter.node !== undefined) {
      ;(waiter.inOverflow ? overflow : queue).remove(waiter.node)
      waiter.node = undefined
      refill()
    }
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

  const ejectedCount = () => members.filter((member) => health(member).ejectedUntil !== undefined).length

  /** What a settled request says about its worker: ejection, readmission. */
  const afterOutcome = (member: M, exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> =>
    Effect.suspend(() => {
      const error = Exit.isFailure(exit) ? Option.getOrUndefined(Exit.findErrorOption(exit)) : undefined
      const failed = error instanceof WorkerCrash || error instanceof RequestTimeout
      const succeeded = Exit.isSuccess(exit) || (error !== undefined && !failed && !(error instanceof PoolShutdown))
      let effect: Effect.Effect<void> = Effect.void
      if (rules !== undefined && members.includes(member)) {
        if (member.probing) {
          member.probing = false
          if (succeeded) effect = readmit(member)
          else if (failed)
            effect = Effect.andThen(
              Effect.sync(() => member.inner.setEjection(undefined)),
              eject(member)
            )
        } else if (failed && shouldEject(rules, health(member), ejectedCount(), members.length)) {
          effect = eject(member)
        }
      }
      return Effect.ensuring(effect, Effect.sync(pump))
    })

  // --- running a request -----------------------------------------------------

  const run = (
    assignment: Assignment<Req, Resp, E>,
    request: Req,
    timeout: Duration.Duration | undefined,
    retryable: boolean,
    retries: number
  ): Effect.Effect<Resp, DispatchError<E>> =>
    assignment.member.inner.start(assignment.ticket, request, timeout).pipe(
      Effect.ensuring(Effect.sync(() => release(assignment))),
      Effect.onExit((exit) => afterOutcome(assignment.member, exit)),
      Effect.catchIf(isNotStarted, () => attempt(request, timeout, retryable, retries)),
      Effect.catchIf(
        (error): error is WorkerCrash => retryable && error instanceof WorkerCrash && retries < config.retry.maxRetries,
        (crash) => {
          // An idempotent request is tried again on another worker, if one is
          // free now and the retry budget allows it.
          const other = reservePick(assignment.member.worker.id)
          if (other === undefined) return Effect.fail(crash)
          if (!budget.tryRetry(now())) {
            release(other)
            return Effect.fail(crash)
          }
          return run(other, request, timeout, retryable, retries + 1)
        }
      )
    )

  const enqueue = (
    request: Req,
    timeout: Duration.Duration | undefined,
    retryable: boolean,
    retries: number
  ): Effect.Effect<Resp, DispatchError<E>> =>
    Effect.suspend(() => {
      const waiter: Waiter<Req, Resp, E> = {
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
      return Deferred.await(waiter.deferred).pipe(
        Effect.onInterrupt(() => Effect.sync(() => leave(waiter))),
        Effect.flatMap((assignment) => run(assignment, request, timeout, retryable, retries)),
        // Interrupted between being handed a slot and starting on it.
        Effect.ensuring(Effect.sync(() => waiter.assignment !== undefined && release(waiter.assignment)))
      )
    })

  const attempt = (
    request: Req,
    timeout: Duration.Duration | undefined,
    retryable: boolean,
    retries: number
  ): Effect.Effect<Resp, DispatchError<E>> =>
    Effect.suspend(() => {
      if (queue.length === 0 && overflow.length === 0) {
        const assignment = reservePick()
        if (assignment !== undefined) return run(assignment, request, timeout, retryable, retries)
      }
      if (!hasLiveWorker()) return Effect.fail(new WorkerCrash({ reason: noWorkerReason() }))
      return enqueue(request, timeout, retryable, retries)
    })

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
      const member: M = { worker, inner, streak: 0, readmittedAt: undefined, probing: false }
      members = [...members, member].sort((a, b) => a.worker.id - b.worker.id)
      inner.onStateChange((h) => {
        PubSub.publishUnsafe(changes, [worker.id, h] as const)
        pump()
      })
      PubSub.publishUnsafe(changes, [worker.id, health(member)] as const)
      pump()
      return Effect.void
    })

  const remove = (id: WorkerId): Effect.Effect<void, UnknownWorkerId> =>
    Effect.suspend(() => {
      const member = members.find((m) => m.worker.id === id)
      if (member === undefined) return Effect.fail(new UnknownWorkerId({ workerId: id }))
      members = members.filter((m) => m !== member)
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
    select: Effect.sync(() => Option.map(Option.fromNullishOr(pick(false)), ({ member }) => member.worker)),
    dispatch,
    health: Effect.sync(() => members.map((member) => [member.worker.id, health(member)] as const)),
    changes: Stream.fromPubSub(changes)
  }
})
