/**
 * Outcomes: what a settled request says about its worker. The policy learns
 * its latency; passive ejection takes a worker that keeps failing out of
 * rotation, and its one probe decides its fate when the penalty is over; the
 * retry budget caps the retries of idempotent requests.
 */
import { Cause, Effect } from "effect"
import { type EjectionRules, penaltyMillis, shouldEject } from "../ejection.ts"
import type { Outcome } from "../request.ts"
import { makeRetryBudget, type RetryBudget } from "../retryBudget.ts"
import type { Member, Membership } from "./membership.ts"
import type { Selection } from "./selection.ts"

export interface OutcomeHooks {
  readonly now: () => number
  readonly random: () => number
  /** Runs `effect` on a fiber of the pool (logs, penalty timers). */
  readonly background: (effect: Effect.Effect<void>) => void
  /** Offers free slots to the waiting requests (a step of the pool's own). */
  readonly serve: () => void
}

export class Outcomes<Req, Resp, E> {
  readonly budget: RetryBudget
  private readonly membership: Membership<Req, Resp, E>
  private readonly selection: Selection<Req, Resp, E>
  private readonly rules: EjectionRules | undefined
  private readonly hooks: OutcomeHooks

  constructor(
    membership: Membership<Req, Resp, E>,
    selection: Selection<Req, Resp, E>,
    rules: EjectionRules | undefined,
    retry: { readonly share: number; readonly minPerWindow: number; readonly windowMillis: number },
    hooks: OutcomeHooks
  ) {
    this.membership = membership
    this.selection = selection
    this.rules = rules
    this.hooks = hooks
    this.budget = makeRetryBudget(retry)
  }

  /**
   * Follows a request that ended on `member` with `outcome` at `now`, after
   * `millis` on it. `known`: its run time is known (a failure is learnt from
   * whatever it says).
   */
  settled(member: Member<Req, Resp, E>, outcome: Outcome, millis: number, now: number, known: boolean): void {
    const failed = outcome === "crashed" || outcome === "timedOut"
    const answered = outcome === "succeeded" || outcome === "domainError"
    if ((failed || (answered && known)) && this.selection.learns) {
      try {
        this.selection.learn(member, millis, failed, now)
      } catch (defect) {
        this.policyFailed(defect)
      }
    }
    const rules = this.rules
    if (rules === undefined || member.rank === -1) return
    if (member.probing) {
      member.probing = false
      if (answered) this.readmit(member)
      else if (failed) {
        member.core.setEjection(undefined)
        this.eject(member, rules)
      }
    } else if (
      failed &&
      shouldEject(rules, member.core.health, this.selection.ejected.size, this.membership.members.length)
    ) {
      this.eject(member, rules)
    }
  }

  /** The policy's `onResult` threw: nothing else changes (it keeps its state); said once, loudly. */
  private policyFailed(defect: unknown): void {
    if (this.policyFailedOnce) return
    this.policyFailedOnce = true
    this.hooks.background(
      Effect.logError(
        `dispatch policy ${this.selection.policy.name} threw from onResult: it keeps its state, and the pool goes on (said once)`,
        Cause.die(defect)
      )
    )
  }

  private policyFailedOnce = false

  /** A probe's slot was given back unused: a later request may probe instead. */
  probeReturned(member: Member<Req, Resp, E>): void {
    member.probing = false
  }

  private eject(member: Member<Req, Resp, E>, rules: EjectionRules): void {
    const t = this.hooks.now()
    const healthySince = member.readmittedAt
    member.streak = healthySince !== undefined && t - healthySince >= rules.baseMillis ? 1 : member.streak + 1
    const penalty = penaltyMillis(rules, member.streak, this.hooks.random())
    member.core.setEjection(t + penalty)
    const serve = this.hooks.serve
    this.hooks.background(
      Effect.logWarning("worker ejected").pipe(
        Effect.annotateLogs({ workerId: member.worker.id, penaltyMillis: penalty }),
        // When the penalty is over, a waiting request may probe it.
        Effect.andThen(Effect.sleep(penalty)),
        Effect.andThen(Effect.sync(serve))
      )
    )
  }

  private readmit(member: Member<Req, Resp, E>): void {
    member.core.setEjection(undefined)
    member.readmittedAt = this.hooks.now()
    this.hooks.background(Effect.logInfo("worker readmitted").pipe(Effect.annotateLogs({ workerId: member.worker.id })))
  }
}
