/**
 * The admission queue: the requests waiting for a slot, oldest first, the
 * callers suspended until the queue has room (the `"suspend"` strategy), and
 * the waiting requests' deadlines. A plain data structure over the requests'
 * own records (they are the list's nodes and the heap's entries, so waiting
 * costs no allocation); what to do with a request is the engine's business.
 */
import type { Request } from "../request.ts"

/** A doubly linked list of requests through their `linePrev`/`lineNext`, tagged with `line`. */
class Line {
  head: Request | undefined = undefined
  tail: Request | undefined = undefined
  length = 0
  private readonly tag: 1 | 2

  constructor(tag: 1 | 2) {
    this.tag = tag
  }

  push(request: Request): void {
    request.line = this.tag
    request.lineNext = undefined
    request.linePrev = this.tail
    if (this.tail === undefined) this.head = request
    else this.tail.lineNext = request
    this.tail = request
    this.length++
  }

  unshift(request: Request): void {
    request.line = this.tag
    request.linePrev = undefined
    request.lineNext = this.head
    if (this.head === undefined) this.tail = request
    else this.head.linePrev = request
    this.head = request
    this.length++
  }

  remove(request: Request): void {
    if (request.linePrev === undefined) this.head = request.lineNext
    else request.linePrev.lineNext = request.lineNext
    if (request.lineNext === undefined) this.tail = request.linePrev
    else request.lineNext.linePrev = request.linePrev
    request.linePrev = request.lineNext = undefined
    request.line = 0
    this.length--
  }
}

export class AdmissionQueue {
  /** Requests waiting for a slot, oldest first. */
  private readonly queue = new Line(1)
  /** Callers suspended until the queue has room. */
  private readonly overflow = new Line(2)
  private readonly deadlines = new DeadlineHeap()
  readonly capacity: number

  constructor(capacity: number) {
    this.capacity = capacity
  }

  /** How many requests wait in the queue (never more than its capacity). */
  get length(): number {
    return this.queue.length
  }

  /** Whether no request waits, in the queue or for room in it. */
  get isEmpty(): boolean {
    return this.queue.length === 0 && this.overflow.length === 0
  }

  /** Whether the queue has room for one more. */
  get hasRoom(): boolean {
    return this.queue.length < this.capacity
  }

  /** The oldest waiting request. */
  peek(): Request | undefined {
    return this.queue.head
  }

  /** Queues `request` at the back (`overflow`: among the callers waiting for room), with its deadline. */
  push(request: Request, overflow: boolean): void {
    ;(overflow ? this.overflow : this.queue).push(request)
    if (Number.isFinite(request.deadline) && request.heapIndex === -1) this.deadlines.push(request)
  }

  /** Puts `request` back at the head of the queue: it keeps its place (its slot's incarnation ended before it started). */
  pushFront(request: Request): void {
    this.queue.unshift(request)
    if (Number.isFinite(request.deadline) && request.heapIndex === -1) this.deadlines.push(request)
  }

  /** Takes `request` out of wherever it waits; fills the queue from the overflow. */
  remove(request: Request): void {
    if (request.line === 1) this.queue.remove(request)
    else if (request.line === 2) this.overflow.remove(request)
    if (request.heapIndex !== -1) this.deadlines.remove(request)
    this.refill()
  }

  /** Takes the oldest request out of the queue, if any. */
  shift(): Request | undefined {
    const head = this.queue.head
    if (head !== undefined) this.remove(head)
    return head
  }

  /** Takes every waiting request out, oldest first. */
  drain(): Array<Request> {
    const all: Array<Request> = []
    for (const line of [this.queue, this.overflow]) {
      for (let request = line.head; request !== undefined; request = line.head) {
        line.remove(request)
        if (request.heapIndex !== -1) this.deadlines.remove(request)
        all.push(request)
      }
    }
    return all
  }

  /** The earliest deadline of a waiting request, `Infinity` if none. */
  get nextDeadline(): number {
    return this.deadlines.peek()?.deadline ?? Infinity
  }

  /** Takes out the requests whose deadline is at or before `now`. */
  expired(now: number): Array<Request> {
    const out: Array<Request> = []
    for (let request = this.deadlines.peek(); request !== undefined && request.deadline <= now; ) {
      this.remove(request)
      out.push(request)
      request = this.deadlines.peek()
    }
    return out
  }

  /** Moves suspended callers into the queue as it has room. */
  private refill(): void {
    while (this.queue.length < this.capacity && this.overflow.length > 0) {
      const request = this.overflow.head!
      this.overflow.remove(request)
      this.queue.push(request)
    }
  }
}

/** A binary min-heap of requests by deadline, each knowing its index. */
class DeadlineHeap {
  private readonly items: Array<Request> = []

  peek(): Request | undefined {
    return this.items[0]
  }

  push(item: Request): void {
    item.heapIndex = this.items.length
    this.items.push(item)
    this.up(item.heapIndex)
  }

  remove(item: Request): void {
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
