/**
 * One supervised worker, for every kind: its slots, how a request runs on it
 * and is counted, and its supervisor.
 *
 * Life of a worker: the supervisor fiber spawns an incarnation in a scope of
 * its own, waits until it ends, closes that scope (stopping the requests still
 * on it, then releasing its resources), waits out the restart delay and
 * starts over (see `supervisor.ts`).
 *
 * A request runs on its caller's fiber whenever nothing would need to cut it
 * short from outside: on the out-of-process kinds (a dead child fails its
 * requests by itself), and on an in-process worker with one slot (it has no
 * other request whose crash could tear it down). Otherwise (a timeout, or an
 * in-process worker holding several requests at once) it runs on a fiber of
 * its incarnation, so that the incarnation's death interrupts it.
 *
 * The pool learns what a request did from the outcome handed to `onSettled`,
 * and of every change of the worker's state through its `listener`.
 */
import { Cause, Deferred, Duration, Effect, Exit, Fiber, FiberSet } from "effect"
import { InvalidRequest } from "../WireError.ts"
import {
  type CrashReason,
  Defect,
  RequestTimeout,
  Stopped,
  TimedOut,
  Unavailable,
  WorkerCrash
} from "../WorkerError.ts"
import type { WorkerId } from "../WorkerId.ts"
import type { Incarnation, WorkerKind } from "../WorkerKind.ts"
import { describe } from "./describe.ts"
import { HealthRecord, type Outcome, Slot } from "./health.ts"
import { onExitSync } from "./onExit.ts"
import type { Spare, SpareSource } from "./pool/spares.ts"
import { withDispatchSpan } from "./tracing.ts"

export { Slot }

/** @internal */
export const TypeId: unique symbol = Symbol.for("effect-worker-pool/Worker") as never

/** The workers made here, with their cores: a worker is known by its identity, never by its shape. */
const cores = new WeakMap<object, WorkerCore<any, any, any>>()

/** Makes `worker` the face of `core`. */
export const register = <W extends object>(worker: W, core: WorkerCore<any, any, any>): W => {
  cores.set(worker, core)
  return worker
}

/** A request did not start: the incarnation that gave it a slot is gone. */
export class NotStarted {
  readonly _tag = "NotStarted"
}
const notStarted = new NotStarted()

/** Called once a request's outcome is counted, before its caller sees it. */
export type OnSettled = (outcome: Outcome, slot: Slot) => void

/** A live incarnation and what the worker keeps about it. */
export interface Live<Req, Resp, E> {
  readonly incarnation: Incarnation<Req, Resp, E>
  /** Requests that run on fibers of the incarnation. */
  readonly fibers: FiberSet.FiberSet<Resp, E | WorkerCrash>
  /** Completed with the reason once the incarnation has ended. */
  readonly ended: Deferred.Deferred<CrashReason>
  /** Completed once its scope is closed and its fate is known. */
  readonly closed: Deferred.Deferred<void>
  /** Why it ended, set once, before its requests are stopped. */
  endReason: CrashReason | undefined
  /** It ended without a crash (`Incarnation.exited` with `Stopped`): its requests run to their end. */
  clean: boolean
  /** It answered a request (a response or a domain error). */
  served: boolean
  /** In-process requests running on their callers' fibers; the scope waits for them. */
  onCallers: number
  idle: Deferred.Deferred<void> | undefined
}

/** What the pool (and the supervisor) need from a worker beyond its public face. */
export interface WorkerCore<Req, Resp, E> {
  readonly id: WorkerId
  readonly kind: string
  readonly maxInFlight: number
  readonly health: HealthRecord
  /** Takes a slot on the live incarnation, or `undefined` when there is none. */
  readonly reserve: () => Slot | undefined
  /** Gives back a slot no request was started in. */
  readonly release: (slot: Slot) => void
  /** Whether a request can start in `slot` now: the incarnation that gave it is still live. */
  readonly startable: (slot: Slot) => boolean
  /** Whether the live incarnation takes requests without a fiber (`Incarnation.submit`). */
  readonly submits: () => boolean
  /**
   * Sends `request` in `slot` (which must be startable) through the
   * incarnation's `submit`; `deliver` gets what its caller should see. The
   * returned function is the caller's leaving: it cancels the request, whose
   * slot stays taken until the incarnation confirms (or dies).
   */
  readonly submit: (
    slot: Slot,
    request: Req,
    onSettled: OnSettled | undefined,
    startedAt: number,
    deliver: (effect: Effect.Effect<Resp, E | WorkerCrash>) => void
  ) => () => void
  /**
   * Runs `request` in `slot`. Fails with `NotStarted` (the slot given back)
   * when the incarnation that gave the slot has ended. `caller`: the fiber
   * of a pool's caller (the pool keeps at most `maxInFlight` requests on the
   * worker), on which the request may run. `now`: the time it starts.
   */
  readonly run: (
    slot: Slot,
    request: Req,
    timeout: Duration.Duration | undefined,
    caller: Fiber.Fiber<unknown, unknown> | undefined,
    onSettled: OnSettled | undefined,
    now: number
  ) => Effect.Effect<Resp, E | WorkerCrash | RequestTimeout | NotStarted>
  /** Marks the worker ejected until `until` (epoch millis), or readmits it. */
  readonly setEjection: (until: number | undefined) => void
  /** Whether an in-process request runs on its caller's fiber now (a stop waits for it). */
  readonly holdsCallers: () => boolean
  /**
   * Stops the worker for good: its requests fail with `WorkerCrash`, or with
   * what `cut` makes, and its resources are released. An in-process request
   * running on its caller's fiber cannot be failed from outside: it is
   * interrupted with that fiber, unless the stop is `graceful` (a removal),
   * which lets it run to its end first.
   */
  readonly stop: (
    reason: string,
    options?: { readonly cut?: (() => unknown) | undefined; readonly graceful?: boolean | undefined }
  ) => Effect.Effect<void>
  /** Told of every change of the worker's state; set by the pool that owns it. */
  listener: ((core: WorkerCore<Req, Resp, E>) => void) | undefined
  /** How to start a spare of this worker's kind, with its services (see `pool/spares.ts`). */
  spareSource: SpareSource | undefined
  /** Where a restart takes a ready spare from; set by the pool that owns the worker. */
  takeSpare: ((kind: WorkerKind<any, any, any, any>) => Spare | undefined) | undefined
  /** Whether `takeSpare` would give a spare now; set with it. */
  hasSpare: ((kind: WorkerKind<any, any, any, any>) => boolean) | undefined
}

/** The core of a worker made by this library, or `undefined` (for any other object, whatever its shape). */
export const coreOf = <Req, Resp, E>(worker: unknown): WorkerCore<Req, Resp, E> | undefined =>
  typeof worker === "object" && worker !== null ? cores.get(worker) : undefined

type Failure<E> =
  | { readonly _tag: "Domain"; readonly error: E; readonly outcome: "domainError" | "rejected" }
  | { readonly _tag: "Crash"; readonly reason: CrashReason }
  | { readonly _tag: "Interrupted" }

/** Tells a bad request from a broken worker, from the cause of a failed request. */
const classify = <E>(cause: Cause.Cause<E | WorkerCrash>): Failure<E> => {
  const error = Cause.findErrorOption(cause)
  if (error._tag === "Some") {
    const value = error.value
    if (value instanceof WorkerCrash) return { _tag: "Crash", reason: value.reason }
    return { _tag: "Domain", error: value as E, outcome: value instanceof InvalidRequest ? "rejected" : "domainError" }
  }
  if (Cause.hasDies(cause))
    return { _tag: "Crash", reason: new Defect({ message: `defect: ${describe(Cause.squash(cause))}` }) }
  return { _tag: "Interrupted" }
}

/**
 * The request side of a worker. The supervisor (see `supervisor.ts`) drives
 * its incarnations through `begin`, `crash` and `end`.
 */
export const makeCore = <Req, Resp, E>(options: {
  readonly id: WorkerId
  readonly kind: string
  readonly maxInFlight: number
  readonly now: () => number
  /** Closes the worker's scope. */
  readonly close: Effect.Effect<void>
}) => {
  const { id, maxInFlight, now } = options
  const health = new HealthRecord()
  let live: Live<Req, Resp, E> | undefined
  let stopReason: string | undefined
  let cut: (() => unknown) | undefined
  /** Stopped by a removal: requests on callers' fibers may finish. */
  let graceful = false

  const notify = () => core.listener?.(core)

  /** Sets the state (and tells the pool); a live worker shows `Ejected` while an ejection is on. */
  const setState = (state: "Live" | HealthRecord["state"]) => {
    health.state = state === "Live" ? (health.ejectedUntil === undefined ? "Healthy" : "Ejected") : state
    notify()
  }

  const unavailable = () =>
    new WorkerCrash({
      reason: new Unavailable({ message: `worker ${id} is not available (${health.state})`, state: health.state }),
      workerId: id
    })

  /**
   * Ends `current` because it crashed: it leaves selection at once, and its
   * supervisor takes over. `true` if this call ended it (the crash is this
   * caller's to count), `false` if it had ended already.
   */
  const crash = (current: Live<Req, Resp, E>, reason: CrashReason, countsAsFailure = false): boolean => {
    if (current.endReason !== undefined) return false
    current.endReason = reason
    health.crashes++
    if (countsAsFailure) health.consecutiveFailures++
    health.lastCrash = { reason: reason.message, at: now() }
    if (live === current) live = undefined
    setState("Restarting")
    Deferred.doneUnsafe(current.ended, Exit.succeed(reason))
    return true
  }

  /**
   * Ends `current` without a crash (it said it stops, as a draining runner
   * does): it leaves selection at once, its requests run to their end, and
   * its supervisor starts it again; no crash is counted.
   */
  const end = (current: Live<Req, Resp, E>, reason: CrashReason): boolean => {
    if (current.endReason !== undefined) return false
    current.endReason = reason
    current.clean = true
    if (live === current) live = undefined
    setState("Restarting")
    Deferred.doneUnsafe(current.ended, Exit.succeed(reason))
    return true
  }

  const settle = (slot: Slot, outcome: Outcome, current: Live<Req, Resp, E>, onSettled: OnSettled | undefined) => {
    if (slot.phase === 2) return
    health.settled(slot, outcome)
    if (outcome === "succeeded" || outcome === "domainError") current.served = true
    if (slot.waited && --current.onCallers === 0 && current.idle !== undefined) {
      Deferred.doneUnsafe(current.idle, Exit.void)
    }
    onSettled?.(outcome, slot)
  }

  /** The error a crashed request fails with: the crash, or what a stop cut it with. */
  const crashError = (reason: CrashReason, interrupted: boolean) =>
    interrupted && cut !== undefined ? (cut() as WorkerCrash) : new WorkerCrash({ reason, workerId: id })

  /** Marks a request that failed with its domain error `error`, for the pool's metrics. */
  const tagDomain = (slot: Slot, error: unknown) => {
    slot.tag = (error as { readonly _tag?: unknown } | null)?._tag as string | undefined
  }

  /** Marks a crashed request whose caller gets what the stop cut it with, for the pool's metrics. */
  const tagCut = (slot: Slot, interrupted: boolean) => {
    if (interrupted && cut !== undefined) slot.tag = (cut() as { readonly _tag?: string })._tag
  }

  /**
   * After a crash: the caller hears of it once the incarnation is gone and
   * its fate known, with the reason its incarnation ended (or, after a clean
   * end, its own).
   */
  const reportCrash = (current: Live<Req, Resp, E>, reason: CrashReason, interrupted: boolean) =>
    Effect.andThen(
      Deferred.await(current.closed),
      Effect.fail(crashError(current.clean ? reason : (current.endReason ?? reason), interrupted))
    )

  /** Runs on the caller's fiber: no fork, one frame to count the outcome. */
  const runOnCaller = (
    current: Live<Req, Resp, E>,
    slot: Slot,
    request: Req,
    onSettled: OnSettled | undefined
  ): Effect.Effect<Resp, E | WorkerCrash> => {
    if (current.incarnation.settlesOnDeath !== true) {
      // In-process: the incarnation's end waits for it (see `awaitCallers`).
      slot.waited = true
      current.onCallers++
    }
    const run = current.incarnation.run(request)
    return onExitSync(
      Effect.catchCause(slot.span === undefined ? run : withDispatchSpan(run, slot.span), (cause) => {
        const failure = classify(cause)
        switch (failure._tag) {
          case "Domain":
            tagDomain(slot, failure.error)
            settle(slot, failure.outcome, current, onSettled)
            return Effect.fail(failure.error)
          case "Crash": {
            const ended = crash(current, failure.reason)
            tagCut(slot, stopReason !== undefined)
            settle(slot, ended ? "crashed" : "torn", current, onSettled)
            return reportCrash(current, failure.reason, stopReason !== undefined)
          }
          case "Interrupted":
            return Effect.failCause(cause)
        }
      }),
      (exit) => {
        if (slot.phase !== 2) {
          if (Exit.isSuccess(exit)) settle(slot, "succeeded", current, onSettled)
          else if (current.endReason === undefined) settle(slot, "interrupted", current, onSettled)
          else {
            // Torn down with its incarnation: its caller's fiber was interrupted.
            slot.tag = "Interrupted"
            settle(slot, "torn", current, onSettled)
          }
        }
      }
    )
  }

  /**
   * What a submitted request's outcome means for the worker, counted at once;
   * returns what its caller should see. `left`: its caller had left.
   */
  const conclude = (
    current: Live<Req, Resp, E>,
    slot: Slot,
    exit: Exit.Exit<Resp, E | WorkerCrash>,
    onSettled: OnSettled | undefined,
    left: boolean
  ): Effect.Effect<Resp, E | WorkerCrash> => {
    if (Exit.isSuccess(exit)) {
      settle(slot, left ? "interrupted" : "succeeded", current, onSettled)
      return exit
    }
    const failure = classify(exit.cause)
    switch (failure._tag) {
      case "Domain":
        tagDomain(slot, failure.error)
        settle(slot, left ? "interrupted" : failure.outcome, current, onSettled)
        return exit
      case "Crash": {
        const ended = crash(current, failure.reason)
        tagCut(slot, stopReason !== undefined)
        settle(slot, left ? "interrupted" : ended ? "crashed" : "torn", current, onSettled)
        return reportCrash(current, failure.reason, stopReason !== undefined)
      }
      case "Interrupted":
        settle(slot, current.endReason === undefined || left ? "interrupted" : "torn", current, onSettled)
        return exit
    }
  }

  const submitOn = (
    current: Live<Req, Resp, E>,
    slot: Slot,
    request: Req,
    onSettled: OnSettled | undefined,
    deliver: (effect: Effect.Effect<Resp, E | WorkerCrash>) => void
  ): (() => void) => {
    let left = false
    const done = (outcome: Effect.Effect<Resp, E | WorkerCrash>) => {
      if (Exit.isExit(outcome)) {
        const result = conclude(current, slot, outcome as Exit.Exit<Resp, E | WorkerCrash>, onSettled, left)
        if (!left) deliver(result)
      } else if (left) {
        settle(slot, "interrupted", current, onSettled)
      } else {
        // Decoded asynchronously: counted once the caller has run it.
        deliver(Effect.flatMap(Effect.exit(outcome), (exit) => conclude(current, slot, exit, onSettled, false)))
      }
    }
    const cancel = current.incarnation.submit!(request, done, slot.span)
    return () => {
      left = true
      cancel()
    }
  }

  /** Runs on a fiber of the incarnation, so that its end (or a timeout) can interrupt it. */
  const runOnIncarnation = (
    current: Live<Req, Resp, E>,
    slot: Slot,
    request: Req,
    timeout: Duration.Duration | undefined,
    onSettled: OnSettled | undefined
  ): Effect.Effect<Resp, E | WorkerCrash | RequestTimeout> =>
    Effect.uninterruptibleMask((restore) =>
      Effect.gen(function* () {
        const run = current.incarnation.run(request)
        const fiber = yield* FiberSet.run(
          current.fibers,
          restore(slot.span === undefined ? run : withDispatchSpan(run, slot.span))
        )
        const awaited = restore(
          timeout === undefined ? Effect.asSome(Fiber.await(fiber)) : Effect.timeoutOption(Fiber.await(fiber), timeout)
        ).pipe(
          Effect.onInterrupt(() =>
            Effect.andThen(
              Fiber.interrupt(fiber),
              Effect.sync(() => settle(slot, "interrupted", current, onSettled))
            )
          )
        )
        const result = yield* awaited
        if (result._tag === "None") {
          const timeoutMillis = Duration.toMillis(timeout!)
          const error = new RequestTimeout({ workerId: id, timeoutMillis })
          if (current.incarnation.restartOnTimeout === true) {
            // A kind that cannot stop a wedged request is replaced: closing
            // the incarnation interrupts the request and kills what runs it.
            crash(
              current,
              new TimedOut({
                message: `a request ran past its ${timeoutMillis} ms timeout: the worker is wedged`,
                timeoutMillis
              })
            )
            settle(slot, "timedOut", current, onSettled)
            yield* restore(Deferred.await(current.closed))
          } else {
            yield* Fiber.interrupt(fiber)
            settle(slot, "timedOut", current, onSettled)
          }
          return yield* Effect.fail(error)
        }
        const exit = result.value
        if (Exit.isSuccess(exit)) {
          settle(slot, "succeeded", current, onSettled)
          return exit.value
        }
        const failure = classify(exit.cause)
        if (failure._tag === "Domain") {
          tagDomain(slot, failure.error)
          settle(slot, failure.outcome, current, onSettled)
          return yield* Effect.fail(failure.error)
        }
        // Interrupted, and not by the caller: the incarnation was torn down
        // under the request (its reason is set), or the handler interrupted itself.
        const torn = failure._tag === "Interrupted" && current.endReason !== undefined
        const reason =
          failure._tag === "Crash"
            ? failure.reason
            : (current.endReason ?? new Defect({ message: "the handler was interrupted" }))
        const ended = crash(current, reason)
        tagCut(slot, failure._tag === "Interrupted")
        // Only the request that brought the incarnation down counts toward
        // ejection; the others went down with it.
        settle(slot, torn || !ended ? "torn" : "crashed", current, onSettled)
        return yield* restore(reportCrash(current, reason, failure._tag === "Interrupted"))
      })
    )

  const reserve = (): Slot | undefined => {
    if (live === undefined) return undefined
    health.inFlight++
    return new Slot(live)
  }

  const release = (slot: Slot) => {
    if (slot.phase === 0) health.settled(slot, undefined)
  }

  const run = (
    slot: Slot,
    request: Req,
    timeout: Duration.Duration | undefined,
    caller: Fiber.Fiber<unknown, unknown> | undefined,
    onSettled: OnSettled | undefined,
    startedAt: number
  ): Effect.Effect<Resp, E | WorkerCrash | RequestTimeout | NotStarted> => {
    if (slot.phase !== 0) return Effect.die(new Error(`worker ${id}: a slot was used twice`))
    const current = live
    if (current === undefined || slot.incarnation !== current) {
      release(slot)
      return Effect.fail(notStarted)
    }
    health.started(slot, startedAt)
    if (timeout === undefined) {
      if (current.incarnation.submit !== undefined) {
        return Effect.callback<Resp, E | WorkerCrash>((resume) => {
          const leave = submitOn(current, slot, request, onSettled, resume)
          return Effect.sync(leave)
        })
      }
      if (current.incarnation.settlesOnDeath === true) return runOnCaller(current, slot, request, onSettled)
      if (caller !== undefined && maxInFlight === 1) {
        slot.caller = caller
        return runOnCaller(current, slot, request, onSettled)
      }
    }
    return runOnIncarnation(current, slot, request, timeout, onSettled)
  }

  const setEjection = (until: number | undefined) => {
    if (until === undefined) health.ejectedUntil = undefined
    else {
      health.ejectedUntil = until
      health.ejections++
    }
    if (health.isLive) setState("Live")
  }

  /** A request running on its caller's fiber can only be cut with that fiber. */
  const interruptCallers = () => {
    // Collected first: an interrupted request leaves the list as it settles.
    const callers = Array.from(health.running(), (slot) => slot.caller)
    for (const caller of callers) caller?.interruptUnsafe()
  }

  const stop = (
    reason: string,
    stopOptions?: { readonly cut?: (() => unknown) | undefined; readonly graceful?: boolean | undefined }
  ) =>
    Effect.suspend(() => {
      stopReason ??= reason
      cut ??= stopOptions?.cut
      graceful = stopOptions?.graceful === true
      if (!graceful) interruptCallers()
      return options.close
    })

  const core: WorkerCore<Req, Resp, E> = {
    id,
    kind: options.kind,
    maxInFlight,
    health,
    reserve,
    release,
    startable: (slot) => slot.phase === 0 && live !== undefined && slot.incarnation === live,
    submits: () => live?.incarnation.submit !== undefined,
    submit: (slot, request, onSettled, startedAt, deliver) => {
      health.started(slot, startedAt)
      return submitOn(live!, slot, request, onSettled, deliver)
    },
    run,
    setEjection,
    holdsCallers: () => live !== undefined && live.onCallers > 0,
    stop,
    listener: undefined,
    spareSource: undefined,
    takeSpare: undefined,
    hasSpare: undefined
  }

  /** What the supervisor drives. */
  const lifecycle = {
    core,
    setState,
    crash,
    end,
    /** Makes `current` the live incarnation. */
    begin: (current: Live<Req, Resp, E>) => {
      live = current
      health.failedStarts = 0
      setState("Live")
    },
    /** A start failed. */
    startFailed: (reason: CrashReason) => {
      health.crashes++
      health.failedStarts++
      health.lastCrash = { reason: reason.message, at: now() }
      setState("Restarting")
    },
    /** The scope is closing: the live incarnation (if any) ends with the stop's reason. */
    stopping: () => {
      const reason = new Stopped({ message: `worker ${id} stopped: ${stopReason ?? "its scope was closed"}` })
      if (live !== undefined) live.endReason ??= reason
      live = undefined
      if (!graceful) interruptCallers()
      setState("Stopped")
    },
    /** Waits until no in-process request runs on the callers' fibers of `current`. */
    awaitCallers: (current: Live<Req, Resp, E>): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (current.onCallers === 0) return Effect.void
        current.idle ??= Deferred.makeUnsafe<void>()
        return Deferred.await(current.idle)
      }),
    unavailable
  }
  return lifecycle
}

export type Lifecycle<Req, Resp, E> = ReturnType<typeof makeCore<Req, Resp, E>>

/** A live incarnation record, fresh. */
export const makeLive = <Req, Resp, E>(
  incarnation: Incarnation<Req, Resp, E>,
  fibers: FiberSet.FiberSet<Resp, E | WorkerCrash>,
  closed: Deferred.Deferred<void>
): Live<Req, Resp, E> => ({
  incarnation,
  fibers,
  ended: Deferred.makeUnsafe<CrashReason>(),
  closed,
  endReason: undefined,
  clean: false,
  served: false,
  onCallers: 0,
  idle: undefined
})
