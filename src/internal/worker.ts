/**
 * One supervised worker, for every kind: the counters, the classification of
 * outcomes, and the restart loop.
 *
 * Life of a worker: the supervisor fiber spawns an incarnation in a scope of
 * its own, waits until it dies, closes that scope (interrupting the requests
 * still on it, then releasing its resources), waits out the restart delay and
 * starts over, within its restart budget. Requests run on fibers that belong
 * to the incarnation, so its death reaches every request it holds.
 */
import {
  Cause,
  Clock,
  Context,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  FiberSet,
  MutableRef,
  Ref,
  Scope
} from "effect"
import type { Worker } from "../Worker.ts"
import { RequestTimeout, WorkerCrash } from "../WorkerError.ts"
import type { WorkerHealth, WorkerState } from "../WorkerHealth.ts"
import type { WorkerId } from "../WorkerId.ts"
import type { Incarnation, WorkerKind } from "../WorkerKind.ts"
import { describe, spawnFailure } from "./describe.ts"
import { type RestartDecision, type RestartPolicy, restartTracker } from "./restart.ts"

/** @internal */
export const TypeId: unique symbol = Symbol.for("effect-worker-pool/Worker") as never

/**
 * A slot on a live incarnation, taken before a request is started on it: it
 * counts as in flight from then on, so that no one else takes the slot.
 */
export interface Ticket {
  readonly incarnation: object
  used: boolean
}

/** A request did not start: the incarnation that had given it a slot is gone. */
export class NotStarted {
  readonly _tag = "NotStarted"
}
const notStarted = new NotStarted()

/** What the pool needs from a worker beyond its public face. */
export interface WorkerInternals<Req, Resp, E> {
  /** The live health record, read without an effect on the dispatch path. */
  readonly healthRef: Ref.Ref<WorkerHealth>
  readonly maxInFlight: number
  /** Whether the worker has a live incarnation (it is `Healthy` or `Ejected`). */
  readonly isLive: () => boolean
  /** Takes a slot on the live incarnation, or `undefined` when there is none. */
  readonly reserve: () => Ticket | undefined
  /** Gives back a slot that was never used; `false` if it was used. */
  readonly cancel: (ticket: Ticket) => boolean
  /**
   * Runs `request` in the slot. Fails with `NotStarted` when the incarnation
   * died since the slot was taken: the request never reached the worker and
   * the slot is given back. A slot that `start` never began to use (its
   * caller was interrupted first) must be given back with `cancel`.
   */
  readonly start: (
    ticket: Ticket,
    request: Req,
    timeout: Duration.Duration | undefined
  ) => Effect.Effect<Resp, E | WorkerCrash | RequestTimeout | NotStarted>
  /**
   * Stops the worker for good: its requests fail with `WorkerCrash`, or with
   * what `cut` makes, and its resources are released.
   */
  readonly stop: (reason: string, cut?: () => unknown) => Effect.Effect<void>
  /** Marks the worker ejected until `until` (epoch millis), or readmits it. */
  readonly setEjection: (until: number | undefined) => void
  /** Calls `listener` after every change of its health, with the health before. */
  readonly onChange: (listener: (health: WorkerHealth, previous: WorkerHealth) => void) => void
}

/** The internals of a worker made by this module. */
export const internals = <Req, Resp, E>(worker: Worker<Req, Resp, E>): WorkerInternals<Req, Resp, E> =>
  (worker as unknown as { readonly [TypeId]: WorkerInternals<Req, Resp, E> })[TypeId]

interface Live<Req, Resp, E> {
  readonly incarnation: Incarnation<Req, Resp, E>
  readonly fibers: FiberSet.FiberSet<Resp, E | WorkerCrash>
  readonly ended: Deferred.Deferred<string>
  /** Completed once its scope is closed: its requests stopped, its resources released. */
  readonly closed: Deferred.Deferred<void>
  /** Why this incarnation ended, set once, before its requests are interrupted. */
  endReason: string | undefined
}

const initialHealth: WorkerHealth = {
  state: "Starting",
  inFlight: 0,
  completed: 0,
  errored: 0,
  timeouts: 0,
  interrupted: 0,
  crashes: 0,
  restarts: 0,
  attempt: 0,
  consecutiveFailures: 0,
  ejections: 0
}

/**
 * How a request that reached the worker ended. `torn`: its incarnation was
 * torn down under it (another request crashed it, or the worker stopped); an
 * error, but not one of this request's making, so it does not count toward
 * ejection.
 */
type Outcome = "succeeded" | "domainError" | "crashed" | "timedOut" | "torn" | "interrupted"

const settledHealth = (h: WorkerHealth, outcome: Outcome, oldestInFlightSince: number | undefined): WorkerHealth => {
  const failed = outcome === "crashed" || outcome === "timedOut"
  const kept = outcome === "interrupted" || outcome === "torn"
  return {
    ...h,
    inFlight: h.inFlight - 1,
    completed: h.completed + 1,
    errored: outcome === "interrupted" || outcome === "succeeded" ? h.errored : h.errored + 1,
    timeouts: outcome === "timedOut" ? h.timeouts + 1 : h.timeouts,
    interrupted: outcome === "interrupted" ? h.interrupted + 1 : h.interrupted,
    consecutiveFailures: failed ? h.consecutiveFailures + 1 : kept ? h.consecutiveFailures : 0,
    oldestInFlightSince
  }
}

type Failure<E> =
  | { readonly _tag: "Domain"; readonly error: E }
  | { readonly _tag: "Crash"; readonly reason: string }
  | { readonly _tag: "Interrupted" }

/** Tells a bad request from a broken worker, from the cause of a failed request. */
const classify = <E>(cause: Cause.Cause<E | WorkerCrash>): Failure<E> => {
  const error = Cause.findErrorOption(cause)
  if (error._tag === "Some") {
    return error.value instanceof WorkerCrash
      ? { _tag: "Crash", reason: error.value.reason }
      : { _tag: "Domain", error: error.value }
  }
  if (Cause.hasDies(cause)) return { _tag: "Crash", reason: `defect: ${describe(Cause.squash(cause))}` }
  return { _tag: "Interrupted" }
}

/** Builds a supervised worker of any kind. See `Worker.fromKind`. */
export const make = Effect.fnUntraced(function* <Req, Resp, E, R>(
  id: WorkerId,
  kind: WorkerKind<Req, Resp, E, R>,
  options: { readonly restart: RestartPolicy; readonly maxInFlight: number }
): Effect.fn.Return<Worker<Req, Resp, E>, never, R | Scope.Scope> {
  const scope = yield* Scope.fork(yield* Scope.Scope, "sequential")
  const context = yield* Effect.context<R>()
  const healthRef = yield* Ref.make(initialHealth)
  const firstStart = yield* Deferred.make<void>()
  const restarts = yield* restartTracker(options.restart)
  const annotate = Effect.annotateLogs({ workerId: id, workerKind: kind.name })
  const listeners: Array<(health: WorkerHealth, previous: WorkerHealth) => void> = []
  const clock = yield* Clock.Clock

  let live: Live<Req, Resp, E> | undefined
  let stopReason: string | undefined
  let cut: (() => unknown) | undefined

  /** Updates the health, then tells the listeners (the pool) of the new one. */
  const modify = (f: (h: WorkerHealth) => WorkerHealth) => {
    const before = healthRef.ref.current
    const after = MutableRef.update(healthRef.ref, f).current
    for (const listener of listeners) listener(after, before)
  }

  /** The state a live worker shows: `Ejected` while an ejection is on. */
  const liveState = (h: WorkerHealth): WorkerState => (h.ejectedUntil === undefined ? "Healthy" : "Ejected")

  /**
   * Makes `next` the live incarnation (or none), in the same step as the
   * state: a worker is live exactly when its state is `Healthy` or `Ejected`.
   */
  const setLive = (
    next: Live<Req, Resp, E> | undefined,
    update: (h: WorkerHealth) => WorkerHealth,
    state: WorkerState | "Live"
  ) => {
    live = next
    modify((h) => {
      const updated = update(h)
      return { ...updated, state: state === "Live" ? liveState(updated) : state }
    })
  }

  /** Requests started and not settled, with their start times, oldest first. */
  const started = new Map<object, number>()
  const oldestStart = (): number | undefined => {
    for (const at of started.values()) return at
    return undefined
  }

  const unavailable = () =>
    new WorkerCrash({ reason: `worker ${id} is not available (${Ref.getUnsafe(healthRef).state})`, workerId: id })

  /**
   * Ends `current` because it crashed: it leaves selection at once, its
   * supervisor takes over. `true` if this call ended it (the crash is this
   * caller's to count), `false` if it had ended already.
   */
  const crash = (current: Live<Req, Resp, E>, reason: string, countsAsFailure = false): Effect.Effect<boolean> =>
    Effect.suspend(() => {
      if (current.endReason !== undefined) return Effect.succeed(false)
      current.endReason = reason
      return recordCrash(reason, current, countsAsFailure).pipe(
        Effect.andThen(Deferred.succeed(current.ended, reason)),
        Effect.as(true)
      )
    })

  /** Counts a crash; the crashed incarnation (if it was live) leaves selection in the same step. */
  const recordCrash = (reason: string, current?: Live<Req, Resp, E>, countsAsFailure = false) => {
    const counted = (h: WorkerHealth): WorkerHealth => ({
      ...h,
      crashes: h.crashes + 1,
      consecutiveFailures: countsAsFailure ? h.consecutiveFailures + 1 : h.consecutiveFailures,
      lastCrash: { reason, at: clock.currentTimeMillisUnsafe() }
    })
    if (current !== undefined && live === current) setLive(undefined, counted, "Restarting")
    else modify((h) => ({ ...counted(h), state: "Restarting" }))
    return Effect.logWarning("worker crashed").pipe(Effect.annotateLogs({ reason }), annotate)
  }

  /** Runs one incarnation from spawn to death; returns why it died. */
  const incarnate = (closed: Deferred.Deferred<void>): Effect.Effect<string> =>
    Effect.gen(function* () {
      modify((h) => ({ ...h, state: "Starting" }))
      // The kind's requirements come from where the worker was made; its
      // Scope is this incarnation's, so what it acquires dies with it.
      const incarnationScope = yield* Scope.Scope
      const spawned = yield* Effect.exit(
        Effect.provideContext(
          kind.spawn,
          Context.add(context as Context.Context<R>, Scope.Scope, incarnationScope)
        ).pipe(
          // What the incarnation logs (a child's stderr, say) names its worker.
          annotate
        )
      )
      if (Exit.isFailure(spawned)) {
        const reason = spawnFailure(spawned.cause)
        yield* recordCrash(reason)
        return reason
      }
      // Created after the spawn, so that closing the scope interrupts the
      // requests before the incarnation's own resources are released.
      const current: Live<Req, Resp, E> = {
        incarnation: spawned.value,
        fibers: yield* FiberSet.make<Resp, E | WorkerCrash>(),
        ended: yield* Deferred.make<string>(),
        closed,
        endReason: undefined
      }
      // The incarnation died on its own (a process exited): no request of
      // its making, so the death itself is the failure that counts.
      yield* Effect.forkScoped(Effect.flatMap(current.incarnation.exited, (exit) => crash(current, exit.reason, true)))
      yield* restarts.started
      setLive(current, (h) => h, "Live")
      yield* Deferred.succeed(firstStart, undefined)
      return yield* Deferred.await(current.ended)
    }).pipe(Effect.scoped)

  /** One crash: the incarnation runs to its end, then the supervisor decides what comes next. */
  const incarnation = (closed: Deferred.Deferred<void>): Effect.Effect<RestartDecision> =>
    Effect.gen(function* () {
      const reason = yield* incarnate(closed)
      yield* Deferred.succeed(firstStart, undefined)
      const decision = yield* restarts.next(new WorkerCrash({ reason, workerId: id }))
      if (decision._tag === "Retire") {
        modify((h) => ({ ...h, state: "Retired", retiredBecause: decision.because }))
        yield* Effect.logError("worker retired").pipe(
          Effect.annotateLogs({ reason, because: decision.because }),
          annotate
        )
      } else {
        modify((h) => ({ ...h, attempt: decision.attempt }))
      }
      return decision
    }).pipe(
      // The crash is reported to its callers once the incarnation is gone
      // and its fate is known: `Restarting` (attempt n) or `Retired`.
      Effect.ensuring(Deferred.succeed(closed, undefined))
    )

  const supervise = Effect.gen(function* () {
    while (true) {
      const decision = yield* incarnation(yield* Deferred.make<void>())
      if (decision._tag === "Retire") return
      yield* Effect.sleep(decision.delay)
      modify((h) => ({ ...h, restarts: h.restarts + 1 }))
      yield* Effect.logInfo("worker restarting").pipe(Effect.annotateLogs({ attempt: decision.attempt }), annotate)
    }
  })

  const begin = (token: object) => {
    const first = started.size === 0
    started.set(token, clock.currentTimeMillisUnsafe())
    if (first) modify((h) => ({ ...h, oldestInFlightSince: oldestStart() }))
  }

  const settleWith = (token: object) => (outcome: Outcome) =>
    Effect.sync(() => {
      started.delete(token)
      modify((h) => settledHealth(h, outcome, oldestStart()))
    })

  /** Runs `request` on `current`, keeping the counters exact whatever happens. */
  const runOn = (
    current: Live<Req, Resp, E>,
    request: Req,
    timeout: Duration.Duration | undefined,
    restore: <A, E2, R2>(effect: Effect.Effect<A, E2, R2>) => Effect.Effect<A, E2, R2>
  ): Effect.Effect<Resp, E | WorkerCrash | RequestTimeout> =>
    Effect.gen(function* () {
      const token = {}
      const settle = settleWith(token)
      begin(token)
      const fiber = yield* FiberSet.run(current.fibers, restore(current.incarnation.run(request)))
      const awaited = restore(
        timeout === undefined ? Effect.asSome(Fiber.await(fiber)) : Effect.timeoutOption(Fiber.await(fiber), timeout)
      ).pipe(Effect.onInterrupt(() => Effect.andThen(Fiber.interrupt(fiber), settle("interrupted"))))
      const result = yield* awaited
      if (result._tag === "None") {
        const timeoutMillis = Duration.toMillis(timeout!)
        if (current.incarnation.restartOnTimeout === true) {
          // A kind that cannot stop a wedged request is replaced: closing
          // the incarnation interrupts the request and kills what runs it.
          yield* crash(current, `a request ran past its ${timeoutMillis} ms timeout: the worker is wedged`)
          yield* settle("timedOut")
          yield* restore(Deferred.await(current.closed))
        } else {
          yield* Fiber.interrupt(fiber)
          yield* settle("timedOut")
        }
        return yield* Effect.fail(new RequestTimeout({ workerId: id, timeoutMillis }))
      }
      const exit = result.value
      if (Exit.isSuccess(exit)) {
        yield* settle("succeeded")
        return exit.value
      }
      const failure = classify(exit.cause)
      if (failure._tag === "Domain") {
        yield* settle("domainError")
        return yield* Effect.fail(failure.error)
      }
      // Interrupted, and not by the caller: the incarnation was torn down
      // under the request (its reason is set), or the handler interrupted itself.
      const torn = failure._tag === "Interrupted" && current.endReason !== undefined
      const reason = failure._tag === "Crash" ? failure.reason : (current.endReason ?? "the handler was interrupted")
      // The worker leaves selection before the slot is freed, so that no
      // waiting request is handed to the dying incarnation.
      const ended = yield* crash(current, reason)
      // Only the request that brought the incarnation down counts toward
      // ejection; the others went down with it.
      yield* settle(torn || !ended ? "torn" : "crashed")
      // The crash is reported once the incarnation is gone: its other
      // requests stopped, its resources released.
      yield* restore(Deferred.await(current.closed))
      if (failure._tag === "Interrupted" && cut !== undefined) return yield* Effect.fail(cut() as WorkerCrash)
      return yield* Effect.fail(new WorkerCrash({ reason, workerId: id }))
    })

  const reserve = (): Ticket | undefined => {
    if (live === undefined) return undefined
    modify((h) => ({ ...h, inFlight: h.inFlight + 1 }))
    return { incarnation: live, used: false }
  }

  const cancel = (ticket: Ticket) => {
    if (ticket.used) return false
    ticket.used = true
    modify((h) => ({ ...h, inFlight: h.inFlight - 1 }))
    return true
  }

  const start = (
    ticket: Ticket,
    request: Req,
    timeout: Duration.Duration | undefined
  ): Effect.Effect<Resp, E | WorkerCrash | RequestTimeout | NotStarted> =>
    Effect.uninterruptibleMask((restore) =>
      Effect.suspend((): Effect.Effect<Resp, E | WorkerCrash | RequestTimeout | NotStarted> => {
        if (ticket.used) return Effect.die(new Error(`worker ${id}: a slot was used twice`))
        if (ticket.incarnation !== live) {
          cancel(ticket)
          return Effect.fail(notStarted)
        }
        ticket.used = true
        return runOn(live, request, timeout, restore)
      })
    )

  const dispatch = (request: Req, dispatchOptions?: { readonly timeout?: Duration.Input | undefined }) =>
    Effect.suspend(() => {
      const ticket = reserve()
      if (ticket === undefined) return Effect.fail(unavailable())
      const timeout =
        dispatchOptions?.timeout === undefined ? undefined : Duration.fromInputUnsafe(dispatchOptions.timeout)
      return start(ticket, request, timeout).pipe(
        Effect.catchIf(
          (e): e is NotStarted => e instanceof NotStarted,
          () => Effect.fail(unavailable())
        ),
        Effect.ensuring(Effect.sync(() => cancel(ticket)))
      )
    })

  const stop = (reason: string, cutWith?: () => unknown) =>
    Effect.suspend(() => {
      stopReason ??= reason
      cut ??= cutWith
      return Scope.close(scope, Exit.void)
    })

  const setEjection = (until: number | undefined) =>
    modify((h) => {
      const ejected =
        until === undefined
          ? { ...h, ejectedUntil: undefined }
          : { ...h, ejectedUntil: until, ejections: h.ejections + 1 }
      const isLive = h.state === "Healthy" || h.state === "Ejected"
      return isLive ? { ...ejected, state: liveState(ejected) } : ejected
    })

  // Finalizers run last-added first: the fork's finalizer interrupts the
  // supervisor (closing the incarnation), after which the state is final.
  yield* Scope.addFinalizer(
    scope,
    Effect.sync(() => setLive(undefined, (h) => h, "Stopped"))
  )
  yield* Effect.forkIn(supervise, scope)
  yield* Scope.addFinalizer(
    scope,
    Effect.sync(() => {
      const reason = `worker ${id} stopped: ${stopReason ?? "its scope was closed"}`
      if (live !== undefined) live.endReason ??= reason
      setLive(undefined, (h) => h, "Stopped")
    })
  )
  yield* Deferred.await(firstStart)

  const internal: WorkerInternals<Req, Resp, E> = {
    healthRef,
    maxInFlight: options.maxInFlight,
    isLive: () => live !== undefined,
    reserve,
    cancel,
    start,
    stop,
    setEjection,
    onChange: (listener) => {
      listeners.push(listener)
    }
  }
  const worker: Worker<Req, Resp, E> = {
    id,
    kind: kind.name,
    maxInFlight: options.maxInFlight,
    health: Ref.get(healthRef),
    dispatch
  }
  return Object.assign(worker, { [TypeId]: internal })
})
