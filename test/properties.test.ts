/**
 * Property tests of dispatch and health over random command sequences: workers
 * join and leave, requests succeed, fail, crash their worker, wait, are
 * released or interrupted, and time passes so that crashed workers restart.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Option, Schedule, Schema, Scope } from "effect"
import { TestClock } from "effect/testing"
import {
  DispatchPolicy,
  DomainError,
  Worker,
  WorkerCrash,
  type WorkerHealth,
  WorkerId,
  WorkerPool
} from "effect-worker-pool"
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
const MAX_WORKERS = 8

interface Dispatched {
  readonly behaviour: typeof Behaviour.Type
  readonly value: number
  readonly fiber: Fiber.Fiber<number, DomainError | WorkerCrash>
}

/** Every healthy worker's id and in-flight count, by id. */
type Snapshot = ReadonlyArray<readonly [WorkerId, WorkerHealth]>

/** Checks one pick of the policy against the health the pool had just before it. */
const makePickChecker = (policy: DispatchPolicy.DispatchPolicy) => {
  let segment = ""
  let counts = new Map<number, number>()
  return (picked: WorkerId, before: Snapshot) => {
    const healthy = before.filter(([, h]) => h.state === "Healthy")
    const pickedHealth = healthy.find(([id]) => id === picked)?.[1]
    assert.isDefined(pickedHealth, `picked worker ${picked} was not healthy: ${JSON.stringify(before)}`)
    if (policy === DispatchPolicy.LeastLoaded) {
      for (const [id, h] of healthy) {
        assert.isAtMost(pickedHealth!.inFlight, h.inFlight, `least loaded picked ${picked} over ${id}`)
      }
    }
    if (policy === DispatchPolicy.RoundRobin) {
      // Between changes of the healthy set, round robin counts differ by at most one.
      const key = healthy.map(([id]) => id).join(",")
      if (key !== segment) {
        segment = key
        counts = new Map(healthy.map(([id]) => [id, 0]))
      }
      counts.set(picked, counts.get(picked)! + 1)
      const values = [...counts.values()]
      assert.isAtMost(Math.max(...values) - Math.min(...values), 1, `round robin counts ${JSON.stringify([...counts])}`)
    }
  }
}

const runCommands = (policy: DispatchPolicy.DispatchPolicy, commands: ReadonlyArray<Command>) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const pool = yield* WorkerPool.make<T.Behaviour, number>({ policy }).pipe(Scope.provide(scope))
    const everyWorker: Array<Worker.Worker<T.Behaviour, number>> = []
    const members: Array<WorkerId> = []
    const dispatched: Array<Dispatched> = []
    const gates: Array<Deferred.Deferred<number>> = []
    const checkPick = makePickChecker(policy)
    let nextValue = 1

    const add = Effect.gen(function* () {
      const worker = yield* Worker.make(WorkerId.make(everyWorker.length), T.handler, {
        restart: Schedule.spaced(RESTART_DELAY)
      }).pipe(Scope.provide(scope))
      everyWorker.push(worker)
      members.push(worker.id)
      yield* pool.add(worker)
    })

    /** Which worker took the last request: the one whose counters moved. */
    const pickedBetween = (before: Snapshot, after: Snapshot): Option.Option<WorkerId> => {
      for (const [id, h] of after) {
        const b = before.find(([bid]) => bid === id)?.[1]
        if (b !== undefined && (h.completed !== b.completed || h.inFlight !== b.inFlight)) return Option.some(id)
      }
      return Option.none()
    }

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
          const before = yield* pool.health
          const fiber = yield* Effect.forkChild(pool.dispatch(request))
          yield* Effect.yieldNow
          dispatched.push({ behaviour: command.behaviour, value, fiber })
          const picked = pickedBetween(before, yield* pool.health)
          if (Option.isSome(picked)) checkPick(picked.value, before)
          else assert.isFalse(before.some(([, h]) => h.state === "Healthy"), "a request was refused by a healthy pool")
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
        case "Select": {
          const before = yield* pool.health
          const picked = yield* pool.select
          if (Option.isSome(picked)) checkPick(picked.value.id, before)
          else assert.isFalse(before.some(([, h]) => h.state === "Healthy"), "select found nothing in a healthy pool")
          break
        }
      }
    }

    // Let everything settle, then shut the pool down: every request must have
    // exactly one outcome by then.
    for (const gate of gates) yield* Deferred.succeed(gate, 0)
    yield* TestClock.adjust(RESTART_DELAY)
    yield* Scope.close(scope, Exit.void)

    const outcomes = { succeeded: 0, domain: 0, crashedOnWorker: 0, refused: 0, interrupted: 0, crashesCaused: 0 }
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
      } else if (error instanceof DomainError) {
        assert.strictEqual(behaviour, "domain")
        outcomes.domain++
      } else if (error.workerId === undefined) {
        assert.match(error.reason, /^no worker available/)
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
    assert.strictEqual(
      totals.completed,
      outcomes.succeeded + outcomes.domain + outcomes.crashedOnWorker + outcomes.interrupted,
      `completed ≠ requests that reached a worker: ${JSON.stringify({ totals, outcomes })}`
    )
    assert.strictEqual(totals.errored, outcomes.domain + outcomes.crashedOnWorker)
    assert.strictEqual(totals.interrupted, outcomes.interrupted)
    assert.strictEqual(totals.crashes, outcomes.crashesCaused, "each crash or defect crashes its worker once")
    assert.isAtMost(totals.restarts, totals.crashes)
  })

describe("dispatch and health properties", () => {
  for (const policy of [DispatchPolicy.RoundRobin, DispatchPolicy.LeastLoaded]) {
    it.effect.prop(
      `${policy.name}: only healthy workers are picked, picks follow the policy, every request has one outcome, counters add up`,
      [Commands],
      ([commands]) => runCommands(policy, commands),
      { timeout: 60_000, arbitrary: { runs: 200 } }
    )
  }
})
