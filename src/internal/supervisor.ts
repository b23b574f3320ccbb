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
import type { Spare } from "./pool/spares.ts"
import { type RestartPolicy, restartTracker } from "./restart.ts"
import { makeCore, makeLive, NotStarted, register, TypeId } from "./worker.ts"

/** Builds a supervised worker of any kind. See `Worker.fromKind`. */
/** A worker's checked settings. */
export interface Settings {
  readonly restart: RestartPolicy
  readonly maxInFlight: number
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
  const life = makeCore<Req, Resp, E>({
    id,
    kind: kind.name,
    maxInFlight: options.maxInFlight,
    now: () => clock.currentTimeMillisUnsafe(),
    close: Scope.close(scope, Exit.void)
  })
  const { core } = life
  const health = core.health
  core.spareSource = {
    kind,
    spawnInto: (spareScope) =>
      Effect.provideContext(kind.spawn, Context.add(context, Scope.Scope, spareScope)).pipe(
        Effect.annotateLogs({ workerKind: kind.name, spare: true })
      )
  }

  /** Runs one incarnation from spawn to its end; returns why it ended and whether it answered a request. */
  const incarnate = (closed: Deferred.Deferred<void>, spare: Spare | undefined) =>
    Effect.gen(function* () {
      if (health.state !== "Starting") life.setState("Starting")
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
        life.startFailed(reason)
        yield* Effect.logWarning("worker failed to start").pipe(
          Effect.annotateLogs({ reason: reason.message }),
          annotate
        )
        return { reason, served: false, clean: false }
      }
      // Made after the spawn, so that closing the scope stops the requests
      // before the incarnation's own resources are released.
      const current = makeLive(spawned.value, yield* FiberSet.make<Resp, E | WorkerCrash>(), closed)
      yield* Effect.addFinalizer(() => life.awaitCallers(current))
      // The incarnation died on its own (a process exited): no request of
      // its making, so the death itself is the failure that counts. One
      // that says it stops (`Stopped`) ends cleanly instead.
      yield* Effect.forkScoped(
        Effect.flatMap(current.incarnation.exited, (crash) =>
          Effect.sync(() =>
            crash.reason._tag === "Stopped" ? life.end(current, crash.reason) : life.crash(current, crash.reason, true)
          )
        )
      )
      yield* restarts.started
      life.begin(current)
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

  /** One incarnation, then the decision of what comes next. */
  const incarnation = (spare: Spare | undefined) =>
    Effect.suspend(() => {
      const closed = Deferred.makeUnsafe<void>()
      return Effect.gen(function* () {
        const { reason, served, clean } = yield* incarnate(closed, spare)
        Deferred.doneUnsafe(firstStart, Exit.void)
        // With a spare ready, the restart is now, not after the delay: the budget counts it so.
        const immediate = core.hasSpare?.(kind) === true
        const end = new WorkerCrash({ reason, workerId: id })
        const decision = clean ? yield* startAgain(end) : yield* restarts.next(end, served, immediate)
        if (decision._tag === "Retire") {
          health.retiredBecause = decision.because
          life.setState("Retired")
          yield* Effect.logError("worker retired").pipe(
            Effect.annotateLogs({ reason: reason.message, because: decision.because }),
            annotate
          )
        } else {
          if (!clean) health.attempt = decision.attempt
          life.setState(health.state)
        }
        return { decision, clean }
      }).pipe(
        // The crash is reported to its callers once the incarnation is gone
        // and its fate is known: `Restarting` (attempt n) or `Retired`.
        Effect.ensuring(Deferred.succeed(closed, undefined))
      )
    })

  const supervise = Effect.gen(function* () {
    let spare: Spare | undefined
    while (true) {
      const { decision, clean } = yield* incarnation(spare)
      if (decision._tag === "Retire") return
      // A ready spare of this kind takes over at once; else the delay, then a start.
      spare = core.takeSpare?.(kind)
      if (spare === undefined) yield* Effect.sleep(decision.delay)
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
  yield* Scope.addFinalizer(scope, Effect.sync(life.stopping))
  yield* Effect.forkIn(supervise, scope)
  yield* Scope.addFinalizer(scope, Effect.sync(life.stopping))
  yield* Deferred.await(firstStart)

  const dispatch = (request: Req, dispatchOptions?: { readonly timeout?: Duration.Input | undefined }) =>
    Effect.suspend(() => {
      const slot = core.reserve()
      if (slot === undefined) return Effect.fail(life.unavailable())
      const timeout =
        dispatchOptions?.timeout === undefined ? undefined : Duration.fromInputUnsafe(dispatchOptions.timeout)
      return core
        .run(slot, request, timeout, undefined, undefined, clock.currentTimeMillisUnsafe())
        .pipe(Effect.catchIf(isNotStarted, () => Effect.fail(life.unavailable())))
    })

  const worker: Worker<Req, Resp, E> = {
    [TypeId]: TypeId,
    id,
    kind: kind.name,
    maxInFlight: options.maxInFlight,
    health: Effect.sync(() => health.snapshot()),
    dispatch
  }
  return register(worker, core)
})

const isNotStarted = (u: unknown): u is NotStarted => u instanceof NotStarted
