/**
 * The submit path, in virtual time: a fake out-of-process kind whose
 * incarnations have `submit` (as threads and subprocesses do), with no
 * process behind it. Each test scripts what the "child" does with a request:
 * answers it later (a response, a domain error, a defect, a crash), answers
 * before `submit` returns (a refusal, or the news that the incarnation is
 * dead), throws, ignores or confirms a cancel, dies with requests in flight.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Deferred, type Duration, Effect, Exit, Fiber, Queue, Schedule, Scope } from "effect"
import { TestClock } from "effect/testing"
import {
  type CrashReason,
  Defect,
  DispatchPolicy,
  DomainError,
  Exited,
  type InvalidOptions,
  InvalidRequest,
  PoolShutdown,
  Reported,
  RequestTimeout,
  Stopped,
  Worker,
  WorkerCrash,
  WorkerId,
  type WorkerKind,
  WorkerPool
} from "effect-worker-pool"

/** The errors of the fake's requests: a domain error, or a request that cannot go on the wire. */
type E = DomainError | InvalidRequest

type Outcome = Effect.Effect<string, E | WorkerCrash>

/** A request the fake's `submit` took: the test answers it, as the child would. */
interface Sent {
  readonly payload: string
  /** Which incarnation took it (1 for the first start). */
  readonly incarnation: number
  /** How many times the pool called its cancel. */
  cancels: number
  /** `done` was called. */
  settled: boolean
}

/** What the fake's `submit` does with a request. */
type Reaction =
  | { readonly _tag: "Send" }
  /** Calls `done` before `submit` returns. */
  | { readonly _tag: "Early"; readonly outcome: Outcome }
  /**
   * The incarnation is found dead as the request is sent: `done` before
   * `submit` returns, with the crash; `exits`: its `exited` says so too (at
   * once), else it says nothing, and the pool alone ends it.
   */
  | { readonly _tag: "Dead"; readonly reason: CrashReason; readonly exits: boolean }
  | { readonly _tag: "Throw" }
  /** Takes the request (the test can answer it later), then throws. */
  | { readonly _tag: "SendThenThrow" }

const send: Reaction = { _tag: "Send" }
const early = (outcome: Outcome): Reaction => ({ _tag: "Early", outcome })
const dead = (message: string, exits = true): Reaction => ({
  _tag: "Dead",
  reason: new Exited({ message, code: 1 }),
  exits
})

const interruption = Exit.failCause(Cause.interrupt())

/**
 * A fake out-of-process kind. Its incarnations have `submit` and settle on
 * death: a dead incarnation fails whatever it still holds with its crash, as
 * the thread and subprocess kinds do; one whose scope closes dies `Stopped`.
 * `script` decides what `submit` does (by default, it sends: the request
 * waits for the test to answer it); a cancel is recorded, and the test
 * confirms it (or not) with `settle(sent, interruption)`, unless
 * `confirmsCancelAtOnce`.
 */
const makeFake = (options: { readonly concurrency?: number; readonly restartOnTimeout?: boolean } = {}) =>
  Effect.gen(function* () {
    const sent = yield* Queue.unbounded<Sent>()
    interface Life {
      readonly n: number
      readonly exited: Deferred.Deferred<WorkerCrash>
      readonly pending: Map<Sent, (outcome: Outcome) => void>
      crash: WorkerCrash | undefined
    }
    const fake = {
      /** Requests sent, in order, to take one by one. */
      sent,
      script: (_payload: string, _incarnation: number): Reaction => send,
      /** A cancel is confirmed inside the cancel itself (else the test confirms it, or not). */
      confirmsCancelAtOnce: false,
      spawns: 0,
      submits: 0,
      runs: 0,
      /** The most requests the incarnations held at once. */
      maxPending: 0,
      life: undefined as Life | undefined,
      /** Answers a sent request, as its child would; at most once. */
      settle: (request: Sent, outcome: Outcome) => Effect.sync(() => settleNow(request, outcome)),
      /**
       * Answers `request`, and says how many requests were sent by the time
       * `done` returned: a waiting request is sent in the step that frees its
       * slot, before its caller runs.
       */
      settleAndCount: (request: Sent, outcome: Outcome) =>
        Effect.sync(() => {
          settleNow(request, outcome)
          return fake.submits
        }),
      /** The current incarnation dies on its own: what it holds fails with the crash, then `exited` says so. */
      die: (reason: CrashReason) => Effect.sync(() => die(fake.life!, reason)),
      kind: undefined as unknown as WorkerKind.WorkerKind<string, string, E>
    }
    const lives = new Map<number, Life>()
    const settleNow = (request: Sent, outcome: Outcome) => {
      const pending = lives.get(request.incarnation)!.pending
      const done = pending.get(request)
      if (done === undefined) throw new Error(`request ${request.payload} was settled already`)
      request.settled = true
      pending.delete(request)
      done(outcome)
    }
    const die = (life: Life, reason: CrashReason, exits = true) => {
      if (life.crash !== undefined) return
      const crash = new WorkerCrash({ reason })
      life.crash = crash
      const held = [...life.pending]
      life.pending.clear()
      for (const [request, done] of held) {
        request.settled = true
        done(Exit.fail(crash))
      }
      if (exits) Deferred.doneUnsafe(life.exited, Exit.succeed(crash))
    }
    const sendTo =
      (life: Life) =>
      (payload: string, done: (outcome: Outcome) => void): (() => void) => {
        if (life.crash !== undefined) {
          done(Exit.fail(life.crash))
          return () => {}
        }
        const reaction = fake.script(payload, life.n)
        switch (reaction._tag) {
          case "Early":
            done(reaction.outcome)
            return () => {}
          case "Dead":
            die(life, reaction.reason, reaction.exits)
            done(Exit.fail(life.crash!))
            return () => {}
          case "Throw":
            throw new Error(`submit threw on ${payload}`)
          case "SendThenThrow":
          case "Send": {
            const request: Sent = { payload, incarnation: life.n, cancels: 0, settled: false }
            life.pending.set(request, done)
            if (reaction._tag === "SendThenThrow") {
              Queue.offerUnsafe(sent, request)
              throw new Error(`submit threw on ${payload}`)
            }
            fake.maxPending = Math.max(fake.maxPending, life.pending.size)
            Queue.offerUnsafe(sent, request)
            return () => {
              request.cancels++
              if (fake.confirmsCancelAtOnce && !request.settled) settleNow(request, interruption)
            }
          }
        }
      }
    fake.kind = {
      name: "fake-submit",
      concurrency: options.concurrency,
      spawn: Effect.gen(function* () {
        const n = ++fake.spawns
        const life: Life = { n, exited: yield* Deferred.make<WorkerCrash>(), pending: new Map(), crash: undefined }
        lives.set(n, life)
        fake.life = life
        // Closing the incarnation's scope kills the child: what it held fails.
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => die(life, new Stopped({ message: `incarnation ${n} was stopped` })))
        )
        const send = sendTo(life)
        return {
          // A request with a timeout runs on a fiber of the incarnation, through the same child;
          // interrupting it cancels it.
          run: (payload: string) =>
            Effect.callback<string, E | WorkerCrash>((resume) => {
              fake.runs++
              const cancel = send(payload, resume)
              return Effect.sync(cancel)
            }),
          submit: (payload: string, done: (outcome: Outcome) => void) => {
            fake.submits++
            return send(payload, done)
          },
          exited: Deferred.await(life.exited),
          restartOnTimeout: options.restartOnTimeout,
          settlesOnDeath: true
        }
      })
    }
    return fake
  })

type Fake = Effect.Success<ReturnType<typeof makeFake>>
type Pool = WorkerPool.WorkerPool<string, string, E>

/** Lets the engine's and the workers' fibers run until `check` holds (no time passes). */
const until = (what: string, check: () => boolean | Effect.Effect<boolean>) =>
  Effect.gen(function* () {
    for (let i = 0; i < 200; i++) {
      const result = check()
      if (typeof result === "boolean" ? result : yield* result) return
      yield* Effect.yieldNow
    }
    assert.fail(`never happened: ${what}`)
  })

/** The next request `fake` was sent (failing, rather than hanging, if none comes). */
const nextSent = (fake: Fake) =>
  Effect.andThen(
    until("a request is sent", () => Queue.sizeUnsafe(fake.sent) > 0),
    Queue.take(fake.sent)
  )

/** What `fiber` ended with (failing, rather than hanging, if it does not end). */
const exitOf = <A, X>(fiber: Fiber.Fiber<A, X>) =>
  Effect.map(
    until("the caller gets its outcome", () => fiber.pollUnsafe() !== undefined),
    () => fiber.pollUnsafe()!
  )

/** Restarts one second after each crash. */
const restart = Schedule.spaced("1 second")

/** A pool of one worker per fake, worker `i` of `fakes[i]`. */
const poolOf = (
  fakes: ReadonlyArray<Fake>,
  options: {
    readonly drain?: Duration.Input
    readonly worker?: Worker.WorkerOptions
    readonly queueCapacity?: number
  } = {}
) =>
  WorkerPool.make<string, string, E, InvalidOptions>({
    policy: DispatchPolicy.LeastLoaded,
    size: fakes.length,
    worker: (id) => Worker.fromKind(id, fakes[id]!.kind, { restart, ...options.worker }),
    ...(options.drain === undefined ? {} : { drain: options.drain }),
    ...(options.queueCapacity === undefined ? {} : { queueCapacity: options.queueCapacity })
  })

const healthOf = (pool: Pool, id = 0) => Effect.map(pool.health, (all) => all[id]![1])

/** The counters that must be exact. */
const counters = (pool: Pool, id = 0) =>
  Effect.map(healthOf(pool, id), (h) => ({
    state: h.state,
    inFlight: h.inFlight,
    completed: h.completed,
    errored: h.errored,
    timeouts: h.timeouts,
    interrupted: h.interrupted,
    rejected: h.rejected,
    crashes: h.crashes,
    restarts: h.restarts
  }))

const fresh = {
  state: "Healthy",
  inFlight: 0,
  completed: 0,
  errored: 0,
  timeouts: 0,
  interrupted: 0,
  rejected: 0,
  crashes: 0,
  restarts: 0
} as const

const stateIs = (pool: Pool, state: string, id = 0) => Effect.map(healthOf(pool, id), (h) => h.state === state)

const queuedIs = (pool: Pool, n: number) => Effect.map(pool.queued, (queued) => queued === n)

/** The crash a caller of worker `id` gets. */
const crashOf = (reason: CrashReason, id = 0) => new WorkerCrash({ reason, workerId: WorkerId.make(id) })

/**
 * Once `closing` (a fork of the pool's scope's close) has begun: a new
 * request is refused at once. (A request admitted by mistake would wait in
 * the queue: `until` then fails rather than hang.)
 */
const refusesNewRequests = (pool: Pool) =>
  Effect.gen(function* () {
    yield* Effect.yieldNow
    const late = yield* Effect.forkChild(pool.dispatch("late"))
    yield* until("a new request is refused", () => late.pollUnsafe() !== undefined)
    assert.deepStrictEqual(
      late.pollUnsafe(),
      Exit.fail(new PoolShutdown({ reason: "the pool is shutting down: it admits no new request" }))
    )
  })

const invalid = new InvalidRequest({ reason: "the request is too large for the wire" })

describe("submit: an answer given later", () => {
  it.effect("a response and a domain error reach their callers; the slot frees; the worker stays healthy", () =>
    Effect.gen(function* () {
      const fake = yield* makeFake()
      const pool = yield* poolOf([fake])
      const first = yield* Effect.forkChild(pool.dispatch("a"))
      const a = yield* nextSent(fake)
      assert.strictEqual(a.payload, "a")
      assert.strictEqual((yield* healthOf(pool)).inFlight, 1)
      yield* fake.settle(a, Exit.succeed("A"))
      assert.deepStrictEqual(yield* exitOf(first), Exit.succeed("A"))

      const second = yield* Effect.forkChild(pool.dispatch("b"))
      const b = yield* nextSent(fake)
      yield* fake.settle(b, Exit.fail(new DomainError({ reason: "bad b" })))
      assert.deepStrictEqual(yield* exitOf(second), Exit.fail(new DomainError({ reason: "bad b" })))

      assert.deepStrictEqual(yield* counters(pool), { ...fresh, completed: 2, errored: 1 })
      assert.deepStrictEqual([fake.submits, fake.runs, fake.spawns, a.cancels, b.cancels], [2, 0, 1, 0, 0])
    })
  )

  it.effect("an answer to run (decoded asynchronously) is run by its caller, then judged", () =>
    Effect.gen(function* () {
      const fake = yield* makeFake()
      const pool = yield* poolOf([fake])
      const first = yield* Effect.forkChild(pool.dispatch("a"))
      yield* fake.settle(
        yield* nextSent(fake),
        Effect.suspend(() => Effect.succeed("decoded A"))
      )
      assert.deepStrictEqual(yield* exitOf(first), Exit.succeed("decoded A"))
      const second = yield* Effect.forkChild(pool.dispatch("b"))
      yield* fake.settle(
        yield* nextSent(fake),
        Effect.suspend(() => Effect.fail(new DomainError({ reason: "decoded b" })))
      )
      assert.deepStrictEqual(yield* exitOf(second), Exit.fail(new DomainError({ reason: "decoded b" })))
      assert.deepStrictEqual(yield* counters(pool), { ...fresh, completed: 2, errored: 1 })
    })
  )

  const crashes = [
    {
      name: "a defect",
      outcome: Exit.die(new Error("boom")),
      reason: new Defect({ message: "defect: Error: boom" })
    },
    {
      name: "a WorkerCrash",
      outcome: Exit.fail(WorkerCrash.report("engine failed")),
      reason: new Reported({ message: "engine failed" })
    }
  ] as const
  for (const { name, outcome, reason } of crashes) {
    it.effect(`${name} crashes the incarnation once; its caller gets the crash; the worker restarts on schedule`, () =>
      Effect.gen(function* () {
        const fake = yield* makeFake()
        const pool = yield* poolOf([fake])
        const caller = yield* Effect.forkChild(pool.dispatch("a"))
        yield* fake.settle(yield* nextSent(fake), outcome)
        assert.deepStrictEqual(yield* exitOf(caller), Exit.fail(crashOf(reason)))
        assert.deepStrictEqual(yield* counters(pool), {
          ...fresh,
          state: "Restarting",
          completed: 1,
          errored: 1,
          crashes: 1
        })
        assert.strictEqual((yield* healthOf(pool)).lastCrash?.reason, reason.message)

        // Back after the schedule's delay: a new incarnation serves.
        yield* TestClock.adjust("999 millis")
        assert.strictEqual(fake.spawns, 1)
        yield* TestClock.adjust("1 millis")
        yield* until("the worker is back", () => stateIs(pool, "Healthy"))
        const next = yield* Effect.forkChild(pool.dispatch("b"))
        const b = yield* nextSent(fake)
        assert.strictEqual(b.incarnation, 2)
        yield* fake.settle(b, Exit.succeed("B"))
        assert.deepStrictEqual(yield* exitOf(next), Exit.succeed("B"))
        assert.deepStrictEqual(yield* counters(pool), { ...fresh, completed: 2, errored: 1, crashes: 1, restarts: 1 })
      })
    )
  }

  it.effect("an idempotent request whose worker crashed under it is sent again to another worker", () =>
    Effect.gen(function* () {
      const fakes = [yield* makeFake(), yield* makeFake()]
      const pool = yield* poolOf(fakes)
      const caller = yield* Effect.forkChild(pool.dispatch("a", { idempotent: true }))
      const first = yield* nextSent(fakes[0]!)
      yield* fakes[0]!.settle(first, Exit.fail(WorkerCrash.report("lost it")))
      const second = yield* nextSent(fakes[1]!)
      assert.strictEqual(second.payload, "a")
      yield* fakes[1]!.settle(second, Exit.succeed("A"))
      assert.deepStrictEqual(yield* exitOf(caller), Exit.succeed("A"))
      assert.deepStrictEqual(yield* counters(pool, 0), {
        ...fresh,
        state: "Restarting",
        completed: 1,
        errored: 1,
        crashes: 1
      })
      assert.deepStrictEqual(yield* counters(pool, 1), { ...fresh, completed: 1 })
    })
  )
})

describe("submit: an outcome given before submit returns", () => {
  it.effect("InvalidRequest on a free slot: its caller gets it, counted as rejected, and the worker serves on", () =>
    Effect.gen(function* () {
      const fake = yield* makeFake()
      fake.script = (payload) => (payload === "bad" ? early(Exit.fail(invalid)) : send)
      const pool = yield* poolOf([fake])
      assert.deepStrictEqual(yield* Effect.exit(pool.dispatch("bad")), Exit.fail(invalid))
      assert.deepStrictEqual(yield* counters(pool), { ...fresh, rejected: 1 })
      const caller = yield* Effect.forkChild(pool.dispatch("ok"))
      yield* fake.settle(yield* nextSent(fake), Exit.succeed("OK"))
      assert.deepStrictEqual(yield* exitOf(caller), Exit.succeed("OK"))
      assert.deepStrictEqual(yield* counters(pool), { ...fresh, completed: 1, rejected: 1 })
    })
  )

  it.effect("InvalidRequest on the way out of the queue: its caller gets it, and the requests behind are served", () =>
    Effect.gen(function* () {
      const fake = yield* makeFake()
      fake.script = (payload) => (payload.startsWith("bad") ? early(Exit.fail(invalid)) : send)
      const pool = yield* poolOf([fake])
      const holding = yield* Effect.forkChild(pool.dispatch("hold"))
      const hold = yield* nextSent(fake)
      const waiting: Array<Fiber.Fiber<string, unknown>> = []
      for (const payload of ["bad1", "c", "bad2", "d"]) {
        waiting.push(yield* Effect.forkChild(pool.dispatch(payload)))
        yield* until(`${payload} waits`, () => queuedIs(pool, waiting.length))
      }
      assert.strictEqual(fake.submits, 1)
      yield* fake.settle(hold, Exit.succeed("HOLD"))
      const c = yield* nextSent(fake)
      assert.strictEqual(c.payload, "c")
      yield* fake.settle(c, Exit.succeed("C"))
      const d = yield* nextSent(fake)
      assert.strictEqual(d.payload, "d")
      yield* fake.settle(d, Exit.succeed("D"))
      assert.deepStrictEqual(yield* exitOf(holding), Exit.succeed("HOLD"))
      assert.deepStrictEqual(yield* Effect.forEach(waiting, exitOf), [
        Exit.fail(invalid),
        Exit.succeed("C"),
        Exit.fail(invalid),
        Exit.succeed("D")
      ])
      assert.deepStrictEqual(yield* counters(pool), { ...fresh, completed: 3, rejected: 2 })
      assert.strictEqual(fake.submits, 5)
    })
  )

  it.effect("an answer, or an effect its caller runs (encoded asynchronously), is the request's outcome", () =>
    Effect.gen(function* () {
      const fake = yield* makeFake()
      fake.script = (payload) => {
        switch (payload) {
          case "now":
            return early(Exit.succeed("NOW"))
          case "lazy":
            return early(Effect.suspend(() => Effect.succeed("LAZY")))
          case "lazy-bad":
            return early(Effect.suspend(() => Effect.fail(invalid)))
          default:
            return early(Effect.suspend(() => Effect.fail(new DomainError({ reason: payload }))))
        }
      }
      const pool = yield* poolOf([fake])
      assert.deepStrictEqual(
        yield* Effect.forEach(["now", "lazy", "lazy-bad", "refused"], (payload) => Effect.exit(pool.dispatch(payload))),
        [
          Exit.succeed("NOW"),
          Exit.succeed("LAZY"),
          Exit.fail(invalid),
          Exit.fail(new DomainError({ reason: "refused" }))
        ]
      )
      assert.deepStrictEqual(yield* counters(pool), { ...fresh, completed: 3, errored: 1, rejected: 1 })
      assert.deepStrictEqual(
        [fake.submits, Queue.sizeUnsafe(fake.sent)],
        [4, 0],
        "nothing was left waiting in the child"
      )
    })
  )

  const silences = [
    { exits: true, told: "its `exited` says so too" },
    { exits: false, told: "its `exited` says nothing" }
  ] as const
  for (const { exits, told } of silences) {
    it.effect(`WorkerCrash (${told}): the incarnation ends, counted once, and another worker serves the request`, () =>
      Effect.gen(function* () {
        const fakes = [yield* makeFake(), yield* makeFake()]
        fakes[0]!.script = () => dead("the child is gone", exits)
        const pool = yield* poolOf(fakes)
        const caller = yield* Effect.forkChild(pool.dispatch("a"))
        const a = yield* nextSent(fakes[1]!)
        assert.strictEqual(a.payload, "a")
        yield* fakes[1]!.settle(a, Exit.succeed("A"))
        assert.deepStrictEqual(yield* exitOf(caller), Exit.succeed("A"))
        assert.strictEqual(fakes[0]!.submits, 1)
        assert.deepStrictEqual(yield* counters(pool, 0), { ...fresh, state: "Restarting", crashes: 1 })
        const health = yield* healthOf(pool, 0)
        assert.deepStrictEqual([health.lastCrash?.reason, health.consecutiveFailures], ["the child is gone", 1])
        assert.deepStrictEqual(yield* counters(pool, 1), { ...fresh, completed: 1 })
        // Still one crash, and one restart, after the delay.
        yield* TestClock.adjust("1 second")
        yield* until("worker 0 is back", () => stateIs(pool, "Healthy"))
        assert.deepStrictEqual(yield* counters(pool, 0), { ...fresh, crashes: 1, restarts: 1 })
        assert.strictEqual(fakes[0]!.spawns, 2)
      })
    )

    it.effect(`WorkerCrash (${told}) on the only worker: the request keeps its place, and runs once it is back`, () =>
      Effect.gen(function* () {
        const fake = yield* makeFake()
        fake.script = (payload, incarnation) =>
          payload === "b" && incarnation === 1 ? dead("the child is gone", exits) : send
        const pool = yield* poolOf([fake])
        const holding = yield* Effect.forkChild(pool.dispatch("a"))
        const a = yield* nextSent(fake)
        const first = yield* Effect.forkChild(pool.dispatch("b"))
        yield* until("b waits", () => queuedIs(pool, 1))
        const second = yield* Effect.forkChild(pool.dispatch("c"))
        yield* until("c waits", () => queuedIs(pool, 2))
        // The slot frees: b is sent on its way out of the queue, and finds the incarnation dead.
        yield* fake.settle(a, Exit.succeed("A"))
        assert.deepStrictEqual(yield* exitOf(holding), Exit.succeed("A"))
        yield* until("the worker restarts", () => stateIs(pool, "Restarting"))
        assert.strictEqual(yield* pool.queued, 2)
        assert.deepStrictEqual(yield* counters(pool), { ...fresh, state: "Restarting", completed: 1, crashes: 1 })
        assert.isUndefined(first.pollUnsafe())

        yield* TestClock.adjust("1 second")
        const b = yield* nextSent(fake)
        assert.deepStrictEqual([b.payload, b.incarnation], ["b", 2], "b keeps its place at the head of the queue")
        yield* fake.settle(b, Exit.succeed("B"))
        const c = yield* nextSent(fake)
        assert.strictEqual(c.payload, "c")
        yield* fake.settle(c, Exit.succeed("C"))
        assert.deepStrictEqual(yield* exitOf(first), Exit.succeed("B"))
        assert.deepStrictEqual(yield* exitOf(second), Exit.succeed("C"))
        assert.deepStrictEqual(yield* counters(pool), { ...fresh, completed: 3, crashes: 1, restarts: 1 })
        assert.strictEqual(fake.submits, 4)
      })
    )
  }

  it.effect("a request that keeps its place goes back to the head of a full queue, which keeps to its capacity", () =>
    Effect.gen(function* () {
      const fake = yield* makeFake()
      fake.script = (payload, incarnation) => (payload === "b" && incarnation === 1 ? dead("the child is gone") : send)
      const pool = yield* poolOf([fake], { queueCapacity: 1 })
      const holding = yield* Effect.forkChild(pool.dispatch("a"))
      const a = yield* nextSent(fake)
      const first = yield* Effect.forkChild(pool.dispatch("b"))
      yield* until("b waits", () => queuedIs(pool, 1))
      // c finds the queue full: its caller is suspended until there is room.
      const second = yield* Effect.forkChild(pool.dispatch("c"))
      yield* Effect.yieldNow
      assert.strictEqual(yield* pool.queued, 1)
      // b leaves the queue for the slot (c takes its room), finds the incarnation dead, and comes back to the head.
      yield* fake.settle(a, Exit.succeed("A"))
      yield* until("the worker restarts", () => stateIs(pool, "Restarting"))
      assert.strictEqual(yield* pool.queued, 1, "the queue keeps to its capacity")

      yield* TestClock.adjust("1 second")
      const b = yield* nextSent(fake)
      assert.strictEqual(b.payload, "b", "b keeps its place, before c")
      yield* fake.settle(b, Exit.succeed("B"))
      const c = yield* nextSent(fake)
      yield* fake.settle(c, Exit.succeed("C"))
      assert.deepStrictEqual(
        [yield* exitOf(holding), yield* exitOf(first), yield* exitOf(second)],
        [Exit.succeed("A"), Exit.succeed("B"), Exit.succeed("C")]
      )
    })
  )

  it.effect("WorkerCrash on a worker that retires: its caller gets one WorkerCrash saying no worker is left", () =>
    Effect.gen(function* () {
      const fake = yield* makeFake()
      fake.script = () => dead("the child is gone")
      const pool = yield* poolOf([fake], { worker: { maxRestarts: 0 } })
      const error = yield* Effect.flip(pool.dispatch("a"))
      assert.instanceOf(error, WorkerCrash)
      assert.strictEqual((error as WorkerCrash).reason._tag, "NoWorker")
      assert.isUndefined((error as WorkerCrash).workerId)
      assert.deepStrictEqual(yield* counters(pool), { ...fresh, state: "Retired", crashes: 1 })
      assert.deepStrictEqual([fake.submits, fake.spawns, yield* pool.queued], [1, 1, 0])
    })
  )
})

describe("submit: a caller that leaves", () => {
  const ends = [
    { name: "confirms the cancel", outcome: interruption as Outcome },
    { name: "answers anyway", outcome: Exit.succeed("too late") as Outcome },
    { name: "fails it anyway", outcome: Exit.fail(new DomainError({ reason: "too late" })) as Outcome },
    { name: "answers anyway, to be decoded", outcome: Effect.suspend(() => Effect.succeed("too late")) as Outcome }
  ]
  for (const { name, outcome } of ends) {
    it.effect(`is cancelled once; the slot stays taken until the child ${name}; then the next request runs`, () =>
      Effect.gen(function* () {
        const fake = yield* makeFake()
        const pool = yield* poolOf([fake])
        const caller = yield* Effect.forkChild(pool.dispatch("a"))
        const a = yield* nextSent(fake)
        const behind = yield* Effect.forkChild(pool.dispatch("b"))
        yield* until("b waits", () => queuedIs(pool, 1))

        const left = yield* Fiber.interrupt(caller).pipe(Effect.andThen(Fiber.await(caller)))
        assert.isTrue(Exit.hasInterrupts(left))
        yield* until("a is cancelled", () => a.cancels > 0)
        assert.deepStrictEqual(yield* counters(pool), { ...fresh, inFlight: 1 })
        assert.deepStrictEqual([yield* pool.queued, fake.submits], [1, 1], "b waits for the slot")

        assert.strictEqual(yield* fake.settleAndCount(a, outcome), 2, "b is sent the moment a lets go of the slot")
        const b = yield* nextSent(fake)
        assert.strictEqual(b.payload, "b")
        assert.deepStrictEqual(yield* counters(pool), { ...fresh, inFlight: 1, completed: 1, interrupted: 1 })
        yield* fake.settle(b, Exit.succeed("B"))
        assert.deepStrictEqual(yield* exitOf(behind), Exit.succeed("B"))
        assert.deepStrictEqual(yield* counters(pool), { ...fresh, completed: 2, interrupted: 1 })
        assert.deepStrictEqual([a.cancels, b.cancels], [1, 0])
      })
    )
  }

  it.effect("a cancel the child confirms inside the cancel itself frees the slot at once, for the next request", () =>
    Effect.gen(function* () {
      const fake = yield* makeFake()
      fake.confirmsCancelAtOnce = true
      const pool = yield* poolOf([fake])
      const caller = yield* Effect.forkChild(pool.dispatch("a"))
      const a = yield* nextSent(fake)
      const behind = yield* Effect.forkChild(pool.dispatch("b"))
      yield* until("b waits", () => queuedIs(pool, 1))
      yield* Fiber.interrupt(caller)
      const b = yield* nextSent(fake)
      assert.strictEqual(b.payload, "b")
      assert.deepStrictEqual([a.cancels, a.settled], [1, true])
      assert.deepStrictEqual(yield* counters(pool), { ...fresh, inFlight: 1, completed: 1, interrupted: 1 })
      yield* fake.settle(b, Exit.succeed("B"))
      assert.deepStrictEqual(yield* exitOf(behind), Exit.succeed("B"))
      assert.deepStrictEqual(yield* counters(pool), { ...fresh, completed: 2, interrupted: 1 })
    })
  )

  it.effect("a cancelled request whose incarnation dies first: interrupted, not errored; the crash counted once", () =>
    Effect.gen(function* () {
      const fake = yield* makeFake({ concurrency: 2 })
      const pool = yield* poolOf([fake])
      const caller = yield* Effect.forkChild(pool.dispatch("a"))
      const a = yield* nextSent(fake)
      const other = yield* Effect.forkChild(pool.dispatch("b"))
      yield* nextSent(fake)
      yield* Fiber.interrupt(caller)
      yield* until("a is cancelled", () => a.cancels > 0)
      yield* fake.die(new Exited({ message: "the child exited with code 9", code: 9 }))
      assert.deepStrictEqual(
        yield* exitOf(other),
        Exit.fail(crashOf(new Exited({ message: "the child exited with code 9", code: 9 })))
      )
      assert.deepStrictEqual(yield* counters(pool), {
        ...fresh,
        state: "Restarting",
        completed: 2,
        errored: 1,
        interrupted: 1,
        crashes: 1
      })
      assert.strictEqual(a.cancels, 1)
    })
  )
})

describe("submit: a request with a timeout", () => {
  it.effect("runs on a fiber (run, not submit); past its timeout it fails, and a wedged kind is replaced", () =>
    Effect.gen(function* () {
      const fake = yield* makeFake({ restartOnTimeout: true })
      const pool = yield* poolOf([fake])
      const caller = yield* Effect.forkChild(pool.dispatch("slow", { timeout: "1 second" }))
      const slow = yield* nextSent(fake)
      assert.deepStrictEqual([fake.runs, fake.submits], [1, 0])
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(
        yield* exitOf(caller),
        Exit.fail(new RequestTimeout({ workerId: WorkerId.make(0), timeoutMillis: 1000 }))
      )
      assert.deepStrictEqual(yield* counters(pool), {
        ...fresh,
        state: "Restarting",
        completed: 1,
        errored: 1,
        timeouts: 1,
        crashes: 1
      })
      assert.strictEqual(
        (yield* healthOf(pool)).lastCrash?.reason,
        "a request ran past its 1000 ms timeout: the worker is wedged"
      )
      // Its fiber was interrupted (a cancel), and the incarnation's end failed what it held.
      assert.deepStrictEqual([slow.cancels, slow.settled], [1, true])

      // Without a timeout, a request is submitted, to the new incarnation.
      yield* TestClock.adjust("1 second")
      const next = yield* Effect.forkChild(pool.dispatch("fast"))
      const fast = yield* nextSent(fake)
      assert.deepStrictEqual([fast.incarnation, fake.submits], [2, 1])
      yield* fake.settle(fast, Exit.succeed("FAST"))
      assert.deepStrictEqual(yield* exitOf(next), Exit.succeed("FAST"))
    })
  )

  it.effect("past its timeout on a kind that can stop it: cancelled, and the worker goes on", () =>
    Effect.gen(function* () {
      const fake = yield* makeFake()
      const pool = yield* poolOf([fake])
      const caller = yield* Effect.forkChild(pool.dispatch("slow", { timeout: "1 second" }))
      const slow = yield* nextSent(fake)
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(
        yield* exitOf(caller),
        Exit.fail(new RequestTimeout({ workerId: WorkerId.make(0), timeoutMillis: 1000 }))
      )
      assert.deepStrictEqual(yield* counters(pool), { ...fresh, completed: 1, errored: 1, timeouts: 1 })
      assert.strictEqual(slow.cancels, 1)
    })
  )
})

describe("submit: an incarnation that dies with requests in flight", () => {
  it.effect("fails each with the crash; the one waiting runs on the next incarnation, after the delay", () =>
    Effect.gen(function* () {
      const fake = yield* makeFake({ concurrency: 3 })
      const pool = yield* poolOf([fake])
      const held = yield* Effect.forEach(["a", "b", "c"], (payload) => Effect.forkChild(pool.dispatch(payload)))
      const sent = [yield* nextSent(fake), yield* nextSent(fake), yield* nextSent(fake)]
      const waiting = yield* Effect.forkChild(pool.dispatch("d"))
      yield* until("d waits", () => queuedIs(pool, 1))
      const reason = new Exited({ message: "the child exited with code 3", code: 3 })
      yield* fake.die(reason)
      for (const fiber of held) assert.deepStrictEqual(yield* exitOf(fiber), Exit.fail(crashOf(reason)))
      assert.deepStrictEqual(yield* counters(pool), {
        ...fresh,
        state: "Restarting",
        completed: 3,
        errored: 3,
        crashes: 1
      })
      assert.deepStrictEqual(
        sent.map((request) => request.cancels),
        [0, 0, 0]
      )
      assert.strictEqual(yield* pool.queued, 1)

      yield* TestClock.adjust("999 millis")
      assert.strictEqual(fake.spawns, 1)
      yield* TestClock.adjust("1 millis")
      const d = yield* nextSent(fake)
      assert.deepStrictEqual([d.payload, d.incarnation], ["d", 2])
      yield* fake.settle(d, Exit.succeed("D"))
      assert.deepStrictEqual(yield* exitOf(waiting), Exit.succeed("D"))
      assert.deepStrictEqual(yield* counters(pool), { ...fresh, completed: 4, errored: 3, crashes: 1, restarts: 1 })
    })
  )
})

describe("submit: the pool's shutdown", () => {
  it.effect("within the drain: what was submitted or queued is answered, new requests are refused, close returns", () =>
    Effect.gen(function* () {
      const fake = yield* makeFake()
      const scope = yield* Scope.make()
      const pool = yield* poolOf([fake]).pipe(Scope.provide(scope))
      const first = yield* Effect.forkChild(pool.dispatch("a"))
      const a = yield* nextSent(fake)
      const second = yield* Effect.forkChild(pool.dispatch("b"))
      yield* until("b waits", () => queuedIs(pool, 1))
      const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
      yield* refusesNewRequests(pool)
      yield* fake.settle(a, Exit.succeed("A"))
      const b = yield* nextSent(fake)
      yield* fake.settle(b, Exit.succeed("B"))
      yield* Fiber.join(closing)
      assert.deepStrictEqual(yield* exitOf(first), Exit.succeed("A"))
      assert.deepStrictEqual(yield* exitOf(second), Exit.succeed("B"))
      assert.deepStrictEqual(yield* counters(pool), { ...fresh, state: "Stopped", completed: 2 })
      assert.strictEqual(fake.submits, 2)
    })
  )

  it.effect("past the drain: submitted requests and queued ones fail with PoolShutdown, close returns", () =>
    Effect.gen(function* () {
      const fake = yield* makeFake({ concurrency: 2 })
      const scope = yield* Scope.make()
      const pool = yield* poolOf([fake], { drain: "1 second" }).pipe(Scope.provide(scope))
      const running = yield* Effect.forEach(["a", "b"], (payload) => Effect.forkChild(pool.dispatch(payload)))
      const sent = [yield* nextSent(fake), yield* nextSent(fake)]
      const queued = yield* Effect.forkChild(pool.dispatch("c"))
      yield* until("c waits", () => queuedIs(pool, 1))
      const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(closing)
      const cut = Exit.fail(new PoolShutdown({ reason: "the pool shut down before the request finished" }))
      assert.deepStrictEqual(yield* Effect.forEach(running, exitOf), [cut, cut])
      assert.deepStrictEqual(
        yield* exitOf(queued),
        Exit.fail(new PoolShutdown({ reason: "the pool shut down before the request started" }))
      )
      assert.deepStrictEqual(yield* counters(pool), { ...fresh, state: "Stopped", completed: 2, errored: 2 })
      assert.deepStrictEqual(
        sent.map((request) => [request.cancels, request.settled]),
        [
          [0, true],
          [0, true]
        ]
      )
      assert.strictEqual(fake.submits, 2)
    })
  )

  it.effect("a cancelled request the child never lets go of: close returns after the drain, counted interrupted", () =>
    Effect.gen(function* () {
      const fake = yield* makeFake()
      const scope = yield* Scope.make()
      const pool = yield* poolOf([fake], { drain: "1 second" }).pipe(Scope.provide(scope))
      const caller = yield* Effect.forkChild(pool.dispatch("a"))
      const a = yield* nextSent(fake)
      yield* Fiber.interrupt(caller)
      yield* until("a is cancelled", () => a.cancels > 0)
      const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
      yield* refusesNewRequests(pool)
      // The drain waits for the slot: the request is not over until the child lets go of it.
      yield* TestClock.adjust("999 millis")
      assert.isUndefined(closing.pollUnsafe())
      yield* TestClock.adjust("1 millis")
      yield* Fiber.join(closing)
      assert.deepStrictEqual(yield* counters(pool), { ...fresh, state: "Stopped", completed: 1, interrupted: 1 })
      assert.deepStrictEqual([a.cancels, a.settled], [1, true])
    })
  )
})

describe("submit: concurrency", () => {
  it.effect("an incarnation of a kind with concurrency 2 holds two requests at once, and the next waits", () =>
    Effect.gen(function* () {
      const fake = yield* makeFake({ concurrency: 2 })
      const pool = yield* poolOf([fake])
      const callers = yield* Effect.forEach(["a", "b", "c"], (payload) => Effect.forkChild(pool.dispatch(payload)))
      const a = yield* nextSent(fake)
      const b = yield* nextSent(fake)
      yield* until("c waits", () => queuedIs(pool, 1))
      assert.deepStrictEqual([fake.submits, (yield* healthOf(pool)).inFlight], [2, 2])
      assert.strictEqual(yield* fake.settleAndCount(b, Exit.succeed("B")), 3, "c is sent the moment b's slot frees")
      const c = yield* nextSent(fake)
      assert.strictEqual(c.payload, "c")
      yield* fake.settle(a, Exit.succeed("A"))
      yield* fake.settle(c, Exit.succeed("C"))
      assert.deepStrictEqual(yield* Effect.forEach(callers, exitOf), [
        Exit.succeed("A"),
        Exit.succeed("B"),
        Exit.succeed("C")
      ])
      assert.strictEqual(fake.maxPending, 2)
      assert.deepStrictEqual(yield* counters(pool), { ...fresh, completed: 3 })
    })
  )
})

describe("submit: a worker outside a pool (Worker.dispatch)", () => {
  it.effect("sends through submit: answers, refusals, a dead incarnation, and a caller that leaves", () =>
    Effect.gen(function* () {
      const fake = yield* makeFake()
      fake.script = (payload, incarnation) =>
        payload === "bad" ? early(Exit.fail(invalid)) : payload === "dead" && incarnation === 1 ? dead("gone") : send
      const worker = yield* Worker.fromKind(WorkerId.make(0), fake.kind, { restart })
      const answered = yield* Effect.forkChild(worker.dispatch("a"))
      yield* fake.settle(yield* nextSent(fake), Exit.succeed("A"))
      assert.deepStrictEqual(yield* exitOf(answered), Exit.succeed("A"))
      const decoded = yield* Effect.forkChild(worker.dispatch("b"))
      yield* fake.settle(
        yield* nextSent(fake),
        Effect.suspend(() => Effect.succeed("B"))
      )
      assert.deepStrictEqual(yield* exitOf(decoded), Exit.succeed("B"))
      assert.deepStrictEqual(yield* Effect.exit(worker.dispatch("bad")), Exit.fail(invalid))

      // A caller that leaves: cancelled once, its slot held until the child lets go.
      const leaving = yield* Effect.forkChild(worker.dispatch("c"))
      const c = yield* nextSent(fake)
      yield* Fiber.interrupt(leaving)
      assert.strictEqual(c.cancels, 1)
      assert.strictEqual((yield* worker.health).inFlight, 1)
      yield* fake.settle(c, interruption)
      assert.strictEqual((yield* worker.health).inFlight, 0)

      // Alone, a request sent to a dead incarnation gets the crash.
      assert.deepStrictEqual(
        yield* Effect.exit(worker.dispatch("dead")),
        Exit.fail(crashOf(new Exited({ message: "gone", code: 1 })))
      )
      const health = yield* worker.health
      assert.deepStrictEqual(
        [health.state, health.inFlight, health.completed, health.errored, health.interrupted, health.rejected],
        ["Restarting", 0, 4, 1, 1, 1]
      )
      assert.strictEqual(health.crashes, 1)
      assert.deepStrictEqual([c.cancels, fake.submits], [1, 5])
    })
  )
})

describe("submit: a kind whose submit throws (a bug of the kind)", () => {
  // A throw from `submit` is a defect of the worker, as a handler's throw is:
  // a WorkerCrash (Defect) for its caller, its slot given back, the
  // incarnation ended once and restarted by its schedule.
  const thrown = crashOf(new Defect({ message: "defect: Error: submit threw on throw" }))

  it.effect("in a pool: its caller gets a WorkerCrash, the slot is given back, the worker restarts", () =>
    Effect.gen(function* () {
      const fake = yield* makeFake()
      fake.script = (payload) => (payload === "throw" ? { _tag: "Throw" } : send)
      const pool = yield* poolOf([fake], { drain: "0 millis" })
      assert.deepStrictEqual(yield* Effect.exit(pool.dispatch("throw")), Exit.fail(thrown))
      const health = yield* healthOf(pool)
      assert.deepStrictEqual([health.inFlight, health.crashes, health.state], [0, 1, "Restarting"])
      // Back after the restart delay, it serves.
      yield* TestClock.adjust("1 second")
      const next = yield* Effect.forkChild(pool.dispatch("after"))
      const sent = yield* nextSent(fake)
      yield* fake.settle(sent, Exit.succeed("answered"))
      assert.deepStrictEqual(yield* Fiber.await(next), Exit.succeed("answered"))
    })
  )

  it.effect("an answer the kind gives after its submit threw is not heard: one outcome, counters exact", () =>
    Effect.gen(function* () {
      const fake = yield* makeFake()
      fake.script = (payload) => (payload === "throw" ? { _tag: "SendThenThrow" } : send)
      const pool = yield* poolOf([fake], { drain: "0 millis" })
      assert.deepStrictEqual(yield* Effect.exit(pool.dispatch("throw")), Exit.fail(thrown))
      const taken = yield* nextSent(fake)
      // The kind answers the request it threw on (unless its incarnation's end answered it first): not heard.
      if (!taken.settled) yield* fake.settle(taken, Exit.succeed("late"))
      yield* Effect.yieldNow
      const crashed = { ...fresh, state: "Restarting", completed: 1, errored: 1, crashes: 1 } as const
      assert.deepStrictEqual(yield* counters(pool), crashed)
      yield* TestClock.adjust("1 second")
      const next = yield* Effect.forkChild(pool.dispatch("after"))
      yield* fake.settle(yield* nextSent(fake), Exit.succeed("answered"))
      assert.deepStrictEqual(yield* exitOf(next), Exit.succeed("answered"))
      assert.deepStrictEqual(yield* counters(pool), { ...fresh, completed: 2, errored: 1, crashes: 1, restarts: 1 })
    })
  )

  it.effect("Worker.dispatch: its caller gets a WorkerCrash, the slot is given back", () =>
    Effect.gen(function* () {
      const fake = yield* makeFake()
      fake.script = () => ({ _tag: "Throw" })
      const worker = yield* Worker.fromKind(WorkerId.make(0), fake.kind, { restart })
      assert.deepStrictEqual(yield* Effect.exit(worker.dispatch("throw")), Exit.fail(thrown))
      const health = yield* worker.health
      assert.deepStrictEqual([health.inFlight, health.crashes], [0, 1])
    })
  )
})
