/**
 * One chaos run: a pool of thread and subprocess workers under a seeded plan
 * of requests and faults (see `makePlan`), watched from the callers' side,
 * from the pool's health and from the operating system. It returns what it
 * saw; `checksOf` judges it.
 */
import { Cause, Duration, Effect, Exit, Fiber, Option, Random, Schedule, Scope, Semaphore, Stream } from "effect"
import type { ChildProcessSpawner } from "effect/process"
import {
  type DomainError,
  type InvalidRequest,
  Worker,
  type WorkerHealth,
  type WorkerId,
  WorkerPool
} from "effect-worker-pool"
import type { Answer, Job } from "./jobs.ts"
import { kindOf } from "./kinds.ts"
import { type FaultName, faultNames, type KindName, makePlan, type Step } from "./plan.ts"
import { isAlive, liveChildren, liveDescendants, workerThreads } from "./processes.ts"

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

/** What a run saw. */
export interface RunResult {
  readonly settings: RunSettings
  readonly elapsedMillis: number
  /** How many requests were dispatched (all of the plan's, unless the run broke down). */
  readonly issued: number
  /** How often each fault happened (see docs/chaos.md for when each counts). */
  readonly faults: Readonly<Record<FaultName, number>>
  /** Outcomes by `_tag`: `success`, each error's tag, `interrupted`, and anything stray. */
  readonly outcomes: ReadonlyMap<string, number>
  /** Of the `WorkerCrash` outcomes, those that name no worker: the pool had none up to offer. */
  readonly refused: number
  /** Requests that did not get exactly one outcome. */
  readonly lost: number
  /** Requests that ended later than the bound, or never. */
  readonly hung: number
  readonly stray: ReadonlyArray<Stray>
  readonly maxLatencyMillis: number
  /** `pool.queued` once every caller was done. */
  readonly queuedAtEnd: number
  readonly workers: ReadonlyArray<WorkerRecord>
  /** Live descendant processes left once the pool's scope had closed. */
  readonly processesLeft: ReadonlyArray<number>
  /** Worker threads left once the pool's scope had closed; `undefined` where they cannot be counted. */
  readonly threadsLeft: number | undefined
}

type E = DomainError | InvalidRequest
type RequestStep = Extract<Step, { readonly _tag: "Request" }>

/**
 * The restart schedule of both runs: 10 ms, doubling, at most 100 ms, with
 * jitter. The library's default (100 ms doubling up to 30 s, reset after
 * 30 s up) would keep crash-looping workers down for most of a run.
 */
export const restartSchedule = Schedule.exponential("10 millis").pipe(
  Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, Duration.millis(100)))),
  Schedule.jittered
)

/**
 * The pace of the faults that take a worker down (crash, exit, hang, kill)
 * and of removes. They pass a gate one at a time, each once the one before
 * has taken effect and while fewer than half of the workers are down
 * (starting, restarting, or being added) and at least two are healthy,
 * waiting at most `gateWait` for that. Starting a worker costs a few hundred
 * milliseconds of CPU: faults faster than workers come back would leave the
 * pool without a worker most of the time, and the faults would meet none.
 * The plan is unchanged, only its pace. A fault in a burst (see
 * `burstShare`) skips the gate.
 */
const gateWait = Duration.seconds(5)
/** A remove that would leave fewer members than this is skipped. */
const minMembers = 2
/** After the watchdog fired, how long a cut request may take to end before it counts as lost. */
const lostAfter = Duration.seconds(5)

const isDown = (health: WorkerHealth) => health.state === "Starting" || health.state === "Restarting"

/** Polls `condition` every 10 ms until it holds, for at most `gateWait`. */
const waitUntil = <E2, R2>(condition: Effect.Effect<boolean, E2, R2>) =>
  Effect.timeoutOption(
    Effect.gen(function* () {
      while (!(yield* condition)) yield* Effect.sleep(Duration.millis(10))
    }),
    gateWait
  )

/** Runs the plan of `settings` against a fresh pool; needs a `ChildProcessSpawner` for the subprocesses. */
export const run = (settings: RunSettings): Effect.Effect<RunResult, never, ChildProcessSpawner.ChildProcessSpawner> =>
  Effect.gen(function* () {
    const plan = makePlan(settings)
    const began = performance.now()
    const since = () => performance.now() - began
    const processesBefore = new Set(liveDescendants())
    const threadsBefore = workerThreads()

    const faults = Object.fromEntries(faultNames.map((name) => [name, 0])) as Record<FaultName, number>
    const outcomes = new Map<string, number>()
    const count = (tag: string) => outcomes.set(tag, (outcomes.get(tag) ?? 0) + 1)
    const outcomesOf = new Uint8Array(settings.requests)
    const stray: Array<Stray> = []
    let refused = 0
    let hung = 0
    let issued = 0
    let maxLatencyMillis = 0

    // --- the workers: every one ever made is kept, to read its counters at the end.
    const workerOptions: Worker.WorkerOptions = {
      restart: restartSchedule,
      ...(settings.budget === undefined
        ? {}
        : { maxRestarts: settings.budget.maxRestarts, restartWindow: Duration.millis(settings.budget.windowMillis) })
    }
    const made = new Map<WorkerId, { readonly worker: Worker.Worker<Job, Answer, E>; readonly kind: KindName }>()
    const makeWorker = (id: WorkerId, kind: KindName) =>
      Worker.fromKind(id, kindOf(kind), workerOptions).pipe(
        Effect.orDie,
        Effect.tap((worker) => Effect.sync(() => made.set(id, { worker, kind })))
      )

    // Made first, closed last: the workers added later live in it, and the pool stops them first.
    const workersScope = yield* Scope.make()
    const poolScope = yield* Scope.make()
    const pool = yield* WorkerPool.make<Job, Answer, E, never, ChildProcessSpawner.ChildProcessSpawner>({
      size: settings.workers,
      worker: (id) => makeWorker(id, id % 2 === 0 ? "thread" : "subprocess")
    }).pipe(Effect.orDie, Scope.provide(poolScope))

    // --- restarts, as `pool.changes` shows them.
    const restartTimes = new Map<WorkerId, Array<number>>()
    const restartsSeen = new Map<WorkerId, number>()
    yield* pool.changes.pipe(
      Stream.runForEach(([id, health]) =>
        Effect.sync(() => {
          const seen = restartsSeen.get(id) ?? 0
          const at = since()
          for (let k = seen; k < health.restarts; k++) restartTimes.set(id, [...(restartTimes.get(id) ?? []), at])
          restartsSeen.set(id, Math.max(seen, health.restarts))
        })
      ),
      Effect.forkIn(poolScope)
    )
    yield* Effect.yieldNow
    const restartsBefore = new Map((yield* pool.health).map(([id, health]) => [id, health.restarts] as const))
    for (const [id, restarts] of restartsBefore) restartsSeen.set(id, Math.max(restartsSeen.get(id) ?? 0, restarts))

    // --- the gate of the faults that take a worker down.
    const gate = yield* Semaphore.make(1)
    const maxDown = Math.max(1, Math.floor(settings.workers / 2))
    /** Workers being added: starting, not members yet. */
    let adding = 0
    const room = Effect.map(
      pool.health,
      (members) =>
        members.filter(([, h]) => isDown(h)).length + adding < maxDown &&
        members.filter(([, h]) => h.state === "Healthy").length >= 2
    )
    /** Runs a fault that takes a worker down: at once in a burst, else through the gate. */
    const paced = <A, E2, R2>(burst: boolean, effect: Effect.Effect<A, E2, R2>) =>
      burst ? effect : gate.withPermit(Effect.andThen(waitUntil(room), effect))

    // --- kills: from outside the pool, of one of the processes it started (this process's new children).
    const workerProcesses = () => liveChildren().filter((pid) => !processesBefore.has(pid))
    const kill = (pick: number, burst: boolean) =>
      Effect.gen(function* () {
        // When every subprocess worker is down, the kill waits for one to start, unless it comes in a burst.
        if (!burst) yield* waitUntil(Effect.sync(() => workerProcesses().length > 0))
        const candidates = workerProcesses()
        if (candidates.length === 0) return
        const pid = candidates[Math.floor(pick * candidates.length)]!
        try {
          process.kill(pid, "SIGKILL")
        } catch {
          return // It died on its own meanwhile.
        }
        faults.kill++
        if (!burst) yield* waitUntil(Effect.sync(() => !isAlive(pid)))
      })

    // --- membership.
    let nextId = settings.workers
    /** The adds under way, awaited before the end. */
    const additions: Array<Fiber.Fiber<void>> = []
    /**
     * Starts adding a worker of the kind the pool has fewer of (not counting
     * retired workers), so that both kinds stay in it; of the planned kind
     * on a tie. It counts as down (see `room`) until it is a member.
     */
    const add = (planned: KindName) =>
      Effect.gen(function* () {
        const members = yield* pool.health
        const inService = (kind: KindName) =>
          members.filter(([id, h]) => made.get(id)?.kind === kind && h.state !== "Retired").length
        const threads = inService("thread")
        const subprocesses = inService("subprocess")
        const kind = threads === subprocesses ? planned : threads < subprocesses ? "thread" : "subprocess"
        adding++
        return yield* Effect.gen(function* () {
          const worker = yield* makeWorker(nextId++ as WorkerId, kind).pipe(Scope.provide(workersScope))
          yield* pool.add(worker).pipe(Effect.orDie)
          faults.add++
        }).pipe(
          Effect.ensuring(Effect.sync(() => adding--)),
          Effect.forkIn(poolScope),
          Effect.flatMap((fiber) => Effect.sync(() => void additions.push(fiber)))
        )
      })
    const remove = (pick: number) =>
      Effect.gen(function* () {
        const members = yield* pool.health
        if (members.length <= minMembers) return
        // A retired worker goes first, as an operator would replace it; else any member may.
        const retired = members.filter(([, h]) => h.state === "Retired")
        const among = retired.length > 0 ? retired : members
        const [id] = among[Math.floor(pick * among.length)]!
        const removed = yield* Effect.exit(pool.remove(id))
        if (Exit.isSuccess(removed)) faults.remove++
      })

    // --- requests.
    const settle = (step: RequestStep, exit: Exit.Exit<Answer, unknown>, interruptedByRun: boolean) => {
      outcomesOf[step.index]!++
      if (Exit.isSuccess(exit)) {
        count("success")
        return
      }
      const error = Cause.findErrorOption(exit.cause)
      if (Option.isSome(error)) {
        const e = error.value as { readonly _tag?: unknown; readonly workerId?: unknown }
        const tag = typeof e._tag === "string" ? e._tag : "untagged error"
        count(tag)
        const named = tag === "WorkerCrash" && e.workerId !== undefined
        if (tag === "WorkerCrash" && !named) refused++
        if (named && (step.fault === "crash" || step.fault === "exit")) faults[step.fault]++
        if (tag === "RequestTimeout" && step.fault === "hang") faults.hang++
        if (tag === "DomainError" && step.fault === "domain") faults.domain++
        if (tag === "untagged error") stray.push({ request: step.index, what: `an untagged error: ${String(e)}` })
        return
      }
      if (Cause.hasInterruptsOnly(exit.cause) && interruptedByRun) {
        count("interrupted")
        if (step.fault === "interrupt") faults.interrupt++
        return
      }
      const what = Cause.hasInterruptsOnly(exit.cause) ? "an interruption the run did not cause" : "a defect"
      count(what)
      stray.push({ request: step.index, what: `${what}: ${Cause.pretty(exit.cause).split("\n")[0]}` })
    }

    const request = (step: RequestStep) =>
      Effect.gen(function* () {
        issued++
        const started = performance.now()
        const options = step.timeoutMillis === undefined ? undefined : { timeout: Duration.millis(step.timeoutMillis) }
        const fiber = yield* Effect.forkChild(pool.dispatch(step.job, options))
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

    let next = 0
    const caller = Effect.gen(function* () {
      for (let step = plan[next++]; step !== undefined; step = plan[next++]) {
        switch (step._tag) {
          case "Request":
            if (step.fault === "crash" || step.fault === "exit" || step.fault === "hang") {
              yield* paced(step.burst, request(step))
            } else {
              yield* request(step)
            }
            break
          case "Kill":
            yield* paced(step.burst, kill(step.pick, step.burst))
            break
          case "Add":
            // An add makes room rather than taking it: it does not wait at the gate.
            yield* add(step.kind)
            break
          case "Remove":
            yield* paced(step.burst, remove(step.pick))
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
    const members = new Map(yield* pool.health)
    const workers: Array<WorkerRecord> = []
    for (const [id, { worker, kind }] of [...made].sort(([a], [b]) => a - b)) {
      workers.push({
        id,
        kind,
        final: members.get(id) ?? (yield* worker.health),
        member: members.has(id),
        restartsBefore: restartsBefore.get(id) ?? 0,
        restartTimes: restartTimes.get(id) ?? []
      })
    }
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
      faults,
      outcomes,
      refused,
      lost: outcomesOf.reduce((n, k) => n + (k === 1 ? 0 : 1), 0),
      hung,
      stray,
      maxLatencyMillis,
      queuedAtEnd,
      workers,
      processesLeft,
      threadsLeft
    }
  }).pipe(Random.withSeed(settings.seed ^ Math.imul(settings.stream + 1, 0x9e3779b9)))
