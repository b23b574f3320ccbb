/**
 * A first-in first-out list with O(1) append, shift and removal of any
 * element: the pool's admission queue, where a waiting request can leave from
 * the middle when its caller gives up.
 */
interface Node<A> {
  readonly value: A
  prev: Node<A> | undefined
  next: Node<A> | undefined
  removed: boolean
}

export class Fifo<A> {
  private head: Node<A> | undefined
  private tail: Node<A> | undefined
  private size = 0

  get length(): number {
    return this.size
  }

  /** Appends `value`; the returned handle removes it again. */
  push(value: A): Node<A> {
    const node: Node<A> = { value, prev: this.tail, next: undefined, removed: false }
    if (this.tail === undefined) this.head = node
    else this.tail.next = node
    this.tail = node
    this.size++
    return node
  }

  peek(): A | undefined {
    return this.head?.value
  }

  shift(): A | undefined {
    const node = this.head
    if (node === undefined) return undefined
    this.remove(node)
    return node.value
  }

  /** Removes the element behind `node`; does nothing if it already left. */
  remove(node: Node<A>): void {
    if (node.removed) return
    node.removed = true
    if (node.prev === undefined) this.head = node.next
    else node.prev.next = node.next
    if (node.next === undefined) this.tail = node.prev
    else node.next.prev = node.prev
    node.prev = node.next = undefined
    this.size--
  }

  *[Symbol.iterator](): IterableIterator<A> {
    for (let node = this.head; node !== undefined; node = node.next) yield node.value
  }
}

export type FifoNode<A> = Node<A>
