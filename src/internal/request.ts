/**
 * A request's one record, from its admission to its outcome. Everything the
 * pool, the worker and the wire know of a request lives here, and its state
 * is one named value:
 *
 * ```text
 *            reserve               start                settle
 *  Queued ───────────▶ Reserved ─────────▶ Running ─────────────▶ Settled
 *    │  ▲                 │  │                    retry (idempotent, after a crash) │
 *    │  └── unreserve ────┘  │            Reserved (another worker) ◀──────────────┘
 *    │ leave                 │ leave
 *    ▼                       ▼
 *   Left ◀───────────────────┘        Queued/Reserved ── refuse ──▶ Settled
 * ```
 *
 * - `Queued`: admitted, waiting for a slot (in the queue, or about to be
 *   placed on the fast path).
 * - `Reserved`: a slot is taken on a worker's live incarnation; the request
 *   has not started (its caller is being woken to run it).
 * - `Running`: it started on the worker. A caller that leaves now does not
 *   end it: it stays `Running` (marked `left`) until the worker lets go of
 *   it, so that its slot stays taken until then.
 * - `Settled`: it has its outcome. `Left`: its caller left before it ran.
 *
 * Each move is one function that refuses an illegal one (a second serve, a
 * second settle, a settle after leaving) by throwing {@link IllegalTransition}:
 * a defect of the engine, never of the caller, with a message that names
 * the request, the move and the state it was in.
 */
import type { Duration, Effect, Fiber, Tracer } from "effect"

/** Where a request is in its life. */
export type RequestState = "Queued" | "Reserved" | "Running" | "Settled" | "Left"

/**
 * How a request that reached a worker ended, as its worker counts it.
 *
 * - `succeeded`, `domainError`: the worker answered (a domain error is a
 *   success of the worker: it judged the request).
 * - `rejected`: the request never reached the handler (`InvalidRequest`).
 * - `crashed`, `timedOut`: failures of the worker, toward ejection.
 * - `torn`: its incarnation was torn down under it by another request's
 *   crash, or by a stop: an error, but not one of its own making.
 * - `interrupted`: its caller left.
 */
export type Outcome = "succeeded" | "domainError" | "rejected" | "crashed" | "timedOut" | "torn" | "interrupted"

/** A move the record's state does not allow: a bug of the engine. */
export class IllegalTransition extends Error {
  override readonly name = "IllegalTransition"
}

/** What a worker is to a request: the owner of its slot. */
export interface SlotOwner {
  readonly id: number
}

/**
 * What a request's dispatch asked for, shared by every request of the same
 * options (a pool's default plan, made once, serves every dispatch without
 * options).
 */
export interface Plan {
  /** How long it may run on a worker; `undefined`: no bound. */
  readonly timeout: Duration.Duration | undefined
  /** How long it may wait for a slot, in milliseconds (`Infinity`: no bound). */
  readonly queueTimeoutMillis: number
  /** It may run twice: after a `WorkerCrash` it is tried again on another worker. */
  readonly idempotent: boolean
  /** The operation of a group it calls (see `Operation`), for its span and metrics; none for a single request. */
  readonly operation?: string | undefined
  /** A streamed operation's call (see `streams.ts`): its run time says nothing of a worker's latency. */
  readonly stream?: boolean | undefined
}

/** A request's place in the admission queue: a node of its lines and of its deadline heap. */
export class Waiting {
  readonly request: Request
  /** When it stops waiting (epoch millis), `Infinity` for never. */
  deadline: number
  /** Which line it is in: 0 none, 1 the queue, 2 the overflow (callers suspended until there is room). */
  line: 0 | 1 | 2 = 0
  prev: Waiting | undefined = undefined
  next: Waiting | undefined = undefined
  /** Its position in the deadline heap, -1 when not in it. */
  heapIndex = -1

  constructor(request: Request, deadline: number) {
    this.request = request
    this.deadline = deadline
  }
}

export class Request<Req = any> {
  state: RequestState = "Queued"
  readonly payload: Req
  readonly plan: Plan
  /** The span of its dispatch, when traced: the parent of the handler's spans. */
  readonly span: Tracer.Span | undefined
  /** The fiber of its caller, when it has one (a pool's caller). */
  readonly caller: Fiber.Fiber<unknown, unknown> | undefined
  /** How many times it started on a worker. */
  attempts = 0
  /** It was admitted: the pool counts it among the requests it must see to their end (its drain waits for them). */
  admitted = false

  // --- waiting ---------------------------------------------------------------
  /** When it was admitted (epoch millis). */
  since = 0
  /** Its place in the admission queue, while it has one. */
  wait: Waiting | undefined = undefined
  /** Wakes its suspended caller with what comes next: its run, or its outcome. */
  resume: ((effect: Effect.Effect<any, any>) => void) | undefined = undefined
  /** What its caller is to be woken with, when that came before the caller suspended. */
  pending: Effect.Effect<any, any> | undefined = undefined

  // --- on a worker -----------------------------------------------------------
  /** The worker whose slot it holds (while `Reserved` or `Running`). */
  worker: SlotOwner | undefined = undefined
  /** The incarnation that gave the slot. */
  incarnation: object | undefined = undefined
  /** When it started on its worker (epoch millis). */
  startedAt = 0
  /** Its start and end are read from the clock afresh, not from the turn's time: its run time is exact. */
  timed = false
  /** Its neighbours in its worker's list of running requests, oldest first. */
  prev: Request<Req> | undefined = undefined
  next: Request<Req> | undefined = undefined
  /** How it runs on its worker: sent without a fiber, on its caller's fiber, or on a fiber of its incarnation. */
  path: "submit" | "caller" | "fiber" | undefined = undefined
  /** It runs in process on its caller's fiber: its incarnation's end waits for it, a stop interrupts that fiber. */
  onCaller = false
  /** It was sent without a fiber (`Incarnation.submit`): this cancels it. */
  cancel: (() => void) | undefined = undefined
  /**
   * On its caller's fiber: what its caller sees of a failure, judged by the
   * frame that saw the handler end, for what the frame gives it.
   */
  seen: Effect.Effect<any, any> | undefined = undefined
  /** Its frame is on its caller's fiber (see the engine's `dispatch`). */
  framed = false
  /** Its caller left while it ran: its outcome goes to nobody. */
  left = false
  /** It is the one probe of its ejected worker. */
  probe = false

  // --- its outcome -----------------------------------------------------------
  /** How its last run ended on its worker. */
  outcome: Outcome | undefined = undefined
  /** The `_tag` of what its caller got, for the metrics (`"Success"`, a domain error's, a refusal's). */
  tag: string | undefined = undefined

  constructor(
    payload: Req,
    plan: Plan,
    span: Tracer.Span | undefined,
    caller: Fiber.Fiber<unknown, unknown> | undefined
  ) {
    this.payload = payload
    this.plan = plan
    this.span = span
    this.caller = caller
  }

  /** How long it may run on a worker; `undefined`: no bound. */
  get timeout(): Duration.Duration | undefined {
    return this.plan.timeout
  }

  /** How long it may wait for a slot, in milliseconds (`Infinity`: no bound). */
  get queueTimeoutMillis(): number {
    return this.plan.queueTimeoutMillis
  }

  /** It may run twice: after a `WorkerCrash` it is tried again on another worker. */
  get idempotent(): boolean {
    return this.plan.idempotent
  }

  /** Whether it is over for the pool: settled, or left before it ran. */
  get done(): boolean {
    return this.state === "Settled" || this.state === "Left"
  }
}

/** The `_tag` of what a request's caller got, for the metrics (`"Success"`, an error's, `"Interrupted"`). */
export const callerTag = (request: Request): string => {
  switch (request.outcome) {
    case "succeeded":
      return "Success"
    case "domainError":
      return request.tag ?? "DomainError"
    case "rejected":
      return "InvalidRequest"
    case "crashed":
    case "torn":
      return request.tag ?? "WorkerCrash"
    case "timedOut":
      return "RequestTimeout"
    case "interrupted":
      return "Interrupted"
    default:
      return request.tag ?? "Defect"
  }
}

/** Numbers for messages, given the first time a request is named. */
const numbers = new WeakMap<Request, number>()
let counter = 0

/** A number that names `request` in messages (unique in the process). */
export const numberOf = (request: Request): number => {
  let n = numbers.get(request)
  if (n === undefined) {
    n = ++counter
    numbers.set(request, n)
  }
  return n
}

const illegal = (request: Request, move: string, why: string): never => {
  throw new IllegalTransition(`request ${numberOf(request)}: cannot ${move}: ${why} (it is ${request.state})`)
}

/** `Queued` → `Reserved`: it takes a slot on `worker`'s `incarnation`. */
export const reserve = (request: Request, worker: SlotOwner, incarnation: object): void => {
  if (request.state !== "Queued") illegal(request, "reserve a slot", "only a queued request is served")
  request.state = "Reserved"
  request.worker = worker
  request.incarnation = incarnation
  request.outcome = undefined
}

/** `Reserved` → `Queued`: its slot is given back unused (its incarnation ended before it started). */
export const unreserve = (request: Request): void => {
  if (request.state !== "Reserved") illegal(request, "give back its slot", "it holds no unused slot")
  request.state = "Queued"
  request.worker = undefined
  request.incarnation = undefined
}

/** `Reserved` → `Running`, at `now`. */
export const start = (request: Request, now: number): void => {
  if (request.state !== "Reserved") illegal(request, "start", "only a request with a slot starts")
  request.state = "Running"
  request.startedAt = now
  request.attempts++
}

/** `Running` → `Settled`, with how it ended on its worker. */
export const settle = (request: Request, outcome: Outcome): void => {
  if (request.state !== "Running") {
    illegal(
      request,
      "settle",
      request.state === "Settled"
        ? "it was settled already"
        : request.state === "Left"
          ? "its caller left before it ran"
          : "it never started"
    )
  }
  request.state = "Settled"
  request.outcome = outcome
}

/** `Settled` → `Reserved` on another worker: an idempotent request tried again after its worker crashed. */
export const retry = (request: Request, worker: SlotOwner, incarnation: object): void => {
  if (request.state !== "Settled" || (request.outcome !== "crashed" && request.outcome !== "torn")) {
    illegal(request, "retry", "only a request whose worker crashed under it is tried again")
  }
  if (!request.idempotent) illegal(request, "retry", "it is not idempotent")
  request.state = "Reserved"
  request.outcome = undefined
  request.worker = worker
  request.incarnation = incarnation
  request.left = false
  request.timed = false
  request.cancel = undefined
  request.onCaller = false
}

/** `Queued` or `Reserved` → `Settled`, without running: refused (busy, timed out, shut down, no worker). */
export const refuse = (request: Request, tag: string): void => {
  if (request.state !== "Queued" && request.state !== "Reserved") {
    illegal(request, "refuse", request.state === "Running" ? "it runs" : "it is over")
  }
  request.state = "Settled"
  request.tag = tag
}

/**
 * Its caller leaves. `Queued` or `Reserved` → `Left`; a running request is
 * marked `left` and stays `Running` until its worker lets go of it. Returns
 * the state it left from; a request that is over stays as it is (its
 * caller left as its outcome was on its way).
 */
export const leave = (request: Request): RequestState => {
  const from = request.state
  if (from === "Queued" || from === "Reserved") {
    request.state = "Left"
    request.tag = "Interrupted"
  } else if (from === "Running") {
    request.left = true
  }
  return from
}
