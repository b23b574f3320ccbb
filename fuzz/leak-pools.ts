/**
 * The child process of the leak check (see `leak.ts`): makes pools one after
 * another, each loaded with a queue of waiting requests of every kind and
 * closed while it is loaded, all in virtual time under one `TestClock` (as a
 * test file would), and prints one JSON line per pool (its real time) and,
 * every `--every` pools, the heap after a forced GC and how many of the
 * pools closed so far are still reachable. Run with `--expose-gc`.
 *
 *   node --expose-gc --conditions=effect-worker-pool-source fuzz/leak-pools.ts --pools 1000 --load 200 --seed 1
 */
import { parseArgs } from "node:util"
import { Duration, Effect, Exit, type Fiber, References, Schedule, Scope } from "effect"
import { TestClock } from "effect/testing"
import { type DomainError, Worker, WorkerPool } from "effect-worker-pool"
import { type HandlerLog, type Job, makeHandler } from "./handler.ts"
import type { Act } from "./plan.ts"
import { policies } from "./plan.ts"
import { builtIn } from "./policy.ts"
import { makeRandom, type Rng } from "./random.ts"

const { values } = parseArgs({
  options: {
    pools: { type: "string", default: "1000" },
    load: { type: "string", default: "200" },
    seed: { type: "string", default: "1" },
    every: { type: "string", default: "10" }
  }
})
const pools = Number(values.pools)
const load = Number(values.load)
const seed = Number(values.seed)
const every = Number(values.every)

const gc = (globalThis as { gc?: () => void }).gc
const say = (line: object) => process.stdout.write(`${JSON.stringify(line)}\n`)

/** A request's act, as the load mixes them. */
const drawAct = (r: Rng): Act =>
  r.weighted<Act>([
    [{ _tag: "Succeed" }, 4],
    [{ _tag: "Slow", millis: r.pick([5, 10, 50]), ending: "answer" }, 6],
    [{ _tag: "Domain" }, 1],
    [{ _tag: "Crash" }, 1],
    [{ _tag: "Die" }, 1],
    [{ _tag: "Hang" }, 1],
    [{ _tag: "SlowCancel", millis: 5 }, 1]
  ])

/** Pools closed so far, as weak references: a closed pool must be collectable. */
const closed: Array<WeakRef<object>> = []

/** One pool: made, loaded with a queue of waiting requests, closed while loaded. */
const onePool = (index: number) =>
  Effect.gen(function* () {
    const r = makeRandom(seed, index)
    const log: HandlerLog = { running: 0, called: new Set() }
    const handler = makeHandler(log)
    const scope = yield* Scope.make()
    const capacity = r.chance(0.3) ? r.between(5, 20) : 1024
    const pool = yield* WorkerPool.make<Job, number, DomainError>({
      // Pools of ten names, as an application with a pool per tenant makes them. (A name is a set
      // of metric series, which outlive their pools by design: names drawn without bound grow the
      // registry by about 24 kB each; see the observability guide.)
      name: `leak-${index % 10}`,
      policy: builtIn(r.pick(policies)),
      size: r.between(1, 3),
      worker: (id) =>
        Effect.orDie(
          Worker.make(id, handler, { maxInFlight: r.pick([1, 1, 2]), restart: Schedule.spaced(Duration.millis(10)) })
        ),
      timeout: r.chance(0.3) ? Duration.millis(50) : undefined,
      queueTimeout: Duration.millis(r.pick([100, 1_000, 30_000])),
      queueCapacity: capacity,
      queueStrategy: capacity < 1024 ? r.pick(["suspend", "fail", "dropOldest"] as const) : "suspend",
      drain: Duration.millis(r.pick([0, 20, 100]))
    }).pipe(Effect.orDie, Scope.provide(scope))
    const callers: Array<Fiber.Fiber<unknown, unknown>> = []
    for (let id = 1; id <= load; id++) {
      const job: Job = { id, act: drawAct(r) }
      const dispatch = r.chance(0.1)
        ? pool.dispatch(job, { timeout: Duration.millis(20), idempotent: r.chance(0.5) })
        : pool.dispatch(job)
      callers.push(yield* Effect.forkChild(dispatch, { startImmediately: true }))
      if (r.chance(0.03)) callers[r.below(callers.length)]!.interruptUnsafe()
      if (r.chance(0.05)) yield* TestClock.adjust(r.pick([1, 5, 20]))
    }
    yield* TestClock.adjust(10)
    // Closed while the queue is loaded: the drain, then whatever waits or runs is cut.
    const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
    for (let i = 0; i < 1_000 && closing.pollUnsafe() === undefined; i++) yield* TestClock.adjust(100)
    yield* TestClock.adjust(60_000)
    // A caller still waiting once its pool has closed was lost: counted, then let go.
    let lost = 0
    for (const caller of callers) {
      if (caller.pollUnsafe() !== undefined) continue
      lost++
      caller.interruptUnsafe()
    }
    closed.push(new WeakRef(pool))
    return { closed: closing.pollUnsafe() !== undefined, lost }
  })

const heap = () => {
  gc?.()
  return process.memoryUsage().heapUsed
}

const program = Effect.gen(function* () {
  say({ start: true, heap: heap(), pools, load, seed })
  for (let index = 1; index <= pools; index++) {
    const began = performance.now()
    const { closed: closedInTime, lost } = yield* onePool(index)
    say({ pool: index, millis: Math.round((performance.now() - began) * 100) / 100, closed: closedInTime, lost })
    if (index % every === 0 || index === pools) {
      // Let the microtasks and timers of the closed pools run out before the count.
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 1)))
      say({ after: index, heap: heap(), reachable: closed.filter((ref) => ref.deref() !== undefined).length })
    }
  }
  say({ done: true })
}).pipe(Effect.provideService(References.MinimumLogLevel, "None"), Effect.provide(TestClock.layer()))

Effect.runPromise(program).catch((error) => {
  say({ failed: String(error) })
  process.exitCode = 1
})
