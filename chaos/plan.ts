/**
 * The plan of a chaos run: every decision it makes, drawn in advance from
 * its seed. The same seed and settings give the same plan, step for step:
 * which request carries which fault, when a process is killed, when a worker
 * is added or removed and of what kind, and when a caller is interrupted.
 *
 * What a step meets when it runs (which processes are up, which workers are
 * members) depends on timing; the choice among them is still the plan's, a
 * number in [0, 1) drawn here.
 */

import { makeRng } from "../sim/random.ts"
import type { Job } from "./jobs.ts"

/** The faults a run injects, each `faults` times. */
export const faultNames = ["crash", "exit", "kill", "hang", "domain", "interrupt", "add", "remove"] as const

/** One of the faults a run injects. */
export type FaultName = (typeof faultNames)[number]

/** The kinds of worker a pool mixes. */
export type KindName = "thread" | "subprocess"

/** One step of a plan. */
export type Step =
  | {
      readonly _tag: "Request"
      /** Its position among the requests, from 0. */
      readonly index: number
      readonly job: Job
      /** The fault the request carries, if any. */
      readonly fault: "crash" | "exit" | "hang" | "domain" | "interrupt" | undefined
      /** Given to hanging requests only, so that they end with `RequestTimeout`. */
      readonly timeoutMillis: number | undefined
      /** For `interrupt`: how long after the dispatch began its caller is interrupted (its request never ends on its own). */
      readonly interruptAfterMillis: number | undefined
    }
  /** SIGKILL one live worker process, the `pick`-th of the pool's, from outside the pool. */
  | { readonly _tag: "Kill"; readonly pick: number }
  /** Adds a new worker: of this kind when the pool holds as many of each, else of the kind it holds fewer of. */
  | { readonly _tag: "Add"; readonly kind: KindName }
  /** Removes the `pick`-th retired member of the pool, or if none is retired the `pick`-th member. */
  | { readonly _tag: "Remove"; readonly pick: number }

/** What a plan is drawn from. */
export interface PlanSettings {
  readonly seed: number
  /** One stream of the seed per run, so that the runs of one seed differ. */
  readonly stream: number
  readonly requests: number
  /** How many times each fault is injected. */
  readonly faults: number
  readonly hangTimeoutMillis: number
}

/** The faults carried by requests, in the order their positions are dealt. */
const requestFaults = ["crash", "exit", "hang", "domain", "interrupt"] as const

/**
 * Draws the plan: `requests` requests, of which `faults` carry each request
 * fault (at positions dealt by a seeded shuffle), and `faults` kills, adds
 * and removes at seeded moments among them. Adds and removes alternate,
 * a remove first, so that the pool's size stays near where it started.
 */
export const makePlan = (settings: PlanSettings): ReadonlyArray<Step> => {
  const { requests, faults } = settings
  if (requestFaults.length * faults > requests) {
    throw new RangeError(`${requests} requests cannot carry ${faults} of each of ${requestFaults.length} faults`)
  }
  const random = makeRng(settings.seed, settings.stream)
  const below = (n: number) => Math.floor(random() * n)

  // Which request carries which fault: the first positions of a shuffle.
  const positions = Array.from({ length: requests }, (_, i) => i)
  for (let i = requests - 1; i > 0; i--) {
    const j = below(i + 1)
    ;[positions[i], positions[j]] = [positions[j]!, positions[i]!]
  }
  const faultAt = new Map<number, (typeof requestFaults)[number]>()
  requestFaults.forEach((fault, k) => {
    for (const position of positions.slice(k * faults, (k + 1) * faults)) faultAt.set(position, fault)
  })

  // Which actions come before which request.
  const actionsBefore = new Map<number, Array<"Kill" | "Membership">>()
  const schedule = (action: "Kill" | "Membership") => {
    const at = below(requests)
    actionsBefore.set(at, [...(actionsBefore.get(at) ?? []), action])
  }
  for (let k = 0; k < faults; k++) schedule("Kill")
  for (let k = 0; k < 2 * faults; k++) schedule("Membership")

  const steps: Array<Step> = []
  let memberships = 0
  for (let index = 0; index < requests; index++) {
    for (const action of actionsBefore.get(index) ?? []) {
      if (action === "Kill") steps.push({ _tag: "Kill", pick: random() })
      else if (memberships++ % 2 === 0) steps.push({ _tag: "Remove", pick: random() })
      else steps.push({ _tag: "Add", kind: random() < 0.5 ? "thread" : "subprocess" })
    }
    steps.push(requestStep(index, faultAt.get(index), random, settings.hangTimeoutMillis))
  }
  return steps
}

const requestStep = (
  index: number,
  fault: (typeof requestFaults)[number] | undefined,
  random: () => number,
  hangTimeoutMillis: number
): Step => {
  const step = {
    _tag: "Request",
    index,
    fault,
    timeoutMillis: undefined,
    interruptAfterMillis: undefined
  } as const
  switch (fault) {
    case undefined:
      // Most requests answer at once; some take a few milliseconds, so that requests overlap.
      return { ...step, job: { _tag: "Work", millis: random() < 0.8 ? 0 : 1 + Math.floor(random() * 20) } }
    case "crash":
      return { ...step, job: { _tag: "Crash", throws: random() < 0.5 } }
    case "exit":
      return { ...step, job: { _tag: "Exit", code: 1 + Math.floor(random() * 3) } }
    case "hang":
      return { ...step, job: { _tag: "Hang" }, timeoutMillis: hangTimeoutMillis }
    case "domain":
      return { ...step, job: { _tag: "Domain" } }
    case "interrupt":
      // A request that never answers, so that its interruption finds it not ended on any machine, however slow.
      return { ...step, job: { _tag: "Hang" }, interruptAfterMillis: Math.floor(random() * 20) }
  }
}
