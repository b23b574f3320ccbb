/**
 * The test kit itself: each scripted behaviour of the fake workers, the
 * scripts and failing starts, the builders, the generators, the command
 * runner, and the invariant checks on good and on tampered input.
 */
import { assert, describe, it } from "@effect/vitest"
import { Arbitrary, Deferred, Effect, Exit, Fiber, Latch, Schedule, Schema } from "effect"
import { TestClock } from "effect/testing"
import {
  Defect,
  DispatchPolicy,
  DomainError,
  Killed,
  Reported,
  Worker,
  WorkerCrash,
  WorkerId,
  WorkerPool
} from "effect-worker-pool"
// By path: vitest.config.ts aliases the bare "effect-worker-pool" only, not its "/testing" subpath.
import { Testing } from "effect-worker-pool/testing"

/** The typed error of a failed exit. */
const errorOf = <A, E>(exit: Exit.Exit<A, E>): E | undefined => {
  if (Exit.isSuccess(exit)) return undefined
  const error = Exit.findErrorOption(exit)
  return error._tag === "Some" ? error.value : undefined
}

/** The invariant a check broke, or "passed". */
const verdict = <A>(check: Effect.Effect<A, Testing.InvariantViolation>) =>
  Effect.match(check, { onFailure: (violation) => violation.invariant, onSuccess: () => "passed" })

describe("fake workers", () => {
  it.effect("succeed answers, fail is a domain error and leaves the worker healthy", () =>
    Effect.gen(function* () {
      const worker = yield* Testing.fakeWorker<number>(0)
      assert.strictEqual(yield* worker.dispatch(Testing.succeed(7)), 7)
      const plain = yield* Effect.flip(worker.dispatch(Testing.fail()))
      assert.instanceOf(plain, DomainError)
      assert.strictEqual((plain as DomainError).reason, "scripted failure")
      const named = yield* Effect.flip(worker.dispatch(Testing.fail("empty text")))
      assert.strictEqual((named as DomainError).reason, "empty text")
      const h = yield* worker.health
      assert.deepStrictEqual([h.state, h.completed, h.errored, h.crashes], ["Healthy", 3, 2, 0])
      assert.strictEqual(yield* worker.received, 3)
      assert.strictEqual(yield* worker.starts, 1)
    })
  )

  it.effect("fail takes a domain error of your own", () =>
    Effect.gen(function* () {
      class Unauthorized {
        readonly _tag = "Unauthorized"
      }
      const worker = yield* Testing.fakeWorker<string, Unauthorized>(0)
      const error = yield* Effect.flip(worker.dispatch(Testing.fail(new Unauthorized())))
      assert.instanceOf(error, Unauthorized)
      assert.strictEqual((yield* worker.health).state, "Healthy")
    })
  )

  it.effect("crash and die crash the worker, which restarts on the clock", () =>
    Effect.gen(function* () {
      const worker = yield* Testing.fakeWorker<number>(4, { restart: Schedule.spaced("100 millis") })
      const crashed = yield* Effect.flip(worker.dispatch(Testing.crash("engine failed")))
      assert.instanceOf(crashed, WorkerCrash)
      assert.strictEqual((crashed as WorkerCrash).workerId, 4)
      assert.deepStrictEqual((crashed as WorkerCrash).reason, new Reported({ message: "engine failed" }))
      assert.strictEqual((yield* worker.health).state, "Restarting")
      yield* TestClock.adjust("100 millis")
      assert.strictEqual((yield* worker.health).state, "Healthy")

      const killed = new Killed({ message: "process 42 was killed by SIGKILL", signal: "SIGKILL" })
      const typed = yield* Effect.flip(worker.dispatch(Testing.crash(killed)))
      assert.deepStrictEqual((typed as WorkerCrash).reason, killed, "a CrashReason is used as it is")
      yield* TestClock.adjust("100 millis")

      const died = yield* Effect.flip(worker.dispatch(Testing.die()))
      assert.deepStrictEqual((died as WorkerCrash).reason, new Defect({ message: "defect: Error: scripted defect" }))
      yield* TestClock.adjust("100 millis")
      const h = yield* worker.health
      assert.deepStrictEqual(
        [h.state, h.crashes, h.restarts, h.lastCrash?.reason],
        ["Healthy", 3, 3, "defect: Error: scripted defect"]
      )
      assert.strictEqual(yield* worker.starts, 4)
    })
  )

  it.effect("hang never answers: a timeout or the caller ends it", () =>
    Effect.gen(function* () {
      const worker = yield* Testing.fakeWorker<number>(0)
      const timedOut = yield* Effect.forkChild(Effect.flip(worker.dispatch(Testing.hang, { timeout: "1 second" })))
      yield* Effect.yieldNow
      yield* TestClock.adjust("1 second")
      assert.strictEqual((yield* Fiber.join(timedOut))._tag, "RequestTimeout")

      const hanging = yield* Effect.forkChild(worker.dispatch(Testing.hang))
      yield* TestClock.adjust("1 hour")
      assert.isUndefined(hanging.pollUnsafe(), "a hanging request answered")
      assert.strictEqual((yield* worker.health).inFlight, 1)
      yield* Fiber.interrupt(hanging)
      const h = yield* worker.health
      assert.deepStrictEqual([h.inFlight, h.timeouts, h.interrupted], [0, 1, 1])
    })
  )

  it.effect("slow answers after its delay on the clock", () =>
    Effect.gen(function* () {
      const worker = yield* Testing.fakeWorker<string>(0)
      const late = yield* Effect.forkChild(worker.dispatch(Testing.slow("2 seconds", Testing.succeed("done"))))
      yield* TestClock.adjust("1999 millis")
      assert.isUndefined(late.pollUnsafe())
      yield* TestClock.adjust("1 millis")
      assert.strictEqual(yield* Fiber.join(late), "done")
    })
  )

  it.effect("onCue waits for its cue (a Deferred, a Latch), then behaves", () =>
    Effect.gen(function* () {
      const worker = yield* Testing.fakeWorker<number>(0, { maxInFlight: 2 })
      const gate = yield* Deferred.make<void>()
      const latch = yield* Latch.make()
      const first = yield* Effect.forkChild(worker.dispatch(Testing.onCue(Deferred.await(gate), Testing.succeed(1))))
      const second = yield* Effect.forkChild(worker.dispatch(Testing.onCue(latch.await, Testing.fail("late"))))
      yield* Effect.yieldNow
      assert.strictEqual((yield* worker.health).inFlight, 2)
      yield* latch.open
      const failed = yield* Effect.flip(Fiber.join(second))
      assert.strictEqual((failed as DomainError).reason, "late")
      assert.isUndefined(first.pollUnsafe())
      yield* Deferred.succeed(gate, undefined)
      assert.strictEqual(yield* Fiber.join(first), 1)
    })
  )

  it.effect("a script decides from the request and its index, across restarts", () =>
    Effect.gen(function* () {
      const worker = yield* Testing.fakeWorker(0, {
        script: (text: string, index: number) =>
          index === 1 ? Testing.crash() : text === "" ? Testing.fail("empty") : Testing.succeed(`${index}:${text}`),
        restart: Schedule.spaced("10 millis")
      })
      assert.strictEqual(yield* worker.dispatch("a"), "0:a")
      assert.instanceOf(yield* Effect.flip(worker.dispatch("b")), WorkerCrash)
      yield* TestClock.adjust("10 millis")
      const bad = yield* Effect.flip(worker.dispatch(""))
      assert.strictEqual((bad as DomainError).reason, "empty")
      assert.strictEqual(yield* worker.dispatch("c"), "3:c")
      assert.strictEqual(yield* worker.received, 4)
    })
  )

  it.effect("sequence plays its behaviours in turn, then repeats the last", () =>
    Effect.gen(function* () {
      const worker = yield* Testing.fakeWorker(0, {
        script: Testing.sequence([Testing.succeed(1), Testing.fail(), Testing.succeed(3)]),
        restart: Schedule.spaced("10 millis")
      })
      const exits = yield* Effect.forEach([0, 1, 2, 3, 4], () => Effect.exit(worker.dispatch("any")))
      assert.deepStrictEqual(
        exits.map((exit) => (Exit.isSuccess(exit) ? exit.value : errorOf(exit)?._tag)),
        [1, "DomainError", 3, 3, 3]
      )
    })
  )

  it.effect("everyNth crashes every n-th request a worker receives; n must be positive", () =>
    Effect.gen(function* () {
      const pool = yield* WorkerPool.make({
        policy: DispatchPolicy.RoundRobin,
        size: 2,
        worker: (id) =>
          Testing.fakeWorker(id, {
            script: Testing.everyNth(3, Testing.crash(), Testing.succeed("ok")),
            restart: Schedule.spaced("10 millis")
          })
      })
      const tags: Array<string> = []
      for (let i = 0; i < 6; i++) {
        const exit = yield* Effect.exit(pool.dispatch(i))
        tags.push(Exit.isSuccess(exit) ? exit.value : errorOf(exit)!._tag)
      }
      // Round robin: each worker receives requests 1, 2, 3; the third crashes it.
      assert.deepStrictEqual(tags, ["ok", "ok", "ok", "ok", "WorkerCrash", "WorkerCrash"])
      assert.deepStrictEqual(
        (yield* pool.health).map(([, h]) => h.crashes),
        [1, 1]
      )
      assert.throws(() => Testing.everyNth(0, Testing.crash(), Testing.succeed(1)), RangeError)
    })
  )

  it.effect("failingStarts: the first starts fail, the pool refuses, then the worker comes up", () =>
    Effect.gen(function* () {
      const pool = yield* WorkerPool.make({
        size: 1,
        worker: (id) =>
          Testing.fakeWorker(id, {
            script: (n: number) => Testing.succeed(n + 1),
            failingStarts: 2,
            restart: Schedule.spaced("1 second")
          })
      })
      const [[, first]] = yield* pool.health
      assert.deepStrictEqual(
        [first!.state, first!.failedStarts, first!.lastCrash?.reason],
        ["Restarting", 1, "scripted start failure 1 of 2"]
      )
      // Every worker is failing to start: a request is refused at once, by no worker.
      const refused = yield* Effect.flip(pool.dispatch(1))
      assert.instanceOf(refused, WorkerCrash)
      assert.isUndefined((refused as WorkerCrash).workerId)
      yield* TestClock.adjust("1 second")
      assert.strictEqual((yield* pool.health)[0]![1].failedStarts, 2)
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* pool.dispatch(1), 2)
      const [[, h]] = yield* pool.health
      assert.deepStrictEqual([h!.state, h!.crashes, h!.restarts, h!.failedStarts], ["Healthy", 2, 2, 0])
    })
  )

  it.effect("fakeKind makes a kind for Worker.fromKind, with its concurrency and counters", () =>
    Effect.gen(function* () {
      const kind = yield* Testing.fakeKind<number>({ concurrency: 3, failingStarts: 1 })
      assert.strictEqual(kind.name, "fake")
      const worker = yield* Worker.fromKind(WorkerId.make(2), kind, { restart: Schedule.spaced("5 millis") })
      assert.strictEqual(worker.maxInFlight, 3)
      yield* TestClock.adjust("5 millis")
      assert.strictEqual(yield* worker.dispatch(Testing.succeed(9)), 9)
      assert.deepStrictEqual([yield* kind.starts, yield* kind.received], [2, 1])
    })
  )
})

describe("builders", () => {
  it("health: a whole record, idle and healthy, with overrides", () => {
    const h = Testing.health({ inFlight: 2, completed: 5, lastCrash: { reason: "x", at: 1 } })
    assert.deepStrictEqual(h, {
      state: "Healthy",
      inFlight: 2,
      completed: 5,
      errored: 0,
      timeouts: 0,
      interrupted: 0,
      rejected: 0,
      crashes: 0,
      restarts: 0,
      attempt: 0,
      failedStarts: 0,
      consecutiveFailures: 0,
      ejections: 0,
      lastCrash: { reason: "x", at: 1 }
    })
    const { inFlight: _inFlight, completed: _completed, lastCrash: _lastCrash, ...rest } = h
    assert.deepStrictEqual(Testing.health(), { ...rest, inFlight: 0, completed: 0 })
  })

  it("candidate: a free slot by default, maxInFlight when given, whole ids only", () => {
    const c = Testing.candidate(3, { inFlight: 2, completed: 40 })
    assert.deepStrictEqual([c.id, c.health.inFlight, c.health.completed, c.maxInFlight], [3, 2, 40, 3])
    assert.strictEqual(Testing.candidate(0, { maxInFlight: 8 }).maxInFlight, 8)
    assert.isFalse("maxInFlight" in Testing.candidate(0, { maxInFlight: 8 }).health)
    assert.throws(() => Testing.candidate(-1))
    assert.throws(() => Testing.candidate(1.5))
  })

  it("view: from candidates and bare ids, as a pool would offer them", () => {
    const view = Testing.view([Testing.candidate(5, { inFlight: 2 }), 1, 3])
    assert.deepStrictEqual(
      view.toArray().map((c) => c.id),
      [1, 3, 5]
    )
    assert.strictEqual(view.leastLoaded()?.id, 1)
    assert.strictEqual(view.next(3)?.id, 5)
    const pick = DispatchPolicy.LeastLoaded.select({ view, state: undefined, random: () => 0, now: 0, request: 0 })
    assert.strictEqual(pick.worker, 1)
    assert.throws(() => Testing.view([1, Testing.candidate(1)]), RangeError, "worker 1 is offered twice")
    assert.throws(() => Testing.view([]), RangeError)
  })

  it("view: DispatchPolicy.view, deprecated, builds the same view from candidates", () => {
    const candidates = [Testing.candidate(5, { inFlight: 2 }), Testing.candidate(1), Testing.candidate(3)]
    const kit = Testing.view(candidates)
    const deprecated = DispatchPolicy.view(candidates)
    for (const view of [kit, deprecated]) {
      assert.deepStrictEqual(
        view.toArray().map((c) => c.id),
        [1, 3, 5]
      )
      assert.deepStrictEqual(
        view.members.map((c) => c.id),
        [1, 3, 5]
      )
    }
    for (const id of [1, 3, 5]) assert.strictEqual(deprecated.next(id)?.id, kit.next(id)?.id)
    assert.strictEqual(kit.next(5)?.id, 1)
    assert.strictEqual(deprecated.leastLoaded()?.id, kit.leastLoaded()?.id)
  })
})

describe("generators", () => {
  const Default = Testing.candidates()

  it.prop(
    "candidates: valid, distinct ids, a free slot each, consistent health",
    [Default],
    ([candidates]) => {
      assert.isTrue(Schema.is(Default)(candidates))
      assert.isAtLeast(candidates.length, 1)
      assert.isAtMost(candidates.length, 8)
      assert.strictEqual(new Set(candidates.map((c) => c.id)).size, candidates.length)
      for (const c of candidates) {
        assert.isBelow(c.health.inFlight, c.maxInFlight)
        assert.isAtMost(c.maxInFlight, 4)
        assert.strictEqual(c.health.state, "Healthy")
        assert.strictEqual(Effect.runSync(verdict(Testing.checkHealth(c.health))), "passed")
        assert.strictEqual(c.health.oldestInFlightSince !== undefined, c.health.inFlight > 0)
        assert.isAtMost(c.health.oldestInFlightSince ?? 0, 60_000)
      }
      // A view of them is what a policy gets.
      assert.strictEqual(Testing.view(candidates).size, candidates.length)
    },
    { arbitrary: { runs: 300 } }
  )

  it.effect("candidates: loads, counters and sizes vary; options bound them", () =>
    Effect.gen(function* () {
      const sample = yield* Arbitrary.sampleEffect(Arbitrary.schema(Default), { count: 200, seed: 1 })
      const all = sample.flat()
      assert.isAbove(new Set(sample.map((cs) => cs.length)).size, 4)
      assert.isAbove(new Set(all.map((c) => c.health.inFlight)).size, 2)
      assert.isAbove(new Set(all.map((c) => c.health.completed)).size, 50)
      assert.isTrue(all.some((c) => c.health.crashes > 0))

      const Small = Testing.candidates({ maxWorkers: 2, maxInFlight: 1, now: 10 })
      for (const cs of yield* Arbitrary.sampleEffect(Arbitrary.schema(Small), { count: 100, seed: 2 })) {
        assert.isAtMost(cs.length, 2)
        for (const c of cs) {
          assert.deepStrictEqual([c.maxInFlight, c.health.inFlight], [1, 0])
          assert.isAtMost(c.health.lastCrash?.at ?? 0, 10)
        }
      }
      assert.throws(() => Testing.candidates({ maxWorkers: 0 }), RangeError)
      assert.throws(() => Testing.candidates({ now: -1 }), RangeError)
    })
  )

  it("candidates: the Schema rejects what a pool would never offer", () => {
    const is = Schema.is(Default)
    assert.isTrue(is([Testing.candidate(0), Testing.candidate(1, { inFlight: 1, maxInFlight: 2 })]))
    assert.isFalse(is([]), "empty")
    assert.isFalse(is([Testing.candidate(0), Testing.candidate(0)]), "the same id twice")
    assert.isFalse(is([Testing.candidate(0, { inFlight: 1, maxInFlight: 1 })]), "no free slot")
    assert.isFalse(is([Testing.candidate(0, { state: "Restarting" })]), "not up")
    assert.isFalse(is([Testing.candidate(0, { completed: 1, errored: 2 })]), "counters that do not add up")
  })

  it.effect("Commands: generated sequences are valid, bounded and varied", () =>
    Effect.gen(function* () {
      const sample = yield* Arbitrary.sampleEffect(Arbitrary.schema(Testing.Commands), {
        count: 50,
        size: 80,
        seed: 3
      })
      const is = Schema.is(Testing.Commands)
      for (const commands of sample) {
        assert.isTrue(is(commands))
        assert.isAtMost(commands.length, 80)
      }
      const tags = new Set<string>(sample.flat().map((c) => (c._tag === "Dispatch" ? c.behaviour : c._tag)))
      for (const expected of [
        "Add",
        "Remove",
        "Release",
        "Interrupt",
        "Advance",
        ...Testing.DispatchBehaviour.literals
      ]) {
        assert.isTrue(tags.has(expected), `no ${expected} in 50 sequences`)
      }
    })
  )
})

describe("runCommands", () => {
  const script: ReadonlyArray<Testing.Command> = [
    { _tag: "Dispatch", behaviour: "succeed" },
    { _tag: "Dispatch", behaviour: "fail" },
    { _tag: "Dispatch", behaviour: "wait" },
    { _tag: "Dispatch", behaviour: "slow" },
    { _tag: "Dispatch", behaviour: "crash" },
    { _tag: "Dispatch", behaviour: "hang" },
    { _tag: "Advance", millis: 100 },
    { _tag: "Dispatch", behaviour: "die" },
    { _tag: "Interrupt", index: 5 },
    { _tag: "Release", index: 0 },
    { _tag: "Add" },
    { _tag: "Remove", index: 0 },
    { _tag: "Dispatch", behaviour: "succeed" }
  ]

  it.effect("plays the commands against a pool, and every request ends as scripted", () =>
    Effect.gen(function* () {
      const run = yield* Testing.runCommands(script, { pool: { policy: DispatchPolicy.LeastLoaded } })
      const ends = run.requests.map(({ behaviour, exit }) => {
        if (exit === undefined) return `${behaviour}: no outcome`
        if (Exit.isSuccess(exit)) return `${behaviour}: ${exit.value}`
        return `${behaviour}: ${errorOf(exit)?._tag ?? "interrupted"}`
      })
      assert.deepStrictEqual(ends, [
        "succeed: 1",
        "fail: DomainError",
        "wait: 3",
        "slow: 4",
        "crash: WorkerCrash",
        "hang: interrupted",
        "die: WorkerCrash",
        "succeed: 8"
      ])
      assert.deepStrictEqual(
        run.workers.map(([id, h]) => [id, h.state]),
        [
          [0, "Stopped"],
          [1, "Stopped"],
          [2, "Stopped"],
          [3, "Stopped"]
        ]
      )
      const summary = yield* Testing.checkRun(run)
      assert.deepStrictEqual([summary.outcomes.requests, summary.totals.crashes], [8, 2])
    })
  )

  it.effect("is deterministic: the same commands give the same run", () =>
    Effect.gen(function* () {
      const options = { pool: { policy: DispatchPolicy.Random } }
      const a = yield* Testing.runCommands(script, options)
      const b = yield* Testing.runCommands(script, options)
      assert.deepStrictEqual(a.workers, b.workers)
      assert.deepStrictEqual(
        a.requests.map((r) => r.exit?._tag),
        b.requests.map((r) => r.exit?._tag)
      )
    })
  )

  it.effect("runs outside a test's clock too, and fails on invalid options", () =>
    Effect.gen(function* () {
      const run = yield* Effect.promise(() =>
        Effect.runPromise(Testing.runCommands([{ _tag: "Dispatch", behaviour: "slow" }]))
      )
      assert.isTrue(run.requests[0]?.exit !== undefined && Exit.isSuccess(run.requests[0].exit))
      const invalid = yield* Effect.flip(Testing.runCommands([], { worker: () => ({ maxInFlight: 0 }) }))
      assert.strictEqual(invalid._tag, "InvalidOptions")
    })
  )

  it.effect(
    "generated runs reach every kind of outcome",
    () =>
      Effect.gen(function* () {
        const sample = yield* Arbitrary.sampleEffect(Arbitrary.schema(Testing.Commands), {
          count: 40,
          size: 80,
          seed: 5
        })
        const seen = (options: Testing.RunOptions) =>
          Effect.gen(function* () {
            const kinds = new Set<string>()
            for (const commands of sample) {
              const { outcomes } = yield* Effect.flatMap(Testing.runCommands(commands, options), Testing.checkRun)
              for (const [kind, n] of Object.entries(outcomes)) if (n > 0) kinds.add(kind)
            }
            return kinds
          })
        const plain = yield* seen({})
        for (const kind of ["succeeded", "domainErrors", "crashed", "refused", "shutdown", "interrupted"]) {
          assert.isTrue(plain.has(kind), `no request ended ${kind} in 40 runs`)
        }
        const strict = yield* seen({ pool: { timeout: "300 millis", queueTimeout: "100 millis" }, workers: 1 })
        assert.isTrue(strict.has("timeouts") && strict.has("queueTimeouts"), [...strict].join(", "))
        const small = yield* seen({ pool: { queueCapacity: 1, queueStrategy: "fail" }, workers: 1 })
        assert.isTrue(small.has("busy"), [...small].join(", "))
      }),
    // 120 runs of up to 80 commands, CPU only: 2 to 3 s on an idle 2-vCPU machine, several times that on a busy one.
    60_000
  )

  // Every built-in policy, and pools with timeouts, ejection and a small queue.
  const setups: ReadonlyArray<readonly [string, Testing.RunOptions]> = [
    ["ShortestExpectedDelay (the default)", {}],
    ["RoundRobin", { pool: { policy: DispatchPolicy.RoundRobin } }],
    ["LeastLoaded", { pool: { policy: DispatchPolicy.LeastLoaded } }],
    ["WorkPulling", { pool: { policy: DispatchPolicy.WorkPulling } }],
    ["PeakEwma", { pool: { policy: DispatchPolicy.PeakEwma() } }],
    ["ConsistentHash", { pool: { policy: DispatchPolicy.ConsistentHash({ key: (b) => b._tag }) } }],
    ["timeouts", { pool: { timeout: "120 millis", queueTimeout: "300 millis" } }],
    ["queue timeouts", { pool: { timeout: "300 millis", queueTimeout: "100 millis" }, workers: 1 }],
    ["ejection after 2 failures", { pool: { ejection: { consecutiveFailures: 2, baseDuration: "200 millis" } } }],
    ["a small queue that fails", { pool: { queueCapacity: 2, queueStrategy: "fail" }, workers: 1 }],
    ["a small queue that drops the oldest", { pool: { queueCapacity: 1, queueStrategy: "dropOldest" } }],
    ["four slots per worker", { worker: () => ({ restart: Schedule.spaced("50 millis"), maxInFlight: 4 }) }]
  ]
  for (const [name, options] of setups) {
    it.effect.prop(
      `${name}: every run keeps the pool's invariants`,
      [Testing.Commands],
      ([commands]) => Effect.flatMap(Testing.runCommands(commands, options), Testing.checkRun),
      { timeout: 60_000, arbitrary: { runs: 60, size: 80 } }
    )
  }
})

describe("invariant checks", () => {
  it.effect("checkOutcomes counts each kind of outcome", () =>
    Effect.gen(function* () {
      const pool = yield* WorkerPool.make({ size: 2, worker: (id) => Testing.fakeWorker<number>(id) })
      const fibers = yield* Effect.forEach(
        [Testing.succeed(1), Testing.fail(), Testing.crash(), Testing.hang],
        (request) => Effect.forkChild(pool.dispatch(request))
      )
      yield* Effect.yieldNow
      yield* Fiber.interrupt(fibers[3]!)
      yield* Fiber.awaitAll(fibers)
      const outcomes = yield* Testing.checkOutcomes(fibers)
      assert.deepStrictEqual(outcomes, {
        requests: 4,
        succeeded: 1,
        domainErrors: 1,
        crashed: 1,
        refused: 0,
        timeouts: 0,
        queueTimeouts: 0,
        busy: 0,
        shutdown: 0,
        rejected: 0,
        interrupted: 1
      })
      const totals = yield* Testing.checkTotals(outcomes, yield* pool.health)
      assert.deepStrictEqual([totals.workers, totals.completed, totals.errored, totals.interrupted], [2, 4, 2, 1])
    })
  )

  it.effect("checkOutcomes rejects a request without an outcome, or one that died", () =>
    Effect.gen(function* () {
      const running = yield* Effect.forkChild(Effect.never)
      const stillRunning = yield* Effect.flip(Testing.checkOutcomes([Exit.succeed(1), running]))
      assert.strictEqual(stillRunning.invariant, "every request has one outcome")
      assert.include(stillRunning.message, "request 1 has no outcome: its fiber is still running")
      yield* Fiber.interrupt(running)
      assert.strictEqual(yield* verdict(Testing.checkOutcomes([running])), "passed")
      assert.strictEqual(
        yield* verdict(Testing.checkOutcomes([undefined])),
        "every request has one outcome",
        "a missing exit"
      )
      const died = yield* Effect.flip(Testing.checkOutcomes([Exit.die(new RangeError("policy picked worker 9"))]))
      assert.include(died.message, "request 0 died instead of ending with a typed outcome")
      assert.include(died.message, "policy picked worker 9")
    })
  )

  it.effect("checkRun catches a policy that picks a worker it was not offered", () =>
    Effect.gen(function* () {
      const Rogue = DispatchPolicy.make({
        name: "Rogue",
        initial: () => undefined,
        select: ({ state }) => ({ worker: WorkerId.make(99), state })
      })
      const run = yield* Testing.runCommands([{ _tag: "Dispatch", behaviour: "succeed" }], { pool: { policy: Rogue } })
      const violation = yield* Effect.flip(Testing.checkRun(run))
      assert.strictEqual(violation.invariant, "every request has one outcome")
      assert.include(violation.reason, "request 1 (succeed) died")
      assert.include(violation.reason, "Rogue")
    })
  )

  it.effect("checkHealth accepts a real record and rejects tampered ones", () =>
    Effect.gen(function* () {
      const worker = yield* Testing.fakeWorker<number>(0, { restart: Schedule.spaced("10 millis") })
      yield* Effect.exit(worker.dispatch(Testing.crash()))
      yield* TestClock.adjust("10 millis")
      const real = yield* worker.health
      assert.strictEqual(yield* verdict(Testing.checkHealth(real, { settled: true })), "passed")

      const broken: ReadonlyArray<readonly [Partial<typeof real>, string]> = [
        [{ completed: 0 }, "completed = succeeded + errored + interrupted"],
        [{ timeouts: 2 }, "timeouts are errors"],
        [{ restarts: 2 }, "restarts <= crashes"],
        [{ failedStarts: 2 }, "failed starts are crashes"],
        [{ lastCrash: undefined }, "the last crash is recorded"],
        [{ errored: -1 }, "counters are whole numbers"],
        [{ completed: Number.NaN }, "counters are whole numbers"],
        [{ state: "Ejected" }, "an ejection has an end"],
        [{ state: "Retired" }, "a retired worker says why"],
        [{ oldestInFlightSince: 5 }, "inFlight is 0 once settled"]
      ]
      for (const [tamper, invariant] of broken) {
        assert.strictEqual(
          yield* verdict(Testing.checkHealth({ ...real, ...tamper })),
          invariant,
          JSON.stringify(tamper)
        )
      }
      const busy = { ...real, inFlight: 1, oldestInFlightSince: 5 }
      assert.strictEqual(yield* verdict(Testing.checkHealth(busy)), "passed")
      assert.strictEqual(yield* verdict(Testing.checkHealth(busy, { settled: true })), "inFlight is 0 once settled")
    })
  )

  it.effect("checkTotals and checkRun accept a real run and reject tampered ones", () =>
    Effect.gen(function* () {
      const commands: ReadonlyArray<Testing.Command> = [
        { _tag: "Dispatch", behaviour: "succeed" },
        { _tag: "Dispatch", behaviour: "wait" },
        { _tag: "Dispatch", behaviour: "fail" },
        { _tag: "Dispatch", behaviour: "crash" },
        { _tag: "Dispatch", behaviour: "hang" },
        { _tag: "Interrupt", index: 4 },
        { _tag: "Advance", millis: 100 },
        { _tag: "Dispatch", behaviour: "succeed" }
      ]
      const run = yield* Testing.runCommands(commands, { pool: { policy: DispatchPolicy.RoundRobin } })
      const { outcomes } = yield* Testing.checkRun(run)

      /** Changes one counter of the first worker that has `field` above 0. */
      const withWorker = (field: "completed" | "errored" | "interrupted" | "crashes", by: number): Testing.Run => {
        const at = run.workers.findIndex(([, h]) => h[field] > 0)
        return {
          ...run,
          workers: run.workers.map(([id, h], i) => [id, i === at ? { ...h, [field]: h[field] + by } : h] as const)
        }
      }
      const counters = "worker counters match what callers saw"
      assert.strictEqual(yield* verdict(Testing.checkTotals(outcomes, run.workers)), "passed")
      // A request a worker forgot, and one it counted twice.
      assert.strictEqual(yield* verdict(Testing.checkTotals(outcomes, withWorker("completed", -1).workers)), counters)
      assert.strictEqual(yield* verdict(Testing.checkTotals(outcomes, withWorker("completed", 1).workers)), counters)
      // An error counted as a success, and the other way round.
      assert.strictEqual(yield* verdict(Testing.checkTotals(outcomes, withWorker("errored", -1).workers)), counters)
      assert.strictEqual(yield* verdict(Testing.checkTotals(outcomes, withWorker("errored", 1).workers)), counters)
      // An interruption the callers never saw.
      assert.strictEqual(
        yield* verdict(
          Testing.checkTotals({ ...outcomes, interrupted: 0, succeeded: outcomes.succeeded + 1 }, run.workers)
        ),
        counters
      )
      // Callers that saw more than the workers did.
      assert.strictEqual(
        yield* verdict(Testing.checkTotals({ ...outcomes, succeeded: outcomes.succeeded + 1 }, run.workers)),
        counters
      )
      assert.strictEqual(
        yield* verdict(Testing.checkTotals({ ...outcomes, timeouts: 1, requests: outcomes.requests + 1 }, run.workers)),
        counters
      )
      // Pairs or bare records alike; a record in flight is not settled.
      assert.strictEqual(
        yield* verdict(
          Testing.checkTotals(
            outcomes,
            run.workers.map(([, h]) => h)
          )
        ),
        "passed"
      )
      const inFlight = run.workers.map(([id, h]) => [id, { ...h, inFlight: 1 }] as const)
      assert.strictEqual(yield* verdict(Testing.checkTotals(outcomes, inFlight)), "inFlight is 0 once settled")

      // checkRun: a lost outcome, a wrong answer, a worker left running, a crash of nobody's making.
      const requests = run.requests
      const tampered: ReadonlyArray<readonly [Testing.Run, string]> = [
        [
          { ...run, requests: requests.map((r, i) => (i === 1 ? { ...r, exit: undefined } : r)) },
          "every request has one outcome"
        ],
        [
          { ...run, requests: requests.map((r, i) => (i === 0 ? { ...r, exit: Exit.succeed(99) } : r)) },
          "outcomes follow the script"
        ],
        [
          { ...run, requests: requests.map((r, i) => (i === 2 ? { ...r, exit: Exit.succeed(3) } : r)) },
          "outcomes follow the script"
        ],
        [
          { ...run, requests: requests.map((r, i) => (i === 0 ? { ...r, behaviour: "fail" as const } : r)) },
          "outcomes follow the script"
        ],
        [
          {
            ...run,
            workers: run.workers.map(([id, h], i) => [id, i === 0 ? { ...h, state: "Healthy" as const } : h] as const)
          },
          "the pool stopped every worker"
        ],
        [withWorker("crashes", 1), "crashes match the requests that crashed"]
      ]
      for (const [bad, invariant] of tampered) assert.strictEqual(yield* verdict(Testing.checkRun(bad)), invariant)
    })
  )
})
