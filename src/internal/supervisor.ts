/**
 * The supervisor of one worker: it spawns an incarnation in a scope of its
 * own, waits until it ends, closes that scope (stopping the requests still on
 * it, then releasing its resources), and decides with the restart tracker
 * whether to start it again and when. An incarnation that ends cleanly (its
 * `exited` gives `Stopped`) keeps its requests until they are done, and is
 * started again after the schedule's first delay: neither a crash nor a
 * restart is counted.
 */
import { Clock, Context, Deferred, Duration, Effect, Exit, FiberSet, Schedule, Scope } from "effect"
import type { Worker } from "../Worker.ts"
import { WorkerCrash } from "../WorkerError.ts"
import type { WorkerId } from "../WorkerId.ts"
import type { Incarnation, WorkerKind } from "../WorkerKind.ts"
import { spawnFailure } from "./describe.ts"
import { Request } from "./request.ts"
import { type RestartPolicy, restartTracker } from "./restart.ts"
import { makeLive, register, runAlone, type Spare, TypeId, WorkerCore } from "./worker.ts"
import type { MaxInFlight } from "./workerOptions.ts"

/** Builds a supervised worker of any kind. See `Worker.fromKind`. */
/** A worker's checked settings. */
export interface Settings {
  readonly restart: RestartPolicy
  readonly maxInFlight: MaxInFlight
}

export const make = Effect.fnUntraced(function* <Req, Resp, E, R>(
  id: WorkerId,
  kind: WorkerKind<Req, Resp, E, R>,
  options: Settings
): Effect.fn.Return<Worker<Req, Resp, E>, never, R | Scope.Scope> {
  const scope = yield* Scope.fork(yield* Scope.Scope, "sequential")
  const context = yield* Effect.context<R>()
  const clock = yield* Clock.Clock
  const firstStart = Deferred.makeUnsafe<void>()
  const restarts = yield* restartTracker(options.restart)
  const annotate = Effect.annotateLogs({ workerId: id, workerKind: kind.name })
  const core = new WorkerCore<Req, Resp, E>({
    id,
    kind: kind.name,
    maxInFlight: options.maxInFlight.max,
    adaptive: options.maxInFlight.adaptive,
    now: () => clock.currentTimeMillisUnsafe(),
    close: Scope.close(scope, Exit.void)
  })
  const health = core.health
  core.spareSource = {
    kind,
    spawnInto: (spareScope) =>
      Effect.provideContext(kind.spawn, Context.add(context, Scope.Scope, spareScope)).pipe(
        Effect.annotateLogs({ workerKind: kind.name, spare: true })
      )
  }

  /**
   * Runs one incarnation from spawn to its end; returns why it ended and
   * whether it answered a request. `previous`: the end of the incarnation
   * before, when a spare took over from it: its callers hear of its crash
   * once this one serves.
   */
  const incarnate = (
    closed: Deferred.Deferred<void>,
    spare: Spare | undefined,
    previous: Deferred.Deferred<void> | undefined
  ) =>
    Effect.gen(function* () {
      if (health.state !== "Starting") core.setState("Starting")
      // The kind's requirements come from where the worker was made; its
      // Scope is this incarnation's, so what it acquires dies with it. A
      // spare comes started, with a scope of its own that ends with it.
      const incarnationScope = yield* Scope.Scope
      if (spare !== undefined) yield* Scope.addFinalizer(incarnationScope, spare.release)
      const spawned: Exit.Exit<Incarnation<Req, Resp, E>, unknown> = spare !== undefined
        ? Exit.succeed(spare.incarnation)
        : yield* Effect.exit(
            Effect.provideContext(kind.spawn, Context.add(context, Scope.Scope, incarnationScope)).pipe(
              // What the incarnation logs (a child's stderr, say) names its worker.
              annotate
            )
          )
      if (Exit.isFailure(spawned)) {
        const reason = spawnFailure(spawned.cause)
        core.startFailed(reason)
        yield* Effect.logWarning("worker failed to start").pipe(
          Effect.annotateLogs({ reason: reason.message }),
          annotate
        )
        return { reason, served: false, clean: false }
      }
      // Made after the spawn, so that closing the scope stops the requests
      // before the incarnation's own resources are released.
      const current = makeLive(spawned.value, yield* FiberSet.make<Resp, E | WorkerCrash>(), closed)
      yield* Effect.addFinalizer(() => core.awaitCallers(current))
      // Runs before the FiberSet's own close: says which requests a close waits for.
      yield* Effect.addFinalizer(() => core.clearFibers(current))
      // The incarnation died on its own (a process exited): no request of
      // its making, so the death itself is the failure that counts. One
      // that says it stops (`Stopped`) ends cleanly instead.
      yield* Effect.forkScoped(
        Effect.flatMap(current.incarnation.exited, (crash) =>
          Effect.sync(() =>
            crash.reason._tag === "Stopped" ? core.end(current, crash.reason) : core.crash(current, crash.reason, true)
          )
        )
      )
      yield* restarts.started
      core.begun(current)
      if (previous !== undefined) Deferred.doneUnsafe(previous, Exit.void)
      Deferred.doneUnsafe(firstStart, Exit.void)
      const reason = yield* Deferred.await(current.ended)
      if (current.clean) {
        yield* Effect.logInfo("worker ended").pipe(Effect.annotateLogs({ reason: reason.message }), annotate)
        // Its requests run to their end before its scope closes.
        yield* FiberSet.awaitEmpty(current.fibers)
      } else {
        yield* Effect.logWarning("worker crashed").pipe(Effect.annotateLogs({ reason: reason.message }), annotate)
      }
      return { reason, served: current.served, clean: current.clean }
    }).pipe(Effect.scoped)

  /**
   * After a clean end: a start after the schedule's first delay, which is not
   * a restart (the backoff, the restart budget and `restarts` stay as they are).
   */
  const startAgain = (end: WorkerCrash) =>
    Effect.gen(function* () {
      const step = yield* Schedule.toStep(options.restart.schedule)
      const stepped = yield* Effect.exit(step(clock.currentTimeMillisUnsafe(), end))
      return Exit.isFailure(stepped)
        ? ({ _tag: "Retire", because: "its restart schedule is exhausted" } as const)
        : ({ _tag: "Restart", delay: stepped.value[1], attempt: health.attempt } as const)
    })

  /**
   * One incarnation, then the decision of what comes next. Its callers hear
   * of its crash once it is gone and its fate is known: `Restarting`
   * (attempt n), `Retired`, or, when a spare takes over, serving again.
   */
  const incarnation = (spare: Spare | undefined, previous: Deferred.Deferred<void> | undefined) =>
    Effect.suspend(() => {
      const closed = Deferred.makeUnsafe<void>()
      let handedOver = false
      return Effect.gen(function* () {
        const { reason, served, clean } = yield* incarnate(closed, spare, previous)
        Deferred.doneUnsafe(firstStart, Exit.void)
        // The pool that owns the worker may hand it a ready spare: the
        // restart is then now, not after the delay, and the budget counts it so.
        const nextSpare = core.owner?.spareFor(core)
        const end = new WorkerCrash({ reason, workerId: id })
        const decision = clean ? yield* startAgain(end) : yield* restarts.next(end, served, nextSpare !== undefined)
        if (decision._tag === "Retire") {
          if (nextSpare !== undefined) yield* nextSpare.release
          health.retiredBecause = decision.because
          core.setState("Retired")
          yield* Effect.logError("worker retired").pipe(
            Effect.annotateLogs({ reason: reason.message, because: decision.because }),
            annotate
          )
          return { decision, clean, spare: undefined, closed }
        }
        if (!clean) health.attempt = decision.attempt
        core.setState(health.state)
        handedOver = nextSpare !== undefined
        return { decision, clean, spare: nextSpare, closed }
      }).pipe(
        Effect.ensuring(
          Effect.sync(() => {
            if (previous !== undefined) Deferred.doneUnsafe(previous, Exit.void)
            if (!handedOver) Deferred.doneUnsafe(closed, Exit.void)
          })
        )
      )
    })

  /** The end of an incarnation a spare took over from, until the spare serves. */
  let handedOver: Deferred.Deferred<void> | undefined

  const supervise = Effect.gen(function* () {
    let spare: Spare | undefined
    while (true) {
      const next = yield* incarnation(spare, handedOver)
      handedOver = undefined
      const { decision, clean } = next
      if (decision._tag === "Retire") return
      // A ready spare of this kind takes over at once; else the delay, then a start.
      spare = next.spare
      if (spare === undefined) yield* Effect.sleep(decision.delay)
      else handedOver = next.closed
      if (clean) {
        yield* Effect.logInfo("worker starting again").pipe(
          Effect.annotateLogs({ spare: spare !== undefined }),
          annotate
        )
        continue
      }
      yield* restarts.restarted
      health.restarts++
      yield* Effect.logInfo("worker restarting").pipe(
        Effect.annotateLogs({ attempt: decision.attempt, spare: spare !== undefined }),
        annotate
      )
    }
  })

  // Finalizers run last-added first: the last one ends the live incarnation
  // with the stop's reason, the fork's interrupts the supervisor (closing the
  // incarnation), and the first makes `Stopped` final.
  const stopping = Effect.sync(() => core.stopping())
  yield* Scope.addFinalizer(scope, stopping)
  yield* Effect.forkIn(
    Effect.ensuring(
      supervise,
      Effect.sync(() => handedOver !== undefined && Deferred.doneUnsafe(handedOver, Exit.void))
    ),
    scope
  )
  yield* Scope.addFinalizer(scope, stopping)
  yield* Deferred.await(firstStart)

  const dispatch = (request: Req, dispatchOptions?: { readonly timeout?: Duration.Input | undefined }) =>
    Effect.suspend(() => {
      const timeout =
        dispatchOptions?.timeout === undefined ? undefined : Duration.fromInputUnsafe(dispatchOptions.timeout)
      const record = new Request(
        request,
        { timeout, queueTimeoutMillis: Infinity, idempotent: false },
        undefined,
        undefined
      )
      return runAlone(core, record, clock.currentTimeMillisUnsafe())
    })

  const worker: Worker<Req, Resp, E> = {
    [TypeId]: TypeId,
    id,
    kind: kind.name,
    maxInFlight: options.maxInFlight.max,
    health: Effect.sync(() => health.snapshot()),
    dispatch
  }
  return register(worker, core)
})
