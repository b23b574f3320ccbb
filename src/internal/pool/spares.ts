/**
 * Spares: incarnations started ahead, so that a crashed worker is replaced in
 * the time it takes to hand one over rather than to start a thread or a
 * process (which loads the whole worker script). The pool keeps `count` of
 * them, of the kind of its first worker whose kind allows it (the thread and
 * subprocess kinds do). A worker of that same kind that crashes takes a ready
 * spare instead of waiting for its restart delay and a start; the pool then
 * starts the next spare in the background, under a backoff of its own (the
 * default restart schedule), so that a crash loop cannot turn into a storm of
 * starts.
 */
import { Deferred, Duration, Effect, Exit, Fiber, Schedule, Scope } from "effect"
import type { WorkerKind } from "../../WorkerKind.ts"
import { defaultRestartSchedule } from "../backoff.ts"
import { spawnFailure } from "../describe.ts"
import type { Spare, SpareSource } from "../worker.ts"

export type { Spare, SpareSource }

/**
 * What a pool shows of one spare: its kind's name, its state (`Starting`,
 * `Ready`, or `Restarting` after a failed start), how many times it was
 * started, and the starts that failed in a row with the last reason.
 */
export interface SpareHealth {
  readonly kind: string
  readonly state: "Starting" | "Ready" | "Restarting"
  readonly starts: number
  readonly failedStarts: number
  readonly lastFailure?: string | undefined
}

interface Slot {
  state: SpareHealth["state"]
  starts: number
  failedStarts: number
  lastFailure: string | undefined
  /** The ready spare, and how to tell its keeper it was taken. */
  ready: { readonly spare: Spare; readonly taken: Deferred.Deferred<void> } | undefined
}

export class Spares {
  private source: SpareSource | undefined
  private readonly slots: Array<Slot> = []
  private readonly keepers: Array<Fiber.Fiber<void>> = []
  private readonly count: number
  private readonly scope: Scope.Closeable
  /**
   * Open once a worker of the spares' kind has started since the last spare
   * failed to: a kind that cannot start gets no spare starts on top of its
   * workers' own.
   */
  private startsWork = Deferred.makeUnsafe<void>()
  private readonly background: (effect: Effect.Effect<void>) => Fiber.Fiber<void>

  constructor(count: number, scope: Scope.Closeable, background: (effect: Effect.Effect<void>) => Fiber.Fiber<void>) {
    this.count = count
    this.scope = scope
    this.background = background
  }

  /** Offers a worker's kind; the first one that allows spares is the one they are made of. */
  offer(source: SpareSource): void {
    if (this.source !== undefined || this.count === 0 || source.kind.spare !== true) return
    this.source = source
    for (let i = 0; i < this.count; i++) {
      const slot: Slot = { state: "Starting", starts: 0, failedStarts: 0, lastFailure: undefined, ready: undefined }
      this.slots.push(slot)
      this.keepers.push(this.background(this.keep(slot, source)))
    }
  }

  /** A worker of `kind` became ready: its kind can start, spares may be started. */
  started(kind: WorkerKind<any, any, any, any>): void {
    if (this.source?.kind === kind) Deferred.doneUnsafe(this.startsWork, Exit.void)
  }

  /** Whether a spare of `kind` is ready to be taken. */
  has(kind: WorkerKind<any, any, any, any>): boolean {
    return this.source?.kind === kind && this.slots.some((slot) => slot.ready !== undefined)
  }

  /** A ready spare of `kind` (the same kind value), now taken, or `undefined`. */
  take(kind: WorkerKind<any, any, any, any>): Spare | undefined {
    if (this.source === undefined || this.source.kind !== kind) return undefined
    for (const slot of this.slots) {
      const ready = slot.ready
      if (ready === undefined) continue
      slot.ready = undefined
      slot.state = "Starting"
      Deferred.doneUnsafe(ready.taken, Exit.void)
      return ready.spare
    }
    return undefined
  }

  /** Stops keeping spares and ends the ones not taken: at the pool's shutdown, once its workers have stopped. */
  close(): Effect.Effect<void> {
    return Effect.andThen(Fiber.interruptAll(this.keepers), Scope.close(this.scope, Exit.void))
  }

  health(): ReadonlyArray<SpareHealth> {
    const kind = this.source?.kind.name ?? ""
    return this.slots.map((slot) => ({
      kind,
      state: slot.state,
      starts: slot.starts,
      failedStarts: slot.failedStarts,
      ...(slot.lastFailure === undefined ? {} : { lastFailure: slot.lastFailure })
    }))
  }

  /** Keeps one spare ready, for the life of the pool. */
  private keep(slot: Slot, source: SpareSource): Effect.Effect<void> {
    const self = this
    return Effect.gen(function* () {
      let step = yield* Schedule.toStep(defaultRestartSchedule)
      let backOff = false
      while (true) {
        yield* Deferred.await(self.startsWork)
        if (backOff) {
          const [, delay] = yield* step(yield* Effect.clockWith((c) => c.currentTimeMillis), undefined)
          slot.state = slot.failedStarts > 0 ? "Restarting" : "Starting"
          yield* Effect.sleep(delay)
        }
        slot.state = "Starting"
        slot.starts++
        const scope = yield* Scope.fork(self.scope, "sequential")
        const spawned = yield* Effect.exit(source.spawnInto(scope))
        if (Exit.isFailure(spawned)) {
          yield* Scope.close(scope, Exit.void)
          // Wait for a worker of the kind to start again before trying again.
          if (Deferred.isDoneUnsafe(self.startsWork)) self.startsWork = Deferred.makeUnsafe<void>()
          slot.failedStarts++
          slot.lastFailure = spawnFailure(spawned.cause).message
          slot.state = "Restarting"
          backOff = true
          continue
        }
        slot.failedStarts = 0
        const taken = Deferred.makeUnsafe<void>()
        const spare: Spare = { incarnation: spawned.value, release: Scope.close(scope, Exit.void) }
        slot.ready = { spare, taken }
        slot.state = "Ready"
        const readyAt = yield* Effect.clockWith((c) => c.currentTimeMillis)
        // Until a worker takes it, or it dies on its own.
        const promoted = yield* Effect.raceFirst(
          Effect.as(Deferred.await(taken), true),
          Effect.as(spawned.value.exited, false)
        )
        if (!promoted) {
          slot.ready = undefined
          yield* Scope.close(scope, Exit.void)
          slot.lastFailure = "a spare died before it was used"
        }
        // A spare that was ready for a while starts the backoff over.
        if ((yield* Effect.clockWith((c) => c.currentTimeMillis)) - readyAt >= Duration.toMillis("30 seconds")) {
          step = yield* Schedule.toStep(defaultRestartSchedule)
        }
        backOff = true
      }
    }).pipe(Effect.orDie)
  }
}
