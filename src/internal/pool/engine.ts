/**
 * The pool's engine: it takes a request from its admission to its outcome,
 * one record per request (`request.ts`), in steps that never nest
 * (`steps.ts`): whatever a worker, a transport or a policy does, it cannot
 * re-enter a step. It also follows the pool's workers: their changes of
 * state, their joining and leaving, whether any can serve or come back.
 *
 * A caller's dispatch is one frame on its fiber (`frame`, or pushed on the
 * fiber: fiberFrames.ts): everything the request does runs inside it, and
 * the frame's handlers see every way out of it (an answer, a failure, an
 * interruption at any point, even before the request started), so that the
 * record always reaches its end.
 */
import type { Deferred, Fiber, Tracer } from "effect"
import { Cause, Deferred as D, Effect, Exit, PubSub, Semaphore } from "effect"
import type { Worker } from "../../Worker.ts"
import {
  DuplicateWorkerId,
  NoWorker,
  PoolBusy,
  PoolShutdown,
  QueueTimeout,
  UnknownWorkerId,
  WorkerCrash
} from "../../WorkerError.ts"
import type { WorkerHealth } from "../../WorkerHealth.ts"
import type { WorkerId } from "../../WorkerId.ts"
import * as CallerFiber from "../callerFiber.ts"
import * as FiberFrames from "../fiberFrames.ts"
import { PoolMeter } from "../metrics.ts"
import { callerTag, leave, type Plan, Request, refuse, unreserve } from "../request.ts"
import { emitted } from "../streams.ts"
import { coreOf, type Owner, type Path, type RunResult, type WorkerCore } from "../worker.ts"
import type { EngineServices, PoolConfig } from "./config.ts"
import { type Member, Membership } from "./membership.ts"
import { Outcomes } from "./outcomes.ts"
import { AdmissionQueue } from "./queue.ts"
import { Selection } from "./selection.ts"
import type { Spare } from "./spares.ts"
import { Spares } from "./spares.ts"
import { Steps } from "./steps.ts"
import { DeadlineTimer } from "./timer.ts"

/** A member with what the engine keeps of it. */
type Seat<Req, Resp, E> = Member<Req, Resp, E> & {
  metrics: ReturnType<PoolMeter["worker"]>
  /** The turn in which a request of it was last timed exactly (see `startTime`). */
  timedAt: number
}

const shutdownError = new PoolShutdown({ reason: "the pool is shutting down: it admits no new request" })
const cutBeforeStart = () => new PoolShutdown({ reason: "the pool shut down before the request started" })
const cutWhileRunning = () => new PoolShutdown({ reason: "the pool shut down before the request finished" })
const interrupted = Exit.failCause(Cause.interrupt())

/** The crash an outcome given before `submit` returned carries: the incarnation is dead. */
const crashOf = (exit: Exit.Exit<unknown, unknown>): WorkerCrash | undefined => {
  if (Exit.isSuccess(exit)) return undefined
  const error = Cause.findErrorOption(exit.cause)
  return error._tag === "Some" && error.value instanceof WorkerCrash ? error.value : undefined
}

export class Engine<Req, Resp, E> extends Steps implements Owner {
  readonly config: PoolConfig
  readonly membership = new Membership<Req, Resp, E>()
  readonly selection: Selection<Req, Resp, E>
  readonly outcomes: Outcomes<Req, Resp, E>
  readonly queue: AdmissionQueue
  readonly spares: Spares
  readonly meter: PoolMeter
  readonly changes: PubSub.PubSub<readonly [WorkerId, WorkerHealth]>

  /** Told, after the step, that a request waits for a slot (an elastic pool starts workers). */
  onWait: (() => void) | undefined = undefined

  /** The pool is shutting down: it admits nothing new. */
  closing = false
  /** The drain is over: what has not started never will. */
  private cutting = false
  /** Requests admitted and not yet over, waiting or running. */
  active = 0
  private drained: Deferred.Deferred<void> | undefined

  /** No worker can serve or come back (and the pool has workers): said once, loudly. */
  private stranded = false
  private readonly timer: DeadlineTimer

  private readonly services: EngineServices
  private readonly now: () => number

  constructor(config: PoolConfig, services: EngineServices, changes: PubSub.PubSub<readonly [WorkerId, WorkerHealth]>) {
    super()
    this.config = config
    this.services = services
    this.changes = changes
    const clock = services.clock
    this.now = () => clock.currentTimeMillisUnsafe()
    this.selection = new Selection(this.membership, config.policy, config.ejection, services.random, this.now)
    this.outcomes = new Outcomes(this.membership, this.selection, config.ejection, config.retry, {
      now: this.now,
      random: services.random,
      background: (effect) => this.background(effect),
      serve: () => this.serveNow()
    })
    this.queue = new AdmissionQueue(config.queueCapacity)
    this.spares = new Spares(config.spares, services.sparesScope, services.fork)
    this.meter = new PoolMeter(
      services.context,
      { name: config.name, policy: config.policy.name, workerId: config.workerIdMetrics },
      () => this.queue.length
    )
    this.timer = new DeadlineTimer({
      later: this.later,
      fork: services.fork,
      now: this.now,
      due: () => this.post(() => this.expire())
    })
  }

  protected get nothingWaits(): boolean {
    return this.queue.isEmpty
  }

  protected fork(effect: Effect.Effect<void>): Fiber.Fiber<void> {
    return this.services.fork(effect)
  }

  // --- admission ---------------------------------------------------------------

  /**
   * A caller's dispatch, on the caller's fiber: the request is placed (a
   * slot, the queue, or a refusal) and the frame that sees it to its end is
   * set up in the same evaluation, so that no interruption can fall between
   * the two. The frame's exit handler sees the request leave at any point,
   * interruptions included. A request that runs on its caller's fiber at
   * once has the frame of its run instead (`launch`), which judges it
   * however the handler ends.
   *
   * `divert`, given the caller's fiber, may run the dispatch another way
   * (under a span of its own, through a dispatch of its own).
   */
  dispatch(
    payload: Req,
    plan: Plan,
    divert:
      | ((caller: Fiber.Fiber<unknown, unknown>, payload: Req, plan: Plan) => Effect.Effect<Resp, any> | undefined)
      | undefined,
    span?: Tracer.Span
  ): Effect.Effect<Resp, any> {
    // One record per run: the effect a dispatch returns may be run again (a retry, a repeat) or run twice at once.
    return Effect.withFiber((caller) => {
      if (divert !== undefined) {
        const other = divert(caller, payload, plan)
        if (other !== undefined) return other
      }
      const request = new Request<Req>(payload, plan, span, caller)
      if (FiberFrames.canPush(caller)) {
        // The placing, and the frames it needs, in this one evaluation (see
        // fiberFrames.ts): a request that runs on its caller's fiber at once
        // needs only those of its run (`launch`); any other, its own frame.
        try {
          return this.place(request, true)
        } catch (defect) {
          this.pushFrame(request)
          throw defect
        }
      }
      return this.frame(
        request,
        Effect.suspend(() => this.place(request, false))
      )
    })
  }

  /** The handlers of the frames a dispatch pushes (see fiberFrames.ts): one function each for every request. */
  private readonly onFrameExit = makeOnFrameExit(this)
  private readonly onCallerEnd = makeOnCallerEnd(this)

  /** Pushes `request`'s frame on its caller's fiber, once (see `dispatch`). */
  private pushFrame(request: Request<Req>): void {
    if (request.framed) return
    request.framed = true
    FiberFrames.pushOnExit(request.caller!, request, this.onFrameExit)
  }

  /** The frame `body` runs in for `request` (see `dispatch`). */
  private frame(request: Request<Req>, body: Effect.Effect<Resp, any>): Effect.Effect<Resp, any> {
    // Its handler is synchronous and runs no effect: the fiber's interruptibility is left as it is.
    return Effect.onExitPrimitive(body, (exit) => this.exited(request, exit))
  }

  /** A request's frame ends: a step of its own that settles what is left to settle. */
  exited(request: Request<Req>, exit: Exit.Exit<Resp, any>): undefined {
    // Settled or left: nothing is left to do, the commonest case after a failure.
    if (request.state === "Settled" || request.state === "Left") return
    if (this.busy) {
      this.duringStep(() => this.exitedIn(request, exit))
      return
    }
    this.busy = true
    try {
      this.exitedIn(request, exit)
    } catch (defect) {
      this.defect(defect)
    } finally {
      this.exit()
    }
  }

  private exitedIn(request: Request<Req>, exit: Exit.Exit<Resp, any>): void {
    switch (request.state) {
      case "Running":
        // A failure that nothing judged: its caller is leaving (interrupted).
        // (A request on its caller's fiber is judged by its run's frame,
        // however it ends: `launch`; an answer is judged before it gets here.)
        if (request.path === "submit") {
          this.leaveIn(request)
          return
        }
        request.left = true
        this.judgeIn(request, exit, request.path!)
        return
      case "Queued":
      case "Reserved":
        this.leaveIn(request)
        return
      default:
        return
    }
  }

  /**
   * The handler of a request on its caller's fiber has ended (seen by the
   * frame around it, where its caller cannot be interrupted): its worker
   * hears of it at once; the request is judged (a step of its own), and
   * what a failure's caller sees is kept (`request.seen`), for the same
   * frame to give it. A failed request whose caller holds an interruption
   * by anyone else counts as left: its caller leaves with the failure.
   */
  endedOnCaller(request: Request<Req>, exit: Exit.Exit<Resp, any>): Effect.Effect<void> | undefined {
    ;(request.worker as unknown as WorkerCore<Req, Resp, E>).ran(request, exit)
    return this.judgeOnCaller(request, exit)
  }

  private judgeOnCaller(request: Request<Req>, exit: Exit.Exit<Resp, any>): Effect.Effect<void> | undefined {
    if (request.state !== "Running") return undefined
    if (this.busy) return this.deferred(() => this.judgeOnCaller(request, exit) ?? Effect.void)
    this.busy = true
    try {
      if (Exit.isSuccess(exit)) {
        this.judgeIn(request, exit, "caller")
        return undefined
      }
      if (CallerFiber.isInterrupted(request.caller!)) request.left = true
      request.seen = this.judgeIn(request, exit, "caller")
      return undefined
    } catch (defect) {
      this.defect(defect)
      return undefined
    } finally {
      this.exit()
    }
  }

  /**
   * Admits a request (inside its frame): a free slot now, else the queue,
   * else a refusal. `push`: its frame is not made yet, and the placing
   * pushes it (or those of its run) before it returns; a refusal needs none.
   */
  private place(request: Request<Req>, push: boolean): Effect.Effect<Resp, any> {
    if (this.busy) {
      if (push) this.pushFrame(request)
      return this.deferred(() => this.place(request, false))
    }
    this.busy = true
    try {
      const t = this.services.turnNow()
      request.since = t
      if (this.closing) {
        this.meter.failed("PoolShutdown", request.plan.operation)
        refuse(request, "PoolShutdown")
        return Exit.fail(shutdownError)
      }
      this.active++
      request.admitted = true
      this.outcomes.budget.request(t)
      if (this.queue.isEmpty) {
        let member: Seat<Req, Resp, E> | undefined
        try {
          member = this.selection.pick(request, t) as Seat<Req, Resp, E> | undefined
        } catch (defect) {
          return this.refuse(request, "Defect", Exit.die(defect))
        }
        if (member !== undefined) {
          this.meter.queueWait.observe(0)
          if (request.span !== undefined) this.mark(request, member, 0)
          const path = member.core.pathOf(request)
          if (path === "submit") {
            // Sent within this step: its caller waits only for the outcome.
            if (push) this.pushFrame(request)
            this.send(request, member, t)
            return this.wait(request)
          }
          return this.launch(request, member, t, true, push, path)
        }
      }
      if (this.membership.canComeBack === 0) return this.refuse(request, "WorkerCrash", Exit.fail(this.refusal()))
      if (push) this.pushFrame(request)
      return this.enqueue(request, t)
    } finally {
      this.exit()
    }
  }

  /** Puts a request that found no slot in the queue, by the queue's strategy. */
  private enqueue(request: Request<Req>, t: number): Effect.Effect<Resp, any> {
    const deadline = t + request.queueTimeoutMillis
    const queue = this.queue
    if (queue.hasRoom) queue.push(request, false, deadline)
    else if (this.config.queueStrategy === "suspend") queue.push(request, true, deadline)
    else if (this.config.queueStrategy === "dropOldest" && queue.length > 0) {
      const oldest = queue.shift()!
      this.refuseWaiting(
        oldest,
        "PoolBusy",
        Exit.fail(new PoolBusy({ reason: "dropped: the admission queue was full and a newer request arrived" }))
      )
      queue.push(request, false, deadline)
    } else {
      return this.refuse(
        request,
        "PoolBusy",
        Exit.fail(new PoolBusy({ reason: `the admission queue is full (${queue.capacity} waiting)` }))
      )
    }
    this.arm()
    if (this.onWait !== undefined) this.later.run(this.onWait)
    return this.wait(request)
  }

  /** Its caller waits for what comes next: its run (a slot was found), or its outcome. */
  private wait(request: Request<Req>): Effect.Effect<Resp, any> {
    return Effect.callback<Resp, any>((resume) => {
      const ready = request.pending
      if (ready !== undefined) {
        request.pending = undefined
        return resume(ready)
      }
      request.resume = resume
    })
  }

  /** Wakes a waiting caller with `effect`, after the step. */
  private deliver(request: Request<Req>, effect: Effect.Effect<any, any>): void {
    const resume = request.resume
    if (resume === undefined) {
      // Its caller has not suspended yet: it picks it up when it does.
      request.pending = effect
      return
    }
    request.resume = undefined
    this.later.call(resume, effect)
  }

  /** Refuses a request that has not run, and ends it; returns what its caller gets. */
  private refuse<X>(request: Request<Req>, tag: string, exit: X): X {
    refuse(request, tag)
    this.finishRequest(request)
    return exit
  }

  /** Refuses a request that waits in the queue, and wakes its caller with it. */
  private refuseWaiting(request: Request<Req>, tag: string, exit: Exit.Exit<never, unknown>): void {
    this.meter.queueWait.observe(this.services.turnNow() - request.since)
    this.deliver(request, this.refuse(request, tag, exit))
  }

  private refusal(): WorkerCrash {
    return new WorkerCrash({ reason: new NoWorker({ message: this.membership.noWorkerReason() }) })
  }

  // --- serving -----------------------------------------------------------------

  /** Serves waiting requests, oldest first, for as long as a worker can take them. */
  protected serveQueue(): void {
    const queue = this.queue
    for (let request = queue.peek(); request !== undefined; request = queue.peek()) {
      if (this.cutting) {
        queue.remove(request)
        this.refuseWaiting(request, "PoolShutdown", Exit.fail(cutBeforeStart()))
        continue
      }
      const t = this.services.turnNow()
      let member: Seat<Req, Resp, E> | undefined
      try {
        member = this.selection.pick(request, t) as Seat<Req, Resp, E> | undefined
      } catch (defect) {
        // A policy that throws fails the request it was asked to place.
        queue.remove(request)
        this.refuseWaiting(request, "Defect", Exit.die(defect))
        continue
      }
      if (member === undefined) return
      queue.remove(request)
      this.meter.queueWait.observe(t - request.since)
      if (request.span !== undefined) this.mark(request, member, t - request.since)
      if (member.core.pathOf(request) === "submit") {
        // Sent at once: its caller wakes only with the outcome.
        this.send(request, member, t)
      } else {
        this.deliver(
          request,
          Effect.suspend(() => this.launchServed(request))
        )
      }
    }
  }

  /** Offers free slots to the waiting requests: a step of its own. */
  private serveNow(): void {
    this.post(() => {
      this.mayServe = true
    })
  }

  /** A woken caller runs its request on the slot it was served (inside its frame). */
  private launchServed(request: Request<Req>): Effect.Effect<Resp, any> {
    if (this.busy) return this.deferred(() => this.launchServed(request))
    this.busy = true
    try {
      if (request.state !== "Reserved") return this.wait(request)
      const member = request.worker as unknown as WorkerCore<Req, Resp, E>
      if (!member.startable(request)) {
        // The incarnation that gave the slot ended before the caller woke.
        this.requeue(request)
        return this.wait(request)
      }
      return this.launch(request, seatOf(member), this.services.turnNow(), true, false)
    } finally {
      this.exit()
    }
  }

  /** Puts a reserved request back at the head of the queue: it keeps its place. */
  private requeue(request: Request<Req>): void {
    const member = seatOf<Req, Resp, E>(request.worker as never)
    this.giveBack(request, member)
    unreserve(request)
    if (this.cutting) {
      this.refuseWaiting(request, "PoolShutdown", Exit.fail(cutBeforeStart()))
      return
    }
    // It waits at most its queue timeout from its admission, not from now.
    this.queue.pushFront(request, request.since + request.queueTimeoutMillis)
    this.arm()
    // Nobody waits for a worker that cannot come back.
    this.checkHope()
  }

  /** Gives back the unused slot of a reserved request. */
  private giveBack(request: Request<Req>, member: Seat<Req, Resp, E>): void {
    member.core.release(request)
    if (request.probe) {
      request.probe = false
      this.outcomes.probeReturned(member)
    }
    this.selection.refresh(member)
    this.mayServe = true
  }

  /**
   * When a request that runs in process starts: the turn's time, or, for one
   * request per worker per turn, the clock read afresh, so that this one is
   * timed exactly at its end too. A handler's synchronous work happens within
   * one turn, which the turn's clock cannot see; a read of the clock costs as
   * much as the rest of a dispatch, so not every request pays for one.
   */
  private startTime(request: Request<Req>, member: Seat<Req, Resp, E>, t: number): number {
    if (member.timedAt === t) return t
    member.timedAt = t
    request.timed = true
    return this.now()
  }

  /**
   * Runs a reserved request: returns what its caller runs (inside its
   * frame). `direct`: called while its caller's fiber evaluates the effect
   * this returns, which may then push its frames (see fiberFrames.ts);
   * `push`: the request's own frame is not made yet (see `place`).
   */
  private launch(
    request: Request<Req>,
    member: Seat<Req, Resp, E>,
    t: number,
    direct: boolean,
    push: boolean,
    path: Path = member.core.pathOf(request)
  ): Effect.Effect<Resp, any> {
    const core = member.core
    request.path = path
    if (push && path !== "caller") this.pushFrame(request)
    switch (path) {
      case "submit":
        return Effect.callback<Resp, any>((resume) => {
          this.post(() => this.send(request, member, this.services.turnNow()))
          const ready = request.pending
          if (ready !== undefined) {
            request.pending = undefined
            return resume(ready)
          }
          request.resume = resume
        })
      case "caller":
        core.begin(request, this.startTime(request, member, t), path)
        // The run's frame sees the handler end where its caller cannot be
        // interrupted (a teardown of the incarnation stays inside it: `ran`
        // clears the interruption it made) and judges the request; then it
        // gives a failure's caller what the judging said (an interrupted
        // caller leaves with the failure). Where it cannot be pushed, the
        // same as two effects: an exit frame within a failure's frame.
        if (direct && FiberFrames.canPushRun(request.caller!)) {
          FiberFrames.pushRun(request.caller!, request, this.onCallerEnd, seenOnCaller)
          return core.invoke(request)
        }
        return FiberFrames.catchCause(
          FiberFrames.onExit(core.invoke(request), request, this.onCallerEnd),
          request,
          onCallerFailure
        )
      case "fiber":
        core.begin(request, this.startTime(request, member, t), path)
        return Effect.flatMap(core.execute(request), (result) => this.judge(request, result, "fiber"))
    }
  }

  /**
   * Sends a reserved request through its incarnation's `submit`. What the
   * incarnation says before `submit` returns is applied here: a refusal is
   * the request's outcome; a dead incarnation did not get it, so it is
   * ended as crashed (counted once) and the request keeps its place in the
   * queue for another worker, or for this one once it is back.
   */
  private send(request: Request<Req>, member: Seat<Req, Resp, E>, t: number): void {
    const core = member.core
    request.path = "submit"
    if (!core.startable(request)) {
      this.requeue(request)
      return
    }
    const sent = core.send(request, (outcome) => this.answered(request, outcome))
    if (typeof sent === "function") {
      core.begin(request, t, "submit")
      request.cancel = sent
      return
    }
    if (!Exit.isExit(sent)) {
      // Encoded asynchronously: its caller runs the send.
      core.begin(request, t, "submit")
      this.deliver(
        request,
        Effect.flatMap(Effect.exit(sent), (exit) => this.judge(request, exit, "submit"))
      )
      return
    }
    const crash = crashOf(sent)
    if (crash !== undefined) {
      const live = core.live
      if (live !== undefined && live === request.incarnation) core.crash(live, crash.reason, true)
      this.requeue(request)
      return
    }
    core.begin(request, t, "submit")
    this.deliver(request, this.judgeIn(request, sent as Exit.Exit<Resp, E | WorkerCrash>, "submit"))
  }

  /** A submitted request's outcome, from its incarnation: a step of its own. */
  private answered(request: Request<Req>, outcome: Effect.Effect<Resp, E | WorkerCrash>): void {
    if (this.busy) {
      this.duringStep(() => this.answeredIn(request, outcome))
      return
    }
    this.busy = true
    try {
      this.answeredIn(request, outcome)
    } catch (defect) {
      this.defect(defect)
    } finally {
      this.exit()
    }
  }

  private answeredIn(request: Request<Req>, outcome: Effect.Effect<Resp, E | WorkerCrash>): void {
    if (request.state !== "Running") return
    if (!Exit.isExit(outcome)) {
      // Decoded asynchronously: judged once its caller has run it.
      if (request.left) this.judgeIn(request, interrupted, "submit")
      else
        this.deliver(
          request,
          Effect.flatMap(Effect.exit(outcome), (exit) => this.judge(request, exit, "submit"))
        )
      return
    }
    const seen = this.judgeIn(request, outcome as Exit.Exit<Resp, E | WorkerCrash>, "submit")
    if (!request.left) this.deliver(request, seen)
  }

  // --- outcomes ----------------------------------------------------------------

  /** Judges a request that ran (a step of its own); returns what its caller sees. */
  private judge(request: Request<Req>, result: RunResult<Resp, E>, path: Path): Effect.Effect<Resp, any> {
    if (this.busy) return this.deferred(() => this.judge(request, result, path))
    this.busy = true
    try {
      return this.judgeIn(request, result, path)
    } finally {
      this.exit()
    }
  }

  /**
   * Judges a request that ran: its worker settles it and says what its
   * caller sees; the pool learns from it, and an idempotent request whose
   * worker crashed is tried on another worker if one is free and the retry
   * budget allows.
   */
  private judgeIn(request: Request<Req>, result: RunResult<Resp, E>, path: Path): Effect.Effect<Resp, any> {
    const core = request.worker as unknown as WorkerCore<Req, Resp, E>
    const member = seatOf(core)
    const seen = core.conclude(request, result, path)
    const timed = request.timed
    const t = timed ? this.now() : this.services.turnNow()
    const millis = t - request.startedAt
    member.metrics.runTime.observe(millis)
    if (request.probe) request.probe = false
    // An adaptive limit learns from the run time (before the roster places the worker anew).
    // A stream's run time is its consumer's pace, not the worker's latency: the limit learns nothing of it,
    // the policy only a failure.
    const stream = request.plan.stream === true
    const known = (timed || millis > 0 || path === "submit") && !stream
    if (core.limiter !== undefined && !stream) core.learn(request.outcome!, millis, known, t)
    this.selection.refresh(member)
    // A run that started and ended in one turn, and was not timed, took an
    // unknown time (the turn's clock says 0): the policy learns nothing of it.
    this.outcomes.settled(member, request.outcome!, millis, t, known)
    this.mayServe = true
    if (
      request.idempotent &&
      !request.left &&
      (request.outcome === "crashed" || request.outcome === "torn") &&
      request.attempts <= this.config.retry.maxRetries &&
      !this.closing &&
      // A stream that gave a chunk does not run twice.
      !(stream && emitted(request.payload))
    ) {
      // The crash's news (its worker restarting, the pool in panic) first.
      this.applyPosted()
      const retried = this.retry(request, member, t)
      if (retried !== undefined) return retried
    }
    this.finishRequest(request)
    return seen
  }

  /** Tries a request whose worker crashed under it on another worker that is free now. */
  private retry(request: Request<Req>, from: Seat<Req, Resp, E>, t: number): Effect.Effect<Resp, any> | undefined {
    if (!this.outcomes.budget.canRetry(t)) return undefined
    let member: Seat<Req, Resp, E> | undefined
    try {
      member = this.selection.pick(request, t, from) as Seat<Req, Resp, E> | undefined
    } catch {
      return undefined
    }
    if (member === undefined) return undefined
    this.outcomes.budget.tryRetry(t)
    this.meter.retries++
    if (request.span !== undefined) this.mark(request, member, undefined)
    // It runs again outside the frame its dispatch made: in a frame of its own.
    return this.frame(request, this.launch(request, member, t, false, false))
  }

  /** A request is over for the pool: counted, and the drain told. */
  private finishRequest(request: Request<Req>): void {
    // A request whose caller left before it was admitted was never counted.
    if (!request.admitted) return
    request.admitted = false
    this.active--
    const tag = callerTag(request)
    const operation = request.plan.operation
    if (operation !== undefined) this.meter.failed(tag, operation)
    else if (tag === "Success") this.meter.successes++
    else this.meter.failed(tag)
    if (this.closing && this.active === 0 && this.drained !== undefined) {
      const drained = this.drained
      this.later.run(() => D.doneUnsafe(drained, Exit.void))
    }
  }

  /** Its caller left (inside a step). */
  private leaveIn(request: Request<Req>): void {
    const from = leave(request)
    switch (from) {
      case "Queued":
        this.queue.remove(request)
        this.meter.queueWait.observe(this.services.turnNow() - request.since)
        this.finishRequest(request)
        return
      case "Reserved":
        this.giveBack(request, seatOf(request.worker as never))
        this.finishRequest(request)
        return
      case "Running":
        // Its slot stays taken until the incarnation lets go of it.
        request.cancel?.()
        return
      default:
        return
    }
  }

  /** Tags the dispatch's span with the worker it went to. */
  private mark(request: Request<Req>, member: Seat<Req, Resp, E>, queuedMillis: number | undefined): void {
    const span = request.span!
    if (queuedMillis !== undefined) span.attribute("worker_pool.queued_ms", queuedMillis)
    span.attribute("worker_pool.worker_id", member.worker.id)
    span.attribute("worker_pool.kind", member.core.kind)
    span.attribute("worker_pool.attempt", request.attempts + 1)
  }

  // --- the queue's timer ---------------------------------------------------------

  /** Sets the timer to the earliest deadline of a waiting request. */
  private arm(): void {
    this.timer.arm(this.queue.nextDeadline)
  }

  /** Fails the requests whose queue timeout has passed. */
  private expire(): void {
    this.timer.fired()
    const now = this.now()
    for (const request of this.queue.expired(now)) {
      this.refuseWaiting(
        request,
        "QueueTimeout",
        Exit.fail(
          new QueueTimeout({ queueTimeoutMillis: request.queueTimeoutMillis, waitedMillis: now - request.since })
        )
      )
    }
    this.arm()
  }

  // --- workers -------------------------------------------------------------------

  /** A worker's state changed (`Owner`). */
  changed(core: WorkerCore<any, any, any>): void {
    this.post(() => this.changedIn(core))
  }

  private changedIn(core: WorkerCore<any, any, any>): void {
    const member = core.seat as Seat<Req, Resp, E> | undefined
    if (member === undefined || member.rank === -1) return
    const published = this.membership.recount(member)
    const source = core.spareSource
    if (source !== undefined && core.health.isLive) this.spares.started(source.kind)
    this.selection.refresh(member)
    if (published !== undefined) this.publish(member.worker.id, published)
    this.checkHope()
    this.mayServe = true
  }

  /** At most one worker of the pool recycles at a time (`Owner`). */
  readonly recycling = Semaphore.makeUnsafe(1)

  /** A spare for a worker that restarts (`Owner`): the pool owns them. */
  spareFor(core: WorkerCore<any, any, any>): Spare | undefined {
    return this.closing || core.spareSource === undefined ? undefined : this.spares.take(core.spareSource.kind)
  }

  private publish(id: WorkerId, health: WorkerHealth): void {
    const changes = this.changes
    this.later.run(() => PubSub.publishUnsafe(changes, [id, health]))
  }

  /** When no worker can serve or come back, nobody waits for one. */
  private checkHope(): void {
    if (this.membership.canComeBack > 0) {
      this.stranded = false
      return
    }
    if (!this.queue.isEmpty) {
      const refusal = Exit.fail(this.refusal())
      for (const request of this.queue.drain()) this.refuseWaiting(request, "WorkerCrash", refusal)
    }
    if (!this.stranded && this.membership.members.length > 0 && !this.closing) {
      this.stranded = true
      const reason = this.membership.noWorkerReason()
      // Workers that were stopped (their scope closed) are no failure: said at debug level only.
      const failed = this.membership.members.some((member) => member.core.health.state !== "Stopped")
      this.background(
        (failed
          ? Effect.logError("the pool has no worker that can serve or come back")
          : Effect.logDebug("the pool has no worker that can serve or come back")
        ).pipe(Effect.annotateLogs({ reason }))
      )
    }
  }

  /** Adds a worker: the pool routes to it from now on and owns it. */
  add(worker: Worker<Req, Resp, E>): Effect.Effect<void, DuplicateWorkerId> {
    return Effect.suspend(() => {
      if (this.membership.find(worker.id) !== undefined) {
        return Effect.fail(new DuplicateWorkerId({ workerId: worker.id }))
      }
      const core = coreOf<Req, Resp, E>(worker)
      if (core === undefined) {
        return Effect.die(new TypeError(`worker ${worker.id} was not made by Worker.make, makeScoped or fromKind`))
      }
      if (core.owner !== undefined) return Effect.die(new TypeError(`worker ${worker.id} belongs to another pool`))
      if (this.closing) return core.stop("it was added to a pool that had shut down")
      this.post(() => {
        const member = this.membership.add(worker, core) as Seat<Req, Resp, E>
        member.metrics = this.meter.worker(worker.id, core.kind, core.health)
        member.timedAt = -1
        core.owner = this
        core.seat = member
        if (core.spareSource !== undefined) {
          this.spares.offer(core.spareSource)
          if (core.health.isLive) this.spares.started(core.spareSource.kind)
        }
        this.selection.reset()
        this.publish(worker.id, core.health.snapshot())
        this.checkHope()
        this.mayServe = true
      })
      return Effect.void
    })
  }

  /** Removes a worker: no request goes to it any more, and it stops. */
  remove(id: WorkerId): Effect.Effect<void, UnknownWorkerId> {
    return Effect.suspend(() => {
      const member = this.membership.find(id) as Seat<Req, Resp, E> | undefined
      if (member === undefined) return Effect.fail(new UnknownWorkerId({ workerId: id }))
      const core = member.core
      this.post(() => {
        this.membership.remove(member)
        member.metrics.detach()
        core.owner = undefined
        this.selection.reset()
        this.checkHope()
      })
      // Every request it holds fails with WorkerCrash, those on their callers' fibers too (inside the request).
      return core.stop("it was removed from the pool")
    })
  }

  /**
   * Takes worker `id` out of the pool if it holds no request (an elastic
   * pool's idle worker): `true` if it did. The caller stops it.
   */
  retireIdle(id: WorkerId): boolean {
    let retired = false
    this.post(() => {
      const member = this.membership.find(id) as Seat<Req, Resp, E> | undefined
      if (member === undefined || member.core.health.inFlight > 0 || this.closing) return
      this.membership.remove(member)
      member.metrics.detach()
      member.core.owner = undefined
      this.selection.reset()
      this.checkHope()
      retired = true
    })
    return retired
  }

  /** Publishes a worker's health on `changes` (an elastic pool's retired worker, once stopped). */
  announce(id: WorkerId, health: WorkerHealth): void {
    this.publish(id, health)
  }

  /**
   * The worker a request would go to now, without taking a slot; a policy
   * that throws fails the call, with what it threw, as it fails a request.
   */
  peek(): Effect.Effect<Member<Req, Resp, E> | undefined> {
    let member: Member<Req, Resp, E> | undefined
    let threw: { readonly defect: unknown } | undefined
    this.post(() => {
      try {
        member = this.selection.peek()
      } catch (defect) {
        threw = { defect }
      }
    })
    return threw === undefined ? Effect.succeed(member) : Effect.die(threw.defect)
  }

  // --- shutdown --------------------------------------------------------------------

  /**
   * Shuts the pool down: nothing new is admitted; what was admitted may
   * finish within the drain; then what has not started is refused and what
   * runs is cut; the workers stop; the spares end.
   */
  close(): Effect.Effect<void> {
    const self = this
    return Effect.gen(function* () {
      self.closing = true
      if (self.active > 0) {
        self.drained = D.makeUnsafe<void>()
        yield* Effect.timeoutOption(D.await(self.drained), self.config.drain)
      }
      // The drain deadline has passed: what is still waiting never starts,
      // what is still running is cut.
      self.post(() => {
        self.cutting = true
        for (const request of self.queue.drain()) {
          self.refuseWaiting(request, "PoolShutdown", Exit.fail(cutBeforeStart()))
        }
      })
      yield* Effect.forEach(
        self.membership.members,
        (member) => member.core.stop("the pool shut down", { cut: cutWhileRunning }),
        { concurrency: "unbounded", discard: true }
      )
      yield* self.spares.close()
      self.timer.stop()
      // The last changes (workers stopped) reach the stream before it ends.
      self.later.flush()
      yield* PubSub.shutdown(self.changes)
      self.meter.close()
    })
  }
}

/** The member a core is seated as. */
/** The handler of a request's frame (pushed on its caller's fiber): its end. */
const makeOnFrameExit = <Req, Resp, E>(engine: Engine<Req, Resp, E>) =>
  function (this: FiberFrames.Frame<Request<Req>>, exit: Exit.Exit<Resp, any>): undefined {
    return engine.exited(this.about, exit)
  }

/** The handler of the frame that sees a handler on its caller's fiber end (see `Engine.endedOnCaller`). */
const makeOnCallerEnd = <Req, Resp, E>(engine: Engine<Req, Resp, E>) =>
  function (this: FiberFrames.Frame<Request<Req>>, exit: Exit.Exit<Resp, any>): Effect.Effect<void> | undefined {
    return engine.endedOnCaller(this.about, exit)
  }

/** The handler of the failure's frame of a request on its caller's fiber (the wrapping effects): what the judging said its caller sees. */
function onCallerFailure(this: FiberFrames.Frame<Request>, cause: Cause.Cause<any>): Effect.Effect<any, any> {
  const request = this.about
  const seen = request.seen
  if (seen === undefined) return Exit.failCause(cause)
  request.seen = undefined
  return seen
}

/** What the caller of a failed request on its fiber sees (the run's frame, see `FiberFrames.pushRun`): what the judging said. */
function seenOnCaller(this: FiberFrames.Frame<Request>, exit: Exit.Exit<any, any>): Effect.Effect<any, any> {
  const request = this.about
  const seen = request.seen
  if (seen === undefined) return exit
  request.seen = undefined
  return seen
}

const seatOf = <Req, Resp, E>(core: WorkerCore<Req, Resp, E>): Seat<Req, Resp, E> => core.seat as Seat<Req, Resp, E>
