/**
 * A kit for testing code that runs on a pool, and dispatch policies of your
 * own:
 *
 * - **scripted fake workers** ({@link fakeKind}, {@link fakeWorker}): each
 *   request succeeds, fails with a domain error, crashes its worker, dies,
 *   hangs, answers late on Effect's `Clock`, or waits for a cue, as the
 *   request itself says or as a {@link Script} says; the first starts can be
 *   made to fail;
 * - **builders** of health records and policy views ({@link health},
 *   {@link candidate}, {@link view});
 * - **generators** for property tests, as Schemas that `it.prop` and
 *   `it.effect.prop` of `@effect/vitest` (or `Arbitrary.schema`) take:
 *   views of candidates ({@link candidates}) and command sequences
 *   ({@link Commands}), with a runner that plays commands against a real pool
 *   in virtual time ({@link runCommands});
 * - **invariant checks** ({@link checkOutcomes}, {@link checkHealth},
 *   {@link checkTotals}, {@link checkRun}): every request has one outcome,
 *   the counters add up, and they match what the callers saw.
 *
 * Import it from `effect-worker-pool/testing`. It depends on `effect` only.
 *
 * @since 0.2.0
 */
import { Cause, Deferred, Duration, Effect, Exit, Fiber, Random, References, Schedule, Schema, Scope } from "effect"
import { TestClock } from "effect/testing"
import * as DispatchPolicy from "../DispatchPolicy.ts"
import { schema as candidatesSchema } from "../internal/testing/candidates.ts"
import { healthProblem, type Problem } from "../internal/testing/consistency.ts"
import * as Worker from "../Worker.ts"
import {
  type CrashReason,
  DomainError,
  type InvalidOptions,
  Reported,
  StartFailed,
  WorkerCrash
} from "../WorkerError.ts"
import type { WorkerHealth } from "../WorkerHealth.ts"
import { WorkerId } from "../WorkerId.ts"
import type * as WorkerKind from "../WorkerKind.ts"
import * as WorkerPool from "../WorkerPool.ts"

// --- behaviours ---------------------------------------------------------------

/**
 * What a fake worker does with one request:
 *
 * - `Succeed`: answers `value`;
 * - `Fail`: fails with the domain error `error` (the worker stays healthy);
 * - `Crash`: fails with `WorkerCrash` (the worker crashes and is restarted);
 * - `Die`: dies with `defect` (a crash too);
 * - `Hang`: never answers (until its caller, a timeout or a stop cuts it);
 * - `OnCue`: waits for `cue` to complete, then does what `then` says. A
 *   `Deferred`, a `Latch` or `Effect.sleep` (on Effect's `Clock`, so a
 *   `TestClock` drives it) make the cue.
 *
 * Build them with {@link succeed}, {@link fail}, {@link crash}, {@link die},
 * {@link hang}, {@link slow} and {@link onCue}.
 *
 * @example
 * ```ts
 * import { Testing } from "effect-worker-pool/testing"
 *
 * const describe = (behaviour: Testing.Behaviour<number>) => behaviour._tag
 * console.log(describe(Testing.slow("1 second", Testing.succeed(1)))) // "OnCue"
 * ```
 *
 * @since 0.2.0
 * @category behaviours
 */
export type Behaviour<A, E = DomainError> =
  | { readonly _tag: "Succeed"; readonly value: A }
  | { readonly _tag: "Fail"; readonly error: E }
  | { readonly _tag: "Crash"; readonly reason: CrashReason }
  | { readonly _tag: "Die"; readonly defect: unknown }
  | { readonly _tag: "Hang" }
  | { readonly _tag: "OnCue"; readonly cue: Effect.Effect<unknown>; readonly then: Behaviour<A, E> }

/**
 * Answers `value`.
 *
 * @example
 * ```ts
 * import { Testing } from "effect-worker-pool/testing"
 *
 * const answer = Testing.succeed(42)
 * ```
 *
 * @since 0.2.0
 * @category behaviours
 */
export const succeed = <A>(value: A): Behaviour<A, never> => ({ _tag: "Succeed", value })

/**
 * Fails with a domain error: a `DomainError` with `reason` (by default
 * `"scripted failure"`), or the error you give. The worker stays healthy.
 *
 * @example
 * ```ts
 * import { Testing } from "effect-worker-pool/testing"
 *
 * const bad = Testing.fail("empty text")
 * class Unauthorized {
 *   readonly _tag = "Unauthorized"
 * }
 * const forbidden = Testing.fail(new Unauthorized())
 * ```
 *
 * @since 0.2.0
 * @category behaviours
 */
export const fail: {
  (reason?: string): Behaviour<never, DomainError>
  <E>(error: E): Behaviour<never, E>
} = (error?: unknown): Behaviour<never, any> => ({
  _tag: "Fail",
  error:
    error === undefined || typeof error === "string" ? new DomainError({ reason: error ?? "scripted failure" }) : error
})

/**
 * Crashes the worker: the request fails with `WorkerCrash` with `reason` (by
 * default `"scripted crash"`), the pool stops routing to the worker, and its
 * supervisor restarts it. A string is the handler's own words (reason
 * `Reported`); a `CrashReason` is used as it is, to test code that matches
 * on it (`Killed`, `Exited`, ...).
 *
 * @example
 * ```ts
 * import { Killed } from "effect-worker-pool"
 * import { Testing } from "effect-worker-pool/testing"
 *
 * const gone = Testing.crash("engine lost its GPU context")
 * const killed = Testing.crash(new Killed({ message: "process 42 was killed by SIGKILL", signal: "SIGKILL" }))
 * ```
 *
 * @since 0.2.0
 * @category behaviours
 */
export const crash = (reason: string | CrashReason = "scripted crash"): Behaviour<never, never> => ({
  _tag: "Crash",
  reason: typeof reason === "string" ? new Reported({ message: reason }) : reason
})

/**
 * Dies with `defect` (by default `new Error("scripted defect")`): a bug in
 * the handler, which crashes the worker like `crash`. The caller's
 * `WorkerCrash` reads `defect: Error: scripted defect`.
 *
 * @example
 * ```ts
 * import { Testing } from "effect-worker-pool/testing"
 *
 * const bug = Testing.die(new TypeError("cannot read properties of undefined"))
 * ```
 *
 * @since 0.2.0
 * @category behaviours
 */
export const die = (defect: unknown = new Error("scripted defect")): Behaviour<never, never> => ({
  _tag: "Die",
  defect
})

/**
 * Never answers. The request ends only when its caller is interrupted, its
 * timeout passes, or its worker is stopped or torn down by another crash.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Testing } from "effect-worker-pool/testing"
 *
 * const program = Effect.scoped(
 *   Effect.gen(function* () {
 *     const worker = yield* Testing.fakeWorker(0)
 *     return yield* Effect.flip(worker.dispatch(Testing.hang, { timeout: "1 second" })) // RequestTimeout
 *   })
 * )
 * ```
 *
 * @since 0.2.0
 * @category behaviours
 */
export const hang: Behaviour<never, never> = { _tag: "Hang" }

/**
 * Waits for `cue`, then does what `then` says. The test decides when: the
 * cue is `Deferred.await(gate)`, `latch.await`, or any effect that completes.
 *
 * @example
 * ```ts
 * import { Deferred, Effect } from "effect"
 * import { Testing } from "effect-worker-pool/testing"
 *
 * const program = Effect.gen(function* () {
 *   const gate = yield* Deferred.make<void>()
 *   // Held until the test calls `Deferred.succeed(gate, undefined)`, then crashes.
 *   return Testing.onCue(Deferred.await(gate), Testing.crash())
 * })
 * ```
 *
 * @since 0.2.0
 * @category behaviours
 */
export const onCue = <A, E>(cue: Effect.Effect<unknown>, then: Behaviour<A, E>): Behaviour<A, E> => ({
  _tag: "OnCue",
  cue,
  then
})

/**
 * Waits `duration` on Effect's `Clock`, then does what `then` says: a slow
 * worker. Under a `TestClock`, `TestClock.adjust` moves it on.
 *
 * @example
 * ```ts
 * import { Testing } from "effect-worker-pool/testing"
 *
 * const late = Testing.slow("2 seconds", Testing.succeed("done"))
 * ```
 *
 * @since 0.2.0
 * @category behaviours
 */
export const slow = <A, E>(duration: Duration.Input, then: Behaviour<A, E>): Behaviour<A, E> =>
  onCue(Effect.sleep(duration), then)

/** Every crash the kit raises is made here. */
const workerCrash = (reason: CrashReason): WorkerCrash => new WorkerCrash({ reason })

/** What a fake does with a request that behaves as `behaviour`. */
const perform = <A, E>(behaviour: Behaviour<A, E>): Effect.Effect<A, E | WorkerCrash> => {
  switch (behaviour._tag) {
    case "Succeed":
      return Effect.succeed(behaviour.value)
    case "Fail":
      return Effect.fail(behaviour.error)
    case "Crash":
      return Effect.fail(workerCrash(behaviour.reason))
    case "Die":
      return Effect.die(behaviour.defect)
    case "Hang":
      return Effect.never
    case "OnCue":
      return Effect.flatMap(behaviour.cue, () => perform(behaviour.then))
  }
}

// --- scripts ------------------------------------------------------------------

/**
 * How a fake worker decides what a request does, whatever the request says:
 * from the request, and from `index`, the request's position among those the
 * fake received (0 for the first, counted across restarts).
 *
 * @example
 * ```ts
 * import { Testing } from "effect-worker-pool/testing"
 *
 * // Empty texts are bad requests; the third request of all crashes the worker.
 * const script: Testing.Script<string, number> = (text, index) =>
 *   index === 2 ? Testing.crash() : text === "" ? Testing.fail("empty") : Testing.succeed(text.length)
 * ```
 *
 * @since 0.2.0
 * @category scripts
 */
export type Script<Req, A, E = DomainError> = (request: Req, index: number) => Behaviour<A, E>

/**
 * A script that plays `behaviours` in turn: the first request behaves as the
 * first, and so on; every request past the end behaves as the last.
 *
 * @example
 * ```ts
 * import { Testing } from "effect-worker-pool/testing"
 *
 * // Two answers, a crash, then answers for ever.
 * const script = Testing.sequence([Testing.succeed(1), Testing.succeed(2), Testing.crash(), Testing.succeed(3)])
 * ```
 *
 * @since 0.2.0
 * @category scripts
 */
export const sequence =
  <A, E = never>(behaviours: readonly [Behaviour<A, E>, ...Array<Behaviour<A, E>>]): Script<unknown, A, E> =>
  (_, index) =>
    behaviours[Math.min(index, behaviours.length - 1)]!

/**
 * A script in which every `n`-th request (the `n`-th, the `2n`-th, ...)
 * behaves as `behaviour` and the others as `otherwise`. `n` must be a
 * positive integer (else a `RangeError` is thrown).
 *
 * @example
 * ```ts
 * import { Testing } from "effect-worker-pool/testing"
 *
 * // Every third request crashes its worker.
 * const script = Testing.everyNth(3, Testing.crash(), Testing.succeed("ok"))
 * ```
 *
 * @since 0.2.0
 * @category scripts
 */
export const everyNth = <A, E = never>(
  n: number,
  behaviour: Behaviour<A, E>,
  otherwise: Behaviour<A, E>
): Script<unknown, A, E> => {
  if (!(Number.isSafeInteger(n) && n >= 1))
    throw new RangeError(`Testing.everyNth: n must be a positive integer, got ${n}`)
  return (_, index) => ((index + 1) % n === 0 ? behaviour : otherwise)
}

// --- fakes --------------------------------------------------------------------

/**
 * Options of a fake worker; every field is optional.
 *
 * | option          | default                              | meaning                                                    |
 * |-----------------|--------------------------------------|------------------------------------------------------------|
 * | `script`        | none: the request is its behaviour   | decides what each request does (see {@link Script})        |
 * | `failingStarts` | `0`                                  | the first `failingStarts` starts fail with `WorkerCrash`   |
 * | `concurrency`   | none                                 | the kind's `concurrency`: the worker's default `maxInFlight` |
 *
 * @example
 * ```ts
 * import { Testing } from "effect-worker-pool/testing"
 *
 * const options: Testing.FakeOptions<string, number> = {
 *   script: (text) => Testing.succeed(text.length),
 *   failingStarts: 2,
 *   concurrency: 4
 * }
 * ```
 *
 * @since 0.2.0
 * @category fakes
 */
export interface FakeOptions<Req, A, E = DomainError> {
  readonly script?: Script<Req, A, E> | undefined
  readonly failingStarts?: number | undefined
  readonly concurrency?: number | undefined
}

/**
 * What a fake tells about itself: how many starts were tried (failed ones
 * included) and how many requests reached its handler.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type { Testing } from "effect-worker-pool/testing"
 *
 * const report = (fake: Testing.FakeCounters) =>
 *   Effect.map(Effect.all([fake.starts, fake.received]), ([starts, received]) => `${starts} starts, ${received} requests`)
 * ```
 *
 * @since 0.2.0
 * @category fakes
 */
export interface FakeCounters {
  readonly starts: Effect.Effect<number>
  readonly received: Effect.Effect<number>
}

/**
 * A scripted worker kind (its name is `"fake"`), with its counters.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Worker, WorkerId } from "effect-worker-pool"
 * import { Testing } from "effect-worker-pool/testing"
 *
 * const program = Effect.gen(function* () {
 *   const kind: Testing.FakeKind<Testing.Behaviour<number>, number> = yield* Testing.fakeKind<number>()
 *   const worker = yield* Worker.fromKind(WorkerId.make(0), kind)
 *   return yield* worker.dispatch(Testing.succeed(1))
 * })
 * ```
 *
 * @since 0.2.0
 * @category fakes
 */
export interface FakeKind<Req, A, E = DomainError> extends WorkerKind.WorkerKind<Req, A, E>, FakeCounters {}

/**
 * A worker of a fake kind, with the fake's counters.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Testing } from "effect-worker-pool/testing"
 *
 * const program = Effect.gen(function* () {
 *   const worker: Testing.FakeWorker<Testing.Behaviour<number>, number> = yield* Testing.fakeWorker<number>(0)
 *   yield* worker.dispatch(Testing.succeed(1))
 *   return yield* worker.received // 1
 * })
 * ```
 *
 * @since 0.2.0
 * @category fakes
 */
export interface FakeWorker<Req, A, E = DomainError> extends Worker.Worker<Req, A, E>, FakeCounters {}

const makeFake = <Req, A, E>(options: FakeOptions<Req, A, E> | undefined): FakeKind<Req, A, E> => {
  const script: Script<Req, A, E> = options?.script ?? ((request) => request as Behaviour<A, E>)
  const failingStarts = options?.failingStarts ?? 0
  let starts = 0
  let received = 0
  return {
    name: "fake",
    concurrency: options?.concurrency,
    spawn: Effect.suspend(() => {
      const start = ++starts
      if (start <= failingStarts)
        return Effect.fail(
          workerCrash(new StartFailed({ message: `scripted start failure ${start} of ${failingStarts}` }))
        )
      return Effect.succeed({
        run: (request: Req) => Effect.suspend(() => perform(script(request, received++))),
        exited: Effect.never
      })
    }),
    starts: Effect.sync(() => starts),
    received: Effect.sync(() => received)
  }
}

/**
 * Makes a fake worker kind. Without a `script`, each request is a
 * {@link Behaviour} and does what it says; with one, the script decides. Each
 * kind counts its own starts and requests, so make one per worker.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Worker, WorkerId } from "effect-worker-pool"
 * import { Testing } from "effect-worker-pool/testing"
 *
 * const program = Effect.gen(function* () {
 *   // Fails its first two starts, then doubles every number.
 *   const kind = yield* Testing.fakeKind({ script: (n: number) => Testing.succeed(n * 2), failingStarts: 2 })
 *   const worker = yield* Worker.fromKind(WorkerId.make(0), kind)
 *   return (yield* worker.health).state // "Restarting"
 * })
 * ```
 *
 * @since 0.2.0
 * @category fakes
 */
export const fakeKind: {
  <Req, A, E = never>(
    options: FakeOptions<Req, A, E> & { readonly script: Script<Req, A, E> }
  ): Effect.Effect<FakeKind<Req, A, E>>
  <A = unknown, E = DomainError>(
    options?: FakeOptions<Behaviour<A, E>, A, E>
  ): Effect.Effect<FakeKind<Behaviour<A, E>, A, E>>
} = (options?: FakeOptions<any, any, any>) => Effect.sync(() => makeFake(options))

/**
 * Makes a supervised worker of a fresh fake kind, with the fake's options
 * and the worker's (`restart`, `maxInFlight`, ...; see `Worker.WorkerOptions`).
 * It returns once the first start has been tried, like `Worker.fromKind`.
 *
 * @example
 * ```ts
 * import { Effect, Schedule } from "effect"
 * import { WorkerPool } from "effect-worker-pool"
 * import { Testing } from "effect-worker-pool/testing"
 *
 * // Three workers; every fifth request a worker receives crashes it, and it is back 100 ms later.
 * const pool = WorkerPool.make({
 *   size: 3,
 *   worker: (id) =>
 *     Testing.fakeWorker(id, {
 *       script: Testing.everyNth(5, Testing.crash(), Testing.succeed("ok")),
 *       restart: Schedule.spaced("100 millis")
 *     })
 * })
 * ```
 *
 * @since 0.2.0
 * @category fakes
 */
export const fakeWorker: {
  <Req, A, E = never>(
    id: number,
    options: FakeOptions<Req, A, E> & { readonly script: Script<Req, A, E> } & Worker.WorkerOptions
  ): Effect.Effect<FakeWorker<Req, A, E>, InvalidOptions, Scope.Scope>
  <A = unknown, E = DomainError>(
    id: number,
    options?: FakeOptions<Behaviour<A, E>, A, E> & Worker.WorkerOptions
  ): Effect.Effect<FakeWorker<Behaviour<A, E>, A, E>, InvalidOptions, Scope.Scope>
} = (id: number, options?: FakeOptions<any, any, any> & Worker.WorkerOptions) =>
  Effect.suspend(() => {
    const kind = makeFake(options)
    return Effect.map(Worker.fromKind(id as WorkerId, kind, options), (worker) =>
      Object.assign(worker, { starts: kind.starts, received: kind.received })
    )
  })

// --- builders -----------------------------------------------------------------

const idle: WorkerHealth = {
  state: "Healthy",
  inFlight: 0,
  completed: 0,
  errored: 0,
  timeouts: 0,
  interrupted: 0,
  rejected: 0,
  crashes: 0,
  restarts: 0,
  attempt: 0,
  failedStarts: 0,
  consecutiveFailures: 0,
  ejections: 0
}

/**
 * A whole health record: state `Healthy`, every counter 0, no optional
 * field, with `overrides` applied. It is not checked: build an inconsistent
 * one on purpose to test a check.
 *
 * @example
 * ```ts
 * import { Testing } from "effect-worker-pool/testing"
 *
 * const busy = Testing.health({ inFlight: 2, oldestInFlightSince: 1_000 })
 * console.log(busy.state, busy.inFlight, busy.completed) // Healthy 2 0
 * ```
 *
 * @since 0.2.0
 * @category builders
 */
export const health = (overrides?: Partial<WorkerHealth>): WorkerHealth => ({ ...idle, ...overrides })

/**
 * Overrides of a {@link candidate}: fields of its health, and its
 * `maxInFlight`.
 *
 * @example
 * ```ts
 * import type { Testing } from "effect-worker-pool/testing"
 *
 * const loaded: Testing.CandidateOverrides = { inFlight: 3, maxInFlight: 8, completed: 120 }
 * ```
 *
 * @since 0.2.0
 * @category builders
 */
export interface CandidateOverrides extends Partial<WorkerHealth> {
  readonly maxInFlight?: number | undefined
}

/**
 * A candidate for a policy: worker `id` (a non-negative integer, else the
 * `WorkerId` schema throws) with {@link health}`(overrides)`. Its
 * `maxInFlight` defaults to one more than its `inFlight`, so that it has a
 * free slot, as every worker a pool offers does.
 *
 * @example
 * ```ts
 * import { Testing } from "effect-worker-pool/testing"
 *
 * const c = Testing.candidate(3, { inFlight: 2, completed: 40 })
 * console.log(c.id, c.health.inFlight, c.maxInFlight) // 3 2 3
 * ```
 *
 * @since 0.2.0
 * @category builders
 */
export const candidate = (id: number, overrides?: CandidateOverrides): DispatchPolicy.Candidate => {
  const { maxInFlight, ...fields } = overrides ?? {}
  const built = health(fields)
  return { id: WorkerId.make(id), health: built, maxInFlight: maxInFlight ?? built.inFlight + 1 }
}

/**
 * A view for a policy's `select`, as `DispatchPolicy.view` builds it, from
 * candidates or bare ids (an id stands for an idle, healthy
 * {@link candidate}). A pool never offers an empty view nor the same worker
 * twice, so either throws a `RangeError`.
 *
 * @example
 * ```ts
 * import { DispatchPolicy } from "effect-worker-pool"
 * import { Testing } from "effect-worker-pool/testing"
 *
 * const view = Testing.view([Testing.candidate(0, { inFlight: 2 }), 1, 2])
 * const { worker } = DispatchPolicy.LeastLoaded.select({ view, state: undefined, random: () => 0, now: 0, request: undefined })
 * console.log(worker) // 1
 * ```
 *
 * @since 0.2.0
 * @category builders
 */
export const view = (candidates: ReadonlyArray<DispatchPolicy.Candidate | number>): DispatchPolicy.WorkerView => {
  if (candidates.length === 0) throw new RangeError("Testing.view: a pool never offers an empty view")
  const all = candidates.map((c) => (typeof c === "number" ? candidate(c) : c))
  const seen = new Set<number>()
  for (const c of all) {
    if (seen.has(c.id)) throw new RangeError(`Testing.view: worker ${c.id} is offered twice`)
    seen.add(c.id)
  }
  return DispatchPolicy.view(all)
}

// --- generators ---------------------------------------------------------------

/**
 * Bounds of the candidates {@link candidates} generates; every field is
 * optional.
 *
 * | option        | default  | meaning                                                          |
 * |---------------|----------|------------------------------------------------------------------|
 * | `maxWorkers`  | `8`      | at most this many candidates (at least one)                      |
 * | `maxInFlight` | `4`      | the largest `maxInFlight` of a candidate                          |
 * | `now`         | `60_000` | every time in a record (`oldestInFlightSince`, `lastCrash.at`) is at or before it |
 *
 * @example
 * ```ts
 * import { Testing } from "effect-worker-pool/testing"
 *
 * const LargeViews = Testing.candidates({ maxWorkers: 64, maxInFlight: 16 })
 * ```
 *
 * @since 0.2.0
 * @category generators
 */
export interface CandidatesOptions {
  readonly maxWorkers?: number | undefined
  readonly maxInFlight?: number | undefined
  readonly now?: number | undefined
}

/**
 * The Schema of what a pool can offer a policy: non-empty arrays of
 * candidates with distinct ids (from 0 to at least 63), each healthy with a
 * free slot (`inFlight < maxInFlight`) and counters that keep the invariants
 * of health (a healthy worker has restarted after each of its crashes).
 * Loads, counters and times vary. As a Schema it validates, and as a
 * generator (`it.prop`, `it.effect.prop`, `Arbitrary.schema`) it builds such
 * arrays and shrinks a failing one field by field. Turn one into a view with
 * {@link view}.
 *
 * @example
 * ```ts
 * import { it } from "@effect/vitest"
 * import { DispatchPolicy } from "effect-worker-pool"
 * import { Testing } from "effect-worker-pool/testing"
 *
 * it.prop("LeastLoaded picks a least loaded worker", [Testing.candidates()], ([candidates]) => {
 *   const view = Testing.view(candidates)
 *   const { worker } = DispatchPolicy.LeastLoaded.select({ view, state: undefined, random: () => 0, now: 60_000, request: undefined })
 *   const least = Math.min(...candidates.map((c) => c.health.inFlight))
 *   return candidates.find((c) => c.id === worker)?.health.inFlight === least
 * })
 * ```
 *
 * @since 0.2.0
 * @category generators
 */
export const candidates = (options?: CandidatesOptions): Schema.Schema<ReadonlyArray<DispatchPolicy.Candidate>> => {
  const bounds = {
    maxWorkers: options?.maxWorkers ?? 8,
    maxInFlight: options?.maxInFlight ?? 4,
    now: options?.now ?? 60_000
  }
  for (const [name, n] of Object.entries(bounds)) {
    if (!(Number.isSafeInteger(n) && n >= (name === "now" ? 0 : 1))) {
      throw new RangeError(
        `Testing.candidates: ${name} must be a ${name === "now" ? "non-negative" : "positive"} integer, got ${n}`
      )
    }
  }
  return candidatesSchema(bounds)
}

const Index = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 7 }))

/**
 * What the request of a `Dispatch` command does: `"succeed"` (answers its
 * number), `"fail"` (a `DomainError`), `"crash"`, `"die"`, `"hang"`,
 * `"slow"` (answers after a delay on the clock) or `"wait"` (answers once a
 * `Release` command, or the end of the run, lets it).
 *
 * @example
 * ```ts
 * import { Testing } from "effect-worker-pool/testing"
 *
 * const risky: ReadonlyArray<Testing.DispatchBehaviour> = ["crash", "die", "hang"]
 * console.log(Testing.DispatchBehaviour.literals.length) // 7
 * ```
 *
 * @since 0.2.0
 * @category generators
 */
export const DispatchBehaviour = Schema.Literals(["succeed", "fail", "crash", "die", "hang", "slow", "wait"])

/**
 * @since 0.2.0
 * @category generators
 */
export type DispatchBehaviour = typeof DispatchBehaviour.Type

/**
 * One step of a run against a pool (see {@link runCommands}):
 *
 * - `Add`: a new fake worker joins (up to the run's `maxWorkers`);
 * - `Remove`: the worker at `index` (modulo the members) leaves;
 * - `Dispatch`: a request that behaves as `behaviour` is sent;
 * - `Release`: the waiting request at `index` (modulo those waiting) may answer;
 * - `Interrupt`: the caller of the request at `index` (modulo those sent) is interrupted;
 * - `Advance`: the clock moves `millis` on (0 to 250).
 *
 * @example
 * ```ts
 * import { Testing } from "effect-worker-pool/testing"
 *
 * const commands: ReadonlyArray<Testing.Command> = [
 *   { _tag: "Dispatch", behaviour: "wait" },
 *   { _tag: "Dispatch", behaviour: "crash" },
 *   { _tag: "Advance", millis: 100 },
 *   { _tag: "Release", index: 0 }
 * ]
 * ```
 *
 * @since 0.2.0
 * @category generators
 */
export const Command = Schema.Union([
  Schema.TaggedStruct("Add", {}),
  Schema.TaggedStruct("Remove", { index: Index }),
  Schema.TaggedStruct("Dispatch", { behaviour: DispatchBehaviour }),
  Schema.TaggedStruct("Release", { index: Index }),
  Schema.TaggedStruct("Interrupt", { index: Index }),
  Schema.TaggedStruct("Advance", { millis: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 250 })) })
])

/**
 * @since 0.2.0
 * @category generators
 */
export type Command = typeof Command.Type

/**
 * The Schema of command sequences, of at most 80 commands. For longer ones,
 * use `Schema.Array(Testing.Command).check(Schema.isMaxLength(n))`.
 *
 * @example
 * ```ts
 * import { it } from "@effect/vitest"
 * import { Effect } from "effect"
 * import { Testing } from "effect-worker-pool/testing"
 *
 * it.effect.prop("the pool keeps its promises", [Testing.Commands], ([commands]) =>
 *   Effect.flatMap(Testing.runCommands(commands), Testing.checkRun)
 * )
 * ```
 *
 * @since 0.2.0
 * @category generators
 */
export const Commands = Schema.Array(Command).check(Schema.isMaxLength(80))

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

// --- invariant checks ---------------------------------------------------------

/**
 * A broken invariant: which one, and what was seen. Every check of the kit
 * fails with it; its `message` reads `invariant: reason`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Testing } from "effect-worker-pool/testing"
 *
 * const tampered = Testing.health({ completed: 1, errored: 2 })
 * const message = Testing.checkHealth(tampered).pipe(
 *   Effect.flip,
 *   Effect.map((violation) => violation.message) // "completed = succeeded + errored + interrupted: ..."
 * )
 * ```
 *
 * @since 0.2.0
 * @category checks
 */
export class InvariantViolation extends Schema.TaggedError<InvariantViolation>()("InvariantViolation", {
  invariant: Schema.String,
  reason: Schema.String
}) {
  /** The invariant and the reason, so that a failing test prints both. */
  override get message(): string {
    return `${this.invariant}: ${this.reason}`
  }
}

const violation = (problem: Problem) => Effect.fail(new InvariantViolation(problem))

/**
 * What the callers of a set of requests saw, one count per kind of outcome:
 *
 * | field           | the request ended with                                   |
 * |-----------------|----------------------------------------------------------|
 * | `succeeded`     | a response                                               |
 * | `domainErrors`  | an error of the handler (any error that is not the pool's) |
 * | `crashed`       | a `WorkerCrash` that names a worker: it reached one       |
 * | `refused`       | a `WorkerCrash` that names none: no worker could take it |
 * | `timeouts`      | a `RequestTimeout`                                       |
 * | `queueTimeouts` | a `QueueTimeout`                                         |
 * | `busy`          | a `PoolBusy`                                             |
 * | `shutdown`      | a `PoolShutdown`                                         |
 * | `rejected`      | an `InvalidRequest`                                      |
 * | `interrupted`   | its caller's interruption                                |
 *
 * `requests` is their sum.
 *
 * @example
 * ```ts
 * import type { Testing } from "effect-worker-pool/testing"
 *
 * const failed = (o: Testing.Outcomes) => o.requests - o.succeeded - o.interrupted
 * ```
 *
 * @since 0.2.0
 * @category checks
 */
export interface Outcomes {
  readonly requests: number
  readonly succeeded: number
  readonly domainErrors: number
  readonly crashed: number
  readonly refused: number
  readonly timeouts: number
  readonly queueTimeouts: number
  readonly busy: number
  readonly shutdown: number
  readonly rejected: number
  readonly interrupted: number
}

type OutcomeKind = Exclude<keyof Outcomes, "requests">

/** The kind of outcome of an exit, or what is wrong with it. */
const classify = (exit: Exit.Exit<unknown, unknown>, label: string): OutcomeKind | Problem => {
  if (Exit.isSuccess(exit)) return "succeeded"
  const error = Cause.findErrorOption(exit.cause)
  if (error._tag === "None") {
    if (Cause.hasDies(exit.cause)) {
      return {
        invariant: "every request has one outcome",
        reason: `${label} died instead of ending with a typed outcome: ${String(Cause.squash(exit.cause))}`
      }
    }
    return "interrupted"
  }
  const tag = (error.value as { readonly _tag?: unknown } | null)?._tag
  switch (tag) {
    case "WorkerCrash":
      return (error.value as WorkerCrash).workerId === undefined ? "refused" : "crashed"
    case "RequestTimeout":
      return "timeouts"
    case "QueueTimeout":
      return "queueTimeouts"
    case "PoolBusy":
      return "busy"
    case "PoolShutdown":
      return "shutdown"
    case "InvalidRequest":
      return "rejected"
    default:
      return "domainErrors"
  }
}

const emptyOutcomes = (): { -readonly [K in keyof Outcomes]: number } => ({
  requests: 0,
  succeeded: 0,
  domainErrors: 0,
  crashed: 0,
  refused: 0,
  timeouts: 0,
  queueTimeouts: 0,
  busy: 0,
  shutdown: 0,
  rejected: 0,
  interrupted: 0
})

/**
 * Checks that every request has exactly one typed outcome, given the fibers
 * that dispatched them or their exits, once everything should have settled:
 * a fiber still running, a missing exit (`undefined`), or an exit with a
 * defect (the pool never lets one through: it would be a bug of the pool or
 * of a policy) fails with an {@link InvariantViolation} naming the request by
 * its index. It does not wait for anything. Otherwise it counts the
 * outcomes.
 *
 * @example
 * ```ts
 * import { Effect, Fiber } from "effect"
 * import { WorkerPool } from "effect-worker-pool"
 * import { Testing } from "effect-worker-pool/testing"
 *
 * const program = Effect.scoped(
 *   Effect.gen(function* () {
 *     const pool = yield* WorkerPool.make({ size: 2, worker: (id) => Testing.fakeWorker<number>(id) })
 *     const fibers = yield* Effect.forEach([Testing.succeed(1), Testing.fail(), Testing.crash()], (request) =>
 *       Effect.forkChild(pool.dispatch(request))
 *     )
 *     yield* Fiber.awaitAll(fibers)
 *     return yield* Testing.checkOutcomes(fibers) // { requests: 3, succeeded: 1, domainErrors: 1, crashed: 1, ... }
 *   })
 * )
 * ```
 *
 * @since 0.2.0
 * @category checks
 */
export const checkOutcomes = (
  results: Iterable<Exit.Exit<unknown, unknown> | Fiber.Fiber<unknown, unknown> | undefined>
): Effect.Effect<Outcomes, InvariantViolation> =>
  Effect.suspend(() => {
    const labelled: Array<readonly [string, Exit.Exit<unknown, unknown> | Fiber.Fiber<unknown, unknown> | undefined]> =
      []
    for (const result of results) labelled.push([`request ${labelled.length}`, result])
    return tally(labelled)
  })

/** Counts the outcomes of requests named by their labels, or says which one has none, or died. */
const tally = (
  results: ReadonlyArray<readonly [string, Exit.Exit<unknown, unknown> | Fiber.Fiber<unknown, unknown> | undefined]>
): Effect.Effect<Outcomes, InvariantViolation> => {
  const outcomes = emptyOutcomes()
  for (const [label, result] of results) {
    const exit = Fiber.isFiber(result) ? result.pollUnsafe() : result
    if (exit === undefined) {
      const reason = Fiber.isFiber(result)
        ? `${label} has no outcome: its fiber is still running`
        : `${label} has no outcome`
      return violation({ invariant: "every request has one outcome", reason })
    }
    const kind = classify(exit, label)
    if (typeof kind !== "string") return violation(kind)
    outcomes[kind]++
    outcomes.requests++
  }
  return Effect.succeed(outcomes)
}

/**
 * Checks the invariants of one worker's health (see the health guide):
 * counters are whole numbers; `completed = succeeded + errored + interrupted`
 * (so `completed >= errored + interrupted`); `timeouts <= errored`;
 * `restarts <= crashes` and `failedStarts <= crashes`; `lastCrash` is set
 * once there was a crash; an ejected worker has an `ejectedUntil`; a retired
 * one has a `retiredBecause`; no `oldestInFlightSince` without a request in
 * flight; and, with `settled: true` (every request has ended), `inFlight` is
 * 0. Fails with an {@link InvariantViolation}, or returns the record.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Testing } from "effect-worker-pool/testing"
 *
 * const program = Effect.scoped(
 *   Effect.gen(function* () {
 *     const worker = yield* Testing.fakeWorker<number>(0)
 *     yield* Effect.exit(worker.dispatch(Testing.crash()))
 *     return yield* Testing.checkHealth(yield* worker.health, { settled: true })
 *   })
 * )
 * ```
 *
 * @since 0.2.0
 * @category checks
 */
export const checkHealth = (
  health: WorkerHealth,
  options?: { readonly settled?: boolean | undefined }
): Effect.Effect<WorkerHealth, InvariantViolation> =>
  Effect.suspend(() => {
    const problem = healthProblem(health, options?.settled === true, "")
    return problem === undefined ? Effect.succeed(health) : violation(problem)
  })

/**
 * The counters of a set of workers, summed.
 *
 * @example
 * ```ts
 * import type { Testing } from "effect-worker-pool/testing"
 *
 * const succeeded = (t: Testing.Totals) => t.completed - t.errored - t.interrupted
 * ```
 *
 * @since 0.2.0
 * @category checks
 */
export interface Totals {
  readonly workers: number
  readonly inFlight: number
  readonly completed: number
  readonly errored: number
  readonly timeouts: number
  readonly interrupted: number
  readonly rejected: number
  readonly crashes: number
  readonly restarts: number
}

/**
 * Checks that the workers' counters add up to what the callers saw, once
 * every request has ended. `healths` holds the final health of every worker
 * that took requests (removed ones included): `worker.health` values, or
 * `[id, health]` pairs as `pool.health` gives them. Each is checked with
 * {@link checkHealth} (settled), then the sums against `outcomes`:
 *
 * - a request counts on at most one worker, and only if it reached one:
 *   `completed + rejected` is at most the requests that were not refused,
 *   busy or timed out in the queue;
 * - every response, domain error, `WorkerCrash` naming a worker and
 *   `RequestTimeout` was counted on a worker: `completed - interrupted` is at
 *   least their number, and the rest of it (requests a worker counted as
 *   ended while their caller was interrupted or saw `PoolShutdown`) is at
 *   most `interrupted + shutdown - Σ interrupted`;
 * - `Σ interrupted <= interrupted`; `Σ errored >= domainErrors + crashed +
 *   timeouts`; the successes (`completed - errored - interrupted`) are at
 *   least `succeeded`; `Σ timeouts >= timeouts`; `Σ rejected >= rejected`.
 *
 * It assumes each request was dispatched once, without `idempotent` (a retry
 * runs a request on a second worker).
 *
 * @example
 * ```ts
 * import { Effect, Fiber } from "effect"
 * import { WorkerPool } from "effect-worker-pool"
 * import { Testing } from "effect-worker-pool/testing"
 *
 * const program = Effect.scoped(
 *   Effect.gen(function* () {
 *     const pool = yield* WorkerPool.make({ size: 2, worker: (id) => Testing.fakeWorker<number>(id) })
 *     const fibers = yield* Effect.forEach([Testing.succeed(1), Testing.crash()], (request) =>
 *       Effect.forkChild(pool.dispatch(request))
 *     )
 *     yield* Fiber.awaitAll(fibers)
 *     const outcomes = yield* Testing.checkOutcomes(fibers)
 *     return yield* Testing.checkTotals(outcomes, yield* pool.health)
 *   })
 * )
 * ```
 *
 * @since 0.2.0
 * @category checks
 */
export const checkTotals = (
  outcomes: Outcomes,
  healths: Iterable<WorkerHealth | readonly [WorkerId, WorkerHealth]>
): Effect.Effect<Totals, InvariantViolation> =>
  Effect.suspend(() => {
    const totals = {
      workers: 0,
      inFlight: 0,
      completed: 0,
      errored: 0,
      timeouts: 0,
      interrupted: 0,
      rejected: 0,
      crashes: 0,
      restarts: 0
    }
    for (const entry of healths) {
      const [label, h] = Array.isArray(entry)
        ? [`worker ${entry[0]}: `, entry[1] as WorkerHealth]
        : [`worker at index ${totals.workers}: `, entry as WorkerHealth]
      const problem = healthProblem(h, true, label)
      if (problem !== undefined) return violation(problem)
      totals.workers++
      totals.inFlight += h.inFlight
      totals.completed += h.completed
      totals.errored += h.errored
      totals.timeouts += h.timeouts
      totals.interrupted += h.interrupted
      totals.rejected += h.rejected
      totals.crashes += h.crashes
      totals.restarts += h.restarts
    }
    const o = outcomes
    const invariant = "worker counters match what callers saw"
    const seen = o.succeeded + o.domainErrors + o.crashed + o.timeouts
    const ended = totals.completed - totals.interrupted
    const late = ended - seen
    const detail = `workers ${JSON.stringify(totals)}, callers ${JSON.stringify(o)}`
    const mismatch = (what: string) => violation({ invariant, reason: `${what} (${detail})` })
    if (totals.completed + totals.rejected > o.requests - o.refused - o.busy - o.queueTimeouts) {
      return mismatch(
        `workers counted ${totals.completed + totals.rejected} requests, more than the ${o.requests - o.refused - o.busy - o.queueTimeouts} that could reach one`
      )
    }
    if (late < 0) {
      return mismatch(
        `callers saw ${seen} responses, domain errors, crashes and timeouts, but workers counted ${ended} requests that ended so`
      )
    }
    if (totals.interrupted > o.interrupted) {
      return mismatch(`workers counted ${totals.interrupted} interruptions, callers saw ${o.interrupted}`)
    }
    if (late > o.interrupted + o.shutdown - totals.interrupted) {
      return mismatch(
        `workers counted ${late} more ended requests than callers saw, but only ${o.interrupted + o.shutdown - totals.interrupted} callers were interrupted or shut out`
      )
    }
    if (totals.errored < o.domainErrors + o.crashed + o.timeouts) {
      return mismatch(
        `callers saw ${o.domainErrors + o.crashed + o.timeouts} domain errors, crashes and timeouts, workers counted ${totals.errored} errors`
      )
    }
    if (totals.completed - totals.errored - totals.interrupted < o.succeeded) {
      return mismatch(
        `callers saw ${o.succeeded} responses, workers counted ${totals.completed - totals.errored - totals.interrupted}`
      )
    }
    if (totals.timeouts < o.timeouts) {
      return mismatch(`callers saw ${o.timeouts} timeouts, workers counted ${totals.timeouts}`)
    }
    if (totals.rejected < o.rejected) {
      return mismatch(`callers saw ${o.rejected} rejected requests, workers counted ${totals.rejected}`)
    }
    return Effect.succeed(totals)
  })

/** The message of the error an exit failed with ("" for none). */
const errorMessage = (exit: Exit.Exit<unknown, unknown>): string => {
  const error = Exit.isFailure(exit) ? Cause.findErrorOption(exit.cause) : undefined
  return error?._tag === "Some" ? String((error.value as { readonly message?: unknown } | null)?.message) : ""
}

/**
 * What {@link checkRun} found: the callers' outcomes and the workers' totals.
 *
 * @example
 * ```ts
 * import type { Testing } from "effect-worker-pool/testing"
 *
 * const line = (s: Testing.RunSummary) => `${s.outcomes.requests} requests, ${s.totals.crashes} crashes`
 * ```
 *
 * @since 0.2.0
 * @category checks
 */
export interface RunSummary {
  readonly outcomes: Outcomes
  readonly totals: Totals
}

/**
 * Checks a {@link Run}: every request has one typed outcome
 * ({@link checkOutcomes}); the outcomes follow the script (only requests
 * scripted to answer answer, each with its own number, and only `"fail"`
 * requests end with a domain error); the pool stopped every worker; the
 * counters add up and match the callers ({@link checkTotals}); and each crash
 * was caused by a request scripted to crash or die, while each such request
 * whose caller saw its own crash caused one.
 *
 * @example
 * ```ts
 * import { it } from "@effect/vitest"
 * import { Effect } from "effect"
 * import { DispatchPolicy } from "effect-worker-pool"
 * import { Testing } from "effect-worker-pool/testing"
 *
 * it.effect.prop("RoundRobin keeps the pool's promises", [Testing.Commands], ([commands]) =>
 *   Effect.flatMap(Testing.runCommands(commands, { pool: { policy: DispatchPolicy.RoundRobin } }), Testing.checkRun)
 * )
 * ```
 *
 * @since 0.2.0
 * @category checks
 */
export const checkRun = (run: Run): Effect.Effect<RunSummary, InvariantViolation> =>
  Effect.gen(function* () {
    const outcomes = yield* tally(run.requests.map((r) => [`request ${r.value} (${r.behaviour})`, r.exit] as const))
    const script = "outcomes follow the script"
    /** Crashes that requests scripted to crash or die caused, as their callers saw. */
    let caused = 0
    /** Such requests whose callers saw no outcome of theirs (interrupted, shut out). */
    let unseen = 0
    for (const { behaviour, value, exit } of run.requests) {
      const kind = classify(exit!, `request ${value}`) as OutcomeKind
      const label = `request ${value} (${behaviour})`
      const crasher = behaviour === "crash" || behaviour === "die"
      if (kind === "succeeded") {
        if (behaviour === "succeed" || behaviour === "slow" || behaviour === "wait") {
          const answer = (exit as Exit.Success<number>).value
          if (answer !== value) return yield* violation({ invariant: script, reason: `${label} answered ${answer}` })
        } else return yield* violation({ invariant: script, reason: `${label} succeeded` })
      } else if (kind === "domainErrors" && behaviour !== "fail") {
        return yield* violation({ invariant: script, reason: `${label} ended with a domain error` })
      } else if (kind === "rejected") {
        return yield* violation({ invariant: script, reason: `${label} was rejected` })
      } else if (kind === "crashed" && crasher) {
        const own = behaviour === "crash" ? `request ${value} crashed` : `request ${value} died`
        if (errorMessage(exit!).includes(own)) caused++
      } else if ((kind === "interrupted" || kind === "shutdown") && crasher) {
        unseen++
      }
    }
    for (const [id, h] of run.workers) {
      if (h.state !== "Stopped") {
        return yield* violation({ invariant: "the pool stopped every worker", reason: `worker ${id} is ${h.state}` })
      }
    }
    const totals = yield* checkTotals(outcomes, run.workers)
    if (totals.crashes < caused || totals.crashes > caused + unseen) {
      return yield* violation({
        invariant: "crashes match the requests that crashed",
        reason: `workers counted ${totals.crashes} crashes; ${caused} requests saw their own crash, ${unseen} more were cut off`
      })
    }
    return { outcomes, totals }
  })
