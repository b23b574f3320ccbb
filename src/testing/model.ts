/**
 * The model-based run: {@link runCommands} plays a sequence of commands
 * (see `generators.ts`) against a real pool of fake workers, in virtual time
 * and with a seeded `Random`, and returns what every caller saw and every
 * worker counted, for `checkRun` (see `checks.ts`) or checks of your own.
 *
 * @since 0.2.0
 */
import { Deferred, Duration, Effect, Exit, Fiber, Random, References, Schedule, Scope } from "effect"
import { TestClock } from "effect/testing"
import type * as Worker from "../Worker.ts"
import type { DomainError, InvalidOptions } from "../WorkerError.ts"
import type { WorkerHealth } from "../WorkerHealth.ts"
import { WorkerId } from "../WorkerId.ts"
import * as WorkerPool from "../WorkerPool.ts"
import { type Behaviour, crash, die, fail, onCue, succeed } from "./behaviours.ts"
import { fakeWorker } from "./fakes.ts"
import type { Command, DispatchBehaviour } from "./generators.ts"

// --- the runner ---------------------------------------------------------------

/**
 * Options of {@link runCommands}; every field is optional.
 *
 * | option       | default                                   | meaning                                             |
 * |--------------|-------------------------------------------|-----------------------------------------------------|
 * | `pool`       | the pool's own defaults                   | options of the pool (`policy`, `timeout`, `ejection`, `drain`, ...) but `size` and `worker` |
 * | `worker`     | restart after 100 ms; `maxInFlight` 1 for even ids, 2 for odd ones | the options of worker `id`                |
 * | `workers`    | `3`                                       | workers in the pool at the start                    |
 * | `maxWorkers` | `8`                                       | `Add` does nothing once the pool has this many      |
 * | `slow`       | `"50 millis"`                             | how long a `"slow"` request takes                   |
 * | `seed`       | `"effect-worker-pool"`                    | the seed of Effect's `Random` during the run        |
 *
 * @example
 * ```ts
 * import { DispatchPolicy } from "effect-worker-pool"
 * import type { Testing } from "effect-worker-pool/testing"
 *
 * const options: Testing.RunOptions = {
 *   pool: { policy: DispatchPolicy.LeastLoaded, timeout: "200 millis", ejection: false },
 *   worker: () => ({ maxInFlight: 4 }),
 *   workers: 2
 * }
 * ```
 *
 * @since 0.2.0
 * @category runner
 */
export interface RunOptions {
  readonly pool?:
    | Omit<WorkerPool.Options<Behaviour<number>, number, DomainError, never, never>, "size" | "worker">
    | undefined
  readonly worker?: ((id: WorkerId) => Worker.WorkerOptions) | undefined
  readonly workers?: number | undefined
  readonly maxWorkers?: number | undefined
  readonly slow?: Duration.Input | undefined
  readonly seed?: string | number | undefined
}

/**
 * One request of a run: what it was scripted to do, its number (what it
 * answers if it succeeds, from 1 on), and how it ended (`undefined` if it
 * never did).
 *
 * @example
 * ```ts
 * import { Exit } from "effect"
 * import type { Testing } from "effect-worker-pool/testing"
 *
 * const answered = (request: Testing.RunRequest) => request.exit !== undefined && Exit.isSuccess(request.exit)
 * ```
 *
 * @since 0.2.0
 * @category runner
 */
export interface RunRequest {
  readonly behaviour: DispatchBehaviour
  readonly value: number
  readonly exit: Exit.Exit<number, WorkerPool.DispatchError<DomainError>> | undefined
}

/**
 * What a run left: every request it sent, in order, and the final health of
 * every worker that was ever in the pool (removed ones included), by id.
 *
 * @example
 * ```ts
 * import type { Testing } from "effect-worker-pool/testing"
 *
 * const crashes = (run: Testing.Run) => run.workers.reduce((sum, [, h]) => sum + h.crashes, 0)
 * ```
 *
 * @since 0.2.0
 * @category runner
 */
export interface Run {
  readonly requests: ReadonlyArray<RunRequest>
  readonly workers: ReadonlyArray<readonly [WorkerId, WorkerHealth]>
}

/**
 * Plays `commands` against a real pool of fake workers (see {@link Command}),
 * in virtual time: the run has a `TestClock` of its own and a seeded
 * `Random`, so the same commands give the same run. After the last command
 * it lets every waiting request answer, shuts the pool down, and moves the
 * clock past the drain deadline, so that every request has ended. Then it
 * returns what the callers saw and the workers counted, for
 * {@link checkRun} or checks of your own. The pool's logs are off during the
 * run.
 *
 * Invalid options fail with `InvalidOptions`. A `drain` of `Infinity` with a
 * hanging request would never end the run.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { DispatchPolicy } from "effect-worker-pool"
 * import { Testing } from "effect-worker-pool/testing"
 *
 * const program = Effect.gen(function* () {
 *   const run = yield* Testing.runCommands(
 *     [
 *       { _tag: "Dispatch", behaviour: "succeed" },
 *       { _tag: "Dispatch", behaviour: "crash" },
 *       { _tag: "Advance", millis: 100 }
 *     ],
 *     { pool: { policy: DispatchPolicy.RoundRobin } }
 *   )
 *   return yield* Testing.checkRun(run)
 * })
 * ```
 *
 * @since 0.2.0
 * @category runner
 */
export const runCommands = (
  commands: ReadonlyArray<Command>,
  options?: RunOptions
): Effect.Effect<Run, InvalidOptions> =>
  Effect.gen(function* () {
    const o = options ?? {}
    const workerOptions =
      o.worker ?? ((id: WorkerId) => ({ restart: Schedule.spaced("100 millis"), maxInFlight: 1 + (id % 2) }))
    const maxWorkers = o.maxWorkers ?? 8
    const slowFor = o.slow ?? "50 millis"
    const drainMillis = Duration.toMillis(Duration.fromInputUnsafe(o.pool?.drain ?? "10 seconds"))
    // The pool closes first (it drains, then stops its workers); the workers' own scope after it.
    const poolScope = yield* Scope.make()
    const workersScope = yield* Scope.make()
    const everyWorker: Array<Worker.Worker<Behaviour<number>, number, DomainError>> = []
    const members: Array<WorkerId> = []
    const sent: Array<{
      readonly behaviour: DispatchBehaviour
      readonly value: number
      readonly fiber: Fiber.Fiber<number, WorkerPool.DispatchError<DomainError>>
    }> = []
    const gates: Array<Deferred.Deferred<void>> = []
    /** Requests that wait in a handler for their cue: a gate, the clock, or nothing at all. */
    let parked = 0
    const park = (cue: Effect.Effect<unknown>) =>
      Effect.acquireUseRelease(
        Effect.sync(() => parked++),
        () => cue,
        () => Effect.sync(() => parked--)
      )

    const run = Effect.gen(function* () {
      const pool = yield* WorkerPool.make<Behaviour<number>, number, DomainError>({ ...o.pool }).pipe(
        Scope.provide(poolScope)
      )
      /**
       * Lets every request move as far as it can without the clock: until
       * each has ended, waits in the pool's queue, or waits in a handler for
       * its cue. Then a step of the clock misses nothing.
       */
      const settle = Effect.gen(function* () {
        for (let turn = 0; turn < 1000; turn++) {
          let pending = 0
          for (const { fiber } of sent) if (fiber.pollUnsafe() === undefined) pending++
          if (pending === parked + (yield* pool.queued)) return
          yield* Effect.yieldNow
        }
      })
      const add = Effect.gen(function* () {
        const id = WorkerId.make(everyWorker.length)
        const worker = yield* fakeWorker<number>(id, workerOptions(id)).pipe(Scope.provide(workersScope))
        everyWorker.push(worker)
        members.push(id)
        yield* Effect.orDie(pool.add(worker))
      })
      const request = (behaviour: DispatchBehaviour, value: number): Effect.Effect<Behaviour<number>> => {
        switch (behaviour) {
          case "succeed":
            return Effect.succeed(succeed(value))
          case "fail":
            return Effect.succeed(fail(`request ${value} is bad`))
          case "crash":
            return Effect.succeed(crash(`request ${value} crashed its worker`))
          case "die":
            return Effect.succeed(die(new Error(`request ${value} died`)))
          case "hang":
            return Effect.succeed(onCue(park(Effect.never), succeed(value)))
          case "slow":
            return Effect.succeed(onCue(park(Effect.sleep(slowFor)), succeed(value)))
          case "wait":
            return Effect.map(Deferred.make<void>(), (gate) => {
              gates.push(gate)
              return onCue(park(Deferred.await(gate)), succeed(value))
            })
        }
      }

      for (let i = 0; i < (o.workers ?? 3); i++) yield* add
      for (const command of commands) {
        switch (command._tag) {
          case "Add":
            if (members.length < maxWorkers) yield* add
            break
          case "Remove":
            if (members.length > 0) {
              const [id] = members.splice(command.index % members.length, 1)
              yield* Effect.orDie(pool.remove(id!))
            }
            break
          case "Dispatch": {
            const value = sent.length + 1
            const fiber = yield* Effect.forkChild(pool.dispatch(yield* request(command.behaviour, value)))
            sent.push({ behaviour: command.behaviour, value, fiber })
            break
          }
          case "Release":
            if (gates.length > 0) {
              const [gate] = gates.splice(command.index % gates.length, 1)
              yield* Deferred.succeed(gate!, undefined)
            }
            break
          case "Interrupt":
            if (sent.length > 0) yield* Fiber.interrupt(sent[command.index % sent.length]!.fiber)
            break
          case "Advance":
            yield* TestClock.adjust(command.millis)
            break
        }
        yield* settle
      }

      // Every waiting request may answer; then the pool shuts down, and the
      // clock passes its drain deadline, which ends whatever still hangs.
      for (const gate of gates) yield* Deferred.succeed(gate, undefined)
      yield* settle
      const closing = yield* Effect.forkChild(Scope.close(poolScope, Exit.void))
      for (let waited = 0; closing.pollUnsafe() === undefined && waited <= drainMillis + 60_000; waited += 1000) {
        yield* TestClock.adjust("1 second")
      }
      yield* Fiber.join(closing)
      yield* Scope.close(workersScope, Exit.void)
    })

    yield* run.pipe(
      // Should the run fail half way, its requests go, then its pool and workers.
      Effect.onError(() =>
        Fiber.interruptAll(sent.map((s) => s.fiber)).pipe(
          Effect.andThen(Scope.close(poolScope, Exit.void)),
          Effect.andThen(Scope.close(workersScope, Exit.void))
        )
      )
    )
    const workers: Array<readonly [WorkerId, WorkerHealth]> = []
    for (const worker of everyWorker) workers.push([worker.id, yield* worker.health])
    return {
      requests: sent.map(({ behaviour, value, fiber }) => ({ behaviour, value, exit: fiber.pollUnsafe() })),
      workers
    }
  }).pipe(
    Random.withSeed(options?.seed ?? "effect-worker-pool"),
    // Crashes are the point of a run: the pool's logs of them would only be noise.
    Effect.provideService(References.MinimumLogLevel, "None"),
    Effect.provide(TestClock.layer())
  )
