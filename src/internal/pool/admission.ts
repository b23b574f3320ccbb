/**
 * Admission: the queue of requests waiting for a slot. It applies the queue's
 * capacity and strategy, offers freed slots to waiting requests in arrival
 * order, fails the requests that waited longer than their queue timeout, and
 * fails every waiting request at once when the pool can serve none of them.
 *
 * What serving a waiting request means is the pool's business (`serve`): it
 * takes a slot for it, and either sends the request at once (its caller then
 * wakes only with the outcome) or wakes its caller to run it. Either way the
 * slot is the request's from that step on.
 */
import { Effect, Exit, type Fiber } from "effect"
import type { PoolBusy, PoolShutdown, QueueTimeout, WorkerCrash } from "../../WorkerError.ts"
import { Fifo, type FifoNode } from "../fifo.ts"
import type { Later } from "./later.ts"

/** Why a waiting request left the queue without a slot. */
export type Refusal = WorkerCrash | PoolBusy | PoolShutdown | QueueTimeout

export interface Waiter<Req, P> {
  readonly request: Req
  /** What the pool needs to serve it. */
  readonly plan: P
  readonly since: number
  /** When it stops waiting (epoch millis), `Infinity` for never. */
  readonly deadline: number
  readonly queueTimeoutMillis: number
  node: FifoNode<Waiter<Req, P>> | undefined
  inOverflow: boolean
  /** Its position in the deadline heap, -1 when not in it. */
  heapIndex: number
  /** Wakes its caller with what comes next: an outcome, or the run of its request. */
  resume: ((effect: Effect.Effect<any, any>) => void) | undefined
  /** Once served: what its caller's leaving does (cancel its request, give back its slot). */
  leave: (() => void) | undefined
  /** It was served, failed or left: it is out of the queue for good. */
  over: boolean
}

export type QueueStrategy = "suspend" | "fail" | "dropOldest"

export interface AdmissionHooks<Req, P> {
  readonly now: () => number
  readonly later: Later
  /**
   * Serves `waiter` if a worker can take it now: takes a slot, sets its
   * `leave`, and sees to it that its caller is woken. `false` if none can.
   */
  readonly serve: (waiter: Waiter<Req, P>) => boolean
  /** Runs `effect` on a fiber of the pool (for the queue-timeout timer). */
  readonly background: (effect: Effect.Effect<void>) => Fiber.Fiber<void>
  readonly busy: (reason: string) => PoolBusy
  readonly expired: (waiter: Waiter<Req, P>) => QueueTimeout
  /**
   * A request left the queue without being served: refused, timed out,
   * dropped, or its caller left. `outcome`: the `_tag` of the error its
   * caller gets, `"Interrupted"` if it left, `"Defect"` if a policy threw.
   */
  readonly abandoned: (waiter: Waiter<Req, P>, outcome: string) => void
}

export class Admission<Req, P> {
  /** Requests waiting for a slot, oldest first. */
  private readonly queue = new Fifo<Waiter<Req, P>>()
  /** Callers suspended until the queue has room (the `"suspend"` strategy). */
  private readonly overflow = new Fifo<Waiter<Req, P>>()
  private readonly deadlines = new DeadlineHeap<Waiter<Req, P>>()
  private timer: Fiber.Fiber<void> | undefined
  private timerAt = Infinity

  private readonly capacity: number
  private readonly strategy: QueueStrategy
  private readonly hooks: AdmissionHooks<Req, P>

  constructor(capacity: number, strategy: QueueStrategy, hooks: AdmissionHooks<Req, P>) {
    this.capacity = capacity
    this.strategy = strategy
    this.hooks = hooks
  }

  /** How many requests wait in the queue (never more than its capacity). */
  get length(): number {
    return this.queue.length
  }

  /** Whether no request waits, in the queue or for room in it. */
  get isEmpty(): boolean {
    return this.queue.length === 0 && this.overflow.length === 0
  }

  /**
   * Admits a request that found no slot: it waits for one, within the queue's
   * capacity and strategy, for at most `queueTimeoutMillis`, and its caller
   * is woken with what `serve` gives it. A full queue that refuses it returns
   * `PoolBusy` at once, without admitting it.
   */
  enqueue<A, E>(request: Req, plan: P, queueTimeoutMillis: number): Effect.Effect<A, E | Refusal> | PoolBusy {
    const since = this.hooks.now()
    const waiter: Waiter<Req, P> = {
      request,
      plan,
      since,
      deadline: since + queueTimeoutMillis,
      queueTimeoutMillis,
      node: undefined,
      inOverflow: false,
      heapIndex: -1,
      resume: undefined,
      leave: undefined,
      over: false
    }
    if (this.queue.length < this.capacity) {
      waiter.node = this.queue.push(waiter)
    } else if (this.strategy === "suspend") {
      waiter.node = this.overflow.push(waiter)
      waiter.inOverflow = true
    } else if (this.strategy === "dropOldest" && this.queue.length > 0) {
      const oldest = this.queue.shift()!
      oldest.node = undefined
      this.fail(oldest, this.hooks.busy("dropped: the admission queue was full and a newer request arrived"))
      waiter.node = this.queue.push(waiter)
    } else {
      return this.hooks.busy(`the admission queue is full (${this.capacity} waiting)`)
    }
    if (Number.isFinite(waiter.deadline)) {
      this.deadlines.push(waiter)
      this.arm()
    }
    return Effect.callback<A, E | Refusal>((resume) => {
      waiter.resume = resume
      // The caller gave up: it leaves the queue, or what it was served.
      return Effect.sync(() => this.left(waiter))
    })
  }

  /** Serves waiting requests, oldest first, for as long as a worker can take them. */
  pump(): void {
    while (this.queue.length > 0) {
      const head = this.queue.peek()!
      let served: boolean
      try {
        served = this.hooks.serve(head)
      } catch (defect) {
        // A policy that throws fails the request it was asked to place.
        this.queue.shift()
        head.node = undefined
        this.refill()
        this.fail(head, Exit.die(defect))
        continue
      }
      if (!served) return
      this.queue.shift()
      head.node = undefined
      head.over = true
      if (head.heapIndex !== -1) this.deadlines.remove(head)
      this.refill()
    }
  }

  /** Fails every waiting request with `error`. */
  failAll(error: Refusal): void {
    for (const fifo of [this.queue, this.overflow]) {
      for (let waiter = fifo.shift(); waiter !== undefined; waiter = fifo.shift()) {
        waiter.node = undefined
        this.fail(waiter, error)
      }
    }
  }

  /** Moves suspended callers into the queue as it has room. */
  private refill(): void {
    while (this.queue.length < this.capacity && this.overflow.length > 0) {
      const waiter = this.overflow.shift()!
      waiter.inOverflow = false
      waiter.node = this.queue.push(waiter)
    }
  }

  /** Ends a waiter's wait without a slot; its caller is woken after this step. */
  private fail(waiter: Waiter<Req, P>, failure: Refusal | Exit.Exit<never, never>): void {
    if (waiter.heapIndex !== -1) this.deadlines.remove(waiter)
    const exit = Exit.isExit(failure) ? failure : Exit.fail(failure)
    this.end(waiter, Exit.isExit(failure) ? "Defect" : failure._tag)
    this.hooks.later.run(() => {
      const resume = waiter.resume
      if (resume === undefined) return
      waiter.resume = undefined
      resume(exit)
    })
  }

  /** Its wait ends without a slot, its caller getting `outcome`. */
  private end(waiter: Waiter<Req, P>, outcome: string): void {
    if (waiter.over) return
    waiter.over = true
    this.hooks.abandoned(waiter, outcome)
  }

  /** Its caller left. */
  private left(waiter: Waiter<Req, P>): void {
    waiter.resume = undefined
    if (waiter.node !== undefined) {
      ;(waiter.inOverflow ? this.overflow : this.queue).remove(waiter.node)
      waiter.node = undefined
      this.refill()
    }
    if (waiter.heapIndex !== -1) this.deadlines.remove(waiter)
    this.end(waiter, "Interrupted")
    const leave = waiter.leave
    if (leave !== undefined) {
      waiter.leave = undefined
      leave()
    }
  }

  /** Fails the requests whose queue timeout has passed. */
  private expire = (): void => {
    this.timer = undefined
    this.timerAt = Infinity
    const now = this.hooks.now()
    for (let waiter = this.deadlines.peek(); waiter !== undefined && waiter.deadline <= now; ) {
      this.deadlines.remove(waiter)
      if (waiter.node !== undefined) {
        ;(waiter.inOverflow ? this.overflow : this.queue).remove(waiter.node)
        waiter.node = undefined
      }
      this.fail(waiter, this.hooks.expired(waiter))
      waiter = this.deadlines.peek()
    }
    this.refill()
    this.arm()
  }

  /**
   * Sets the timer to the earliest deadline, if it is not set to fire by
   * then. A timer that fires when nothing is due (the request it was set for
   * left) sets itself to the next deadline: requests that leave the queue,
   * which is what nearly all of them do, never touch it.
   */
  private arm(): void {
    const next = this.deadlines.peek()?.deadline ?? Infinity
    if (next >= this.timerAt) return
    this.timer?.interruptUnsafe()
    this.timer = undefined
    this.timerAt = next
    if (next === Infinity) return
    this.timer = this.hooks.background(
      Effect.andThen(Effect.sleep(Math.max(0, next - this.hooks.now())), Effect.sync(this.expire))
    )
  }
}

/** A binary min-heap of waiters by deadline, each knowing its index. */
class DeadlineHeap<A extends { readonly deadline: number; heapIndex: number }> {
  private readonly items: Array<A> = []

  peek(): A | undefined {
    return this.items[0]
  }

  push(item: A): void {
    item.heapIndex = this.items.length
    this.items.push(item)
    this.up(item.heapIndex)
  }

  remove(item: A): void {
    const index = item.heapIndex
    if (index === -1) return
    item.heapIndex = -1
    const last = this.items.pop()!
    if (last === item) return
    this.items[index] = last
    last.heapIndex = index
    this.down(index)
    this.up(last.heapIndex)
  }

  private up(index: number): void {
    const items = this.items
    while (index > 0) {
      const parent = (index - 1) >> 1
      if (items[parent]!.deadline <= items[index]!.deadline) return
      this.swap(index, parent)
      index = parent
    }
  }

  private down(index: number): void {
    const items = this.items
    while (true) {
      const left = 2 * index + 1
      const right = left + 1
      let smallest = index
      if (left < items.length && items[left]!.deadline < items[smallest]!.deadline) smallest = left
      if (right < items.length && items[right]!.deadline < items[smallest]!.deadline) smallest = right
      if (smallest === index) return
      this.swap(index, smallest)
      index = smallest
    }
  }

  private swap(i: number, j: number): void {
    const items = this.items
    const a = items[i]!
    const b = items[j]!
    items[i] = b
    items[j] = a
    a.heapIndex = j
    b.heapIndex = i
  }
}
