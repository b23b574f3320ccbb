/**
 * One supervised worker, for every kind: the counters, the classification of
 * outcomes, and the restart loop.
 *
 * Life of a worker: the supervisor fiber spawns an incarnation in a scope of
 * its own, waits until it dies, closes that scope (interrupting the requests
 * still on it, then releasing its resources), waits out the restart delay and
 * starts over. Requests run on fibers that belong to the incarnation, so its
 * death reaches every request it holds.
 */
import {
  Cause,
  Clock,
  Context,
  Deferred,
  Effect,
  Exit,
  Fiber,
  FiberSet,
  MutableRef,
  Ref,
  Schedule,
  Scope
} from "effect"
import type { Worker, WorkerOptions } from "../Worker.ts"
import { WorkerCrash } from "../WorkerError.ts"
import type { WorkerHealth, WorkerState } from "../WorkerHealth.ts"
import type { WorkerId } from "../WorkerId.ts"
import type { Incarnation, WorkerKind } from "../WorkerKind.ts"
import { describe, spawnFailure } from "./describe.ts"

/** @internal */
export const TypeId: unique symbol = Symbol.for("effect-worker-pool/Worker") as never

/** What the pool needs from a worker beyond its public face. */
export interface WorkerInternals<Req, Resp, E> {
  /** The live health record, read without an effect on the dispatch path. */
  readonly healthRef: Ref.Ref<WorkerHealth>
  /** Whether the worker can take a request now (it is `Healthy`). */
  readonly isLive: () => boolean
  /** Starts `request` on the current incarnation, or `undefined` when there is none. */
  readonly tryDispatch: (request: Req) => Effect.Effect<Resp, E | WorkerCrash> | undefined
  /** Stops the worker for good: in-flight requests fail with `WorkerCrash`, resources are released. */
  readonly stop: (reason: string) => Effect.Effect<void>
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
  interrupted: 0,
  crashes: 0,
  restarts: 0
}

type Settled = "succeeded" | "errored" | "interrupted"

const settledHealth = (h: WorkerHealth, outcome: Settled): WorkerHealth => ({
  ...h,
  inFlight: h.inFlight - 1,
  completed: h.completed + 1,
  errored: outcome === "errored" ? h.errored + 1 : h.errored,
  interrupted: outcome === "interrupted" ? h.interrupted + 1 : h.interrupted
})

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
  restartSchedule: NonNullable<WorkerOptions["restart"]>
): Effect.fn.Return<Worker<Req, Resp, E>, never, R | Scope.Scope> {
  const scope = yield* Scope.fork(yield* Scope.Scope, "sequential")
  const context = yield* Effect.context<R>()
  const healthRef = yield* Ref.make(initialHealth)
  const firstStart = yield* Deferred.make<void>()
  const nextDelay = yield* Schedule.toStep(restartSchedule)
  const annotate = Effect.annotateLogs({ workerId: id, workerKind: kind.name })

  let live: Live<Req, Resp, E> | undefined
  let stopReason: string | undefined

  const modify = (f: (h: WorkerHealth) => WorkerHealth) => MutableRef.update(healthRef.ref, f)
  const setState = (state: WorkerState) => Effect.sync(() => modify((h) => ({ ...h, state })))
  /** Makes `next` the live incarnation (or none); selection follows at once. */
  const setLive = (next: Live<Req, Resp, E> | undefined, state: WorkerState) => {
    live = next
    modify((h) => ({ ...h, state }))
  }

  const unavailable = () =>
    new WorkerCrash({ reason: `worker ${id} is not available (${Ref.getUnsafe(healthRef).state})`, workerId: id })

  /** Ends `current` because it crashed: it leaves selection at once, its supervisor takes over. */
  const crash = (current: Live<Req, Resp, E>, reason: string): Effect.Effect<void> =>
    Effect.suspend(() => {
      if (current.endReason !== undefined) return Effect.void
      current.endReason = reason
      if (live === current) setLive(undefined, "Crashed")
      return recordCrash(reason).pipe(Effect.andThen(Deferred.succeed(current.ended, reason)))
    })

  const recordCrash = (reason: string) =>
    Effect.clockWith((clock) => {
      const at = clock.currentTimeMillisUnsafe()
      modify((h) => ({ ...h, state: "Crashed", crashes: h.crashes + 1, lastCrash: { reason, at } }))
      return Effect.logWarning("worker crashed").pipe(Effect.annotateLogs({ reason }), annotate)
    })

  /** Runs one incarnation from spawn to death; returns why it died. */
  const incarnate = (closed: Deferred.Deferred<void>): Effect.Effect<string> =>
    Effect.gen(function* () {
      yield* setState("Starting")
      // The kind's requirements come from where the worker was made; its
      // Scope is this incarnation's, so what it acquires dies with it.
      const incarnationScope = yield* Scope.Scope
      const spawned = yield* Effect.exit(
        Effect.provideContext(kind.spawn, Context.add(context as Context.Context<R>, Scope.Scope, incarnationScope))
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
      yield* Effect.forkScoped(Effect.flatMap(current.incarnation.exited, (exit) => crash(current, exit.reason)))
      setLive(current, "Healthy")
      yield* Deferred.succeed(firstStart, undefined)
      return yield* Deferred.await(current.ended)
    }).pipe(Effect.scoped, Effect.ensuring(Deferred.succeed(closed, undefined)))

  const supervise = Effect.gen(function* () {
    while (true) {
      const reason = yield* incarnate(yield* Deferred.make<void>())
      yield* Deferred.succeed(firstStart, undefined)
      const now = yield* Clock.currentTimeMillis
      const delay = yield* Effect.exit(nextDelay(now, new WorkerCrash({ reason, workerId: id })))
      if (Exit.isFailure(delay)) {
        yield* setState("Retired")
        yield* Effect.logError("worker retired: its restart schedule is exhausted").pipe(
          Effect.annotateLogs({ reason }),
          annotate
        )
        return
      }
      yield* Effect.sleep(delay.value[1])
      modify((h) => ({ ...h, restarts: h.restarts + 1 }))
      yield* Effect.logInfo("worker restarting").pipe(annotate)
    }
  })

  /** Runs `request` on `current`, keeping the counters exact whatever happens. */
  const runOn = (current: Live<Req, Resp, E>, request: Req): Effect.Effect<Resp, E | WorkerCrash> =>
    Effect.uninterruptibleMask((restore) =>
      Effect.gen(function* () {
        const settle = (outcome: Settled) => Effect.sync(() => modify((h) => settledHealth(h, outcome)))
        modify((h) => ({ ...h, inFlight: h.inFlight + 1 }))
        const fiber = yield* FiberSet.run(current.fibers, restore(current.incarnation.run(request)))
        const exit = yield* restore(Fiber.await(fiber)).pipe(
          Effect.onInterrupt(() => Effect.andThen(Fiber.interrupt(fiber), settle("interrupted")))
        )
        if (Exit.isSuccess(exit)) {
          yield* settle("succeeded")
          return exit.value
        }
        yield* settle("errored")
        const failure = classify(exit.cause)
        if (failure._tag === "Domain") return yield* Effect.fail(failure.error)
        // Interrupted, and not by the caller: the incarnation was torn down
        // under the request (its reason is set), or the handler interrupted itself.
        const reason = failure._tag === "Crash" ? failure.reason : (current.endReason ?? "the handler was interrupted")
        yield* crash(current, reason)
        // The crash is reported once the incarnation is gone: its other
        // requests stopped, its resources released.
        yield* restore(Deferred.await(current.closed))
        return yield* Effect.fail(new WorkerCrash({ reason, workerId: id }))
      })
    )

  const tryDispatch = (request: Req) => (live === undefined ? undefined : runOn(live, request))

  const stop = (reason: string) =>
    Effect.suspend(() => {
      stopReason ??= reason
      return Scope.close(scope, Exit.void)
    })

  // Finalizers run last-added first: the fork's finalizer interrupts the
  // supervisor (closing the incarnation), after which the state is final.
  yield* Scope.addFinalizer(scope, setState("Stopped"))
  yield* Effect.forkIn(supervise, scope)
  yield* Scope.addFinalizer(
    scope,
    Effect.suspend(() => {
      const reason = `worker ${id} stopped: ${stopReason ?? "its scope was closed"}`
      if (live !== undefined) live.endReason ??= reason
      setLive(undefined, "Stopped")
      return Effect.void
    })
  )
  yield* Deferred.await(firstStart)

  const internal: WorkerInternals<Req, Resp, E> = { healthRef, isLive: () => live !== undefined, tryDispatch, stop }
  const worker: Worker<Req, Resp, E> = {
    id,
    kind: kind.name,
    health: Ref.get(healthRef),
    dispatch: (request) => Effect.suspend(() => tryDispatch(request) ?? Effect.fail(unavailable()))
  }
  return Object.assign(worker, { [TypeId]: internal })
})
