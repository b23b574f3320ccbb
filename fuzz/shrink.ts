/**
 * Shrinking: a failing plan made smaller while it still shows the same
 * finding, by taking out runs of steps, halving their length each time no
 * run of that length can go (the first pass of delta debugging). Only plans
 * in virtual time shrink: they replay the same way each time; a thread or
 * subprocess plan meets a different timing on every run.
 */
import { Effect } from "effect"
import type { Finding } from "./checks.ts"
import type { Plan } from "./plan.ts"

export interface Shrunk {
  readonly plan: Plan
  readonly findings: ReadonlyArray<Finding>
  /** Plans tried. */
  readonly attempts: number
}

/**
 * Shrinks `plan`, whose findings under `judge` include one that `same`
 * accepts, within `attempts` tries and `millis` of real time.
 */
export const shrink = (
  plan: Plan,
  same: (finding: Finding) => boolean,
  judge: (plan: Plan) => Effect.Effect<ReadonlyArray<Finding>>,
  limits: { readonly attempts: number; readonly millis: number }
): Effect.Effect<Shrunk | undefined> =>
  Effect.gen(function* () {
    const began = performance.now()
    let attempts = 0
    let best: Shrunk | undefined
    const breaks = (candidate: Plan) =>
      Effect.map(judge(candidate), (findings) => {
        attempts++
        const kept = findings.filter(same)
        if (kept.length === 0) return false
        best = { plan: candidate, findings: kept, attempts }
        return true
      })
    const within = () => attempts < limits.attempts && performance.now() - began < limits.millis
    let steps = plan.steps
    let chunk = Math.max(1, Math.ceil(steps.length / 2))
    while (within()) {
      let progressed = false
      for (let i = 0; i < steps.length && within(); ) {
        const candidate = [...steps.slice(0, i), ...steps.slice(i + chunk)]
        if (yield* breaks({ ...plan, steps: candidate })) {
          steps = candidate
          progressed = true
        } else {
          i += chunk
        }
      }
      if (!progressed) {
        if (chunk === 1) break
        chunk = Math.max(1, Math.floor(chunk / 2))
      }
    }
    return best === undefined ? undefined : { ...(best as Shrunk), attempts }
  })
