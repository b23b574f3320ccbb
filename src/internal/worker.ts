/**
 * One supervised worker, for every kind: its slots, how a request runs on it,
 * and how the request's outcome is judged.
 *
 * Life of a worker: the supervisor fiber spawns an incarnation in a scope of
 * its own, waits until it ends, closes that scope (stopping the requests still
 * on it, then releasing its resources), waits out the restart delay and
 * starts over (see `supervisor.ts`).
 *
 * A request runs in one of three ways (`pathOf`):
 * - `submit`: sent without a fiber (`Incarnation.submit`, the thread and
 *   subprocess kinds); its caller waits for the answer.
 * - `caller`: on its caller's fiber, whenever it has no `timeout`: on an
 *   out-of-process kind without `submit` (a dead child fails its requests by
 *   itself), and on an in-process worker, whatever its limit. When another
 *   request crashes the incarnation, the restart tears the requests still on
 *   their callers' fibers down as it does those on fibers: it interrupts
 *   them inside the request (`callerFiber.ts`), they fail with `WorkerCrash`
 *   (counted as `torn`), and their callers go on.
 * - `fiber`: on a fiber of its incarnation, so that a timeout can interrupt
 *   it: a request with a `timeout`, or one sent outside a pool
 *   (`Worker.dispatch`, which has no caller's fiber at hand).
 *
 * The worker never calls into its pool while a request runs: `conclude`
 * settles a request's record and returns what its caller should see; the
 * pool that runs the request applies the rest in its own step.
 * The worker tells its owner of each change of its state by `Owner.changed`,
 * which the owner applies in its own step, and it does nothing that could run
 * another fiber's code in the middle of a step: the completions that wake
 * other fibers (its supervisor, a stop waiting for its callers) run after.
 */
import type { Scope, Semaphore } from "effect"
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
import type { WorkerState } from "../WorkerHealth.ts"
import type { WorkerId } from "../WorkerId.ts"
import type { Incarnation, WorkerKind } from "../WorkerKind.ts"
import * as CallerFiber from "./callerFiber.ts"
import { describe } from "./describe.ts"
import { invoke } from "./handler.ts"
import { HealthRecord } from "./health.ts"
import { Later } from "./later.ts"
import * as Limiter from "./limiter.ts"
import type { RecycleReason } from "./recycle.ts"
import { numberOf, type Outcome, type Request, reserve, retry, type SlotOwner, settle, start } from "./request.ts"
import { withDispatchSpan } from "./tracing.ts"

/** @internal */
export const TypeId: unique symbol = Symbol.for("effect-worker-pool/Worker") as never

/** The workers made here, with their cores: a worker is known by its identity, never by its shape. */
const cores = new WeakMap<object, WorkerCore<any, any, any>>()

/** Makes `worker` the face of `core`. */
export const register = <W extends object>(worker: W, core: WorkerCore<any, any, any>): W => {
  cores.set(worker, core)
  return worker
}

/** The core of a worker made by this library, or `undefined` (for any other object, whatever its shape). */
export const coreOf = <Req, Resp, E>(worker: unknown): WorkerCore<Req, Resp, E> | undefined =>
  typeof worker === "object" && worker !== null ? cores.get(worker) : undefined

/** A started incarnation, waiting to be promoted, and the scope that holds its resources. */
export interface Spare {
  readonly incarnation: Incarnation<any, any, any>
  /** Closes the spare's scope: its thread or process ends. */
  readonly release: Effect.Effect<void>
}

/** Where spares of a worker come from: its kind, spawned with the worker's services into a given scope. */
export interface SpareSource {
  readonly kind: WorkerKind<any, any, any, any>
  readonly spawnInto: (scope: Scope.Scope) => Effect.Effect<Incarnation<any, any, any>, unknown>
}

/**
 * The owner of a worker (the pool it was added to). It is told of each
 * change of the worker's state, as it happens, and applies it in a step of
 * its own; and it owns the spares: a worker that restarts asks it for one.
 */
export interface Owner {
  /** The worker's state changed (started, crashed, restarting, retired, stopped, ejected, readmitted). */
  readonly changed: (core: WorkerCore<any, any, any>) => void
  /** A ready spare of the worker's kind, now the worker's, or `undefined`. */
  readonly spareFor: (core: WorkerCore<any, any, any>) => Spare | undefined
  /** Held by a worker of the pool while it recycles: how many may recycle at once. */
  readonly recycling: Semaphore.Semaphore
}

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
  /** A request crashed it, even after it ended cleanly (a recycled one): its close tears its callers' requests down. */
  crashed: boolean
  /** It answered a request (a response or a domain error). */
  served: boolean
  /** In-process requests running on their callers' fibers; the scope waits for them. */
  onCallers: number
  /** The fiber that tore down its requests on callers' fibers, once it crashed (see `awaitCallers`). */
  tornBy: number | undefined
  idle: Deferred.Deferred<void> | undefined
  /** Requests started on it. */
  started: number
  /** Requests running on it now. */
  running: number
  /** Completed with the reason once it is due to be recycled; `undefined` when the worker never recycles. */
  recycle: Deferred.Deferred<RecycleReason> | undefined
  /** Set once a replacement took over from it: completed once it runs no request (or died). */
  drained: Deferred.Deferred<void> | undefined
}

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
  crashed: false,
  served: false,
  onCallers: 0,
  tornBy: undefined,
  idle: undefined,
  started: 0,
  running: 0,
  recycle: undefined,
  drained: undefined
})

/** How a request runs: see the module's documentation. */
export type Path = "submit" | "caller" | "fiber"

/** What a request that ran past its timeout gives instead of an exit. */
export const timedOutRun: { readonly _tag: "TimedOutRun" } = { _tag: "TimedOutRun" }

/** What a run gave: an exit, or, on the fiber path, a timeout. */
export type RunResult<Resp, E> = Exit.Exit<Resp, E | WorkerCrash> | typeof timedOutRun

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
 * Whether an interruption on `caller`'s fiber came from the fiber itself
 * (`Effect.interrupt` in the handler), not from another fiber or a stop.
 */
const interruptedItself = (cause: Cause.Cause<unknown>, caller: Fiber.Fiber<unknown, unknown> | undefined): boolean =>
  caller !== undefined && cause.reasons.every((reason) => reason._tag !== "Interrupt" || reason.fiberId === caller.id)

/** The `_tag` of a domain error, for the pool's metrics. */
const tagOf = (error: unknown): string | undefined => (error as { readonly _tag?: unknown } | null)?._tag as never

/** How long a close waits on a handler before it says which one it waits for. */
const closeWaitNotice = Duration.seconds(1)

export class WorkerCore<Req, Resp, E> implements SlotOwner {
  readonly id: WorkerId
  readonly kind: string
  /** The most requests a pool lets it hold: a fixed number, or the largest adaptive limit. */
  readonly maxInFlight: number
  /** How many requests a pool lets it hold now: `maxInFlight`, or the adaptive limit. */
  limit: number
  /** The adaptive limit's learning, when `maxInFlight` is adaptive. */
  readonly limiter: Limiter.Limiter | undefined
  readonly health = new HealthRecord()
  /** The incarnation that takes requests now. */
  live: Live<Req, Resp, E> | undefined = undefined
  /** The pool that owns the worker, once it was added to one. */
  owner: Owner | undefined = undefined
  /** What its owner keeps of it (the pool's member record); it stays after a removal, for the requests it still holds. */
  seat: unknown = undefined
  /** How to start a spare of this worker's kind, with its services (see `pool/spares.ts`). */
  spareSource: SpareSource | undefined = undefined
  /** Requests an incarnation starts before it is due to be recycled (see `recycle.ts`). */
  recycleAfter = Infinity
  /** Over its memory limit: it takes no new request until its replacement is live. */
  paused = false
  private stopReason: string | undefined = undefined
  private cut: (() => unknown) | undefined = undefined
  /** Stopped gracefully: requests on callers' fibers may finish. */
  private graceful = false
  /** The fiber id its teardowns of requests on callers' fibers are made in the name of (see `callerFiber.ts`). */
  private readonly tearer = CallerFiber.tearerId()
  /** What must not run in the middle of a step: completions that wake other fibers. */
  private readonly later = new Later()
  private readonly now: () => number
  private readonly closeScope: Effect.Effect<void>

  constructor(options: {
    readonly id: WorkerId
    readonly kind: string
    readonly maxInFlight: number
    /** The limit is learned, from 1 up to `maxInFlight`. */
    readonly adaptive?: boolean | undefined
    readonly now: () => number
    /** Closes the worker's scope. */
    readonly close: Effect.Effect<void>
  }) {
    this.id = options.id
    this.kind = options.kind
    this.maxInFlight = options.maxInFlight
    this.limiter = options.adaptive === true ? Limiter.make(Limiter.settings(options.maxInFlight)) : undefined
    this.limit = this.limiter === undefined ? options.maxInFlight : Limiter.slots(this.limiter)
    this.health.maxInFlight = this.limit
    this.now = options.now
    this.closeScope = options.close
  }

  /** Sets the state and tells the owner; a live worker shows `Ejected` while an ejection is on. */
  setState(state: "Live" | WorkerState): void {
    const health = this.health
    health.state = state === "Live" ? (health.ejectedUntil === undefined ? "Healthy" : "Ejected") : state
    this.owner?.changed(this)
  }

  /** The crash a request gets when the worker takes none. */
  unavailable(): WorkerCrash {
    const state = this.health.state
    return new WorkerCrash({
      reason: new Unavailable({ message: `worker ${this.id} is not available (${state})`, state }),
      workerId: this.id
    })
  }

  // --- slots -----------------------------------------------------------------

  /**
   * Takes a slot for `request` on the live incarnation (a queued request, or
   * one whose worker crashed under it, to be tried again); `false` when there
   * is none.
   */
  take(request: Request): boolean {
    const live = this.live
    if (live === undefined) return false
    if (request.state === "Settled") retry(request, this, live)
    else reserve(request, this, live)
    this.health.reserved()
    return true
  }

  /** Gives back the slot of a reserved request that did not start (its state is the caller's to set). */
  release(request: Request): void {
    request.worker = undefined
    request.incarnation = undefined
    this.health.released()
  }

  /** Whether `request`'s slot can be used now: the incarnation that gave it is still live. */
  startable(request: Request): boolean {
    return request.state === "Reserved" && this.live !== undefined && request.incarnation === this.live
  }

  /** How a reserved request runs (see the module's documentation). */
  pathOf(request: Request): Path {
    if (request.timeout !== undefined) return "fiber"
    const incarnation = (request.incarnation as Live<Req, Resp, E>).incarnation
    if (incarnation.submit !== undefined) return "submit"
    if (incarnation.settlesOnDeath === true) return "caller"
    return request.caller !== undefined && CallerFiber.canTearDown(request.caller) ? "caller" : "fiber"
  }

  /**
   * Learns from a request of the pool that reached its end with `outcome`
   * after `millis` (known: its run time was measured), at `now`: the
   * adaptive limit follows. Returns whether the limit changed.
   */
  learn(outcome: Outcome, millis: number, known: boolean, now: number): boolean {
    const limiter = this.limiter
    if (limiter === undefined) return false
    let failed: boolean
    switch (outcome) {
      case "succeeded":
      case "domainError":
        if (!known) return false
        failed = false
        break
      case "crashed":
      case "timedOut":
        failed = true
        break
      default:
        // Refused, interrupted, torn down by another's crash: says nothing of the latency.
        return false
    }
    if (!Limiter.sample(limiter, { millis, inFlight: this.health.inFlight + 1, failed, now })) return false
    this.limit = Limiter.slots(limiter)
    this.health.maxInFlight = this.limit
    return true
  }

  /** A reserved request starts at `now`, in the way `path` says. */
  begin(request: Request, now: number, path: Path): void {
    start(request, now)
    this.health.started(request)
    const running = request.incarnation as Live<Req, Resp, E>
    running.running++
    if (++running.started === this.recycleAfter) this.recycleDue(running, "requests")
    if (path === "caller") {
      const live = request.incarnation as Live<Req, Resp, E>
      if (live.incarnation.settlesOnDeath !== true) {
        // In process on its caller's fiber: the incarnation's end waits for it.
        request.onCaller = true
        live.onCallers++
      }
    }
  }

  // --- running ---------------------------------------------------------------

  /** The handler's run of `request`, under its dispatch's span, as an effect that never throws. */
  invoke(request: Request): Effect.Effect<Resp, E | WorkerCrash> {
    const run = invoke((request.incarnation as Live<Req, Resp, E>).incarnation.run, request.payload as Req)
    return request.span === undefined ? run : withDispatchSpan(run, request.span)
  }

  /**
   * Sends `request` through the incarnation's `submit`. Returns how to cancel
   * it, and `done` is called later with its outcome; or, when the incarnation
   * gave the outcome before `submit` returned, that outcome (`done` is then
   * never called): an `InvalidRequest` (too large for the wire, a request
   * its Schema cannot encode), a `WorkerCrash` (the incarnation is dead: the
   * request was not sent), an effect the caller runs to send it (a Schema
   * that encodes asynchronously), or, when `submit` throws, a defect (a
   * `WorkerCrash` once judged).
   */
  send(
    request: Request,
    done: (outcome: Effect.Effect<Resp, E | WorkerCrash>) => void
  ): (() => void) | Effect.Effect<Resp, E | WorkerCrash> {
    const incarnation = (request.incarnation as Live<Req, Resp, E>).incarnation
    let early: Effect.Effect<Resp, E | WorkerCrash> | undefined
    let returned = false
    let cancel: () => void
    try {
      cancel = incarnation.submit!(
        request.payload as Req,
        (outcome) => {
          if (returned) done(outcome)
          else early ??= outcome
        },
        request.span
      )
    } catch (defect) {
      // A kind whose submit throws is broken: a defect of the worker, as a
      // handler's throw is (whether the request went out is unknown). An
      // outcome it gives later is not heard (`returned` stays false).
      return early ?? Exit.die(defect)
    }
    returned = true
    return early ?? cancel
  }

  /**
   * Runs `request` on a fiber of its incarnation, within its timeout, and
   * gives the fiber's exit, or `timedOutRun`. The caller's interruption
   * interrupts the request's fiber first. A kind that cannot stop a wedged
   * request (`restartOnTimeout`) is crashed on a timeout, and the run gives
   * `timedOutRun` once the incarnation is gone.
   */
  execute(request: Request): Effect.Effect<RunResult<Resp, E>> {
    const live = request.incarnation as Live<Req, Resp, E>
    const timeout = request.timeout
    return Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(FiberSet.run(live.fibers, restore(this.invoke(request))), (fiber) => {
        const awaited: Effect.Effect<RunResult<Resp, E>> =
          timeout === undefined
            ? Fiber.await(fiber)
            : Effect.map(Effect.timeoutOption(Fiber.await(fiber), timeout), (o) =>
                o._tag === "None" ? timedOutRun : o.value
              )
        return Effect.flatMap(
          Effect.onInterrupt(restore(awaited), () => Fiber.interrupt(fiber)),
          (result): Effect.Effect<RunResult<Resp, E>> => {
            if (result !== timedOutRun) return Effect.succeed(result)
            if (live.incarnation.restartOnTimeout !== true) return Effect.as(Fiber.interrupt(fiber), timedOutRun)
            // A kind that cannot stop a wedged request is replaced: closing
            // the incarnation interrupts the request and kills what runs it.
            const timeoutMillis = Duration.toMillis(timeout!)
            this.crash(
              live,
              new TimedOut({
                message: `a request ran past its ${timeoutMillis} ms timeout: the worker is wedged`,
                timeoutMillis
              })
            )
            return Effect.as(restore(Deferred.await(live.closed)), timedOutRun)
          }
        )
      })
    )
  }

  // --- judging ---------------------------------------------------------------

  /**
   * The handler of a request on its caller's fiber has ended with `exit`
   * (called where its caller cannot be interrupted): the
   * incarnation's close waits for it no more, and no teardown reaches it. A
   * teardown that did reach it (the failure is its interruption) or came
   * after its end leaves its caller's fiber uninterrupted; `conclude` judges
   * the first `torn`.
   */
  ran(request: Request, exit?: Exit.Exit<unknown, unknown>): undefined {
    if (!request.onCaller) return
    request.onCaller = false
    const live = request.incarnation as Live<Req, Resp, E>
    if (live.tornBy !== undefined) {
      if (
        exit === undefined ||
        exit._tag === "Success" ||
        !CallerFiber.resume(request.caller!, exit.cause, live.tornBy)
      ) {
        CallerFiber.forget(request.caller!, live.tornBy)
      }
    }
    if (--live.onCallers === 0 && live.idle !== undefined) {
      const idle = live.idle
      this.later.run(() => Deferred.doneUnsafe(idle, Exit.void))
    }
  }

  /**
   * Settles a request that ran, from what its run gave, and returns what its
   * caller should see. A crash ends the incarnation (the request that ended
   * it counts as `crashed`, the others it took down as `torn`); its caller
   * hears of it once the incarnation is gone and its fate known.
   */
  conclude(
    request: Request,
    result: RunResult<Resp, E>,
    path: Path
  ): Effect.Effect<Resp, E | WorkerCrash | RequestTimeout> {
    const live = request.incarnation as Live<Req, Resp, E>
    const left = request.left
    if (result === timedOutRun) {
      this.finish(request, left ? "interrupted" : "timedOut", live)
      return Exit.fail(new RequestTimeout({ workerId: this.id, timeoutMillis: Duration.toMillis(request.timeout!) }))
    }
    const exit = result as Exit.Exit<Resp, E | WorkerCrash>
    if (Exit.isSuccess(exit)) {
      this.finish(request, left ? "interrupted" : "succeeded", live)
      return exit
    }
    const failure = classify(exit.cause)
    switch (failure._tag) {
      case "Domain":
        request.tag = tagOf(failure.error)
        this.finish(request, left ? "interrupted" : failure.outcome, live)
        return exit as Exit.Exit<never, E>
      case "Crash":
        return this.crashed(request, live, failure.reason, left, false)
      case "Interrupted":
        if (
          path === "caller" &&
          !left &&
          live.tornBy !== undefined &&
          CallerFiber.resume(request.caller!, exit.cause, live.tornBy)
        ) {
          // Torn down after its incarnation ended (another request's crash, a stop): its caller goes on.
          return this.crashed(request, live, live.endReason!, false, true)
        }
        if (path === "caller" && !left && interruptedItself(exit.cause, request.caller)) {
          // On its caller's fiber, the handler interrupted itself (nobody else did): a defect.
          return this.crashed(request, live, new Defect({ message: "the handler was interrupted" }), false, false)
        }
        if (path === "fiber" && !left) {
          // Its fiber was interrupted, and not by its caller: the
          // incarnation was torn down under it, or the handler interrupted
          // itself (a defect).
          const torn = live.endReason !== undefined
          return this.crashed(
            request,
            live,
            live.endReason ?? new Defect({ message: "the handler was interrupted" }),
            false,
            torn
          )
        }
        if (left || live.endReason === undefined || this.graceful) {
          this.finish(request, "interrupted", live)
        } else {
          // Its caller's fiber was interrupted by a stop that cut it.
          request.tag = "Interrupted"
          this.finish(request, "torn", live)
        }
        return Exit.failCause(Cause.interrupt())
    }
  }

  /** A request met a crash: the incarnation ends (if it had not), and its caller hears of it once it is gone. */
  private crashed(
    request: Request,
    live: Live<Req, Resp, E>,
    reason: CrashReason,
    left: boolean,
    torn: boolean
  ): Effect.Effect<never, WorkerCrash> {
    const ended = this.crash(live, reason)
    const cut = this.stopReason !== undefined ? this.cut : undefined
    if (cut !== undefined) request.tag = (cut() as { readonly _tag?: string })._tag
    // Only the request that brought the incarnation down counts toward
    // ejection; the others went down with it.
    this.finish(request, left ? "interrupted" : ended && !torn ? "crashed" : "torn", live)
    const error =
      cut !== undefined
        ? (cut() as WorkerCrash)
        : new WorkerCrash({ reason: live.clean ? reason : (live.endReason ?? reason), workerId: this.id })
    return Effect.andThen(Deferred.await(live.closed), Effect.fail(error))
  }

  /** Settles a running request with `outcome` and gives its slot back. */
  private finish(request: Request, outcome: Outcome, live: Live<Req, Resp, E>): void {
    settle(request, outcome)
    this.health.settled(request, outcome)
    if (outcome === "succeeded" || outcome === "domainError") live.served = true
    if (--live.running === 0 && live.drained !== undefined) this.drainedNow(live)
    this.ran(request)
  }

  // --- incarnations ----------------------------------------------------------

  /**
   * Ends `current` because it crashed: it leaves selection at once, and its
   * supervisor takes over. `true` if this call ended it (the crash is this
   * caller's to count), `false` if it had ended already.
   */
  crash(current: Live<Req, Resp, E>, reason: CrashReason, countsAsFailure = false): boolean {
    current.crashed = true
    if (current.endReason !== undefined) {
      // A recycled incarnation that dies while it finishes its requests is closed now.
      if (current.drained !== undefined) this.drainedNow(current)
      return false
    }
    current.endReason = reason
    const health = this.health
    health.crashes++
    if (countsAsFailure) health.consecutiveFailures++
    health.lastCrash = { reason: reason.message, at: this.now() }
    if (this.live === current) this.live = undefined
    this.setState("Restarting")
    this.later.run(() => Deferred.doneUnsafe(current.ended, Exit.succeed(reason)))
    return true
  }

  /**
   * Ends `current` without a crash (it said it stops, as a draining runner
   * does): it leaves selection at once, its requests run to their end, and
   * its supervisor starts it again; no crash is counted.
   */
  end(current: Live<Req, Resp, E>, reason: CrashReason): boolean {
    if (current.endReason !== undefined) return false
    current.endReason = reason
    current.clean = true
    if (this.live === current) this.live = undefined
    this.setState("Restarting")
    this.later.run(() => Deferred.doneUnsafe(current.ended, Exit.succeed(reason)))
    return true
  }

  // --- recycling -------------------------------------------------------------

  /** `current` is due to be recycled, for `reason` (its supervisor replaces it). */
  recycleDue(current: Live<Req, Resp, E>, reason: RecycleReason): void {
    const due = current.recycle
    if (due !== undefined) this.later.run(() => Deferred.doneUnsafe(due, Exit.succeed(reason)))
  }

  /** `current` is over its memory limit: it takes no new request, and is due to be recycled. */
  overMemory(current: Live<Req, Resp, E>): void {
    if (this.live !== current || current.endReason !== undefined) return
    this.recycleDue(current, "memory")
    if (this.paused) return
    this.paused = true
    this.owner?.changed(this)
  }

  /**
   * A replacement takes over from `old`, recycled for `reason`: `old` takes no
   * new request from now on (the replacement is made live right after, in the
   * same step), and finishes those it holds, then its `drained` completes.
   */
  handOver(old: Live<Req, Resp, E>, reason: RecycleReason): void {
    old.drained = Deferred.makeUnsafe<void>()
    // One that died meanwhile is closed at once.
    if (old.running === 0 || old.endReason !== undefined) this.drainedNow(old)
    if (old.endReason === undefined) {
      old.endReason = new Stopped({ message: `worker ${this.id} recycled (${reason})` })
      old.clean = true
    }
    if (this.live === old) this.live = undefined
    this.health.recycled(reason, this.now())
  }

  private drainedNow(old: Live<Req, Resp, E>): void {
    const drained = old.drained!
    this.later.run(() => Deferred.doneUnsafe(drained, Exit.void))
  }

  /** Makes `current` the live incarnation. */
  begun(current: Live<Req, Resp, E>): void {
    this.live = current
    this.paused = false
    this.health.failedStarts = 0
    this.setState("Live")
  }

  /** A start failed. */
  startFailed(reason: CrashReason): void {
    const health = this.health
    health.crashes++
    health.failedStarts++
    health.lastStartTimedOut = reason._tag === "StartFailed" && reason.timeoutMillis !== undefined
    health.lastCrash = { reason: reason.message, at: this.now() }
    this.setState("Restarting")
  }

  /** Marks the worker ejected until `until` (epoch millis), or readmits it. */
  setEjection(until: number | undefined): void {
    const health = this.health
    if (until === undefined) health.ejectedUntil = undefined
    else {
      health.ejectedUntil = until
      health.ejections++
    }
    if (health.isLive) this.setState("Live")
  }

  // --- stopping --------------------------------------------------------------

  /**
   * Stops the worker for good: its requests fail with `WorkerCrash`, or with
   * what `cut` makes, and its resources are released. An in-process request
   * running on its caller's fiber is interrupted inside the request, and its
   * caller goes on with that outcome, unless the stop is `graceful` (a worker
   * that holds no request, retired by an elastic pool), which lets it run to
   * its end first.
   */
  stop(
    reason: string,
    options?: { readonly cut?: (() => unknown) | undefined; readonly graceful?: boolean | undefined }
  ): Effect.Effect<void> {
    return Effect.suspend(() => {
      this.stopReason ??= reason
      this.cut ??= options?.cut
      this.graceful = options?.graceful === true
      // A close under way may wait for requests on callers' fibers (a removal's): they are torn down first.
      if (!this.graceful) this.endLive()
      return this.closeScope
    })
  }

  /** The scope is closing: the live incarnation (if any) ends with the stop's reason. */
  stopping(): void {
    this.endLive()
    this.setState("Stopped")
  }

  /** The live incarnation (if any) ends with the stop's reason; unless the stop is graceful, its callers' requests are torn down. */
  private endLive(): void {
    const reason = new Stopped({ message: `worker ${this.id} stopped: ${this.stopReason ?? "its scope was closed"}` })
    if (this.live !== undefined) this.live.endReason ??= reason
    this.live = undefined
    if (!this.graceful) this.tearCallers(undefined)
  }

  /**
   * Tears down the in-process requests running on their callers' fibers (of
   * incarnation `only`, or of every one), each of which has ended: they are
   * interrupted inside the request, fail with `WorkerCrash` (or what the
   * stop's `cut` makes), and their callers go on (see `callerFiber.ts`). A
   * handler in an uninterruptible region runs on until it leaves it. (Never
   * inside a step of the pool: the interruption may run the caller's code at
   * once.)
   */
  private tearCallers(only: Live<Req, Resp, E> | undefined): void {
    const callers: Array<Fiber.Fiber<unknown, unknown>> = []
    for (const request of this.health.running()) {
      if (!request.onCaller || (only !== undefined && request.incarnation !== only)) continue
      ;(request.incarnation as Live<Req, Resp, E>).tornBy = this.tearer
      callers.push(request.caller!)
    }
    for (const caller of callers) CallerFiber.tearDown(caller, this.tearer)
  }

  /**
   * Waits until no in-process request runs on the callers' fibers of
   * `current`. When `current` crashed, they are torn down first, as its
   * requests on fibers are (unless a graceful stop lets them run to their
   * end); a recycled one that crashed while it finished its requests too. A
   * close that waits longer than a second for a handler that cannot be
   * interrupted says which worker and requests it waits for.
   */
  awaitCallers(current: Live<Req, Resp, E>): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (current.onCallers === 0) return Effect.void
      if ((current.crashed || (current.endReason !== undefined && !current.clean)) && !this.graceful) {
        this.tearCallers(current)
        if (current.onCallers === 0) return Effect.void
      }
      current.idle ??= Deferred.makeUnsafe<void>()
      return this.noticeWait(Deferred.await(current.idle))
    })
  }

  /** Interrupts the requests on fibers of `current` and waits for them, saying so if that takes long. */
  clearFibers(current: Live<Req, Resp, E>): Effect.Effect<void> {
    return this.noticeWait(FiberSet.clear(current.fibers))
  }

  private noticeWait(wait: Effect.Effect<void>): Effect.Effect<void> {
    return Effect.timeoutOrElse(wait, {
      duration: closeWaitNotice,
      orElse: () =>
        Effect.andThen(
          Effect.logWarning("closing waits for requests whose handlers cannot be interrupted").pipe(
            Effect.annotateLogs({
              workerId: this.id,
              requests: Array.from(this.health.running(), numberOf).join(", ")
            })
          ),
          wait
        )
    })
  }
}

/**
 * Sends `payload` to `core` directly, outside any pool (`Worker.dispatch`):
 * the request takes a slot whatever `maxInFlight` says, and the worker alone
 * judges it. Its slot is taken, and the frame that sees it to its end set
 * up, in one uninterruptible step; the request itself runs interruptibly.
 */
export const runAlone = <Req, Resp, E>(
  core: WorkerCore<Req, Resp, E>,
  request: Request,
  now: number
): Effect.Effect<Resp, E | WorkerCrash | RequestTimeout> =>
  Effect.uninterruptibleMask((restore) => {
    if (!core.take(request)) return Effect.fail(core.unavailable())
    const path = core.pathOf(request)
    core.begin(request, now, path)
    const judged = (result: RunResult<Resp, E>) => {
      const seen = core.conclude(request, result, path)
      // The pool that owns the worker, if any, follows its load.
      core.owner?.changed(core)
      return Exit.isExit(seen) ? seen : restore(seen)
    }
    switch (path) {
      case "caller":
        return Effect.matchCauseEffect(restore(core.invoke(request)), {
          onSuccess: (value) => judged(Exit.succeed(value)),
          onFailure: (cause) => judged(Exit.failCause(cause))
        })
      case "fiber":
        return Effect.matchCauseEffect(restore(core.execute(request)), {
          onSuccess: judged,
          onFailure: (cause) => {
            // Only an interruption of its caller fails the run.
            request.left = true
            return judged(Exit.failCause(cause))
          }
        })
      case "submit": {
        const answered = Effect.callback<Resp, E | WorkerCrash | RequestTimeout>((resume) => {
          const done = (outcome: Effect.Effect<Resp, E | WorkerCrash>) => {
            if (Exit.isExit(outcome)) {
              const seen = judged(outcome as Exit.Exit<Resp, E | WorkerCrash>)
              if (!request.left) resume(seen)
            } else if (request.left) {
              judged(Exit.failCause(Cause.interrupt()))
            } else {
              // Decoded (or encoded) asynchronously: judged once the caller has run it.
              resume(Effect.flatMap(Effect.exit(outcome), judged))
            }
          }
          const sent = core.send(request, done)
          if (typeof sent !== "function") return done(sent)
          request.cancel = sent
        })
        return Effect.matchCauseEffect(restore(answered), {
          onSuccess: (value) => Exit.succeed(value),
          onFailure: (cause) => {
            if (request.state === "Running" && !request.left) {
              // Its caller left: the request keeps its slot until the incarnation lets go of it.
              request.left = true
              request.cancel?.()
            }
            return Exit.failCause(cause)
          }
        })
      }
    }
  })
