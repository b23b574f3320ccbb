/**
 * Generators for property tests, as Schemas that `it.prop` and
 * `it.effect.prop` of `@effect/vitest` (or `Arbitrary.schema`) take: the
 * views a pool can offer a policy ({@link candidates}), and sequences of
 * commands against a pool ({@link Commands}), which `runCommands` plays.
 *
 * @since 0.2.0
 */
import { Schema } from "effect"
import type * as DispatchPolicy from "../DispatchPolicy.ts"
import { schema as candidatesSchema } from "../internal/testing/candidates.ts"

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
