/**
 * Admission: the queue of requests waiting for a slot. It applies the queue's
 * capacity and strategy, hands freed slots to waiting requests in arrival
 * order, fails the requests that waited longer than their queue timeout, and
 * fails every waiting request at once when the pool can serve none of them.
 *
 * A waiting request is handed its slot (it counts as in flight on its worker
 * from then on) in the same step as the slot is freed; its caller is woken
 * after the pool's step (see `Later`).
 */
import { Effect, Exit, type Fiber } from "effect"
import type { PoolBusy, PoolShutdown, QueueTimeout, WorkerCrash } from "../../WorkerError.ts"
import { Fifo, type FifoNode } from "../fifo.ts"
import type { Later } from "./later.ts"
import type { Pick } from "./selection.ts"

/** Why a waiting request left the queue without a slot. */
export type Refusal = WorkerCrash | PoolBusy | PoolShutdown | QueueTimeout

export interface Waiter<Req, Resp, E> {
  readonly request: Req
  readonly since: number
  /** When it stops waiting (epoch millis), `Infinity` for never. */
  readonly deadline: number
  readonly queueTimeoutMillis: number
  node: FifoNode<Waiter<Req, Resp, E>> | undefined
  inOverflow: boolean
  /** Its position in the deadline heap, -1 when not in it. */
  heapIndex: number
  resume: ((effect: Effect.Effect<Pick<Req, Resp, E>, Refusal>) => void) | undefined
  /** The slot it was handed and has not used yet. */
  handed: Pick<Req, Resp, E> | undefined
  /** Its leaving the queue without a slot ends its admission (`AdmissionHooks.abandoned`). */
  readonly counted: boolean
  /** Its wait is over: it left, failed, or took its slot. */
  over: boolean
}

export type QueueStrategy = "suspend" | "fail" | "dropOldest"

export interface AdmissionHooks<Req, Resp, E> {
  readonly now: () => number
  readonly later: Later
  /** Takes a slot for `request` now, if a worker can take it. */
  readonly take: (request: Req) => Pick<Req, Resp, E> | undefined
  /** Gives back a slot a waiter was handed and never used. */
  readonly giveBack: (pick: Pick<Req, Resp, E>) => void
  /** Runs `effect` on a fiber of the pool (for the queue-timeout timer). */
  readonly background: (effect: Effect.Effect<void>) => Fiber.Fiber<void>
  readonly busy: (reason: string) => PoolBusy
  readonly expired: (waiter: Waiter<Req, Resp, E>) => QueueTimeout
  /** A counted request left the queue without running: refused, timed out, dropped, or its caller left. */
  readonly abandoned: () => void
}

export class Admission<Req, Resp, E> {
  /** Requests waiting for a slot, oldest first. */
  private readonly queue = new Fifo<Waiter<Req, Resp, E>>()
  /** Callers suspended until the queue has room (the `"suspend"` strategy). */
  private readonly overflow = new Fifo<Waiter<Req, Resp, E>>()
  private readonly deadlines = new DeadlineHeap<Waiter<Req, Resp, E>>()
  private timer: Fiber.Fiber<void> | undefined
  private timerAt = Infinity

  private readonly capacity: number
  private readonly strategy: QueueStrategy
  private readonly hooks: AdmissionHooks<Req, Resp, E>

  constructor(capacity: number, strategy: QueueStrategy, hooks: AdmissionHooks<Req, Resp, E>) {
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
   * capacity and strategy, for at most `queueTimeoutMillis`. A full queue
   * that refuses it returns `PoolBusy` at once, without admitting it.
   * `counted`: the pool counts its end through `abandoned` when it leaves the
   * queue without a slot.
   */
  enqueue(
    request: Req,
    queueTimeoutMillis: number,
    counted: boolean
  ): Effect.Effect<Pick<Req, Resp, E>, Refusal> | PoolBusy {
    const since = this.hooks.now()
    const waiter: Waiter<Req, Resp, E> = {
      request,
      since,
      deadline: since + queueTimeoutMillis,
      queueTimeoutMillis,
      node: undefined,
      inOverflow: false,
      heapIndex: -1,
      resume: undefined,
      handed: undefined,
      counted,
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
      this.finish(
        oldest,
        Exit.fail(this.hooks.busy("dropped: the admission queue was full and a newer request arrived"))
      )
      waiter.node = this.queue.push(waiter)
    } else {
      return this.hooks.busy(`the admission queue is full (${this.capacity} waiting)`)
    }
    if (Number.isFinite(waiter.deadline)) {
      this.deadlines.push(waiter)
      this.arm()
    }
    return Effect.callback<Pick<Req, Resp, E>, Refusal>((resume) => {
      waiter.resume = resume
      // The caller gave up: it leaves the queue, or gives back the slot it was handed.
      return Effect.sync(() => this.leave(waiter))
    })
  }

  /** Hands free slots to waiting requests, oldest first, for as long as there are slots. */
  pump(): void {
    while (this.queue.length > 0) {
      const head = this.queue.peek()!
      let pick: Pick<Req, Resp, E> | undefined
      try {
        pick = this.hooks.take(head.request)
      } catch (defect) {
        // A policy that throws fails the request it was asked to place.
        this.queue.shift()
        head.node = undefined
        this.refill()
        this.finish(head, Exit.die(defect))
        continue
      }
      if (pick === undefined) return
      this.queue.shift()
      head.node = undefined
      head.handed = pick
      this.refill()
      this.finish(head, Exit.succeed(pick))
    }
  }

  /** Fails every waiting request with `error`. */
  failAll(error: Refusal): void {
    for (const fifo of [this.queue, this.overflow]) {
      for (let waiter = fifo.shift(); waiter !== undefined; waiter = fifo.shift()) {
        waiter.node = undefined
        this.finish(waiter, Exit.fail(error))
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

  /** Ends a waiter's wait with `exit`; its caller is woken after this step. */
  private finish(waiter: Waiter<Req, Resp, E>, exit: Exit.Exit<Pick<Req, Resp, E>, Refusal>): void {
    if (waiter.heapIndex !== -1) this.deadlines.remove(waiter)
    if (Exit.isFailure(exit)) this.end(waiter)
    this.hooks.later.run(() => {
      const resume = waiter.resume
      if (resume === undefined) return
      waiter.resume = undefined
      if (Exit.isSuccess(exit)) {
        // The slot is the request's now: its run ends its admission.
        waiter.handed = undefined
        waiter.over = true
      }
      resume(exit)
    })
  }

  /** Its wait ends without a slot. */
  private end(waiter: Waiter<Req, Resp, E>): void {
    if (waiter.over) return
    waiter.over = true
    if (waiter.counted) this.hooks.abandoned()
  }

  private leave(waiter: Waiter<Req, Resp, E>): void {
    waiter.resume = undefined
    this.end(waiter)
    if (waiter.node !== undefined) {
      ;(waiter.inOverflow ? this.overflow : this.queue).remove(waiter.node)
      waiter.node = undefined
      this.refill()
    }
    if (waiter.heapIndex !== -1) this.deadlines.remove(waiter)
    const handed = waiter.handed
    if (handed !== undefined) {
      waiter.handed = undefined
      this.hooks.giveBack(handed)
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
      this.finish(waiter, Exit.fail(this.hooks.expired(waiter)))
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
