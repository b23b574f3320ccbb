/**
 * The admission queue: the requests waiting for a slot, oldest first, the
 * callers suspended until the queue has room (the `"suspend"` strategy), and
 * the waiting requests' deadlines. A plain data structure over the requests'
 * places (`Waiting`, each the node of a line and of the deadline heap, made
 * when a request starts to wait); what to do with a request is the engine's
 * business.
 */
import { type Request, Waiting } from "../request.ts"

/** A doubly linked list of waiting requests, tagged with `line`. */
class Line {
  head: Waiting | undefined = undefined
  tail: Waiting | undefined = undefined
  length = 0
  private readonly tag: 1 | 2

  constructor(tag: 1 | 2) {
    this.tag = tag
  }

  push(node: Waiting): void {
    node.line = this.tag
    node.next = undefined
    node.prev = this.tail
    if (this.tail === undefined) this.head = node
    else this.tail.next = node
    this.tail = node
    this.length++
  }

  unshift(node: Waiting): void {
    node.line = this.tag
    node.prev = undefined
    node.next = this.head
    if (this.head === undefined) this.tail = node
    else this.head.prev = node
    this.head = node
    this.length++
  }

  remove(node: Waiting): void {
    if (node.prev === undefined) this.head = node.next
    else node.prev.next = node.next
    if (node.next === undefined) this.tail = node.prev
    else node.next.prev = node.prev
    node.prev = node.next = undefined
    node.line = 0
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

  /**
   * The oldest waiting request: the queue's head, or, in a queue of capacity
   * 0 (where callers wait for a slot itself), the first suspended caller's.
   */
  peek(): Request | undefined {
    return (this.queue.head ?? (this.capacity === 0 ? this.overflow.head : undefined))?.request
  }

  /** Queues `request` at the back (`overflow`: among the callers waiting for room) until `deadline`. */
  push(request: Request, overflow: boolean, deadline: number): void {
    const node = new Waiting(request, deadline)
    request.wait = node
    ;(overflow ? this.overflow : this.queue).push(node)
    if (Number.isFinite(deadline)) this.deadlines.push(node)
  }

  /**
   * Puts `request` back at the head of the queue until `deadline`: it keeps
   * its place. A suspended caller may have taken the room it left: then the
   * youngest request of the queue goes back to the head of the suspended
   * callers, so that the queue keeps to its capacity and the order holds.
   * A queue of capacity 0 holds nothing: the request itself waits at the head
   * of the suspended callers, where such a queue's oldest waiting request is
   * (it is not refused: it was admitted once).
   */
  pushFront(request: Request, deadline: number): void {
    const node = new Waiting(request, deadline)
    request.wait = node
    this.queue.unshift(node)
    if (Number.isFinite(deadline)) this.deadlines.push(node)
    if (this.queue.length > this.capacity) {
      const youngest = this.queue.tail!
      this.queue.remove(youngest)
      this.overflow.unshift(youngest)
    }
  }

  /** Takes `request` out of wherever it waits; fills the queue from the overflow. */
  remove(request: Request): void {
    const node = request.wait
    if (node === undefined) return
    request.wait = undefined
    if (node.line === 1) this.queue.remove(node)
    else if (node.line === 2) this.overflow.remove(node)
    if (node.heapIndex !== -1) this.deadlines.remove(node)
    this.refill()
  }

  /** Takes the oldest request out of the queue, if any. */
  shift(): Request | undefined {
    const head = this.queue.head?.request
    if (head !== undefined) this.remove(head)
    return head
  }

  /** Takes every waiting request out, oldest first. */
  drain(): Array<Request> {
    const all: Array<Request> = []
    for (const line of [this.queue, this.overflow]) {
      for (let node = line.head; node !== undefined; node = line.head) {
        line.remove(node)
        if (node.heapIndex !== -1) this.deadlines.remove(node)
        node.request.wait = undefined
        all.push(node.request)
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
    for (let node = this.deadlines.peek(); node !== undefined && node.deadline <= now; ) {
      this.remove(node.request)
      out.push(node.request)
      node = this.deadlines.peek()
    }
    return out
  }

  /** Moves suspended callers into the queue as it has room. */
  private refill(): void {
    while (this.queue.length < this.capacity && this.overflow.length > 0) {
      const node = this.overflow.head!
      this.overflow.remove(node)
      this.queue.push(node)
    }
  }
}

/** A binary min-heap of waiting requests by deadline, each knowing its index. */
class DeadlineHeap {
  private readonly items: Array<Waiting> = []

  peek(): Waiting | undefined {
    return this.items[0]
  }

  push(item: Waiting): void {
    item.heapIndex = this.items.length
    this.items.push(item)
    this.up(item.heapIndex)
  }

  remove(item: Waiting): void {
    const index = item.heapIndex
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
