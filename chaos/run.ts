/**
 * One chaos run: a pool of thread and subprocess workers under a seeded plan
 * of requests and faults (see `makePlan`), watched from the callers' side,
 * from the pool's health and from the operating system. It returns what it
 * saw; `checksOf` judges it.
 */
import { Cause, Duration, Effect, Exit, Fiber, Option, Random, Scope, Semaphore, Stream } from "effect"
import {
  type DomainError,
  type InvalidRequest,
  Worker,
  type WorkerCrash,
  type WorkerHealth,
  type WorkerId,
  WorkerPool,
  type WorkerState
} from "effect-worker-pool"
import type { Answer, Job } from "./jobs.ts"
import { kindOf } from "./kinds.ts"
import { type FaultName, faultNames, type KindName, makePlan, type Step } from "./plan.ts"
import { exists, liveChildren, liveDescendants, workerThreads } from "./processes.ts"

/** A restart budget: at most `maxRestarts` restarts of one worker within any `windowMillis`. */
export interface Budget {
  readonly maxRestarts: number
  readonly windowMillis: number
}

/** The settings of one run. */
export interface RunSettings {
  /** What the run is called in the report. */
  readonly name: string
  readonly seed: number
  /** The run's stream of the seed: its plan, and the pool's own randomness. */
  readonly stream: number
  readonly requests: number
  /** How many times each fault is injected. */
  readonly faults: number
  /** Workers at the start, ids 0 to `workers - 1`: even ids threads, odd ids subprocesses. */
  readonly workers: number
  /** Requests in flight at once (each caller runs one step at a time). */
  readonly callers: number
  /** The timeout of a hanging request. */
  readonly hangTimeoutMillis: number
  /** The watchdog: a request that has not ended this long after its dispatch began is hung. */
  readonly boundMillis: number
  /** The workers' restart budget; `undefined`: none given, the library's default. */
  readonly budget: Budget | undefined
}

/**
 * What became of the faults of one name that the plan scheduled. A fault
 * happened when what the run saw proves it (see docs/chaos.md); one that did
 * not is `missed`, by what the run saw instead, each an outcome the pool
 * allows on any machine however slow; any other outcome is `unexplained`,
 * and fails the `faults` check. Each step of the plan lands in exactly one
 * of the three.
 */
export interface FaultFate {
  /** How many steps of the plan carry the fault. */
  readonly planned: number
  readonly happened: number
  /** The faults that did not happen, counted by what happened instead. */
  readonly missed: ReadonlyMap<string, number>
  /** The faults that met an outcome no such fault may have, one line each. */
  readonly unexplained: ReadonlyArray<string>
}

/** A worker's final health, and what `pool.changes` showed of its restarts. */
export interface WorkerRecord {
  readonly id: WorkerId
  readonly kind: KindName
  readonly final: WorkerHealth
  /** Whether it was still a member of the pool at the end. */
  readonly member: boolean
  /** Its restarts before the run watched `pool.changes` (0 for a worker added later). */
  readonly restartsBefore: number
  /** When each restart the `pool.changes` stream showed was seen, in ms since the run began. */
  readonly restartTimes: ReadonlyArray<number>
}

/** An outcome that is none of those a dispatch promises: a defect, or an interruption the run did not cause. */
export interface Stray {
  readonly request: number
  readonly what: string
}

/** A member of the pool as `pool.health` showed it. */
export interface SeenMember {
  readonly id: WorkerId
  readonly state: WorkerState
  readonly failedStarts: number
}

/**
 * A request refused for want of a worker: a `WorkerCrash` that names no
 * worker. What the pool showed at that moment comes with it.
 */
export interface Refusal {
  readonly request: number
  /** The `_tag` of the refusal's `reason`. */
  readonly reason: string
  /** The refusal's `message`. */
  readonly message: string
  /**
   * `pool.health`, read by the refused request's own fiber as the refusal
   * reached it; `undefined` if the request ended refused without that fiber
   * seeing the refusal.
   */
  readonly seen: ReadonlyArray<SeenMember> | undefined
}

/** The stretches of time in which no member of the pool was up (`Healthy` or `Ejected`), as `pool.changes` showed them. */
export interface Outages {
  readonly count: number
  readonly totalMillis: number
  readonly longestMillis: number
}

/** What a run saw. */
export interface RunResult {
  readonly settings: RunSettings
  readonly elapsedMillis: number
  /** How many requests were dispatched (all of the plan's, unless the run broke down). */
  readonly issued: number
  /** What became of each fault the plan scheduled (see docs/chaos.md for when each counts as happened). */
  readonly faults: Readonly<Record<FaultName, FaultFate>>
  /** Outcomes by `_tag`: `success`, each error's tag, `interrupted`, and anything stray. */
  readonly outcomes: ReadonlyMap<string, number>
  /** Of the `WorkerCrash` outcomes, those that name no worker: the pool had none to offer. */
  readonly refusals: ReadonlyArray<Refusal>
  /** Requests that did not get exactly one outcome. */
  readonly lost: number
  /** Requests that ended later than the bound, or never. */
  readonly hung: number
  readonly stray: ReadonlyArray<Stray>
  readonly maxLatencyMillis: number
  /**
   * The most a timer of the run woke up late: a probe fiber sleeps 20 ms at a
   * time, all run long, and measures by how much each sleep overran.
   */
  readonly timerLatenessMillis: number
  /** `pool.queued` once every caller was done. */
  readonly queuedAtEnd: number
  readonly workers: ReadonlyArray<WorkerRecord>
  readonly outages: Outages
  /** Live descendant processes left once the pool's scope had closed. */
  readonly processesLeft: ReadonlyArray<number>
  /** Worker threads left once the pool's scope had closed; `undefined` where they cannot be counted. */
  readonly threadsLeft: number | undefined
}

type E = DomainError | InvalidRequest
type RequestStep = Extract<Step, { readonly _tag: "Request" }>

/** A remove that would leave fewer members than this is skipped. */
const minMembers = 2
/**
 * How long a request that carries a fault waits for a member that can take
 * it or come back (see `workerCanServe`); past it, the request is dispatched
 * anyway, and its refusal is judged by the `refusals` check.
 */
const faultWait = Duration.seconds(5)
/** How long the probe of timer lateness sleeps at a time. */
const probeMillis = 20
/** After the watchdog fired, how long a cut request may take to end before it counts as lost. */
const lostAfter = Duration.seconds(5)

const isUp = (state: WorkerState) => state === "Healthy" || state === "Ejected"

/**
 * Whether a member could take a request or come back: up, or starting again
 * after an incarnation that had become ready (no failed start since). The
 * pool's own rule, see docs/admission.md.
 */
export const canComeBack = (member: Pick<SeenMember, "state" | "failedStarts">): boolean =>
  isUp(member.state) || ((member.state === "Starting" || member.state === "Restarting") && member.failedStarts === 0)

/** Whether a failure is a refusal: a `WorkerCrash` that names no worker. */
const isRefusal = (
  error: unknown
): error is { readonly reason: { readonly _tag: string }; readonly message: string } => {
  const e = error as { readonly _tag?: unknown; readonly workerId?: unknown }
  return e._tag === "WorkerCrash" && e.workerId === undefined
}

/** A record with one entry per fault. */
const byFault = <A>(f: (name: FaultName) => A): Record<FaultName, A> => {
  const record = {} as Record<FaultName, A>
  for (const name of faultNames) record[name] = f(name)
  return record
}

/** Polls `condition` every 10 ms until it holds. */
const waitFor = (condition: Effect.Effect<boolean>) =>
  Effect.gen(function* () {
    while (!(yield* condition)) yield* Effect.sleep(Duration.millis(10))
  })

/** Polls `condition` every 10 ms until it holds, for at most `limit`. */
const waitUntil = (condition: Effect.Effect<boolean>, limit: Duration.Duration) =>
  Effect.timeoutOption(waitFor(condition), limit)

/** What the caller of a request saw, as the fault it carried is judged. */
export type Seen =
  | { readonly kind: "success" }
  /** A `WorkerCrash` that names a worker, with the `_tag` of its reason. */
  | { readonly kind: "crashed"; readonly reason: string }
  /** A `WorkerCrash` that names no worker. */
  | { readonly kind: "refused" }
  /** Any other typed error, by its `_tag`. */
  | { readonly kind: "error"; readonly tag: string }
  /** An interruption the run caused. */
  | { readonly kind: "interrupted" }
  /** None of those a dispatch promises. */
  | { readonly kind: "stray"; readonly what: string }

/** A fault that a request carries. */
export type RequestFault = NonNullable<RequestStep["fault"]>

/** The outcome that proves each request fault happened. */
const proves: Record<RequestFault, (seen: Seen) => boolean> = {
  crash: (seen) => seen.kind === "crashed",
  exit: (seen) => seen.kind === "crashed",
  hang: (seen) => seen.kind === "error" && seen.tag === "RequestTimeout",
  domain: (seen) => seen.kind === "error" && seen.tag === "DomainError",
  interrupt: (seen) => seen.kind === "interrupted"
}

/**
 * What became of a request's fault, judged by what its caller saw alone:
 * it happened when that proves it (see `proves`); it did not, for a reason
 * the pool allows on any machine, when the pool refused the request (no
 * member could take it or come back; the `refusals` check judges each
 * refusal) or when a crash of the incarnation it was on ended it first (a
 * neighbour's crash, a kill, a child that missed its heartbeat or a
 * cancel's grace); anything else is unexplained.
 */
export const requestFate = (
  fault: RequestFault,
  seen: Seen
):
  | { readonly _tag: "Happened" }
  | { readonly _tag: "Missed"; readonly because: string }
  | { readonly _tag: "Unexplained"; readonly seen: string } =>
  proves[fault](seen)
    ? { _tag: "Happened" }
    : seen.kind === "refused"
      ? { _tag: "Missed", because: "refused: no worker could take it or come back" }
      : seen.kind === "crashed"
        ? { _tag: "Missed", because: `ended by a crash of its incarnation (${seen.reason})` }
        : { _tag: "Unexplained", seen: describeSeen(seen) }

const describeSeen = (seen: Seen): string => {
  switch (seen.kind) {
    case "success":
      return "succeeded"
    case "crashed":
      return `failed with WorkerCrash (${seen.reason})`
    case "refused":
      return "was refused"
    case "error":
      return `failed with ${seen.tag}`
    case "interrupted":
      return "was interrupted"
    case "stray":
      return seen.what
  }
}

/** Runs the plan of `settings` against a fresh pool with the library's default options. */
export const run = (settings: RunSettings): Effect.Effect<RunResult> =>
  Effect.gen(function* () {
    const plan = makePlan(settings)
    const began = performance.now()
    const since = () => performance.now() - began
    const processesBefore = new Set(liveDescendants())
    const threadsBefore = workerThreads()

    // --- the faults: what the plan scheduled, and what became of each.
    const planned = byFault(() => 0)
    for (const step of plan) {
      if (step._tag !== "Request") planned[step._tag === "Kill" ? "kill" : step._tag === "Add" ? "add" : "remove"]++
      else if (step.fault !== undefined) planned[step.fault]++
    }
    const fates = byFault(() => ({ happened: 0, missed: new Map<string, number>(), unexplained: [] as string[] }))
    const happened = (fault: FaultName) => void fates[fault].happened++
    const missed = (fault: FaultName, because: string) =>
      void fates[fault].missed.set(because, (fates[fault].missed.get(because) ?? 0) + 1)
    const unexplained = (fault: FaultName, what: string) => void fates[fault].unexplained.push(what)
    const outcomes = new Map<string, number>()
    const count = (tag: string) => outcomes.set(tag, (outcomes.get(tag) ?? 0) + 1)
    const outcomesOf = new Uint8Array(settings.requests)
    const stray: Array<Stray> = []
    const refusals: Array<Refusal> = []
    /** What the fiber of a refused request saw of the pool, by request. */
    const seenAtRefusal = new Map<number, ReadonlyArray<SeenMember>>()
    let hung = 0
    let issued = 0
    let maxLatencyMillis = 0

    // --- the workers: every one ever made is kept, to read its counters at the end.
    // The library's defaults (restart schedule, no budget), but for the budget of the budget run.
    const workerOptions: Worker.WorkerOptions | undefined =
      settings.budget === undefined
        ? undefined
        : { maxRestarts: settings.budget.maxRestarts, restartWindow: Duration.millis(settings.budget.windowMillis) }
    const made = new Map<WorkerId, { readonly worker: Worker.Worker<Job, Answer, E>; readonly kind: KindName }>()
    const makeWorker = (id: WorkerId, kind: KindName) =>
      Worker.fromKind(id, kindOf(kind), workerOptions).pipe(
        Effect.orDie,
        Effect.tap((worker) => Effect.sync(() => made.set(id, { worker, kind })))
      )

    // Made first, closed last: the workers added later live in it, and the pool stops them first.
    const workersScope = yield* Scope.make()
    const poolScope = yield* Scope.make()
    const pool = yield* WorkerPool.make<Job, Answer, E>({
      size: settings.workers,
      worker: (id) => makeWorker(id, id % 2 === 0 ? "thread" : "subprocess")
    }).pipe(Effect.orDie, Scope.provide(poolScope))

    // --- restarts and outages, as `pool.changes` shows them.
    const restartTimes = new Map<WorkerId, Array<number>>()
    const restartsSeen = new Map<WorkerId, number>()
    const states = new Map<WorkerId, WorkerState>()
    /** Removed workers: a change of theirs the stream shows late is not taken for a member's. */
    const removed = new Set<WorkerId>()
    const outageLengths: Array<number> = []
    let downSince: number | undefined
    const noteStates = () => {
      const up = [...states.values()].some(isUp)
      if (!up && downSince === undefined) downSince = since()
      if (up && downSince !== undefined) {
        outageLengths.push(since() - downSince)
        downSince = undefined
      }
    }
    yield* pool.changes.pipe(
      Stream.runForEach(([id, health]) =>
        Effect.sync(() => {
          const seen = restartsSeen.get(id) ?? 0
          const at = since()
          for (let k = seen; k < health.restarts; k++) restartTimes.set(id, [...(restartTimes.get(id) ?? []), at])
          restartsSeen.set(id, Math.max(seen, health.restarts))
          if (removed.has(id) || health.state === "Stopped") states.delete(id)
          else states.set(id, health.state)
          noteStates()
        })
      ),
      Effect.forkIn(poolScope)
    )
    // --- the timers' lateness: a machine under load wakes every sleeping fiber late, the supervisors' too.
    let timerLatenessMillis = 0
    yield* Effect.forkIn(
      Effect.forever(
        Effect.gen(function* () {
          const slept = performance.now()
          yield* Effect.sleep(Duration.millis(probeMillis))
          timerLatenessMillis = Math.max(timerLatenessMillis, performance.now() - slept - probeMillis)
        })
      ),
      poolScope
    )

    yield* Effect.yieldNow
    const initial = yield* pool.health
    const restartsBefore = new Map(initial.map(([id, health]) => [id, health.restarts] as const))
    for (const [id, health] of initial) {
      restartsSeen.set(id, Math.max(restartsSeen.get(id) ?? 0, health.restarts))
      if (!states.has(id)) states.set(id, health.state)
    }
    noteStates()

    /**
     * The faults that take an incarnation down (crash, exit, hang, kill,
     * remove) come one at a time, each once the one before has taken effect:
     * its request ended, its process was reaped, its remove returned. Not for
     * the pool's sake (a request that finds no worker up waits for one), but
     * for the faults': one that takes an incarnation down ends the other
     * requests it holds with `WorkerCrash`, so a hanging request that shares
     * its incarnation with a crash, a kill, a remove or another hang's timeout
     * never gets its `RequestTimeout`, and would not happen. Everything else,
     * adds included, runs at the callers' pace.
     */
    const oneAtATime = yield* Semaphore.make(1)

    // --- kills: from outside the pool, of one of the processes it started (this process's new children).
    const killed = new Set<number>()
    const workerProcesses = () => liveChildren().filter((pid) => !processesBefore.has(pid) && !killed.has(pid))
    /** Kills one worker process, the `pick`-th; whether there was one to kill. */
    const killOne = (pick: number) =>
      Effect.gen(function* () {
        const candidates = workerProcesses()
        if (candidates.length === 0) return false
        const pid = candidates[Math.floor(pick * candidates.length)]!
        try {
          process.kill(pid, "SIGKILL")
        } catch {
          return false // It died on its own meanwhile.
        }
        killed.add(pid)
        happened("kill")
        // Reaped, its worker learns of its end: only then has the kill taken effect. A SIGKILL
        // cannot be ignored, and Node reaps its children: this ends, however busy the machine.
        yield* waitFor(Effect.sync(() => !exists(pid)))
        return true
      })
    /** Whether a subprocess member of the pool is up or could come back (see `canComeBack`). */
    const subprocessCanComeBack = Effect.map(pool.health, (health) =>
      health.some(([id, h]) => made.get(id)?.kind === "subprocess" && canComeBack(h))
    )
    /**
     * When no worker process is up, a kill waits for one, for as long as a
     * subprocess member could come back; when none can (every one retired,
     * failing to start or removed), the kill does not happen, for that
     * reason. It waits without holding up the other faults: it takes its
     * turn once there is a process to kill, and waits again if that process
     * was gone by then.
     */
    const kill = (pick: number) =>
      Effect.gen(function* () {
        while (true) {
          if (workerProcesses().length > 0) {
            if (yield* oneAtATime.withPermit(killOne(pick))) return
          } else if (yield* subprocessCanComeBack) {
            yield* Effect.sleep(Duration.millis(10))
          } else {
            return missed("kill", "no worker process was up, and no subprocess member could come back")
          }
        }
      })

    // --- membership.
    let nextId = settings.workers
    /** The adds under way, awaited before the end. */
    const additions: Array<Fiber.Fiber<void>> = []
    /**
     * Starts adding a worker of the kind the pool has fewer of (not counting
     * retired workers), so that both kinds stay in it; of the planned kind
     * on a tie.
     */
    const add = (planned: KindName) =>
      Effect.gen(function* () {
        const health = yield* pool.health
        const inService = (kind: KindName) =>
          health.filter(([id, h]) => made.get(id)?.kind === kind && h.state !== "Retired").length
        const threads = inService("thread")
        const subprocesses = inService("subprocess")
        const kind = threads === subprocesses ? planned : threads < subprocesses ? "thread" : "subprocess"
        const worker = yield* makeWorker(nextId++ as WorkerId, kind).pipe(Scope.provide(workersScope))
        yield* pool.add(worker).pipe(Effect.orDie)
        happened("add")
      }).pipe(
        Effect.catchCause((cause) =>
          Effect.sync(() => unexplained("add", `an add failed: ${Cause.pretty(cause).split("\n")[0]}`))
        ),
        Effect.forkIn(poolScope),
        Effect.flatMap((fiber) => Effect.sync(() => void additions.push(fiber)))
      )
    const remove = (pick: number) =>
      Effect.gen(function* () {
        const health = yield* pool.health
        // Removes come one at a time (see `oneAtATime`): none can be under way meanwhile.
        if (health.length <= minMembers) return missed("remove", `${minMembers} members were left`)
        // A retired worker goes first, as an operator would replace it; else any member may.
        const retired = health.filter(([, h]) => h.state === "Retired")
        const among = retired.length > 0 ? retired : health
        const [id] = among[Math.floor(pick * among.length)]!
        const exit = yield* Effect.exit(pool.remove(id))
        if (Exit.isFailure(exit))
          return unexplained("remove", `removing worker ${id} failed: ${Cause.pretty(exit.cause)}`)
        happened("remove")
        removed.add(id)
        states.delete(id)
        noteStates()
      })

    // --- requests.
    /** What a request's caller saw, counted by `_tag`, with refusals and stray outcomes noted. */
    const seenOf = (step: RequestStep, exit: Exit.Exit<Answer, unknown>, interruptedByRun: boolean): Seen => {
      if (Exit.isSuccess(exit)) {
        count("success")
        return { kind: "success" }
      }
      const error = Cause.findErrorOption(exit.cause)
      if (Option.isSome(error)) {
        const e = error.value as { readonly _tag?: unknown; readonly workerId?: unknown }
        if (typeof e._tag !== "string") {
          count("untagged error")
          const what = `an untagged error: ${String(e)}`
          stray.push({ request: step.index, what })
          return { kind: "stray", what }
        }
        count(e._tag)
        if (isRefusal(e)) {
          const refusal = { request: step.index, reason: e.reason._tag, message: e.message }
          refusals.push({ ...refusal, seen: seenAtRefusal.get(step.index) })
          return { kind: "refused" }
        }
        if (e._tag === "WorkerCrash") return { kind: "crashed", reason: (e as WorkerCrash).reason._tag }
        return { kind: "error", tag: e._tag }
      }
      if (Cause.hasInterruptsOnly(exit.cause) && interruptedByRun) {
        count("interrupted")
        return { kind: "interrupted" }
      }
      const what = Cause.hasInterruptsOnly(exit.cause) ? "an interruption the run did not cause" : "a defect"
      count(what)
      stray.push({ request: step.index, what: `${what}: ${Cause.pretty(exit.cause).split("\n")[0]}` })
      return { kind: "stray", what }
    }
    const settle = (step: RequestStep, exit: Exit.Exit<Answer, unknown>, interruptedByRun: boolean) => {
      outcomesOf[step.index]!++
      const seen = seenOf(step, exit, interruptedByRun)
      if (step.fault === undefined) return
      const fate = requestFate(step.fault, seen)
      if (fate._tag === "Happened") happened(step.fault)
      else if (fate._tag === "Missed") missed(step.fault, fate.because)
      else unexplained(step.fault, `request ${step.index} ${fate.seen}`)
    }

    /** The members as `pool.health` shows them now. */
    const seenMembers = Effect.map(pool.health, (health) =>
      health.map(([id, h]): SeenMember => ({ id, state: h.state, failedStarts: h.failedStarts }))
    )
    /** Notes what a refused request's fiber sees of the pool, before anything else runs on that fiber. */
    const noteRefusal = (index: number) => (error: unknown) =>
      isRefusal(error) ? Effect.map(seenMembers, (seen) => void seenAtRefusal.set(index, seen)) : Effect.void

    const request = (step: RequestStep) =>
      Effect.gen(function* () {
        issued++
        const started = performance.now()
        const options = step.timeoutMillis === undefined ? undefined : { timeout: Duration.millis(step.timeoutMillis) }
        const fiber = yield* Effect.forkChild(
          pool.dispatch(step.job, options).pipe(Effect.tapError(noteRefusal(step.index)))
        )
        let interruptedByRun = false
        if (step.interruptAfterMillis !== undefined) {
          yield* Effect.sleep(Duration.millis(step.interruptAfterMillis)).pipe(
            Effect.andThen(
              Effect.suspend(() => {
                interruptedByRun = fiber.pollUnsafe() === undefined
                return Fiber.interrupt(fiber)
              })
            ),
            Effect.forkChild
          )
        }
        const ended = yield* Effect.timeoutOption(Fiber.await(fiber), Duration.millis(settings.boundMillis))
        maxLatencyMillis = Math.max(maxLatencyMillis, performance.now() - started)
        if (Option.isSome(ended)) return settle(step, ended.value, interruptedByRun)
        // The watchdog: the request outlived the bound. It is cut, so that the run ends.
        hung++
        interruptedByRun = true
        const cut = yield* Effect.timeoutOption(Effect.andThen(Fiber.interrupt(fiber), Fiber.await(fiber)), lostAfter)
        if (Option.isSome(cut)) settle(step, cut.value, true)
      })

    /**
     * Whether some member can take a request or come back. A request that
     * carries a fault waits for that (at most `faultWait`) before its turn:
     * with a budget, every member may be retired at once, and the pool then
     * refuses each request at once, so that the callers run through hundreds
     * of steps before an add brings a worker; the faults among them would be
     * refused, and not happen. Plain requests do not wait: they are refused.
     */
    const workerCanServe = Effect.map(pool.health, (health) => health.some(([, h]) => canComeBack(h)))

    let next = 0
    const caller = Effect.gen(function* () {
      for (let step = plan[next++]; step !== undefined; step = plan[next++]) {
        switch (step._tag) {
          case "Request":
            if (step.fault !== undefined) yield* waitUntil(workerCanServe, faultWait)
            if (step.fault === "crash" || step.fault === "exit" || step.fault === "hang") {
              yield* oneAtATime.withPermit(request(step))
            } else {
              yield* request(step)
            }
            break
          case "Kill":
            yield* kill(step.pick)
            break
          case "Add":
            yield* add(step.kind)
            break
          case "Remove":
            yield* oneAtATime.withPermit(remove(step.pick))
            break
        }
      }
    })

    yield* Effect.forEach(Array.from({ length: settings.callers }), () => caller, {
      concurrency: "unbounded",
      discard: true
    })
    yield* Fiber.awaitAll(additions)

    // --- the end: counters first, then the scopes, then the process table.
    const queuedAtEnd = yield* pool.queued
    const final = new Map(yield* pool.health)
    const workers: Array<WorkerRecord> = []
    for (const [id, { worker, kind }] of [...made].sort(([a], [b]) => a - b)) {
      workers.push({
        id,
        kind,
        final: final.get(id) ?? (yield* worker.health),
        member: final.has(id),
        restartsBefore: restartsBefore.get(id) ?? 0,
        restartTimes: restartTimes.get(id) ?? []
      })
    }
    if (downSince !== undefined) outageLengths.push(since() - downSince)
    yield* Scope.close(poolScope, Exit.void)
    yield* Scope.close(workersScope, Exit.void)
    const processesLeft = liveDescendants().filter((pid) => !processesBefore.has(pid))
    const threadsAfter = workerThreads()
    const threadsLeft =
      threadsBefore === undefined || threadsAfter === undefined ? undefined : Math.max(0, threadsAfter - threadsBefore)

    return {
      settings,
      elapsedMillis: since(),
      issued,
      faults: byFault((name): FaultFate => ({ planned: planned[name], ...fates[name] })),
      outcomes,
      refusals,
      lost: outcomesOf.reduce((n, k) => n + (k === 1 ? 0 : 1), 0),
      hung,
      stray,
      maxLatencyMillis,
      timerLatenessMillis,
      queuedAtEnd,
      workers,
      outages: {
        count: outageLengths.length,
        totalMillis: outageLengths.reduce((a, b) => a + b, 0),
        longestMillis: outageLengths.reduce((a, b) => Math.max(a, b), 0)
      },
      processesLeft,
      threadsLeft
    }
  }).pipe(Random.withSeed(settings.seed ^ Math.imul(settings.stream + 1, 0x9e3779b9)))
