/**
 * Keeps a pool's remote workers in step with a set of runner addresses: an
 * address that appears gets a worker, one that leaves has its worker removed
 * (gracefully: its gate closes, so that the worker takes no new request and
 * what it holds finishes; then it is removed). An address keeps the same
 * `WorkerId` for as long as the membership lives, also when it leaves and
 * comes back (before its worker was removed, the worker stays).
 */
import { Cause, Effect, Exit, Fiber, Scope, Stream } from "effect"
import type * as Worker from "../../Worker.ts"
import type { InvalidOptions } from "../../WorkerError.ts"
import { WorkerId } from "../../WorkerId.ts"
import type { WorkerPool } from "../../WorkerPool.ts"
import { Gate } from "./gate.ts"

/** The address → worker mapping of a membership. */
export interface Membership {
  /** Every address seen so far, with its worker's id. */
  readonly ids: () => ReadonlyMap<string, WorkerId>
  /** The addresses that have a worker in the pool now. */
  readonly current: () => ReadonlySet<string>
}

/**
 * Applies each set of addresses of `sets` to `pool`; the first set is in
 * place when the returned effect succeeds, the others follow in a fiber of
 * the scope. An address whose worker cannot be made (it is not `host:port`)
 * is logged and skipped.
 */
export const follow = <Req, Resp, E>(options: {
  readonly pool: WorkerPool<Req, Resp, E>
  /** The sets; a failure before the first (a `Remote.dns` with invalid options) fails the membership. */
  readonly sets: Stream.Stream<ReadonlyArray<string>, InvalidOptions>
  /** The worker of the runner at `address`, through `gate`, or why it cannot be made. */
  readonly worker: (
    id: WorkerId,
    address: string,
    gate: Gate
  ) => Effect.Effect<Worker.Worker<Req, Resp, E>, InvalidOptions, Scope.Scope>
  readonly firstId: number
  readonly normalise: (address: string) => string
}): Effect.Effect<Membership, InvalidOptions, Scope.Scope> =>
  Effect.gen(function* () {
    const scope = yield* Effect.scope
    const ids = new Map<string, WorkerId>()
    const current = new Set<string>()
    const gates = new Map<string, Gate>()
    /** Addresses that left, whose workers are removed once what they hold has finished. */
    const leavingNow = new Map<string, { fiber: Fiber.Fiber<void> | undefined; removed: boolean }>()
    let nextId = options.firstId

    const idOf = (address: string): WorkerId => {
      let id = ids.get(address)
      if (id === undefined) {
        id = WorkerId.make(nextId++)
        ids.set(address, id)
      }
      return id
    }

    const apply = (set: ReadonlyArray<string>) =>
      Effect.gen(function* () {
        const wanted = new Set(set.map(options.normalise))
        const leaving = [...current].filter((address) => !wanted.has(address))
        const joining = [...wanted].filter((address) => !current.has(address))
        for (const address of leaving) {
          current.delete(address)
          const gate = gates.get(address)!
          gate.close()
          const entry = { fiber: undefined as Fiber.Fiber<void> | undefined, removed: false }
          leavingNow.set(address, entry)
          entry.fiber = yield* Effect.forkIn(
            Effect.andThen(
              gate.idle,
              // Once begun, the removal ends before the address can join again (with a new worker).
              Effect.uninterruptible(
                Effect.suspend(() => {
                  entry.removed = true
                  return Effect.ignore(options.pool.remove(ids.get(address)!))
                }).pipe(
                  Effect.ensuring(Effect.sync(() => leavingNow.get(address) === entry && leavingNow.delete(address)))
                )
              )
            ),
            scope
          )
        }
        // An address back before its worker was removed keeps that worker: its gate opens again.
        const back: Array<string> = []
        for (const address of joining) {
          const entry = leavingNow.get(address)
          if (entry === undefined) continue
          if (entry.fiber !== undefined) yield* Fiber.interrupt(entry.fiber)
          leavingNow.delete(address)
          if (entry.removed) continue
          gates.get(address)!.open()
          current.add(address)
          back.push(address)
        }
        const fresh = joining.filter((address) => !back.includes(address))
        // Connections are tried side by side: one address that does not
        // answer holds the others up by its connectTimeout at most.
        const workers = yield* Effect.forEach(
          fresh,
          (address) =>
            Effect.suspend(() => {
              const gate = gates.get(address) ?? new Gate()
              gates.set(address, gate)
              gate.open()
              return options.worker(idOf(address), address, gate)
            }).pipe(
              // An address that is not one is skipped, with a word: the others still join.
              Effect.tapError((error) =>
                Effect.logWarning("remote address skipped").pipe(Effect.annotateLogs({ address, reason: error.reason }))
              ),
              Effect.option
            ),
          { concurrency: "unbounded" }
        ).pipe(Scope.provide(scope))
        for (let i = 0; i < fresh.length; i++) {
          const worker = workers[i]!
          if (worker._tag === "None") continue
          current.add(fresh[i]!)
          yield* Effect.ignore(options.pool.add(worker.value))
        }
      })

    const pull = yield* Stream.toPull(options.sets)
    const first = yield* Effect.exit(pull)
    if (Exit.isSuccess(first)) for (const set of first.value) yield* apply(set)
    else {
      // The stream failed before its first set (a Remote.dns with invalid options): so does the membership.
      const failure = Cause.findErrorOption(first.cause)
      if (failure._tag === "Some" && !Cause.isDone(failure.value)) return yield* Effect.fail(failure.value)
    }
    yield* Effect.forkIn(
      Effect.forever(Effect.flatMap(pull, (sets) => Effect.forEach(sets, apply, { discard: true }))).pipe(
        Effect.catchCause(() => Effect.void)
      ),
      scope
    )
    return { ids: () => ids, current: () => current }
  })
