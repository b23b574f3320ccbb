/**
 * The pool's members: the workers it routes to, sorted by id, and what the
 * pool counts about them (how many are healthy, or can come back),
 * kept up to date one change at a time.
 */
import type { Worker } from "../../Worker.ts"
import type { WorkerHealth, WorkerState } from "../../WorkerHealth.ts"
import type { WorkerId } from "../../WorkerId.ts"
import type { WorkerCore } from "../worker.ts"

export interface Member<Req, Resp, E> {
  readonly worker: Worker<Req, Resp, E>
  readonly core: WorkerCore<Req, Resp, E>
  /** Its position in id order; -1 once removed. */
  rank: number
  /** Ejections in a row, without a healthy period in between. */
  streak: number
  readmittedAt: number | undefined
  /** A probe request is on its way to this ejected worker. */
  probing: boolean
  /** What the counts hold of it: bit 1 healthy, bit 2 can come back. */
  counted: number
  /** The state last published on `changes`. */
  published: string
}

const HEALTHY = 1
const CAN_COME_BACK = 2

const flagsOf = (health: WorkerHealth & { readonly canComeBack: boolean }): number =>
  (health.state === "Healthy" ? HEALTHY : 0) | (health.canComeBack ? CAN_COME_BACK : 0)

/** What `changes` publishes a change for: the state, the restart attempt, the ejection, a recycle. */
const signature = (health: WorkerHealth): string =>
  `${health.state}:${health.attempt}:${health.ejectedUntil ?? ""}:${health.recycles ?? 0}`

export class Membership<Req, Resp, E> {
  /** Every member, sorted by id. */
  members: ReadonlyArray<Member<Req, Resp, E>> = []
  healthy = 0
  canComeBack = 0

  find(id: WorkerId): Member<Req, Resp, E> | undefined {
    return this.members.find((member) => member.worker.id === id)
  }

  add(worker: Worker<Req, Resp, E>, core: WorkerCore<Req, Resp, E>): Member<Req, Resp, E> {
    const member: Member<Req, Resp, E> = {
      worker,
      core,
      rank: 0,
      streak: 0,
      readmittedAt: undefined,
      probing: false,
      counted: 0,
      published: signature(core.health)
    }
    this.members = [...this.members, member].sort((a, b) => a.worker.id - b.worker.id)
    this.members.forEach((m, rank) => {
      m.rank = rank
    })
    this.recount(member)
    return member
  }

  remove(member: Member<Req, Resp, E>): void {
    this.members = this.members.filter((m) => m !== member)
    this.members.forEach((m, rank) => {
      m.rank = rank
    })
    member.rank = -1
    this.apply(member, 0)
  }

  /**
   * Brings the counts up to date with the member's health. Returns the
   * member's health if its state changed since it was last published.
   */
  recount(member: Member<Req, Resp, E>): WorkerHealth | undefined {
    if (member.rank === -1) return undefined
    const health = member.core.health
    this.apply(member, flagsOf(health))
    const published = signature(health)
    if (published === member.published) return undefined
    member.published = published
    return health.snapshot()
  }

  private apply(member: Member<Req, Resp, E>, flags: number) {
    const before = member.counted
    if (before === flags) return
    this.healthy += ((flags & HEALTHY) - (before & HEALTHY)) / HEALTHY
    this.canComeBack += ((flags & CAN_COME_BACK) - (before & CAN_COME_BACK)) / CAN_COME_BACK
    member.counted = flags
  }

  /** Why no worker can take a request now and none is coming back. */
  noWorkerReason(): string {
    if (this.members.length === 0) return "no worker available: the pool is empty"
    const states = new Map<string, number>()
    for (const member of this.members) {
      const h = member.core.health
      const label = labelOf(h.state, h.retiredBecause, h.failedStarts, h.lastCrash?.reason)
      states.set(label, (states.get(label) ?? 0) + 1)
    }
    const summary = [...states].map(([state, n]) => `${n} ${state}`).join(", ")
    return `no worker available: none of the ${this.members.length} workers can take a request or is coming back (${summary})`
  }
}

const labelOf = (
  state: WorkerState,
  retiredBecause: string | undefined,
  failedStarts: number,
  lastReason: string | undefined
): string => {
  if (state === "Retired" && retiredBecause !== undefined) return `Retired (${retiredBecause})`
  if ((state === "Restarting" || state === "Starting") && failedStarts > 0) {
    return `failing to start (${lastReason ?? "unknown reason"})`
  }
  return state
}
