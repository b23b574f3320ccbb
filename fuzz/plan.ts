/**
 * A plan: one pool, its settings, and the steps played against it, all
 * drawn from a seed. The same seed, target, length and catalogue give the
 * same plan, step for step; what a step meets when it runs is the engine's
 * business, and the checks judge it.
 */
import { type Entry, entries, inProcess, type Target } from "./catalogue.ts"
import { makeRandom, type Rng } from "./random.ts"

/** What a worker does with one request (see `model.ts` for what each may end in). */
export type Act =
  | { readonly _tag: "Succeed" }
  | { readonly _tag: "Domain" }
  | { readonly _tag: "Crash" }
  | { readonly _tag: "Die" }
  | { readonly _tag: "SyncThrow" }
  | { readonly _tag: "ThrowingConstructor" }
  | { readonly _tag: "NonEffect"; readonly returns: "value" | "promise" | "undefined" }
  | { readonly _tag: "Reject" }
  | { readonly _tag: "SelfInterrupt" }
  | { readonly _tag: "ThrowInSync" }
  | { readonly _tag: "Slow"; readonly millis: number; readonly ending: "answer" | "domain" | "crash" }
  | { readonly _tag: "Hang" }
  | { readonly _tag: "SlowCancel"; readonly millis: number }
  | { readonly _tag: "IgnoreCancel" }
  | { readonly _tag: "Exit"; readonly code: number }
  | { readonly _tag: "AnswerThenExit" }
  | { readonly _tag: "BadResponse" }
  | { readonly _tag: "Oversized"; readonly bytes: number }
  | { readonly _tag: "Unencodable" }
  | { readonly _tag: "Uncloneable" }

/** What a deliberately buggy policy does with one request. */
export type PolicyBug =
  | { readonly _tag: "Throw" }
  /** Returns `undefined` (wait) the first `asks` times it is asked about the request. */
  | { readonly _tag: "Undefined"; readonly asks: number }
  | { readonly _tag: "Outside" }

/** One request: what its worker does, and what its caller asks for. */
export interface Request {
  readonly _tag: "Request"
  /** Its label, from 1, in the order of the plan. */
  readonly id: number
  readonly act: Act
  readonly timeoutMillis?: number | undefined
  readonly queueTimeoutMillis?: number | undefined
  readonly idempotent?: boolean | undefined
  readonly policy?: PolicyBug | undefined
  /** Sent with `Worker.dispatch` to a worker outside the pool. */
  readonly direct?: boolean | undefined
  /** When this request ends, the caller of that request is interrupted, in the same step. */
  readonly interruptOnEnd?: number | undefined
  /** The catalogue entries it plays. */
  readonly tags: ReadonlyArray<string>
}

/** One step of a plan. */
export type Step =
  | Request
  /** Time passes: the virtual clock moves on, or the run sleeps. */
  | { readonly _tag: "Advance"; readonly millis: number }
  /** The caller of a request is interrupted (a request that ended already is left alone). */
  | { readonly _tag: "Interrupt"; readonly request: number }
  | { readonly _tag: "Add" }
  /** Removes the `pick`-th member ([0, 1) of the members). */
  | { readonly _tag: "Remove"; readonly pick: number }
  /** SIGKILLs the `pick`-th live worker process ([0, 1) of them). */
  | { readonly _tag: "Kill"; readonly pick: number }
  /** The pool's scope closes; the steps after it meet a pool that shut down. */
  | { readonly _tag: "Shutdown" }

/** The built-in policies a plan may route with. */
export const policies = [
  "RoundRobin",
  "LeastLoaded",
  "LeastLoadedRandom",
  "Random",
  "PowerOfTwoChoices",
  "WorkPulling",
  "PeakEwma",
  "ShortestExpectedDelay"
] as const

export type PolicyName = (typeof policies)[number]

/** The pool and its workers. */
export interface PoolSettings {
  /** Workers at the start, ids 0 to `workers - 1`. */
  readonly workers: number
  readonly maxInFlight: number
  readonly timeoutMillis: number | undefined
  readonly queueTimeoutMillis: number
  readonly queueCapacity: number
  readonly queueStrategy: "suspend" | "fail" | "dropOldest"
  readonly drainMillis: number
  readonly policy: PolicyName
  /** The restart schedule: spaced this long. */
  readonly restartMillis: number
  readonly ejection: boolean
  readonly maxRetries: number
  /** Threads and subprocesses only. */
  readonly spares: number
  /** Subprocesses only; `undefined`: the default (1 MiB). */
  readonly maxLineBytes: number | undefined
  /** Threads and subprocesses only. */
  readonly cancelGraceMillis: number
  /** The policy throws from `onResult` (its learning), every time it is told a result. */
  readonly learnThrows: boolean
  /** The workers are recycled after this many requests (`recycle.maxRequests`); `undefined`: never. */
  readonly recycleAfter?: number | undefined
}

export interface Plan {
  readonly seed: number
  readonly target: Target
  readonly pool: PoolSettings
  readonly steps: ReadonlyArray<Step>
}

/** What a plan is drawn from. */
export interface PlanOptions {
  readonly seed: number
  readonly target: Target
  /** Operations: steps, each request of a burst counted. */
  readonly ops: number
  /** Catalogue entries to play (with the plain answers they need), or all of the target's. */
  readonly only?: ReadonlySet<string> | undefined
  /** Catalogue entries not to play. */
  readonly except?: ReadonlySet<string> | undefined
}

/** The catalogue entries a plan of `target` may play, under `only` and `except`. */
export const enabledEntries = (
  target: Target,
  only: ReadonlySet<string> | undefined,
  except?: ReadonlySet<string> | undefined
): Set<string> => {
  const names = new Set<string>()
  for (const [name, e] of entries) {
    if (!e.targets.includes(target) || except?.has(name) === true) continue
    if (only === undefined || only.has(name)) names.add(name)
  }
  // A narrowed plan still needs plain requests around the ones it plays.
  if (only !== undefined || except !== undefined) for (const filler of ["success", "slow-answer"]) names.add(filler)
  return names
}

/** A worker act of each worker and wire entry, as a plan draws it. */
const actOf = (name: string, r: Rng, target: Target): Act => {
  const real = !inProcess(target)
  const delay = () => (real ? r.between(1, 30) : r.pick([1, 5, 10, 20, 50, 100, 200]))
  switch (name) {
    case "success":
      return { _tag: "Succeed" }
    case "domain-error":
      return { _tag: "Domain" }
    case "worker-crash":
      return { _tag: "Crash" }
    case "die":
      return { _tag: "Die" }
    case "sync-throw":
      return { _tag: "SyncThrow" }
    case "throwing-constructor":
      return { _tag: "ThrowingConstructor" }
    case "non-effect-value":
      return { _tag: "NonEffect", returns: "value" }
    case "non-effect-promise":
      return { _tag: "NonEffect", returns: "promise" }
    case "non-effect-undefined":
      return { _tag: "NonEffect", returns: "undefined" }
    case "rejected-promise":
      return { _tag: "Reject" }
    case "self-interrupt":
      return { _tag: "SelfInterrupt" }
    case "throw-in-sync":
      return { _tag: "ThrowInSync" }
    case "slow-answer":
      return { _tag: "Slow", millis: delay(), ending: "answer" }
    case "slow-domain-error":
      return { _tag: "Slow", millis: delay(), ending: "domain" }
    case "slow-crash":
      return { _tag: "Slow", millis: delay(), ending: "crash" }
    case "hang":
      return { _tag: "Hang" }
    case "slow-cancel":
      return { _tag: "SlowCancel", millis: r.pick([1, 10, 100]) }
    case "ignore-cancel":
      return { _tag: "IgnoreCancel" }
    case "process-exit":
      return { _tag: "Exit", code: r.between(1, 3) }
    case "answer-then-exit":
      return { _tag: "AnswerThenExit" }
    case "bad-response":
      return { _tag: "BadResponse" }
    case "oversized-request":
      return { _tag: "Oversized", bytes: r.pick([3000, 8000]) }
    case "encode-failure":
      return { _tag: "Unencodable" }
    case "uncloneable-request":
      return { _tag: "Uncloneable" }
    default:
      return { _tag: "Succeed" }
  }
}

/** How often each worker or wire entry is drawn, relative to the others. */
const actWeight = (name: string): number => {
  switch (name) {
    case "success":
      return 30
    case "slow-answer":
      return 18
    case "domain-error":
    case "slow-domain-error":
      return 5
    default:
      return 3
  }
}

/** Draws the pool's settings. */
const drawPool = (r: Rng, target: Target, enabled: ReadonlySet<string>): PoolSettings => {
  const real = !inProcess(target)
  const strategies = (
    [
      ["queue-suspend", "suspend"],
      ["queue-fail", "fail"],
      ["queue-drop-oldest", "dropOldest"]
    ] as const
  ).filter(([name]) => enabled.has(name))
  const smallQueue = strategies.length > 0 && r.chance(0.35)
  const maxInFlight = target === "caller" ? 1 : real ? r.pick([1, 1, 2]) : r.pick([1, 2, 3, 4])
  // The fiber path: a timeout, or several slots (or both).
  const timeoutMillis =
    target === "caller"
      ? undefined
      : target === "fiber"
        ? maxInFlight === 1 || r.chance(0.5)
          ? r.pick([20, 50, 100, 200])
          : undefined
        : r.chance(0.25)
          ? r.pick([300, 600])
          : undefined
  return {
    workers: real
      ? r.weighted([
          [1, 3],
          [2, 2],
          [3, 1]
        ])
      : r.weighted([
          [1, 3],
          [2, 3],
          [3, 2],
          [4, 1]
        ]),
    maxInFlight,
    timeoutMillis,
    queueTimeoutMillis: real ? r.pick([1500, 3000]) : r.pick([50, 100, 500, 1000, 30_000]),
    queueCapacity: smallQueue ? r.between(1, 4) : 1024,
    queueStrategy: smallQueue ? r.pick(strategies)[1] : "suspend",
    drainMillis: real ? r.pick([100, 500]) : r.pick([0, 10, 100, 1000, 10_000]),
    policy: r.pick(policies),
    restartMillis: real ? r.pick([10, 50]) : r.pick([1, 10, 100]),
    ejection: r.chance(0.7),
    maxRetries: r.pick([1, 1, 2]),
    spares: real ? r.pick([0, 1]) : 0,
    maxLineBytes: target === "subprocess" && r.chance(0.7) ? 2048 : undefined,
    cancelGraceMillis: r.pick([200, 400]),
    learnThrows: false,
    recycleAfter: undefined
  }
}

/** Draws a plan. */
export const makePlan = (options: PlanOptions): Plan => {
  const { seed, target } = options
  const r = makeRandom(seed, 1 + ["caller", "fiber", "thread", "subprocess"].indexOf(target))
  const enabled = enabledEntries(target, options.only, options.except)
  const has = (name: string) => enabled.has(name)
  const real = !inProcess(target)
  // A random stream of its own: the draws of the plans of older seeds stay as they were.
  const drawn = drawPool(r, target, enabled)
  const recycling = makeRandom(seed, 97)
  const pool = {
    ...drawn,
    // A small queue is now and then one of capacity 0 (every request that finds no free slot is full, fails, drops
    // or suspends at once).
    queueCapacity: drawn.queueCapacity < 1024 && makeRandom(seed, 98).chance(0.25) ? 0 : drawn.queueCapacity,
    learnThrows: enabled.has("policy-learn-throws") && makeRandom(seed, 99).chance(0.2),
    // Now and then the workers are recycled every few requests: no request may fail for it.
    recycleAfter: recycling.chance(0.3) ? recycling.pick([1, 3, 10]) : undefined
  }
  const acts: Array<readonly [string, number]> = []
  for (const name of enabled) {
    const e = entries.get(name) as Entry
    if ((e.group === "worker" || e.group === "wire") && name !== "kill" && name !== "dead-client") {
      acts.push([name, actWeight(name)])
    }
  }
  const policyBugs = (
    [
      ["policy-throws", { _tag: "Throw" }],
      ["policy-undefined", { _tag: "Undefined", asks: 1 }],
      ["policy-outside-view", { _tag: "Outside" }]
    ] as const
  ).filter(([name]) => has(name))
  const steps: Array<Step> = []
  let ops = 0
  let nextId = 1
  let shutdownAt = has("shutdown-mid-run") && r.chance(0.3) ? Math.floor(options.ops * (0.6 + 0.35 * r.next())) : -1

  const request = (act: Act, played: ReadonlyArray<string>, extra?: Partial<Request>): Request => {
    const tags = [...played]
    const direct = extra?.direct === true
    let timeoutMillis: number | undefined
    let queueTimeoutMillis: number | undefined
    let idempotent: boolean | undefined
    let policy: PolicyBug | undefined
    const lasts = act._tag === "Hang" || act._tag === "SlowCancel" || act._tag === "IgnoreCancel"
    if (has("request-timeout") && r.chance(lasts ? 0.7 : act._tag === "Slow" ? 0.25 : 0.05)) {
      timeoutMillis = real ? r.pick([100, 300]) : r.pick([5, 10, 20, 50, 100])
      tags.push("request-timeout")
    }
    if (!direct && has("queue-timeout") && r.chance(0.08)) {
      queueTimeoutMillis = real ? r.pick([50, 200]) : r.pick([1, 10, 20, 50])
      tags.push("queue-timeout")
    }
    if (!direct && has("idempotent") && r.chance(0.08)) {
      idempotent = true
      tags.push("idempotent")
    }
    if (!direct && policyBugs.length > 0 && r.chance(0.05)) {
      const [name, bug] = r.pick(policyBugs)
      policy = bug._tag === "Undefined" ? { _tag: "Undefined", asks: r.between(1, 3) } : bug
      tags.push(name)
    }
    ops++
    return {
      _tag: "Request",
      id: nextId++,
      act,
      timeoutMillis,
      queueTimeoutMillis,
      idempotent,
      policy,
      ...extra,
      tags
    }
  }

  const stepKinds: Array<readonly [string, number]> = [
    ["request", 55],
    ["advance", 25],
    ...(["interrupt-queued", "interrupt-running", "interrupt-cancelling"].some(has)
      ? ([["interrupt", 7]] as const)
      : []),
    ...(has("interrupt-served") ? ([["served", 3]] as const) : []),
    ...(has("add") ? ([["add", 3]] as const) : []),
    ...(has("remove") ? ([["remove", 3]] as const) : []),
    ...(has("kill") ? ([["kill", 2]] as const) : []),
    ...(has("dead-client") ? ([["dead-client", 2]] as const) : []),
    ...(has("direct-dispatch") ? ([["direct", 4]] as const) : []),
    ...(has("timeout-at-slot-free") ? ([["collision", 2]] as const) : [])
  ]
  const recent = () => {
    const requests = steps.filter((s): s is Request => s._tag === "Request")
    return requests.slice(-8)
  }

  while (ops < options.ops) {
    if (shutdownAt >= 0 && ops >= shutdownAt) {
      steps.push({ _tag: "Shutdown" })
      ops++
      shutdownAt = -1
      continue
    }
    const kind = r.weighted(stepKinds)
    switch (kind) {
      case "request": {
        const name = r.weighted(acts)
        steps.push(request(actOf(name, r, target), [name]))
        break
      }
      case "advance":
        steps.push({
          _tag: "Advance",
          millis: real ? r.pick([0, 1, 5, 10, 20, 50]) : r.pick([0, 1, 2, 5, 10, 20, 50, 100, 250, 1000])
        })
        ops++
        break
      case "interrupt": {
        const candidates = recent()
        if (candidates.length === 0) break
        // Recent requests are more likely still waiting, older ones running.
        const target = r.chance(0.5) ? candidates[candidates.length - 1]! : r.pick(candidates)
        steps.push({ _tag: "Interrupt", request: target.id })
        ops++
        break
      }
      case "served": {
        // A request that holds a slot for a while, and one queued behind it
        // whose caller is interrupted the moment the first ends.
        const millis = real ? r.between(5, 20) : r.pick([5, 10, 50])
        // Whether the second was still waiting when the first ended, the run sees (its interrupt stage).
        const first = request({ _tag: "Slow", millis, ending: "answer" }, ["slow-answer"], {
          interruptOnEnd: nextId + 1
        })
        steps.push(first)
        const name = r.weighted(acts)
        steps.push(request(actOf(name, r, target), [name]))
        break
      }
      case "add":
        steps.push({ _tag: "Add" })
        ops++
        break
      case "remove":
        steps.push({ _tag: "Remove", pick: r.next() })
        ops++
        break
      case "kill":
        steps.push({ _tag: "Kill", pick: r.next() })
        ops++
        break
      case "dead-client": {
        const fatal: Act = real && r.chance(0.5) ? { _tag: "Exit", code: 1 } : { _tag: "Crash" }
        steps.push(request(fatal, ["dead-client"]))
        const burst = r.between(2, 4)
        for (let i = 0; i < burst; i++) steps.push(request({ _tag: "Succeed" }, ["dead-client"]))
        break
      }
      case "direct": {
        const name = r.weighted(acts)
        steps.push(request(actOf(name, r, target), [name, "direct-dispatch"], { direct: true }))
        break
      }
      case "collision": {
        // The queue timeout of the second ends in the instant the first frees its slot.
        const millis = r.pick([10, 20, 50])
        steps.push(request({ _tag: "Slow", millis, ending: "answer" }, ["slow-answer"]))
        steps.push(request({ _tag: "Succeed" }, ["success", "timeout-at-slot-free"], { queueTimeoutMillis: millis }))
        break
      }
    }
  }
  return { seed, target, pool, steps }
}

/** The catalogue entries a plan plays, with how many times each. */
export const entriesOf = (plan: Plan): Map<string, number> => {
  const counts = new Map<string, number>()
  const count = (name: string) => counts.set(name, (counts.get(name) ?? 0) + 1)
  const p = plan.pool
  if (p.queueCapacity < 1024) count(p.queueStrategy === "dropOldest" ? "queue-drop-oldest" : `queue-${p.queueStrategy}`)
  if (p.learnThrows) count("policy-learn-throws")
  for (const step of plan.steps) {
    switch (step._tag) {
      case "Request":
        for (const tag of step.tags) count(tag)
        break
      case "Add":
        count("add")
        break
      case "Remove":
        count("remove")
        break
      case "Kill":
        count("kill")
        break
      case "Shutdown":
        count("shutdown-mid-run")
        break
    }
  }
  return counts
}

/** How many operations a plan holds. */
export const opsOf = (plan: Plan): number => plan.steps.length

const actText = (act: Act): string => {
  switch (act._tag) {
    case "Slow":
      return `slow ${act.millis} ms then ${act.ending}`
    case "SlowCancel":
      return `hang, cancel takes ${act.millis} ms`
    case "NonEffect":
      return `returns a non-Effect (${act.returns})`
    case "Exit":
      return `exit ${act.code}`
    case "Oversized":
      return `oversized (${act.bytes} bytes)`
    default:
      return act._tag
  }
}

/** One step, in a line. */
export const describeStep = (step: Step): string => {
  switch (step._tag) {
    case "Request": {
      const parts = [`#${step.id} ${step.direct === true ? "Worker.dispatch" : "dispatch"} ${actText(step.act)}`]
      if (step.timeoutMillis !== undefined) parts.push(`timeout ${step.timeoutMillis} ms`)
      if (step.queueTimeoutMillis !== undefined) parts.push(`queueTimeout ${step.queueTimeoutMillis} ms`)
      if (step.idempotent === true) parts.push("idempotent")
      if (step.policy !== undefined)
        parts.push(`policy ${step.policy._tag}${step.policy._tag === "Undefined" ? ` x${step.policy.asks}` : ""}`)
      if (step.interruptOnEnd !== undefined) parts.push(`on its end interrupt #${step.interruptOnEnd}`)
      return parts.join(", ")
    }
    case "Advance":
      return `advance ${step.millis} ms`
    case "Interrupt":
      return `interrupt the caller of #${step.request}`
    case "Add":
      return "add a worker"
    case "Remove":
      return `remove member ${step.pick.toFixed(2)}`
    case "Kill":
      return `SIGKILL worker process ${step.pick.toFixed(2)}`
    case "Shutdown":
      return "close the pool's scope"
  }
}

/** The pool's settings, in a line. */
export const describePool = (plan: Plan): string => {
  const p = plan.pool
  const parts = [
    `${p.workers} ${plan.target} workers`,
    `maxInFlight ${p.maxInFlight}`,
    ...(p.recycleAfter === undefined ? [] : [`recycled every ${p.recycleAfter} requests`]),
    `policy ${p.policy}`,
    p.timeoutMillis === undefined ? "no timeout" : `timeout ${p.timeoutMillis} ms`,
    `queueTimeout ${p.queueTimeoutMillis} ms`,
    `queue ${p.queueCapacity} ${p.queueStrategy}`,
    `drain ${p.drainMillis} ms`,
    `restart every ${p.restartMillis} ms`,
    p.ejection ? "ejection on" : "ejection off",
    `maxRetries ${p.maxRetries}`
  ]
  if (!inProcess(plan.target)) parts.push(`spares ${p.spares}`, `cancelGrace ${p.cancelGraceMillis} ms`)
  if (p.maxLineBytes !== undefined) parts.push(`maxLineBytes ${p.maxLineBytes}`)
  if (p.learnThrows) parts.push("a policy that throws from onResult")
  return parts.join(", ")
}
