/**
 * The supervisor of one worker: it spawns an incarnation in a scope of its
 * own, waits until it ends, closes that scope (stopping the requests still on
 * it, then releasing its resources), and decides with the restart tracker
 * whether to start it again and when. An incarnation that ends cleanly (its
 * `exited` gives `Stopped`) keeps its requests until they are done, and is
 * started again after the schedule's first delay: neither a crash nor a
 * restart is counted.
 *
 * A worker with recycling rules (see `recycle.ts`) replaces an incarnation
 * that is due without a gap: it takes a replacement (the pool's spare, or a
 * fresh start) while the old one still serves, makes it live in one step,
 * and lets the old one finish what it holds before its scope closes. The
 * pool's `recycling` permit is held from the moment a replacement is sought
 * until the old incarnation is gone: one worker of a pool recycles at a time.
 */
import { Cause, Clock, Context, Deferred, Duration, Effect, Exit, FiberSet, Random, Schedule, Scope } from "effect"
import type { Worker } from "../Worker.ts"
import { InvalidOptions, WorkerCrash } from "../WorkerError.ts"
import type { WorkerId } from "../WorkerId.ts"
import type { Incarnation, WorkerKind } from "../WorkerKind.ts"
import { spawnFailure } from "./describe.ts"
import { MemoryReports } from "./memoryReports.ts"
import { ageLimit, megabytes, type RecycleReason, type RecycleRules } from "./recycle.ts"
import { Request } from "./request.ts"
import { type RestartPolicy, restartTracker } from "./restart.ts"
import { type Live, makeLive, register, runAlone, type Spare, TypeId, WorkerCore } from "./worker.ts"
import type { MaxInFlight } from "./workerOptions.ts"

/** A worker's checked settings. */
export interface Settings {
  readonly restart: RestartPolicy
  readonly maxInFlight: MaxInFlight
  /** When its incarnations are replaced (see `recycle.ts`); `undefined`: never. */
  readonly recycle: RecycleRules | undefined
}

/** An incarnation due to be recycled, with its replacement, ready to take over. */
interface Handover {
  readonly reason: RecycleReason
  readonly replacement: Spare
  /** Gives back the pool's recycling permit. */
  readonly done: Effect.Effect<void>
}

/** An incarnation a replacement takes over from: it finishes its requests, then its scope closes. */
interface Retiring<Req, Resp, E> {
  readonly live: Live<Req, Resp, E>
  readonly reason: RecycleReason
  /** Completed once the replacement is live. */
  readonly tookOver: Deferred.Deferred<void>
}

/** How long a worker's first start may take to report its memory before the limit goes unchecked. */
const firstReportWait = Duration.seconds(5)

/**
 * Why a memory limit is refused, if it is: the worker has no way to measure
 * its memory, or a fresh incarnation already takes more than the limit.
 */
const memoryRefusal = (
  incarnation: Incarnation<any, any, any> | undefined,
  limit: number,
  probe: Effect.Effect<number> | undefined,
  firstReading: Deferred.Deferred<number>,
  kind: string
): Effect.Effect<string | undefined> =>
  Effect.gen(function* () {
    if (incarnation === undefined) return undefined
    if (incarnation.memory === undefined && probe === undefined) {
      return `recycle.maxMemoryMb needs the worker's memory: a worker of kind ${kind} does not report it, give recycle.memoryProbe`
    }
    // A runner that does not report its memory (an older one) keeps working, unchecked.
    const fresh = yield* Effect.timeoutOption(Deferred.await(firstReading), firstReportWait)
    if (fresh._tag === "None" || fresh.value <= limit) return undefined
    return `recycle.maxMemoryMb is ${megabytes(limit)}, below the ${megabytes(fresh.value)} a fresh worker of kind ${kind} takes: it would be recycled without end`
  })

/** Builds a supervised worker of any kind. See `Worker.fromKind`. */
export const make = Effect.fnUntraced(function* <Req, Resp, E, R>(
  id: WorkerId,
  kind: WorkerKind<Req, Resp, E, R>,
  options: Settings
): Effect.fn.Return<Worker<Req, Resp, E>, InvalidOptions, R | Scope.Scope> {
  const scope = yield* Scope.fork(yield* Scope.Scope, "sequential")
  // Replacements started for a recycle: closed after everything else of the worker.
  const replacements = yield* Scope.fork(scope, "sequential")
  const rules = options.recycle
  const memoryLimit = rules?.maxMemoryBytes ?? Infinity
  // A worker that recycles over a memory limit asks its kind's runner for memory reports.
  const context = Context.add(yield* Effect.context<R>(), MemoryReports, memoryLimit !== Infinity)
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
  if (rules !== undefined) {
    core.recycleAfter = rules.maxRequests
    health.recycledFor = { requests: 0, age: 0, memory: 0 }
  }
  core.spareSource = {
    kind,
    spawnInto: (spareScope) =>
      Effect.provideContext(kind.spawn, Context.add(context, Scope.Scope, spareScope)).pipe(
        Effect.annotateLogs({ workerKind: kind.name, spare: true })
      )
  }

  /**
   * Seeks the replacement of `current` once it is due to be recycled, while
   * it serves: the pool's recycling permit first, then the pool's spare, or a
   * fresh start. A replacement that fails to start is logged and sought again
   * after the restart schedule's first delay; meanwhile `current` serves.
   */
  const seekReplacement = (current: Live<Req, Resp, E>, offer: (handover: Handover) => void) =>
    Effect.gen(function* () {
      const reason = yield* Deferred.await(current.recycle!)
      yield* Effect.logDebug("worker due to recycle").pipe(Effect.annotateLogs({ reason }), annotate)
      const permit = core.owner?.recycling
      while (true) {
        const found = yield* Effect.uninterruptibleMask((restore) =>
          Effect.gen(function* () {
            if (permit !== undefined) yield* restore(permit.take(1))
            const done = permit === undefined ? Effect.void : Effect.asVoid(permit.release(1))
            const spare = core.owner?.spareFor(core)
            if (spare !== undefined) return { reason, replacement: spare, done } satisfies Handover
            const spareScope = yield* Scope.fork(replacements, "sequential")
            const spawned = yield* Effect.exit(restore(core.spareSource!.spawnInto(spareScope)))
            if (Exit.isSuccess(spawned)) {
              const replacement: Spare = { incarnation: spawned.value, release: Scope.close(spareScope, Exit.void) }
              return { reason, replacement, done } satisfies Handover
            }
            yield* Scope.close(spareScope, Exit.void)
            yield* done
            if (Cause.hasInterrupts(spawned.cause)) return yield* Effect.interrupt
            return spawnFailure(spawned.cause)
          })
        )
        if ("replacement" in found) return offer(found)
        yield* Effect.logWarning("worker recycle postponed: its replacement failed to start").pipe(
          Effect.annotateLogs({ reason: found.message }),
          annotate
        )
        const step = yield* Schedule.toStep(options.restart.schedule)
        const stepped = yield* Effect.exit(step(clock.currentTimeMillisUnsafe(), undefined as never))
        yield* Effect.sleep(Exit.isSuccess(stepped) ? stepped.value[1] : Duration.seconds(1))
      }
    })

  /** The first memory reading of the first incarnation, for the check of the limit (see `make`'s end). */
  const firstReading = Deferred.makeUnsafe<number>()

  /**
   * Follows the memory of `current`: each report of its runner, or its
   * `memoryProbe` every `memoryCheckInterval`. Over the limit, it takes no
   * new request and is due to be recycled.
   */
  const watchMemory = (current: Live<Req, Resp, E>) =>
    Effect.gen(function* () {
      const check = (bytes: number) => {
        Deferred.doneUnsafe(firstReading, Exit.succeed(bytes))
        if (bytes > memoryLimit) core.overMemory(current)
      }
      const report = current.incarnation.memory
      if (report !== undefined) return report(check)
      const probe = rules!.memoryProbe
      if (probe === undefined) return
      yield* Effect.forkScoped(
        Effect.forever(
          Effect.andThen(
            Effect.flatMap(probe, (bytes) => Effect.sync(() => check(bytes))),
            Effect.sleep(rules!.memoryCheckMillis)
          )
        )
      )
    })

  /** Gives back a handover that was not used: its replacement ends, the permit is returned. */
  const unused = (handover: Handover) => Effect.andThen(handover.replacement.release, handover.done)

  /**
   * Runs one incarnation from spawn to its end; returns why it ended and
   * whether it answered a request; or, when it is recycled, the handover to
   * its replacement (its scope is then left open: it closes once the
   * incarnation has finished its requests, see `retire`). `previous`: the
   * end of the incarnation before, when a spare took over from it: its
   * callers hear of its crash once this one serves. `retiring`: the
   * incarnation this one takes over from, by a recycle.
   */
  const incarnate = (
    closed: Deferred.Deferred<void>,
    spare: Spare | undefined,
    previous: Deferred.Deferred<void> | undefined,
    retiring: Retiring<Req, Resp, E> | undefined
  ) =>
    Effect.gen(function* () {
      // A replacement takes over from a live incarnation: the worker never stops serving.
      if (health.state !== "Starting" && retiring === undefined) core.setState("Starting")
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
        return { _tag: "Ended", reason, served: false, clean: false } as const
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
      const ready = Deferred.makeUnsafe<void>()
      let handover: Handover | undefined
      if (rules !== undefined) {
        current.recycle = Deferred.makeUnsafe<RecycleReason>()
        yield* Effect.forkScoped(
          seekReplacement(current, (found) => {
            if (current.endReason !== undefined) return Effect.runFork(unused(found))
            handover = found
            Deferred.doneUnsafe(ready, Exit.void)
          })
        )
      }
      yield* restarts.started
      // The incarnation it takes over from takes no new request from here,
      // and this one is live in the same step.
      if (retiring !== undefined) core.handOver(retiring.live, retiring.reason)
      core.begun(current)
      if (retiring !== undefined) Deferred.doneUnsafe(retiring.tookOver, Exit.void)
      if (previous !== undefined) Deferred.doneUnsafe(previous, Exit.void)
      Deferred.doneUnsafe(firstStart, Exit.void)
      if (memoryLimit !== Infinity) yield* watchMemory(current)
      if (rules !== undefined) {
        const limit = ageLimit(rules, yield* Random.next)
        if (limit !== Infinity) {
          yield* Effect.forkScoped(
            Effect.andThen(
              Effect.sleep(limit),
              Effect.sync(() => core.recycleDue(current, "age"))
            )
          )
        }
      }
      yield* Effect.raceFirst(Deferred.await(current.ended), Deferred.await(ready))
      if (current.endReason === undefined && handover !== undefined) {
        return { _tag: "Recycle", handover, live: current } as const
      }
      if (handover !== undefined) yield* unused(handover)
      const reason = yield* Deferred.await(current.ended)
      if (current.clean) {
        yield* Effect.logInfo("worker ended").pipe(Effect.annotateLogs({ reason: reason.message }), annotate)
        // Its requests run to their end before its scope closes.
        yield* FiberSet.awaitEmpty(current.fibers)
      } else {
        yield* Effect.logWarning("worker crashed").pipe(Effect.annotateLogs({ reason: reason.message }), annotate)
      }
      return { _tag: "Ended", reason, served: current.served, clean: current.clean } as const
    }).pipe((body) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.flatMap(Scope.make("sequential"), (incarnationScope) =>
          Effect.onExit(restore(Scope.provide(body, incarnationScope)), (exit) =>
            Exit.isSuccess(exit) && exit.value._tag === "Recycle"
              ? retire(exit.value.live, incarnationScope, exit.value.handover)
              : Scope.close(incarnationScope, exit)
          )
        )
      )
    )

  /** What `retire` waits for before the incarnation a replacement took over from ends. */
  const tookOver = new WeakMap<Live<Req, Resp, E>, Deferred.Deferred<void>>()

  /**
   * The end of a recycled incarnation, on a fiber of the worker: once its
   * replacement is live and it runs no request (or died), its scope closes,
   * its callers that met a crash hear of it, and the pool's permit is given
   * back. A stop of the worker meanwhile closes it at once.
   */
  const retire = (old: Live<Req, Resp, E>, oldScope: Scope.Closeable, handover: Handover) => {
    const taken = Deferred.makeUnsafe<void>()
    tookOver.set(old, taken)
    return Effect.asVoid(
      Effect.forkIn(
        Effect.andThen(
          Deferred.await(taken),
          Effect.suspend(() => Deferred.await(old.drained!))
        ).pipe(
          Effect.ensuring(
            Effect.gen(function* () {
              yield* Scope.close(oldScope, Exit.void)
              Deferred.doneUnsafe(old.closed, Exit.void)
              yield* handover.done
              yield* Effect.logDebug("worker recycled").pipe(
                Effect.annotateLogs({ reason: handover.reason, served: old.started }),
                annotate
              )
            })
          )
        ),
        scope,
        // Started now: a stop of the worker before it ran would skip its end (the old scope's close, `closed`).
        { startImmediately: true }
      )
    )
  }

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
   * (attempt n), `Retired`, or, when a spare takes over, serving again. A
   * recycled one hands over to its replacement (`Recycle`).
   */
  const incarnation = (
    spare: Spare | undefined,
    previous: Deferred.Deferred<void> | undefined,
    retiring: Retiring<Req, Resp, E> | undefined
  ) =>
    Effect.suspend(() => {
      const closed = Deferred.makeUnsafe<void>()
      let handedOver = false
      return Effect.gen(function* () {
        const ended = yield* incarnate(closed, spare, previous, retiring)
        Deferred.doneUnsafe(firstStart, Exit.void)
        if (ended._tag === "Recycle") {
          // Its scope closes once it has finished its requests (`retire`).
          handedOver = true
          const next: Retiring<Req, Resp, E> = {
            live: ended.live,
            reason: ended.handover.reason,
            tookOver: tookOver.get(ended.live)!
          }
          return {
            decision: { _tag: "Recycle" } as const,
            clean: true,
            spare: ended.handover.replacement,
            closed,
            next
          }
        }
        const { reason, served, clean } = ended
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
          return { decision, clean, spare: undefined, closed, next: undefined }
        }
        if (!clean) health.attempt = decision.attempt
        core.setState(health.state)
        handedOver = nextSpare !== undefined
        return { decision, clean, spare: nextSpare, closed, next: undefined }
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
    let retiring: Retiring<Req, Resp, E> | undefined
    while (true) {
      const next = yield* incarnation(spare, handedOver, retiring)
      handedOver = undefined
      retiring = undefined
      const { decision, clean } = next
      if (decision._tag === "Retire") return
      if (decision._tag === "Recycle") {
        // Its replacement takes over at once; it finishes its requests meanwhile.
        spare = next.spare
        retiring = next.next
        continue
      }
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
  if (memoryLimit !== Infinity) {
    // A limit below what a fresh worker takes would recycle it without end.
    const refused = yield* memoryRefusal(
      core.live?.incarnation,
      memoryLimit,
      rules!.memoryProbe,
      firstReading,
      kind.name
    )
    if (refused !== undefined) {
      yield* Scope.close(scope, Exit.void)
      return yield* Effect.fail(new InvalidOptions({ reason: refused }))
    }
  }

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
