/**
 * Shared test doubles: a request that tells the handler what to do, and a
 * fiber counter that proves no fiber outlives a scope.
 */
import { Cause, Deferred, Effect, Exit, Metric, Option } from "effect"
import { DispatchPolicy, DomainError, WorkerCrash } from "effect-worker-pool"

/** What the test handler does with a request. */
export type Behaviour =
  | { readonly _tag: "Ok"; readonly value: number }
  | { readonly _tag: "Domain" }
  | { readonly _tag: "Crash" }
  | { readonly _tag: "Die" }
  | { readonly _tag: "Throw" }
  | { readonly _tag: "Wait"; readonly gate: Deferred.Deferred<number> }

export const ok = (value: number): Behaviour => ({ _tag: "Ok", value })
export const domain: Behaviour = { _tag: "Domain" }
export const crash: Behaviour = { _tag: "Crash" }
export const die: Behaviour = { _tag: "Die" }
export const thrown: Behaviour = { _tag: "Throw" }
export const wait = (gate: Deferred.Deferred<number>): Behaviour => ({ _tag: "Wait", gate })

/** A handler driven by the request itself. */
export const handler = (request: Behaviour): Effect.Effect<number, DomainError | WorkerCrash> => {
  switch (request._tag) {
    case "Ok":
      return Effect.sync(() => request.value)
    case "Domain":
      return Effect.fail(new DomainError({ reason: "bad request" }))
    case "Crash":
      return Effect.fail(WorkerCrash.report("engine failed"))
    case "Die":
      return Effect.die(new Error("boom"))
    case "Throw":
      return Effect.sync(() => {
        throw new TypeError("thrown in handler")
      })
    case "Wait":
      return Deferred.await(request.gate)
  }
}

/**
 * Counts child fibers started and ended under `effect`, through Effect's fiber
 * runtime metrics hook. After `effect` has returned, `active()` is the number
 * of fibers it left running.
 */
export const countFibers = Effect.sync(() => {
  let started = 0
  let ended = 0
  const service: Metric.FiberRuntimeMetricsService = {
    recordFiberStart: () => {
      started++
    },
    recordFiberEnd: () => {
      ended++
    }
  }
  return {
    started: () => started,
    active: () => started - ended,
    track: <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      Effect.provideService(effect, Metric.FiberRuntimeMetrics, service)
  }
})

/** The typed error an exit failed with, if any. */
export const errorOf = <A, E>(exit: Exit.Exit<A, E>): E | undefined =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.findErrorOption(exit.cause)) : undefined

/** The reason of a `WorkerCrash`, or the tag of any other error. */
export const reasonOf = (error: { readonly _tag: string }): string =>
  error instanceof WorkerCrash ? error.reason.message : error._tag

/** Every built-in policy, fresh; `ConsistentHash` keys requests with `key`. */
export const everyPolicy = <Req>(
  key: (request: Req) => string
): ReadonlyArray<DispatchPolicy.DispatchPolicy<any, Req>> => [
  DispatchPolicy.RoundRobin,
  DispatchPolicy.LeastLoaded,
  DispatchPolicy.LeastLoadedRandom,
  DispatchPolicy.Random,
  DispatchPolicy.PowerOfTwoChoices,
  DispatchPolicy.PeakEwma(),
  DispatchPolicy.ShortestExpectedDelay(),
  DispatchPolicy.WorkPulling,
  DispatchPolicy.ConsistentHash({ key })
]
