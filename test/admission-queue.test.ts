/**
 * The admission queue as a data structure (src/internal/pool/queue.ts): its
 * line of waiting requests, the overflow of callers suspended until it has
 * room, and the heap of their deadlines, over the requests' places in it
 * (`Waiting`); checked move by move, and against a plain model over seeded
 * random runs.
 */
import { assert, describe, it } from "@effect/vitest"
import { AdmissionQueue } from "../src/internal/pool/queue.ts"
import { Request, type Waiting } from "../src/internal/request.ts"

const request = (): Request =>
  new Request(0, { timeout: undefined, queueTimeoutMillis: Infinity, idempotent: false }, undefined, undefined)

/** The place `r` waits in (it must wait). */
const place = (r: Request): Waiting => {
  const node = r.wait
  assert.isDefined(node)
  return node!
}

/** Where a place is: its line, its neighbours' requests, its index in the heap. */
const where = (node: Waiting) => [node.line, node.prev?.request, node.next?.request, node.heapIndex]

/** The queue's requests, oldest first, then the overflow's: what `drain` takes out (it empties the queue). */
const order = (queue: AdmissionQueue): Array<Request> => queue.drain()

describe("the admission queue", () => {
  it("starts empty, with room", () => {
    const queue = new AdmissionQueue(2)
    assert.deepStrictEqual(
      [queue.length, queue.isEmpty, queue.hasRoom, queue.peek(), queue.shift(), queue.nextDeadline, queue.capacity],
      [0, true, true, undefined, undefined, Infinity, 2]
    )
    assert.deepStrictEqual(queue.expired(Number.MAX_SAFE_INTEGER), [])
    assert.deepStrictEqual(queue.drain(), [])
  })

  it("gives each request a place of its own when it starts to wait, and takes it back when it stops", () => {
    const queue = new AdmissionQueue(2)
    const a = request()
    queue.push(a, false, 30)
    const node = place(a)
    assert.deepStrictEqual([node.request, node.deadline, ...where(node)], [a, 30, 1, undefined, undefined, 0])
    queue.remove(a)
    assert.strictEqual(a.wait, undefined)
    assert.deepStrictEqual(where(node), [0, undefined, undefined, -1])
    // Waiting again, it gets a new place.
    queue.pushFront(a, 50)
    assert.notStrictEqual(place(a), node)
    assert.deepStrictEqual([place(a).deadline, ...where(place(a))], [50, 1, undefined, undefined, 0])
    assert.strictEqual(queue.shift(), a)
    assert.deepStrictEqual([a.wait, queue.isEmpty, queue.nextDeadline], [undefined, true, Infinity])
  })

  it("takes out a request that does not wait without touching the others", () => {
    const queue = new AdmissionQueue(1)
    const [a, b, stranger] = [request(), request(), request()]
    queue.push(a, false, 10)
    queue.push(b, true, 20)
    queue.remove(stranger)
    assert.deepStrictEqual(
      [stranger.wait, queue.length, queue.isEmpty, queue.peek(), queue.nextDeadline],
      [undefined, 1, false, a, 10]
    )
    // Removed twice: the second time it waits no more.
    queue.remove(a)
    queue.remove(a)
    assert.deepStrictEqual([queue.length, queue.peek(), queue.nextDeadline], [1, b, 20])
    assert.deepStrictEqual(order(queue), [b])
  })

  it("serves oldest first, and counts only the queue's requests in its length", () => {
    const queue = new AdmissionQueue(2)
    const [a, b, c] = [request(), request(), request()]
    queue.push(a, false, Infinity)
    assert.deepStrictEqual([queue.length, queue.isEmpty, queue.hasRoom, queue.peek()], [1, false, true, a])
    queue.push(b, false, Infinity)
    assert.deepStrictEqual([queue.length, queue.hasRoom, queue.peek()], [2, false, a])
    assert.deepStrictEqual(
      [where(place(a)), where(place(b))],
      [
        [1, undefined, b, -1],
        [1, a, undefined, -1]
      ]
    )
    queue.push(c, true, Infinity)
    // A caller waiting for room is not in the queue yet.
    const nodeA = place(a)
    assert.deepStrictEqual([queue.length, queue.isEmpty, place(c).line, nodeA.line], [2, false, 2, 1])
    assert.deepStrictEqual(where(place(c)), [2, undefined, undefined, -1])
    assert.strictEqual(queue.shift(), a)
    // The room it left is taken by the overflow at once.
    assert.deepStrictEqual([queue.length, place(c).line, nodeA.line, queue.peek()], [2, 1, 0, b])
    assert.deepStrictEqual(
      [where(place(b)), where(place(c))],
      [
        [1, undefined, c, -1],
        [1, b, undefined, -1]
      ]
    )
    assert.deepStrictEqual(order(queue), [b, c])
    assert.isTrue(queue.isEmpty)
  })

  it("is empty only when neither the queue nor the overflow holds a request", () => {
    const queue = new AdmissionQueue(0)
    const a = request()
    queue.push(a, true, Infinity)
    // A queue of capacity 0: its oldest waiting request is the first suspended caller's.
    assert.deepStrictEqual([queue.length, queue.isEmpty, queue.hasRoom, queue.peek()], [0, false, false, a])
    queue.remove(a)
    assert.isTrue(queue.isEmpty)
    // A caller queued in the overflow while the queue has room waits there until a removal.
    const roomy = new AdmissionQueue(3)
    const [b, c] = [request(), request()]
    roomy.push(b, true, Infinity)
    assert.deepStrictEqual(
      [roomy.length, roomy.isEmpty, roomy.hasRoom, roomy.peek(), place(b).line],
      [0, false, true, undefined, 2]
    )
    roomy.push(c, false, Infinity)
    roomy.remove(c)
    assert.deepStrictEqual([roomy.length, roomy.peek(), place(b).line], [1, b, 1])
  })

  it("puts a request given back at the head, before the others", () => {
    const queue = new AdmissionQueue(4)
    const [a, b, c] = [request(), request(), request()]
    queue.pushFront(a, Infinity)
    assert.deepStrictEqual([queue.peek(), queue.length, ...where(place(a))], [a, 1, 1, undefined, undefined, -1])
    queue.push(b, false, Infinity)
    queue.pushFront(c, Infinity)
    assert.deepStrictEqual(
      [queue.peek(), where(place(c)), where(place(a)), where(place(b))],
      [c, [1, undefined, a, -1], [1, c, b, -1], [1, a, undefined, -1]]
    )
    assert.deepStrictEqual(order(queue), [c, a, b])
  })

  it("puts a request given back at the head of a full queue, and its youngest back at the head of the overflow", () => {
    const queue = new AdmissionQueue(2)
    const [a, b, c, given] = [request(), request(), request(), request()]
    queue.push(a, false, Infinity)
    queue.push(b, false, Infinity)
    queue.push(c, true, Infinity)
    queue.pushFront(given, Infinity)
    // The queue keeps to its capacity; the order holds across the two lines.
    assert.deepStrictEqual([queue.length, queue.hasRoom, queue.peek()], [2, false, given])
    assert.deepStrictEqual([place(b).line, place(b).next?.request, place(c).prev?.request], [2, c, b])
    assert.deepStrictEqual(order(queue), [given, a, b, c])
  })

  it("a queue of capacity 0 keeps a request given back at the head of the suspended callers: it holds nothing", () => {
    const queue = new AdmissionQueue(0)
    const [given, suspended] = [request(), request()]
    queue.push(suspended, true, Infinity)
    queue.pushFront(given, Infinity)
    assert.deepStrictEqual([queue.length, queue.hasRoom, queue.peek(), place(given).line], [0, false, given, 2])
    assert.deepStrictEqual(order(queue), [given, suspended])
  })

  it("takes a request out of the middle, the head or the tail, and unlinks it", () => {
    const queue = new AdmissionQueue(8)
    const rs = [request(), request(), request(), request()]
    for (const r of rs) queue.push(r, false, Infinity)
    const n1 = place(rs[1]!)
    queue.remove(rs[1]!)
    assert.deepStrictEqual(where(n1), [0, undefined, undefined, -1])
    assert.deepStrictEqual([place(rs[0]!).next?.request, place(rs[2]!).prev?.request], [rs[2], rs[0]])
    queue.remove(rs[3]!)
    assert.deepStrictEqual([place(rs[2]!).next, queue.length], [undefined, 2])
    queue.push(rs[3]!, false, Infinity)
    assert.strictEqual(place(rs[2]!).next?.request, rs[3])
    queue.remove(rs[0]!)
    assert.deepStrictEqual([queue.peek(), place(rs[2]!).prev, queue.length], [rs[2], undefined, 2])
    assert.deepStrictEqual(order(queue), [rs[2], rs[3]])
    // The last one out leaves the line empty: a new one is its head and its tail.
    const last = request()
    queue.push(last, false, Infinity)
    assert.deepStrictEqual([queue.peek(), ...where(place(last))], [last, 1, undefined, undefined, -1])
  })

  it("empties its line from either end", () => {
    const queue = new AdmissionQueue(4)
    const [a, b, c] = [request(), request(), request()]
    queue.push(a, false, Infinity)
    queue.push(b, false, Infinity)
    queue.remove(b)
    queue.remove(a)
    assert.deepStrictEqual([queue.length, queue.isEmpty, queue.peek()], [0, true, undefined])
    // Head and tail were both let go of: a request given back is the only one.
    queue.pushFront(c, Infinity)
    assert.deepStrictEqual([queue.peek(), ...where(place(c))], [c, 1, undefined, undefined, -1])
    queue.push(a, false, Infinity)
    assert.deepStrictEqual(order(queue), [c, a])
    queue.push(b, false, Infinity)
    queue.push(c, false, Infinity)
    queue.remove(b)
    queue.pushFront(a, Infinity)
    assert.deepStrictEqual(order(queue), [a, c])
  })

  it("takes a caller out of the overflow without touching the queue", () => {
    const queue = new AdmissionQueue(1)
    const [a, b, c, d] = [request(), request(), request(), request()]
    queue.push(a, false, Infinity)
    queue.push(b, true, Infinity)
    queue.push(c, true, Infinity)
    queue.push(d, true, Infinity)
    const nodeC = place(c)
    queue.remove(c)
    assert.deepStrictEqual([queue.length, where(nodeC), queue.peek()], [1, [0, undefined, undefined, -1], a])
    assert.deepStrictEqual(
      [where(place(b)), where(place(d))],
      [
        [2, undefined, d, -1],
        [2, b, undefined, -1]
      ]
    )
    queue.remove(b)
    assert.deepStrictEqual([queue.length, where(place(d)), queue.isEmpty], [1, [2, undefined, undefined, -1], false])
    assert.deepStrictEqual(order(queue), [a, d])
  })

  it("fills the room a removal leaves from the overflow, oldest first, up to its capacity", () => {
    const queue = new AdmissionQueue(2)
    const rs = [request(), request(), request(), request(), request()]
    queue.push(rs[0]!, false, Infinity)
    queue.push(rs[1]!, false, Infinity)
    for (const r of rs.slice(2)) queue.push(r, true, Infinity)
    queue.remove(rs[1]!)
    assert.deepStrictEqual([queue.length, place(rs[2]!).line, place(rs[3]!).line], [2, 1, 2])
    assert.deepStrictEqual(
      [where(place(rs[2]!)), where(place(rs[3]!))],
      [
        [1, rs[0], undefined, -1],
        [2, undefined, rs[4], -1]
      ]
    )
    queue.shift()
    assert.deepStrictEqual([queue.length, place(rs[3]!).line, place(rs[4]!).line], [2, 1, 2])
    assert.deepStrictEqual(order(queue), [rs[2], rs[3], rs[4]])
  })

  it("drains the queue, then the overflow, and forgets their places and deadlines", () => {
    const queue = new AdmissionQueue(1)
    const [a, b, c] = [request(), request(), request()]
    queue.push(a, false, 20)
    queue.push(b, true, 10)
    queue.push(c, true, Infinity)
    const nodes = [place(a), place(b), place(c)]
    assert.strictEqual(queue.nextDeadline, 10)
    assert.deepStrictEqual(queue.drain(), [a, b, c])
    assert.deepStrictEqual(
      nodes.map((node) => where(node)),
      [
        [0, undefined, undefined, -1],
        [0, undefined, undefined, -1],
        [0, undefined, undefined, -1]
      ]
    )
    assert.deepStrictEqual([a.wait, b.wait, c.wait], [undefined, undefined, undefined])
    assert.deepStrictEqual([queue.nextDeadline, queue.isEmpty, queue.length, queue.hasRoom], [Infinity, true, 0, true])
    assert.deepStrictEqual(queue.expired(100), [])
    // It is as new: it takes requests again.
    queue.push(c, false, 5)
    assert.deepStrictEqual([queue.peek(), queue.nextDeadline, place(c).heapIndex], [c, 5, 0])
  })
})

describe("the queue's deadlines", () => {
  it("keeps only finite deadlines, each once", () => {
    const queue = new AdmissionQueue(4)
    const endless = request()
    queue.push(endless, false, Infinity)
    assert.deepStrictEqual([place(endless).heapIndex, queue.nextDeadline], [-1, Infinity])
    const a = request()
    queue.push(a, false, 50)
    assert.deepStrictEqual([place(a).heapIndex, queue.nextDeadline], [0, 50])
    // Given back to the head: it keeps one place in the heap.
    queue.remove(a)
    assert.deepStrictEqual([a.wait, queue.nextDeadline], [undefined, Infinity])
    queue.pushFront(a, 50)
    queue.remove(a)
    queue.pushFront(a, 50)
    assert.strictEqual(place(a).heapIndex, 0)
    assert.deepStrictEqual(queue.expired(50), [a])
    assert.deepStrictEqual([queue.expired(1_000), queue.nextDeadline], [[], Infinity])
    assert.deepStrictEqual(queue.expired(Infinity), [])
    assert.deepStrictEqual(order(queue), [endless])
  })

  it("a request whose deadline is infinite is not put in the heap by pushFront, nor by push into the overflow", () => {
    const queue = new AdmissionQueue(0)
    const [a, b] = [request(), request()]
    queue.pushFront(a, Infinity)
    queue.push(b, true, Infinity)
    assert.deepStrictEqual([place(a).heapIndex, place(b).heapIndex, queue.nextDeadline], [-1, -1, Infinity])
    // Taken out, the heap is as it was: a later deadline is found.
    const c = request()
    queue.push(c, true, 7)
    queue.remove(a)
    queue.remove(b)
    assert.deepStrictEqual([place(c).heapIndex, queue.nextDeadline], [0, 7])
    assert.deepStrictEqual(queue.expired(7), [c])
  })

  it("expires the requests whose deadline is at or before now, earliest first, wherever they wait", () => {
    const queue = new AdmissionQueue(2)
    const [a, b, c, d] = [request(), request(), request(), request()]
    queue.push(a, false, 40)
    queue.push(b, false, 10)
    queue.push(c, true, 30)
    queue.push(d, true, 20)
    const [nb, nd] = [place(b), place(d)]
    assert.strictEqual(queue.nextDeadline, 10)
    assert.deepStrictEqual(queue.expired(9), [])
    assert.deepStrictEqual(queue.expired(20), [b, d])
    assert.deepStrictEqual([nb.line, nd.line, place(c).line, queue.length], [0, 0, 1, 2])
    assert.deepStrictEqual([b.wait, d.wait], [undefined, undefined])
    assert.strictEqual(queue.nextDeadline, 30)
    assert.deepStrictEqual(queue.expired(30), [c])
    assert.deepStrictEqual(order(queue), [a])
  })

  it("keeps the earliest deadline at the root, each place knowing its index", () => {
    const queue = new AdmissionQueue(16)
    const at = (deadline: number) => {
      const r = request()
      queue.push(r, false, deadline)
      return r
    }
    const index = (...rs: Array<Request>) => rs.map((r) => place(r).heapIndex)
    // Each new deadline is the earliest: it climbs to the root, each it passes one level down.
    const [d50, d40, d30, d20, d10] = [at(50), at(40), at(30), at(20), at(10)]
    assert.deepStrictEqual(index(d10, d20, d40, d50, d30), [0, 1, 2, 3, 4])
    assert.strictEqual(queue.nextDeadline, 10)
    // A deadline no earlier than its parent's stays where it is.
    const d45 = at(45)
    assert.deepStrictEqual(index(d45, d40), [5, 2])
    assert.deepStrictEqual(queue.expired(100), [d10, d20, d30, d40, d45, d50])
  })

  it("does not move a deadline past an equal one, up or down", () => {
    const queue = new AdmissionQueue(8)
    const at = (deadline: number) => {
      const r = request()
      queue.push(r, false, deadline)
      return r
    }
    const index = (...rs: Array<Request>) => rs.map((r) => place(r).heapIndex)
    const [a, b, c, d] = [at(1), at(5), at(5), at(5)]
    assert.deepStrictEqual(index(a, b, c, d), [0, 1, 2, 3])
    // The last (d) replaces the root; its children tie with it: it stays.
    queue.remove(a)
    assert.deepStrictEqual(index(d, b, c), [0, 1, 2])
    queue.remove(d)
    assert.deepStrictEqual(index(c, b), [0, 1])
  })

  it("takes the root out by bringing the last place down past the smaller child, as far as it must", () => {
    const queue = new AdmissionQueue(8)
    const at = (deadline: number) => {
      const r = request()
      queue.push(r, false, deadline)
      return r
    }
    const index = (...rs: Array<Request>) => rs.map((r) => place(r).heapIndex)
    // [1, 5, 3, 9, 8, 6]: the last (6) goes to the root, then past 3 (the right child, smaller than 5).
    const [a, b, c, d, e, f] = [at(1), at(5), at(3), at(9), at(8), at(6)]
    assert.deepStrictEqual(index(a, b, c, d, e, f), [0, 1, 2, 3, 4, 5])
    queue.remove(a)
    assert.deepStrictEqual(index(c, b, f, d, e), [0, 1, 2, 3, 4])
    // [3, 5, 6, 9, 8]: the last (8) goes to the root, past 5 (the left child), then past neither 9 nor the end.
    queue.remove(c)
    assert.deepStrictEqual(index(b, e, f, d), [0, 1, 2, 3])
    // [5, 8, 6, 9]: the last (9) goes to the root, past 6 (right), and stops at a leaf.
    queue.remove(b)
    assert.deepStrictEqual(index(f, e, d), [0, 1, 2])
    assert.deepStrictEqual(queue.expired(100), [f, e, d])
  })

  it("takes a place out of the middle by bringing the last place up when it is earlier than its new parent", () => {
    const queue = new AdmissionQueue(8)
    const at = (deadline: number) => {
      const r = request()
      queue.push(r, false, deadline)
      return r
    }
    const index = (...rs: Array<Request>) => rs.map((r) => place(r).heapIndex)
    // [1, 10, 2, 11, 12, 3]: the last (3) takes the place of 11, under 10: it goes up past 10, and no further.
    const [a, b, c, d, e, f] = [at(1), at(10), at(2), at(11), at(12), at(3)]
    assert.deepStrictEqual(index(a, b, c, d, e, f), [0, 1, 2, 3, 4, 5])
    queue.remove(d)
    assert.deepStrictEqual(index(a, f, c, b, e), [0, 1, 2, 3, 4])
    // Taking out the last place moves nothing.
    queue.remove(e)
    assert.deepStrictEqual(index(a, f, c, b), [0, 1, 2, 3])
    assert.deepStrictEqual(queue.expired(100), [a, c, f, b])
  })
})

/** A seeded generator of numbers in [0, 1). */
const seeded = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

/**
 * What is wrong with the heap, if anything: the places in it must hold the indexes 0..n-1, each deadline no earlier
 * than its parent's; a place with no deadline is not in it. (Plain checks, one assertion a step: the runs are long.)
 */
const heapFault = (waiting: ReadonlyArray<Request>): string | undefined => {
  const byIndex: Array<Waiting> = []
  let size = 0
  for (const r of waiting) {
    const node = r.wait!
    if (!Number.isFinite(node.deadline)) {
      if (node.heapIndex !== -1) return `an endless wait at ${node.heapIndex}`
      continue
    }
    size++
    if (node.heapIndex < 0 || byIndex[node.heapIndex] !== undefined) return `index ${node.heapIndex} twice or none`
    byIndex[node.heapIndex] = node
  }
  if (byIndex.length !== size) return `indexes up to ${byIndex.length} for ${size} places`
  for (let i = 1; i < size; i++) {
    if (byIndex[(i - 1) >> 1]!.deadline > byIndex[i]!.deadline) return `${i} is earlier than its parent`
  }
  return undefined
}

/** What is wrong with a line, if anything: each place tagged with it, linked both ways, in the model's order. */
const lineFault = (requests: ReadonlyArray<Request>, tag: 1 | 2): string | undefined => {
  for (let i = 0; i < requests.length; i++) {
    const node = requests[i]!.wait
    if (node === undefined) return `${i} has no place`
    if (node.line !== tag) return `${i} is in line ${node.line}`
    if (node.prev?.request !== requests[i - 1] || node.next?.request !== requests[i + 1]) return `${i} is mislinked`
  }
  return undefined
}

describe("the admission queue against a model", () => {
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    it(`keeps order, room and deadlines as a plain model does (seed ${seed})`, () => {
      const random = seeded(seed)
      const capacity = Math.floor(random() * 5)
      const queue = new AdmissionQueue(capacity)
      let line: Array<Request> = []
      let overflow: Array<Request> = []
      const deadline = new Map<Request, number>()
      const refill = () => {
        while (line.length < capacity && overflow.length > 0) line.push(overflow.shift()!)
      }
      const take = (r: Request) => {
        line = line.filter((x) => x !== r)
        overflow = overflow.filter((x) => x !== r)
        deadline.delete(r)
        const before = overflow.length
        refill()
        refilled += before - overflow.length
      }
      // Some wait for ever; deadlines tie often.
      const someDeadline = () => (random() < 0.2 ? Infinity : Math.floor(random() * 50))
      const gone: Array<Request> = []
      let [refilled, expired, peak] = [0, 0, 0]
      for (let step = 0; step < 400; step++) {
        const roll = random()
        const waiting = [...line, ...overflow]
        if (roll < 0.35) {
          const r = request()
          const d = someDeadline()
          // As the engine does: into the overflow when there is no room; now and then, into it regardless.
          const toOverflow = line.length >= capacity || random() < 0.1
          queue.push(r, toOverflow, d)
          ;(toOverflow ? overflow : line).push(r)
          deadline.set(r, d)
        } else if (roll < 0.45) {
          const r = request()
          const d = someDeadline()
          queue.pushFront(r, d)
          line.unshift(r)
          // The queue keeps to its capacity, 0 included.
          if (line.length > capacity) overflow.unshift(line.pop()!)
          deadline.set(r, d)
        } else if (roll < 0.6 && waiting.length > 0) {
          const r = waiting[Math.floor(random() * waiting.length)]!
          queue.remove(r)
          take(r)
          gone.push(r)
        } else if (roll < 0.65 && gone.length > 0) {
          // A request that waits no more: nothing changes.
          queue.remove(gone[Math.floor(random() * gone.length)]!)
        } else if (roll < 0.8) {
          const head = line[0]
          assert.strictEqual(queue.shift(), head)
          if (head !== undefined) {
            take(head)
            gone.push(head)
          }
        } else {
          const now = Math.floor(random() * 50)
          const due = waiting.filter((r) => deadline.get(r)! <= now)
          const dues = due.map((r) => deadline.get(r)!).sort((x, y) => x - y)
          const out = queue.expired(now)
          // Earliest first (which of a tie comes first is the heap's business).
          assert.deepStrictEqual(
            out.map((r) => deadline.get(r)),
            dues
          )
          assert.sameMembers(out, due)
          expired += out.length
          for (const r of out) {
            assert.strictEqual(r.wait, undefined)
            take(r)
            gone.push(r)
          }
        }
        const rest = [...line, ...overflow]
        peak = Math.max(peak, rest.length)
        const finite = rest.map((r) => deadline.get(r)!).filter(Number.isFinite)
        assert.strictEqual(queue.nextDeadline, finite.length === 0 ? Infinity : Math.min(...finite))
        assert.deepStrictEqual(
          [queue.length, queue.isEmpty, queue.hasRoom, queue.peek()],
          [
            line.length,
            rest.length === 0,
            line.length < capacity,
            line[0] ?? (capacity === 0 ? overflow[0] : undefined)
          ]
        )
        assert.deepStrictEqual(
          [lineFault(line, 1), lineFault(overflow, 2), heapFault(rest), gone.some((r) => r.wait !== undefined)],
          [undefined, undefined, undefined, false]
        )
      }
      // The runs went through refills (but with no room), expiries, and queues of some length.
      assert.isTrue(refilled > 0 || capacity === 0)
      assert.isAbove(expired, 50)
      assert.isAtLeast(peak, 8)
      const rest = [...line, ...overflow]
      const nodes = rest.map(place)
      assert.deepStrictEqual(queue.drain(), rest)
      for (const node of nodes) assert.deepStrictEqual(where(node), [0, undefined, undefined, -1])
      assert.deepStrictEqual([queue.isEmpty, queue.nextDeadline], [true, Infinity])
    })
  }
})
