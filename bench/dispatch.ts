/**
 * In-process dispatch: what a pool of 4 in-process workers, made with the
 * library's defaults, costs per request, as ratios to Effect's own `Pool` and
 * to a bare call of the handler, in two caller shapes: one caller in a loop,
 * and 64 concurrent callers. Each round runs every variant once; the ratios
 * are taken within a round, and their medians over the rounds are reported.
 * Goals: dispatch / `Pool.use` at most 1.3, dispatch / bare call at most 5,
 * in a run whose rounds agree (every round's ratio within ±20 % of the median).
 *
 * Beside it, every listed policy under 64 concurrent callers, against
 * `Pool.use` in the same rounds; and a one-operation group called through
 * the pool's client against the single form of the same task (`{ a, b } →
 * a + b`), in both caller shapes (goal: the group's time per request at most
 * 1.1 × the single form's).
 */
import { Effect, Exit, Pool, Scope } from "effect"
import { Worker, WorkerPool } from "effect-worker-pool"
import { policies } from "../sim/policies.ts"
import { cpuTimed, interleave, type Loop, nanosPerOperation, ratio, type Spread, spread } from "./rounds.ts"
import { Summing } from "./workers/schemas.ts"

/** The goals: dispatch costs at most this many times `Pool.use`, and at most this many times a bare call. */
export const dispatchGoals = { poolUse: 1.3, bareCall: 5 } as const

/** The goal: a call of a one-operation group costs at most this many times the single form's dispatch. */
export const groupDispatchGoal = 1.1

/** How many callers the concurrent shape runs at once. */
export const concurrentCallers = 64

/** The trivial handler: `Effect.sync`, so that no shortcut for a ready value flatters the figures. */
const handler = (x: number) => Effect.sync(() => x + 1)

type One = (x: number) => Effect.Effect<unknown, unknown>

/** One caller: a loop of `yield* one(i)`. */
const sequential =
  (one: One): Loop =>
  (iterations) =>
    cpuTimed(() =>
      Effect.runPromise(
        Effect.gen(function* () {
          for (let i = 0; i < iterations; i++) yield* one(i)
        })
      )
    )

/** 64 callers at a time: `Effect.forEach` over the requests with `concurrency: 64`. */
const concurrent =
  (one: One): Loop =>
  (iterations) => {
    const items = Array.from({ length: iterations }, (_, i) => i)
    return cpuTimed(() =>
      Effect.runPromise(Effect.forEach(items, one, { concurrency: concurrentCallers, discard: true }))
    )
  }

/** One caller shape's figures. */
export interface DispatchRow {
  readonly shape: string
  /** Nanoseconds per request of `pool.dispatch`, `Pool.use` and the bare call. */
  readonly dispatch: Spread
  readonly poolUse: Spread
  readonly bare: Spread
  /** Per-round ratios. */
  readonly toPoolUse: Spread
  readonly toBare: Spread
}

/** One policy's figures under 64 concurrent callers. */
export interface PolicyRow {
  readonly policy: string
  readonly dispatch: Spread
  readonly toPoolUse: Spread
}

/** A one-operation group against the single form of the same task, in one caller shape. */
export interface GroupRow {
  readonly shape: string
  /** Nanoseconds per request of the single form and of the group's client. */
  readonly single: Spread
  readonly group: Spread
  /** Per-round ratios of the time per request, group / single. */
  readonly groupToSingle: Spread
}

/** What the section measured, and the name of the default policy. */
export interface DispatchResult {
  readonly defaultPolicy: string
  readonly shapes: ReadonlyArray<DispatchRow>
  readonly policies: ReadonlyArray<PolicyRow>
  readonly groups: ReadonlyArray<GroupRow>
}

/** The task of the group comparison, as both forms take it. */
const sum = (task: { readonly a: number; readonly b: number }) => Effect.sync(() => task.a + task.b)

/**
 * The single form of the task and a one-operation group of it (`Summing`),
 * each a pool of 4 with the defaults: `rounds` interleaved rounds in both
 * caller shapes.
 */
const measureGroups = async (scope: Scope.Scope, rounds: number, targetMillis: number): Promise<Array<GroupRow>> => {
  const single = await Effect.runPromise(
    WorkerPool.make({ size: 4, worker: (id) => Worker.make(id, sum) }).pipe(Scope.provide(scope))
  )
  const client = await Effect.runPromise(
    Effect.gen(function* () {
      const pool = yield* WorkerPool.make({ size: 4, worker: (id) => Worker.fromGroup(id, Summing, { Sum: sum }) })
      return yield* WorkerPool.client(pool, Summing)
    }).pipe(Scope.provide(scope))
  )
  const singleCall: One = (x) => single.dispatch({ a: x, b: 1 })
  const groupCall: One = (x) => client.Sum({ a: x, b: 1 })
  const ns = await interleave(
    await nanosPerOperation(
      [sequential(singleCall), sequential(groupCall), concurrent(singleCall), concurrent(groupCall)],
      targetMillis
    ),
    rounds
  )
  return (
    [
      ["sequential (one caller)", 0],
      [`concurrent (${concurrentCallers} callers)`, 2]
    ] as const
  ).map(([shape, at]) => {
    const row = {
      shape,
      single: spread(ns[at]!),
      group: spread(ns[at + 1]!),
      groupToSingle: ratio(ns[at + 1]!, ns[at]!)
    }
    console.log(`dispatch, ${shape}: a one-operation group / the single form ${row.groupToSingle.median.toFixed(2)}`)
    return row
  })
}

/** Measures both caller shapes, then every policy: `rounds` interleaved rounds of about `targetMillis` per variant. */
export const measureDispatch = async (rounds: number, targetMillis: number): Promise<DispatchResult> => {
  const scope = Scope.makeUnsafe()
  try {
    const pool = await Effect.runPromise(
      WorkerPool.make({ size: 4, worker: (id) => Worker.make(id, handler) }).pipe(Scope.provide(scope))
    )
    const effectPool = await Effect.runPromise(
      Pool.make({ acquire: Effect.succeed(handler), size: 4 }).pipe(Scope.provide(scope))
    )
    const dispatch: One = (x) => pool.dispatch(x)
    const poolUse: One = (x) => Pool.use(effectPool, (h) => h(x))

    const shapes: Array<DispatchRow> = []
    const loops = [
      sequential(dispatch),
      sequential(poolUse),
      sequential(handler),
      concurrent(dispatch),
      concurrent(poolUse),
      concurrent(handler)
    ]
    const ns = await interleave(await nanosPerOperation(loops, targetMillis), rounds)
    for (const [shape, at] of [
      ["sequential (one caller)", 0],
      [`concurrent (${concurrentCallers} callers)`, 3]
    ] as const) {
      const [d, p, b] = [ns[at]!, ns[at + 1]!, ns[at + 2]!]
      shapes.push({
        shape,
        dispatch: spread(d),
        poolUse: spread(p),
        bare: spread(b),
        toPoolUse: ratio(d, p),
        toBare: ratio(d, b)
      })
      const row = shapes.at(-1)!
      console.log(
        `dispatch, ${shape}: ${row.dispatch.median.toFixed(0)} ns; / Pool.use ${row.toPoolUse.median.toFixed(2)}; / bare call ${row.toBare.median.toFixed(2)}`
      )
    }

    const groups = await measureGroups(scope, rounds, targetMillis)

    const policyPools = []
    for (const entry of policies) {
      const p = await Effect.runPromise(
        WorkerPool.make({ policy: entry.policy, size: 4, worker: (id) => Worker.make(id, handler) }).pipe(
          Scope.provide(scope)
        )
      )
      policyPools.push(concurrent((x) => p.dispatch(x)))
    }
    const perPolicy = await interleave(
      await nanosPerOperation([concurrent(poolUse), ...policyPools], targetMillis),
      rounds
    )
    const policyRows = policies.map((entry, i) => ({
      policy: entry.label,
      dispatch: spread(perPolicy[i + 1]!),
      toPoolUse: ratio(perPolicy[i + 1]!, perPolicy[0]!)
    }))
    for (const row of policyRows) {
      console.log(
        `dispatch, ${row.policy}: ${row.dispatch.median.toFixed(0)} ns; / Pool.use ${row.toPoolUse.median.toFixed(2)}`
      )
    }
    return { defaultPolicy: pool.policy, shapes, policies: policyRows, groups }
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
}
