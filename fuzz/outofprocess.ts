/**
 * The executor of thread and subprocess plans, in real time: a pool of
 * workers running `worker.ts`, the plan's steps played in order (an
 * `Advance` sleeps), the queue sampled all along, then the close; then the
 * operating system is asked what is left (processes, threads). Every wait is
 * bounded in real time, so that a run that hangs is reported.
 */
import { Duration, Effect, Exit, type Fiber, References, Schedule, Scope, Stream } from "effect"
import { type DomainError, type InvalidRequest, Worker, WorkerId, WorkerPool } from "effect-worker-pool"
import { exists, liveChildren, liveDescendants, workerThreads } from "../chaos/processes.ts"
import { dispatchTo, policyOf, poolClose, poolOptionsOf, recordDispatch, removeMember, watchedRun } from "./executor.ts"
import { capturingLogs } from "./harness.ts"
import type { Answer, Job, WireAct } from "./jobs.ts"
import { kindOf } from "./kinds.ts"
import { allowanceOf } from "./model.ts"
import type { Act, Plan, PoolSettings, Request } from "./plan.ts"
import { outcomeOf, type RequestRecord, type RunRecord } from "./record.ts"

/** Real time the run waits, past a bound, before it calls what it waits for stuck. */
const patienceMillis = 15_000
/** How often the queue is sampled. */
const sampleMillis = 10

/** What the child is sent for an act. */
const wireAct = (act: Act, pool: PoolSettings): WireAct => {
  switch (act._tag) {
    case "Oversized":
      return { _tag: "Oversized", text: "x".repeat(act.bytes) }
    case "Unencodable":
      return { _tag: "Unencodable", value: -1 }
    case "Uncloneable":
      return { _tag: "Opaque", payload: () => pool.maxInFlight }
    case "NonEffect":
    case "SlowCancel":
      // In-process acts: a wire plan never draws them.
      return { _tag: "Succeed" }
    default:
      return act
  }
}

/** Polls `condition` every 20 ms, for at most `millis`; whether it came to hold. */
const within = (millis: number, condition: () => boolean) =>
  Effect.gen(function* () {
    const until = performance.now() + millis
    while (!condition()) {
      if (performance.now() > until) return false
      yield* Effect.sleep(20)
    }
    return true
  })

const play = (plan: Plan & { readonly target: "thread" | "subprocess" }, record: RunRecord, began: number) =>
  Effect.gen(function* () {
    const now = () => performance.now() - began
    const p = plan.pool
    const allowance = allowanceOf(plan)
    const processesBefore = new Set(liveDescendants())
    const threadsBefore = workerThreads()
    const kind = kindOf(plan.target, p)
    const { policy, bugs } = policyOf(plan)
    const workerOptions = {
      restart: Schedule.spaced(Duration.millis(p.restartMillis)),
      ...(p.recycleAfter === undefined ? {} : { recycle: { maxRequests: p.recycleAfter } })
    }

    const poolScope = yield* Scope.make()
    const addedScope = yield* Scope.make()
    const workers: Array<Worker.Worker<Job, Answer, DomainError | InvalidRequest>> = []
    const makeWorker = (id: number) =>
      Worker.fromKind(WorkerId.make(id), kind, workerOptions).pipe(
        Effect.orDie,
        Effect.tap((worker) =>
          Effect.sync(() => {
            workers.push(worker)
            record.workers.push({ id, standalone: false, health: undefined })
          })
        )
      )
    const pool = yield* WorkerPool.make<Job, Answer, DomainError | InvalidRequest>({
      policy,
      size: p.workers,
      worker: (id) => makeWorker(id),
      ...poolOptionsOf(p),
      spares: p.spares
    }).pipe(Effect.orDie, Scope.provide(poolScope))
    let nextWorkerId = p.workers
    const changes = yield* Effect.forkDetach(Stream.runDrain(pool.changes))

    let seq = 0
    const sampler = yield* Effect.forkDetach(
      Effect.repeat(
        Effect.flatMap(pool.queued, (queued) => Effect.sync(() => record.samples.push({ seq, at: now(), queued }))),
        Schedule.spaced(Duration.millis(sampleMillis))
      )
    )

    const fibers = new Map<number, Fiber.Fiber<unknown, unknown>>()
    const byId = new Map<number, RequestRecord>()
    const killed = new Set<number>()
    const close = poolClose(poolScope, record, now, true)

    const interrupt = (id: number, stage?: "served") =>
      Effect.gen(function* () {
        const fiber = fibers.get(id)
        const rec = byId.get(id)
        if (fiber === undefined || rec === undefined || fiber.pollUnsafe() !== undefined) return
        rec.interruptedAt = now()
        if (rec.request.act._tag === "IgnoreCancel") rec.interruptStage = "cancelling"
        else if (stage !== undefined) rec.interruptStage = stage
        const before = yield* pool.queued
        fiber.interruptUnsafe()
        yield* Effect.yieldNow
        rec.interruptStage ??= (yield* pool.queued) < before ? "queued" : "running"
      })

    const send = (step: Request, at: number) =>
      Effect.gen(function* () {
        const rec = recordDispatch(record, step, at, now())
        byId.set(step.id, rec)
        const job: Job = { id: step.id, act: wireAct(step.act, p) }
        if (step.policy !== undefined) bugs.set(job, step.policy)
        const fiber = yield* Effect.forkDetach(
          Effect.onExit(dispatchTo(pool, job, step), (exit) =>
            Effect.suspend(() => {
              rec.endedAt = now()
              rec.outcome = outcomeOf(Exit.map(exit, (answer) => answer.id))
              return step.interruptOnEnd === undefined ? Effect.void : interrupt(step.interruptOnEnd, "served")
            })
          ),
          { startImmediately: true }
        )
        fibers.set(step.id, fiber)
      })

    for (; seq < plan.steps.length; seq++) {
      const step = plan.steps[seq]!
      switch (step._tag) {
        case "Request":
          yield* send(step, seq)
          break
        case "Advance":
          if (step.millis > 0) yield* Effect.sleep(step.millis)
          break
        case "Interrupt":
          yield* interrupt(step.request)
          break
        case "Add": {
          const worker = yield* makeWorker(nextWorkerId++).pipe(Scope.provide(addedScope))
          yield* Effect.exit(pool.add(worker))
          break
        }
        case "Remove":
          yield* removeMember(pool, step.pick, record, now)
          break
        case "Kill": {
          const pids = liveChildren().filter((pid) => !processesBefore.has(pid) && !killed.has(pid))
          if (pids.length === 0) break
          const pid = pids[Math.floor(step.pick * pids.length)]!
          try {
            process.kill(pid, "SIGKILL")
            killed.add(pid)
          } catch {
            // It ended on its own meanwhile.
          }
          break
        }
        case "Shutdown":
          yield* close.begin(seq)
          break
      }
      yield* Effect.yieldNow
      record.samples.push({ seq, at: now(), queued: yield* pool.queued })
    }

    // The end: the pool closes, within its bound or it is reported.
    yield* close.begin(plan.steps.length)
    const closeBound = p.drainMillis + allowance.close
    yield* within(closeBound + patienceMillis, close.returned)
    sampler.interruptUnsafe()
    // A remove stops its worker, which takes the kind's grace periods.
    yield* within(allowance.close + patienceMillis, () => record.removals.every((r) => r.returnedAt !== undefined))
    const added = yield* Effect.forkDetach(Scope.close(addedScope, Exit.void), { startImmediately: true })
    if (!(yield* within(allowance.close + patienceMillis, () => added.pollUnsafe() !== undefined))) {
      record.stuck.push("the scope of the workers added to the pool did not close")
    }
    // Nothing may be left: no child process, no thread.
    const processesLeft = () => liveDescendants().filter((pid) => !processesBefore.has(pid) && exists(pid))
    yield* within(2_000, () => processesLeft().length === 0)
    const left = processesLeft()
    if (left.length > 0) record.leftovers.push(`child processes left: ${left.join(", ")}`)
    if (threadsBefore !== undefined) {
      const threadsLeft = () => (workerThreads() ?? 0) - threadsBefore
      yield* within(2_000, () => threadsLeft() <= 0)
      if (threadsLeft() > 0) record.leftovers.push(`worker threads left: ${threadsLeft()}`)
    }
    yield* within(1_000, () => changes.pollUnsafe() !== undefined)
    if (changes.pollUnsafe() === undefined) {
      record.leftovers.push("pool.changes did not end")
      changes.interruptUnsafe()
    }
    for (let i = 0; i < workers.length; i++) {
      const health = yield* workers[i]!.health
      record.workers[i]!.health = health
      if (health.state !== "Stopped")
        record.leftovers.push(`worker ${workers[i]!.id} is ${health.state} after the close`)
    }
    close.abandon()
  })

/**
 * Plays a thread or subprocess plan and returns what it saw. `watchdogMillis`:
 * real time the run may take before it is given up on (and reported).
 */
export const runOutOfProcess = (plan: Plan, watchdogMillis: number): Effect.Effect<RunRecord> =>
  plan.target !== "thread" && plan.target !== "subprocess"
    ? Effect.die(new Error(`runOutOfProcess: ${plan.target} is not a thread or subprocess plan`))
    : watchedRun(plan, watchdogMillis, (record, began) =>
        play(plan as Plan & { readonly target: "thread" | "subprocess" }, record, began).pipe(
          capturingLogs(record.logs),
          Effect.provideService(References.MinimumLogLevel, "Warn")
        )
      )
