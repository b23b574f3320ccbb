/**
 * Property tests of dispatch and health over random command sequences: workers
 * join and leave, requests succeed, fail, crash their worker, wait, are
 * released or interrupted, and time passes so that crashed workers restart.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Schedule, Schema, Scope } from "effect"
import { TestClock } from "effect/testing"
import { DispatchPolicy, DomainError, Worker, WorkerCrash, WorkerId, WorkerPool } from "effect-worker-pool"
import * as T from "./support.ts"

const Index = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 7 }))
const Behaviour = Schema.Literals(["ok", "domain", "crash", "die", "wait"])
const Command = Schema.Union([
  Schema.TaggedStruct("Add", {}),
  Schema.TaggedStruct("Remove", { index: Index }),
  Schema.TaggedStruct("Dispatch", { behaviour: Behaviour }),
  Schema.TaggedStruct("Release", { index: Index }),
  Schema.TaggedStruct("Interrupt", { index: Index }),
  Schema.TaggedStruct("Advance", { millis: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 250 })) }),
  Schema.TaggedStruct("Select", {})
])
const Commands = Schema.Array(Command).check(Schema.isMaxLength(80))
type Command = typeof Command.Type

const RESTART_DELAY = 100
const QUEUE_CAPACITY = 1024
const MAX_WORKERS = 8

interface Dispatched {
  readonly behaviour: typeof Behaviour.Type
  readonly value: number
  readonly fiber: Fiber.Fiber<number, WorkerPool.DispatchError<DomainError>>
}

/**
 * Wraps `policy` so that every pick the pool asks of it (direct, from the
 * queue, or through `select`) is checked: the candidates are exactly the
 * workers that are healthy with a free slot, and the pick follows the policy.
 */
const checked = (
  policy: DispatchPolicy.DispatchPolicy<any, T.Behaviour>,
  workers: () => ReadonlyArray<Worker.Worker<T.Behaviour, number>>
) => {
  let segment = ""
  let counts = new Map<number, number>()
  let picks = 0
  const wrapped = DispatchPolicy.make({
    name: policy.name,
    initial: policy.initial,
    onResult: policy.onResult,
    select: (input: DispatchPolicy.SelectionInput<any, T.Behaviour>) => {
      const selection = policy.select(input)
      picks++
      // The view offers exactly the healthy workers with a free slot.
      const eligible = workers()
        .map((w) => [w.id, Effect.runSync(w.health), w.maxInFlight] as const)
        .filter(([, h, max]) => h.state === "Healthy" && h.inFlight < max)
        .map(([id]) => id)
        .sort((a, b) => a - b)
      const offered = input.view.toArray()
      assert.deepStrictEqual(
        offered.map((c) => c.id),
        eligible,
        "the view offers exactly the healthy workers with a free slot"
      )
      assert.strictEqual(input.view.size, eligible.length)
      const inOrder = Array.from({ length: input.view.size }, (_, i) => input.view.at(i).id).sort((a, b) => a - b)
      assert.deepStrictEqual(inOrder, eligible)
      if (selection.worker === undefined) {
        // Work pulling waits for an idle worker; shortest expected delay waits
        // rather than use a worker whose last request failed.
        assert.include(["WorkPulling", "ShortestExpectedDelay"], policy.name, "this policy let a request wait")
        return selection
      }
      const picked = offered.find((c) => c.id === selection.worker)!
      assert.isDefined(picked, "the pick was not offered")
      if (policy === DispatchPolicy.LeastLoaded || policy === DispatchPolicy.LeastLoadedRandom) {
        for (const c of offered) {
          assert.isAtMost(picked.health.inFlight, c.health.inFlight, `least loaded picked ${picked.id} over ${c.id}`)
        }
        if (policy === DispatchPolicy.LeastLoaded) {
          const lowest = offered.find((c) => c.health.inFlight === picked.health.inFlight)!
          assert.strictEqual(picked.id, lowest.id, "least loaded breaks ties by lowest id")
        }
      }
      if (policy.name === "WorkPulling") assert.strictEqual(picked.health.inFlight, 0)
      if (policy === DispatchPolicy.RoundRobin) {
        // Between changes of the candidate set, round robin counts differ by at most one.
        const key = offered.map((c) => c.id).join(",")
        if (key !== segment) {
          segment = key
          counts = new Map(offered.map((c) => [c.id, 0]))
        }
        counts.set(picked.id, counts.get(picked.id)! + 1)
        const values = [...counts.values()]
        assert.isAtMost(
          Math.max(...values) - Math.min(...values),
          1,
          `round robin counts ${JSON.stringify([...counts])}`
        )
      }
      return selection
    }
  })
  return { policy: wrapped, picks: () => picks }
}

const runCommands = (policy: DispatchPolicy.DispatchPolicy<any, T.Behaviour>, commands: ReadonlyArray<Command>) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const everyWorker: Array<Worker.Worker<T.Behaviour, number>> = []
    const members: Array<WorkerId> = []
    const dispatched: Array<Dispatched> = []
    const gates: Array<Deferred.Deferred<number>> = []
    const check = checked(policy, () => everyWorker.filter((w) => members.includes(w.id)))
    const pool = yield* WorkerPool.make<T.Behaviour, number>({ policy: check.policy, ejection: false }).pipe(
      Scope.provide(scope)
    )
    let nextValue = 1

    const add = Effect.gen(function* () {
      const worker = yield* Worker.make(WorkerId.make(everyWorker.length), T.handler, {
        restart: Schedule.spaced(RESTART_DELAY),
        maxRestarts: Infinity,
        maxInFlight: 1 + (everyWorker.length % 2)
      }).pipe(Scope.provide(scope))
      everyWorker.push(worker)
      members.push(worker.id)
      yield* pool.add(worker)
    })

    for (let i = 0; i < 3; i++) yield* add

    for (const command of commands) {
      switch (command._tag) {
        case "Add":
          if (members.length < MAX_WORKERS) yield* add
          break
        case "Remove":
          if (members.length > 0) {
            const [id] = members.splice(command.index % members.length, 1)
            yield* pool.remove(id!)
          }
          break
        case "Dispatch": {
          const value = nextValue++
          const gate = yield* Deferred.make<number>()
          const request =
            command.behaviour === "ok"
              ? T.ok(value)
              : command.behaviour === "domain"
                ? T.domain
                : command.behaviour === "crash"
                  ? T.crash
                  : command.behaviour === "die"
                    ? T.die
                    : T.wait(gate)
          if (command.behaviour === "wait") gates.push(gate)
          const fiber = yield* Effect.forkChild(pool.dispatch(request))
          yield* Effect.yieldNow
          dispatched.push({ behaviour: command.behaviour, value, fiber })
          assert.isAtMost(yield* pool.queued, QUEUE_CAPACITY)
          break
        }
        case "Release":
          if (gates.length > 0) {
            const [gate] = gates.splice(command.index % gates.length, 1)
            yield* Deferred.succeed(gate!, 0)
          }
          break
        case "Interrupt":
          if (dispatched.length > 0) yield* Fiber.interrupt(dispatched[command.index % dispatched.length]!.fiber)
          break
        case "Advance":
          yield* TestClock.adjust(command.millis)
          break
        case "Select":
          yield* pool.select
          break
      }
    }

    // Let everything settle, then shut the pool down: every request must have
    // exactly one outcome by then.
    for (const gate of gates) yield* Deferred.succeed(gate, 0)
    yield* TestClock.adjust(RESTART_DELAY)
    // Everything has settled, so the drain has nothing to wait for; should
    // it wait, time passes its deadline.
    const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
    yield* TestClock.adjust("10 seconds")
    yield* Fiber.join(closing)

    const outcomes = {
      succeeded: 0,
      domain: 0,
      crashedOnWorker: 0,
      refused: 0,
      interrupted: 0,
      crashesCaused: 0,
      interruptedCrashers: 0
    }
    for (const { behaviour, value, fiber } of dispatched) {
      const exit = fiber.pollUnsafe()
      assert.isDefined(exit, "a request was left without an outcome")
      if (Exit.isSuccess(exit!)) {
        assert.include(["ok", "wait"], behaviour)
        assert.strictEqual(exit.value, behaviour === "ok" ? value : 0)
        outcomes.succeeded++
        continue
      }
      const error = T.errorOf(exit!)
      if (error === undefined) {
        assert.isTrue(Exit.hasInterrupts(exit!))
        outcomes.interrupted++
        if (behaviour === "crash" || behaviour === "die") outcomes.interruptedCrashers++
      } else if (error instanceof DomainError) {
        assert.strictEqual(behaviour, "domain")
        outcomes.domain++
      } else if (!(error instanceof WorkerCrash)) {
        assert.fail(`unexpected outcome ${error._tag}`)
      } else if (error.workerId === undefined) {
        assert.match(error.reason.message, /^no worker available/)
        outcomes.refused++
      } else {
        assert.notInclude(["ok", "domain"], behaviour, "a good request saw a crash of its own making")
        outcomes.crashedOnWorker++
        if (behaviour === "crash" || behaviour === "die") outcomes.crashesCaused++
      }
    }

    const totals = { inFlight: 0, completed: 0, errored: 0, interrupted: 0, crashes: 0, restarts: 0 }
    for (const worker of everyWorker) {
      const h = yield* worker.health
      assert.strictEqual(h.state, "Stopped")
      totals.inFlight += h.inFlight
      totals.completed += h.completed
      totals.errored += h.errored
      totals.interrupted += h.interrupted
      totals.crashes += h.crashes
      totals.restarts += h.restarts
    }
    assert.strictEqual(totals.inFlight, 0, "requests left in flight")
    // A request interrupted while queued never reached a worker: it counts
    // among the interrupted outcomes, not in any worker's counters. A request
    // that crashed its worker (or was torn down with it) and whose caller was
    // interrupted while the worker was torn down counts as errored on the
    // worker and as interrupted for its caller: the worker saw it fail first.
    const late =
      totals.completed - totals.interrupted - (outcomes.succeeded + outcomes.domain + outcomes.crashedOnWorker)
    const detail = JSON.stringify({ totals, outcomes })
    assert.isAtLeast(late, 0, `completed < requests that reached a worker: ${detail}`)
    assert.isAtMost(
      late,
      outcomes.interrupted - totals.interrupted,
      `completed > requests that reached a worker: ${detail}`
    )
    assert.strictEqual(totals.errored, outcomes.domain + outcomes.crashedOnWorker + late, detail)
    assert.isAtMost(totals.interrupted, outcomes.interrupted)
    if (outcomes.succeeded > 0) assert.isAbove(check.picks(), 0)
    // Each crash or defect that reached a worker crashed it once.
    assert.isAtLeast(totals.crashes, outcomes.crashesCaused, detail)
    assert.isAtMost(totals.crashes, outcomes.crashesCaused + outcomes.interruptedCrashers, detail)
    assert.isAtMost(totals.restarts, totals.crashes)
  })

describe("dispatch and health properties", () => {
  for (const policy of T.everyPolicy((request: T.Behaviour) => request._tag)) {
    it.effect.prop(
      `${policy.name}: only healthy workers are picked, picks follow the policy, every request has one outcome, counters add up`,
      [Commands],
      ([commands]) => runCommands(policy, commands),
      { timeout: 60_000, arbitrary: { runs: 200, size: 80 } }
    )
  }
})
