/**
 * A dispatch policy with bugs on purpose: it wraps a built-in policy and,
 * for the requests a plan marks, throws, returns `undefined` (wait) a few
 * times, or picks a worker it was not offered. The documented contract
 * (docs/policies.md, docs/errors.md): a policy bug fails that request with a
 * defect; `undefined` lets it wait until the pool asks again.
 */
import { DispatchPolicy, WorkerId } from "effect-worker-pool"
import type { PolicyBug, PolicyName } from "./plan.ts"

/** The built-in policy of each name. */
export const builtIn = (name: PolicyName): DispatchPolicy.DispatchPolicy<any, unknown> => {
  switch (name) {
    case "RoundRobin":
      return DispatchPolicy.RoundRobin
    case "LeastLoaded":
      return DispatchPolicy.LeastLoaded
    case "LeastLoadedRandom":
      return DispatchPolicy.LeastLoadedRandom
    case "Random":
      return DispatchPolicy.Random
    case "PowerOfTwoChoices":
      return DispatchPolicy.PowerOfTwoChoices
    case "WorkPulling":
      return DispatchPolicy.WorkPulling
    case "PeakEwma":
      return DispatchPolicy.PeakEwma()
    case "ShortestExpectedDelay":
      return DispatchPolicy.ShortestExpectedDelay()
  }
}

/** A worker id no pool of the fuzzer ever has. */
export const outsideId = WorkerId.make(999_999)

/**
 * `base`, with the bugs `bugs` holds for some requests (by identity), and,
 * when `learnThrows`, an `onResult` that throws every time. Its name says
 * it is buggy, so that a defect naming it can be told apart.
 */
export const buggy = <S>(
  base: DispatchPolicy.DispatchPolicy<S, unknown>,
  bugs: WeakMap<object, PolicyBug>,
  learnThrows = false
): DispatchPolicy.DispatchPolicy<S, unknown> => {
  const asked = new WeakMap<object, number>()
  const name = `Buggy${base.name}`
  return DispatchPolicy.make<S, unknown>({
    name,
    initial: base.initial,
    select: (input) => {
      const request = input.request
      const bug = typeof request === "object" && request !== null ? bugs.get(request) : undefined
      if (bug !== undefined) {
        switch (bug._tag) {
          case "Throw":
            throw new Error(`dispatch policy ${name} threw, on purpose`)
          case "Outside":
            return { worker: outsideId, state: input.state }
          case "Undefined": {
            const n = asked.get(request as object) ?? 0
            if (n < bug.asks) {
              asked.set(request as object, n + 1)
              return { worker: undefined, state: input.state }
            }
          }
        }
      }
      return base.select(input)
    },
    ...(learnThrows
      ? {
          onResult: () => {
            throw new Error(`dispatch policy ${name} threw from onResult, on purpose`)
          }
        }
      : base.onResult === undefined
        ? {}
        : { onResult: base.onResult })
  })
}
