/**
 * Elastic size: a pool made with `size: { min, max }` starts `min` workers,
 * starts more (up to `max`) when requests wait for a slot or its utilization
 * stays at or above `targetUtilization`, and retires the workers above `min`
 * that stayed idle for `idleTimeout`.
 *
 * - Up: each time a request is queued, as many workers are started, at once,
 *   as there are requests waiting beyond the workers already starting, within
 *   `max`: a burst that fills the queue brings the pool to `max` within one
 *   start time.
 * - Utilization: ten times per `utilizationWindow` (timed by the pool's
 *   `Clock`), the requests the pool's healthy workers hold over the slots
 *   they have (the sum of their `maxInFlight`); at the end of a window whose
 *   average is at least `targetUtilization`, one worker more, within `max`
 *   (none while one is being started). So a steady load above the target
 *   grows the pool by one worker per window.
 * - Down: every half `idleTimeout`, a worker above `min` that held no request
 *   and finished none for `idleTimeout` is taken out of the pool in one step
 *   (only if it holds no request at that moment, so no request fails for it),
 *   then stopped.
 *   Only the workers the scaler started are retired, and it keeps `min` of
 *   them: a worker added by hand (`pool.add`) stays until it is removed by
 *   hand (it counts toward `max` when the pool grows).
 * - A worker gets the lowest id in `[0, max)` that no worker of the pool has,
 *   so that the metric series stay bounded.
 *
 * Each decision is logged at debug level, counted (`effect_worker_pool_scaling`)
 * and shown in `changes` (a started worker joins, a retired one is `Stopped`).
 */
import { type Clock, Effect, Exit, type Fiber, Scope } from "effect"
import type { Worker } from "../../Worker.ts"
import type { WorkerId } from "../../WorkerId.ts"
import { describe } from "../describe.ts"
import { coreOf } from "../worker.ts"
import type { Engine } from "./engine.ts"

/** An elastic pool's bounds, checked. */
export interface ElasticSize {
  readonly min: number
  readonly max: number
  readonly idleTimeoutMillis: number
  /** Grow by one worker after a window whose average utilization is at least this, in (0, 1]. */
  readonly targetUtilization: number
  /** The utilization window, in milliseconds (at least 1). */
  readonly utilizationWindowMillis: number
}

/** Utilization samples per window. */
const samplesPerWindow = 10

/** What the scaler keeps of a worker it may retire: its completed count when it last saw it busy, and when. */
interface Activity {
  completed: number
  since: number
}

export class Scaler<Req, Resp, E> {
  private readonly engine: Engine<Req, Resp, E>
  private readonly size: ElasticSize
  private readonly make: (id: WorkerId) => Effect.Effect<Worker<Req, Resp, E>, unknown, Scope.Scope>
  private readonly workersScope: Scope.Scope
  private readonly fork: (effect: Effect.Effect<void>) => Fiber.Fiber<void>
  private readonly clock: Clock.Clock
  /** Ids of the workers being started. */
  private readonly starting = new Set<number>()
  /** Each worker the scaler started (the ones it may retire), and its scope, by id. */
  private readonly owned = new Map<number, { readonly worker: Worker<Req, Resp, E>; readonly scope: Scope.Closeable }>()
  private readonly activity = new Map<number, Activity>()
  ups = 0
  downs = 0

  constructor(
    engine: Engine<Req, Resp, E>,
    size: ElasticSize,
    make: (id: WorkerId) => Effect.Effect<Worker<Req, Resp, E>, unknown, Scope.Scope>,
    services: {
      readonly workersScope: Scope.Scope
      readonly fork: (effect: Effect.Effect<void>) => Fiber.Fiber<void>
      readonly clock: Clock.Clock
    }
  ) {
    this.engine = engine
    this.size = size
    this.make = make
    this.workersScope = services.workersScope
    this.fork = services.fork
    this.clock = services.clock
    engine.meter.scaling(
      () => this.ups,
      () => this.downs
    )
  }

  /** Starts the `min` first workers, and waits for them. */
  start(): Effect.Effect<void, unknown> {
    const ids = Array.from({ length: this.size.min }, (_, i) => i as WorkerId)
    for (const id of ids) this.starting.add(id)
    return Effect.andThen(
      Effect.forEach(ids, (id) => this.startOne(id), { concurrency: "unbounded", discard: true }),
      Effect.sync(() => {
        this.engine.onWait = () => this.grow()
        this.fork(this.watchIdle())
        if (this.size.max > this.size.min) this.fork(this.watchUtilization())
      })
    )
  }

  /** Requests wait: as many workers more as there are requests beyond the ones starting, within `max`. */
  private grow(): void {
    const engine = this.engine
    if (engine.closing) return
    const present = engine.membership.members.length + this.starting.size
    const wanted = Math.min(this.size.max - present, engine.queue.length - this.starting.size)
    for (let i = 0; i < wanted; i++) {
      if (!this.startMore({ waiting: engine.queue.length, workers: present + i + 1 })) return
    }
  }

  /** Starts one worker more, in the background, with the lowest free id: `false` if there is none. */
  private startMore(annotations: Record<string, number>): boolean {
    const id = this.freeId()
    if (id === undefined) return false
    this.starting.add(id)
    this.ups++
    this.fork(
      Effect.andThen(
        Effect.logDebug("pool scaling up").pipe(Effect.annotateLogs({ workerId: id, ...annotations })),
        Effect.catchCause(this.startOne(id), (cause) =>
          Effect.logWarning("pool could not start a worker").pipe(
            Effect.annotateLogs({ workerId: id, reason: describe(cause) })
          )
        )
      )
    )
    return true
  }

  /** The share of the healthy workers' slots that hold a request now (0 when there is no slot). */
  private utilization(): number {
    let held = 0
    let slots = 0
    for (const member of this.engine.membership.members) {
      const health = member.core.health
      if (health.state !== "Healthy") continue
      held += health.inFlight
      slots += health.maxInFlight ?? 1
    }
    return slots === 0 ? 0 : Math.min(1, held / slots)
  }

  /**
   * Samples the utilization ten times per window; after a window whose
   * average is at least the target, starts one worker more (within `max`,
   * and none while one is being started).
   */
  private watchUtilization(): Effect.Effect<void> {
    const every = Math.max(1, this.size.utilizationWindowMillis / samplesPerWindow)
    let sum = 0
    let samples = 0
    const sample = Effect.sync(() => {
      const engine = this.engine
      if (engine.closing) return
      sum += this.utilization()
      if (++samples < samplesPerWindow) return
      const average = sum / samples
      sum = 0
      samples = 0
      const present = engine.membership.members.length + this.starting.size
      // (Within a rounding error: ten samples of 0.1 add up to a little less than 1.)
      if (average + 1e-9 < this.size.targetUtilization || this.starting.size > 0 || present >= this.size.max) return
      this.startMore({ utilization: Math.round(average * 1000) / 1000, workers: present + 1 })
    })
    return Effect.forever(Effect.andThen(Effect.sleep(every), sample))
  }

  /** The lowest id in `[0, max)` that no worker has and none being started has. */
  private freeId(): WorkerId | undefined {
    const taken = new Set<number>(this.starting)
    for (const member of this.engine.membership.members) taken.add(member.worker.id)
    for (let id = 0; id < this.size.max; id++) if (!taken.has(id)) return id as WorkerId
    return undefined
  }

  /** Makes worker `id` in a scope of its own, and adds it to the pool. */
  private startOne(id: WorkerId): Effect.Effect<void, unknown> {
    const self = this
    return Effect.gen(function* () {
      const scope = yield* Scope.fork(self.workersScope, "sequential")
      const made = yield* Effect.exit(Scope.provide(self.make(id), scope))
      self.starting.delete(id)
      if (Exit.isFailure(made)) {
        yield* Scope.close(scope, Exit.void)
        return yield* Effect.failCause(made.cause)
      }
      if (self.engine.closing) return yield* Scope.close(scope, Exit.void)
      self.owned.set(id, { worker: made.value, scope })
      self.activity.set(id, { completed: 0, since: self.clock.currentTimeMillisUnsafe() })
      yield* Effect.orDie(self.engine.add(made.value))
    })
  }

  /** Every half `idleTimeout`, retires the workers above `min` that were idle for `idleTimeout`. */
  private watchIdle(): Effect.Effect<void> {
    const every = Math.max(1, Math.floor(this.size.idleTimeoutMillis / 2))
    return Effect.forever(
      Effect.andThen(
        Effect.sleep(every),
        Effect.suspend(() => this.retireIdle())
      )
    )
  }

  private retireIdle(): Effect.Effect<void> {
    const owned = this.owned
    const now = this.clock.currentTimeMillisUnsafe()
    const engine = this.engine
    const retiring: Array<{ readonly id: WorkerId; readonly worker: Worker<Req, Resp, E>; readonly idle: number }> = []
    // The workers the scaler started: it keeps `min` of them, whatever was added by hand.
    let count = 0
    for (const member of engine.membership.members) if (owned.get(member.worker.id)?.worker === member.worker) count++
    // The highest ids first: the pool keeps its lowest ones.
    for (const member of [...engine.membership.members].reverse()) {
      const id = member.worker.id
      // A worker added by hand is the application's to remove.
      if (owned.get(id)?.worker !== member.worker) continue
      const health = member.core.health
      let seen = this.activity.get(id)
      if (seen === undefined) {
        seen = { completed: health.completed, since: now }
        this.activity.set(id, seen)
      }
      if (health.inFlight > 0 || health.completed !== seen.completed) {
        seen.completed = health.completed
        seen.since = now
        continue
      }
      if (count <= this.size.min || now - seen.since < this.size.idleTimeoutMillis) continue
      if (!engine.retireIdle(id)) continue
      count--
      this.downs++
      this.activity.delete(id)
      retiring.push({ id, worker: member.worker, idle: now - seen.since })
    }
    return Effect.forEach(
      retiring,
      ({ id, worker, idle }) =>
        Effect.gen(function* () {
          yield* Effect.logDebug("pool scaling down").pipe(
            Effect.annotateLogs({ workerId: id, idleMillis: idle, workers: count })
          )
          const core = coreOf<Req, Resp, E>(worker)
          yield* core!.stop(`it was idle for ${idle} ms: the pool scaled down`, { graceful: true })
          const scope = owned.get(id)?.scope
          owned.delete(id)
          if (scope !== undefined) yield* Scope.close(scope, Exit.void)
          engine.announce(id, core!.health.snapshot())
        }),
      { discard: true }
    )
  }
}
