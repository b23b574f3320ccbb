/**
 * Selection: which worker takes a request. It keeps the roster of workers a
 * policy may pick (live, a free slot, not ejected unless the pool is in
 * panic), runs the policy over it, and sends exactly one probe to an ejected
 * worker whose penalty is over. A pick takes the slot in the same step, so
 * that nothing changes between the decision and its effect.
 */
import type { DispatchPolicy } from "../../DispatchPolicy.ts"
import type { WorkerId } from "../../WorkerId.ts"
import { type EjectionRules, inPanic } from "../ejection.ts"
import type { Request } from "../request.ts"
import { Roster } from "../roster.ts"
import type { Member, Membership } from "./membership.ts"

export class Selection<Req, Resp, E> {
  private readonly roster = new Roster()
  private policyState: unknown
  private panic = false
  /** Members under an ejection (live or not), for their probes. */
  readonly ejected = new Set<Member<Req, Resp, E>>()

  private readonly membership: Membership<Req, Resp, E>
  readonly policy: DispatchPolicy<any, Req>
  private readonly rules: EjectionRules | undefined
  private readonly now: () => number

  constructor(
    membership: Membership<Req, Resp, E>,
    policy: DispatchPolicy<any, Req>,
    rules: EjectionRules | undefined,
    random: () => number,
    now: () => number
  ) {
    this.membership = membership
    this.policy = policy
    this.rules = rules
    this.now = now
    this.policyState = policy.initial()
    this.input = { view: this.roster, state: undefined, random, now: 0, request: undefined }
  }

  /**
   * The member whose slot the last pick took, not yet placed in the roster
   * anew. A request that runs and ends before the next pick (the common case
   * of a handler that answers at once) leaves its worker as it found it, so
   * the roster is told only when a pick comes first: the policy never sees
   * it out of date, and the roster is not changed twice for nothing.
   */
  private picked: Member<Req, Resp, E> | undefined = undefined

  /** Places the member the last pick took in the roster, if that is still owed. */
  private settlePicked(): void {
    const member = this.picked
    if (member === undefined) return
    this.picked = undefined
    if (member.rank !== -1) this.place(member)
  }

  /** Whether some worker could take a request now. */
  get hasEligible(): boolean {
    this.settlePicked()
    return this.roster.size > 0
  }

  /** Rebuilds the roster after a change of membership. */
  reset(): void {
    this.picked = undefined
    const members = this.membership.members
    this.roster.reset(
      members.map((member) => ({
        id: member.worker.id,
        maxInFlight: member.core.limit,
        health: member.core.health
      }))
    )
    this.ejected.clear()
    for (const member of members) if (member.core.health.ejectedUntil !== undefined) this.ejected.add(member)
    this.panic = this.inPanic()
    for (const member of members) this.place(member)
  }

  /** Follows a change of a member's health: its place in the roster, the ejections, panic. */
  refresh(member: Member<Req, Resp, E>): void {
    if (this.picked === member) this.picked = undefined
    else this.settlePicked()
    if (member.rank === -1) return
    if (member.core.health.ejectedUntil !== undefined) this.ejected.add(member)
    else if (this.ejected.size > 0) this.ejected.delete(member)
    const panic = this.inPanic()
    if (panic !== this.panic) {
      this.panic = panic
      for (const other of this.ejected) this.place(other)
    }
    this.place(member)
  }

  private inPanic(): boolean {
    return this.rules !== undefined && inPanic(this.rules, this.membership.healthy, this.membership.members.length)
  }

  /** A policy may pick a live worker with a free slot, and an ejected one only in panic. */
  private place(member: Member<Req, Resp, E>): void {
    const health = member.core.health
    const eligible =
      health.isLive &&
      health.inFlight < member.core.limit &&
      (health.ejectedUntil === undefined || this.panic) &&
      !member.core.paused
    this.roster.update(member.rank, eligible, health)
  }

  /** An ejected worker whose penalty is over and that may take its one probe now. */
  private dueProbe(t: number, exclude: Member<Req, Resp, E> | undefined): Member<Req, Resp, E> | undefined {
    if (this.ejected.size === 0) return undefined
    for (const member of this.ejected) {
      const health = member.core.health
      if (
        member !== exclude &&
        health.isLive &&
        health.ejectedUntil! <= t &&
        health.inFlight === 0 &&
        !member.probing
      ) {
        return member
      }
    }
    return undefined
  }

  /** The policy's pick among the eligible workers, or `undefined` (the request waits). */
  private choose(request: Req | undefined, now: number, exclude: Member<Req, Resp, E> | undefined) {
    this.settlePicked()
    // A worker removed meanwhile is not in the roster: nothing to hide.
    if (exclude === undefined || exclude.rank === -1) return this.ask(request, now)
    this.roster.update(exclude.rank, false, exclude.core.health)
    try {
      return this.ask(request, now)
    } finally {
      if (exclude.rank !== -1) this.place(exclude)
    }
  }

  /**
   * What a policy is given for one pick: one object, filled anew for each
   * pick (a policy reads it during `select`; see `DispatchPolicy.SelectionInput`).
   */
  private readonly input: { view: Roster; state: unknown; random: () => number; now: number; request: Req | undefined }

  private ask(request: Req | undefined, now: number): Member<Req, Resp, E> | undefined {
    if (this.roster.size === 0) return undefined
    const input = this.input
    input.state = this.policyState
    input.now = now
    input.request = request
    const selection = this.policy.select(input)
    input.request = undefined
    this.policyState = selection.state
    if (selection.worker === undefined) return undefined
    const rank = this.roster.eligibleRank(selection.worker)
    if (rank === -1) {
      throw new RangeError(
        `dispatch policy ${this.policy.name} picked worker ${selection.worker}, which is not one it was offered`
      )
    }
    return this.membership.members[rank]!
  }

  /**
   * Picks a worker for `request` at `now` and takes a slot on it: a due
   * probe of an ejected worker first, else the policy's pick. `exclude`: a
   * worker not to pick (the one a retry leaves). A policy that throws, or
   * picks a worker it was not offered, throws.
   */
  pick(request: Request<Req>, now: number, exclude?: Member<Req, Resp, E>): Member<Req, Resp, E> | undefined {
    const probe = this.dueProbe(now, exclude)
    if (probe !== undefined) {
      // Half-open: exactly one probe decides the worker's fate.
      if (!probe.core.take(request)) return undefined
      probe.probing = true
      request.probe = true
      this.place(probe)
      return probe
    }
    const member = this.choose(request.payload, now, exclude)
    if (member === undefined || !member.core.take(request)) return undefined
    // Placed anew at the next pick, or at once if its request ends first.
    this.picked = member
    return member
  }

  /** The worker a request would go to now, without taking a slot (for `select`). */
  peek(): Member<Req, Resp, E> | undefined {
    const now = this.now()
    return this.dueProbe(now, undefined) ?? this.choose(undefined, now, undefined)
  }

  /** Whether the policy learns from results (then a request's end is timed). */
  get learns(): boolean {
    return this.policy.onResult !== undefined
  }

  /** Lets the policy learn from a request that reached a worker. */
  learn(member: Member<Req, Resp, E>, millis: number, failed: boolean, now: number): void {
    const onResult = this.policy.onResult
    if (onResult === undefined || member.rank === -1) return
    const result = this.result
    result.worker = member.worker.id
    result.millis = millis
    result.failed = failed
    result.now = now
    this.policyState = onResult(this.policyState, result)
  }

  /** What a policy learns from one result: one object, filled anew for each (see `DispatchPolicy.Result`). */
  private readonly result = { worker: 0 as WorkerId, millis: 0, failed: false, now: 0 }
}
