/**
 * Scripted fake workers: a worker kind ({@link fakeKind}) and a supervised
 * worker of it ({@link fakeWorker}) whose requests do what their
 * behaviour, or a script, says (see `behaviours.ts`), and whose first
 * starts can be made to fail. A fake is a real worker of a fake kind: the
 * pool counts, supervises, restarts and ejects it as any other.
 *
 * @since 0.2.0
 */
import { Effect, type Scope } from "effect"
import * as Worker from "../Worker.ts"
import { type CrashReason, type DomainError, type InvalidOptions, StartFailed, WorkerCrash } from "../WorkerError.ts"
import type { WorkerId } from "../WorkerId.ts"
import type * as WorkerKind from "../WorkerKind.ts"
import type { Behaviour, Script } from "./behaviours.ts"

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
