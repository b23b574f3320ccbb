/**
 * The executor of in-process plans, in virtual time: a pool of in-process
 * workers (and one worker outside it, for `Worker.dispatch`) under a
 * `TestClock` of its own and a seeded `Random`, the plan's steps played in
 * order, then the close, watched step by step. Everything goes through the
 * public API. A real-time watchdog bounds the whole run, so that a run that
 * hangs is reported, never waited for.
 */
import {
  Clock,
  Duration,
  Effect,
  Exit,
  type Fiber,
  Random,
  References,
  Schedule,
  Scheduler,
  Scope,
  Stream
} from "effect"
import { TestClock } from "effect/testing"
import { type DomainError, Worker, WorkerId, WorkerPool } from "effect-worker-pool"
import { dispatchTo, policyOf, poolClose, poolOptionsOf, recordDispatch, removeMember, watchedRun } from "./executor.ts"
import { type HandlerLog, type Job, makeHandler } from "./handler.ts"
import { capturingLogs, countingScheduler } from "./harness.ts"
import { allowanceOf } from "./model.ts"
import type { Plan, Request } from "./plan.ts"
import { outcomeOf, type RequestRecord, type RunRecord, type Stage } from "./record.ts"

/** The id of the worker outside the pool. */
const standaloneId = 1_000
/** Virtual time the run waits, past the close's bound, before it calls the close stuck. */
const patienceMillis = 60_000

/** Lets every fiber move as far as it can without the clock. */
const settle = Effect.gen(function* () {
  for (let i = 0; i < 4; i++) yield* Effect.yieldNow
})

/** Tasks a run may schedule while its clock moves an hour on with nothing left: the adjust's own. */
const idleTasks = 8

const play = (plan: Plan, record: RunRecord, tasks: () => number) =>
  Effect.gen(function* () {
    const clock = yield* Clock.Clock
    const now = () => clock.currentTimeMillisUnsafe()
    const p = plan.pool
    const log: HandlerLog = { running: 0, called: new Set() }
    const handler = makeHandler(log)
    const workerOptions = {
      maxInFlight: p.maxInFlight,
      restart: Schedule.spaced(Duration.millis(p.restartMillis)),
      ...(p.recycleAfter === undefined ? {} : { recycle: { maxRequests: p.recycleAfter } })
    }
    const { policy, bugs } = policyOf(plan)
    const allowance = allowanceOf(plan)

    // The pool closes first; the workers added later, and the one outside the pool, after it.
    const poolScope = yield* Scope.make()
    const addedScope = yield* Scope.make()
    const standaloneScope = yield* Scope.make()
    const workers: Array<Worker.Worker<Job, number, DomainError>> = []
    const makeWorker = (id: number, scope?: Scope.Scope) =>
      Worker.make(WorkerId.make(id), handler, workerOptions).pipe(
        Effect.orDie,
        (made) => (scope === undefined ? made : Scope.provide(made, scope)),
        Effect.tap((worker) =>
          Effect.sync(() => {
            workers.push(worker)
            record.workers.push({ id, standalone: id === standaloneId, health: undefined })
          })
        )
      )
    const pool = yield* WorkerPool.make<Job, number, DomainError>({
      policy,
      size: p.workers,
      worker: (id) => makeWorker(id),
      ...poolOptionsOf(p)
    }).pipe(Effect.orDie, Scope.provide(poolScope))
    const standalone = yield* makeWorker(standaloneId, standaloneScope)
    let nextWorkerId = p.workers
    const changes = yield* Effect.forkDetach(Stream.runDrain(pool.changes))

    const fibers = new Map<number, Fiber.Fiber<unknown, unknown>>()
    const byId = new Map<number, RequestRecord>()
    const close = poolClose(poolScope, record, now, false)

    /** Interrupts the caller of request `id`, if it has not ended. */
    const interrupt = (id: number, stage?: Stage) => {
      const fiber = fibers.get(id)
      const rec = byId.get(id)
      if (fiber === undefined || rec === undefined || fiber.pollUnsafe() !== undefined) return
      if (rec.interruptedAt === undefined) {
        rec.interruptedAt = now()
        const act = rec.request.act
        rec.interruptStage = !log.called.has(id)
          ? (stage ?? "queued")
          : act._tag === "SlowCancel"
            ? "cancelling"
            : "running"
      } else if (rec.request.act._tag === "SlowCancel") {
        rec.interruptStage = "cancelling"
      }
      fiber.interruptUnsafe()
    }

    const send = (step: Request, seq: number) =>
      Effect.gen(function* () {
        const rec = recordDispatch(record, step, seq, now())
        byId.set(step.id, rec)
        const job: Job = { id: step.id, act: step.act }
        if (step.policy !== undefined) bugs.set(job, step.policy)
        const dispatch =
          step.direct === true
            ? standalone.dispatch(job, {
                timeout: step.timeoutMillis === undefined ? undefined : Duration.millis(step.timeoutMillis)
              })
            : dispatchTo(pool, job, step)
        // Detached: a caller that never ends must not hold the run up.
        const fiber = yield* Effect.forkDetach(
          Effect.onExit(dispatch, (exit) =>
            Effect.sync(() => {
              rec.endedAt = now()
              rec.outcome = outcomeOf(exit)
              if (step.interruptOnEnd !== undefined) interrupt(step.interruptOnEnd, "served")
            })
          ),
          { startImmediately: true }
        )
        fibers.set(step.id, fiber)
      })

    for (let seq = 0; seq < plan.steps.length; seq++) {
      const step = plan.steps[seq]!
      switch (step._tag) {
        case "Request":
          yield* send(step, seq)
          break
        case "Advance":
          yield* TestClock.adjust(step.millis)
          break
        case "Interrupt":
          interrupt(step.request)
          break
        case "Add": {
          const worker = yield* makeWorker(nextWorkerId++, addedScope)
          yield* Effect.exit(pool.add(worker))
          break
        }
        case "Remove":
          yield* removeMember(pool, step.pick, record, now)
          break
        case "Kill":
          break
        case "Shutdown":
          yield* close.begin(seq)
          break
      }
      yield* settle
      record.samples.push({ seq, at: now(), queued: yield* pool.queued })
    }

    // The end: the pool closes (if the plan did not close it), and the clock
    // runs past the drain and the allowance, then further, to show what a
    // stuck close or a leftover fiber would do.
    yield* close.begin(plan.steps.length)
    const closeBound = record.closeAt! + p.drainMillis + allowance.close
    yield* TestClock.adjust(Math.max(0, closeBound + patienceMillis - now()))
    yield* settle
    for (const [name, scope] of [
      ["the scope of the workers added to the pool", addedScope],
      ["the scope of the worker outside the pool", standaloneScope]
    ] as const) {
      const closed = yield* Effect.forkDetach(Scope.close(scope, Exit.void))
      yield* TestClock.adjust(allowance.close + patienceMillis)
      yield* settle
      if (closed.pollUnsafe() === undefined) {
        record.stuck.push(`${name} did not close within ${allowance.close + patienceMillis} ms`)
        closed.interruptUnsafe()
      }
    }

    // What is left: handler effects still running, workers not stopped, a change stream still open.
    const before = yield* Effect.forEach(workers, (w) => w.health)
    const tasksBefore = tasks()
    yield* TestClock.adjust(3_600_000)
    const woken = tasks() - tasksBefore
    yield* settle
    if (woken > idleTasks)
      record.leftovers.push(
        `fibers still ran after everything closed: the clock moved on an hour and woke ${woken} tasks`
      )
    const after = yield* Effect.forEach(workers, (w) => w.health)
    workers.forEach((worker, i) => {
      record.workers[i]!.health = after[i]
      const [b, a] = [before[i]!, after[i]!]
      if (a.state !== "Stopped") record.leftovers.push(`worker ${worker.id} is ${a.state} after its scope closed`)
      if (a.restarts !== b.restarts || a.crashes !== b.crashes || a.completed !== b.completed) {
        record.leftovers.push(`worker ${worker.id} changed an hour after its scope closed`)
      }
    })
    if (log.running > 0) record.leftovers.push(`${log.running} handler effects are still running`)
    if (changes.pollUnsafe() === undefined) {
      record.leftovers.push("pool.changes did not end")
      changes.interruptUnsafe()
    }
    close.abandon()
    // Callers that never ended are left as they are: the checks report them.
    for (const rec of record.requests) {
      const exit = fibers.get(rec.request.id)?.pollUnsafe()
      if (exit !== undefined && rec.outcome === undefined) rec.outcome = outcomeOf(exit)
    }
  })

/**
 * Plays an in-process plan and returns what it saw. `watchdogMillis`: real
 * time the run may take before it is given up on (and reported).
 */
export const runInProcess = (plan: Plan, watchdogMillis: number): Effect.Effect<RunRecord> =>
  watchedRun(plan, watchdogMillis, (record) => {
    const counting = countingScheduler()
    return play(plan, record, counting.tasks).pipe(
      Random.withSeed(plan.seed),
      capturingLogs(record.logs),
      Effect.provideService(References.MinimumLogLevel, "Warn"),
      Effect.provide(TestClock.layer()),
      Effect.provideService(Scheduler.Scheduler, counting.scheduler),
      Effect.scoped
    )
  })
