/**
 * Frames batched: everything one side has ready leaves in one write or one
 * message. A thread's messages leave at the end of the synchronous run that
 * made them (a microtask): a `postMessage` is cheap next to the latency of a
 * turn of the event loop. A pipe's lines leave at the end of the turn
 * (`setImmediate`): every write is a system call, and a turn gathers more.
 */

/** Collects items; `flush` gets all of them at once, at the end of the run or turn in which the first one came. */
export interface Batcher<A> {
  readonly push: (item: A) => void
  /** Hands over what is held now, without waiting for the end of the turn. */
  readonly flushNow: () => void
}

/** Makes a {@link Batcher} that hands its items to `flush`, at the end of the run or of the turn. */
export const makeBatcher = <A>(flush: (items: Array<A>) => void, at: "run" | "turn"): Batcher<A> => {
  let items: Array<A> = []
  let scheduled = false
  const flushNow = () => {
    if (items.length === 0) return
    const batch = items
    items = []
    flush(batch)
  }
  const atEndOfTurn = () => {
    scheduled = false
    flushNow()
  }
  return {
    push: (item) => {
      items.push(item)
      if (!scheduled) {
        scheduled = true
        if (at === "run") queueMicrotask(atEndOfTurn)
        else setImmediate(atEndOfTurn)
      }
    },
    flushNow
  }
}
