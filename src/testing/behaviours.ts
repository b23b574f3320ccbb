/**
 * What a fake worker does with a request: the behaviours (answer, fail with
 * a domain error, crash, die, hang, answer late, wait for a cue) and the
 * scripts that choose one for each request (from the request itself, or
 * from its position: {@link sequence}, {@link everyNth}). The fakes that
 * play them are in `fakes.ts`.
 *
 * @since 0.2.0
 */
import { type Duration, Effect } from "effect"
import { type CrashReason, DomainError, Reported } from "../WorkerError.ts"

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
