/**
 * Frames batched: everything one side has ready leaves in one write or one
 * message, at the end of the synchronous run that made it (a microtask).
 * Answers read in one chunk (or one message) free their slots together, and
 * the requests that take those slots leave at once, in one write: waiting
 * for the end of the turn of the event loop gathers no more of them, and
 * delays the write behind whatever else the turn runs.
 */

/** Collects items; `flush` gets all of them at once, at the end of the run in which the first one came. */
export interface Batcher<A> {
  readonly push: (item: A) => void
  /** Hands over what is held now, without waiting for the end of the run. */
  readonly flushNow: () => void
}

/** Makes a {@link Batcher} that hands its items to `flush` at the end of the synchronous run. */
export const makeBatcher = <A>(flush: (items: Array<A>) => void): Batcher<A> => {
  let items: Array<A> = []
  let scheduled = false
  const flushNow = () => {
    if (items.length === 0) return
    const batch = items
    items = []
    flush(batch)
  }
  const atEndOfRun = () => {
    scheduled = false
    flushNow()
  }
  return {
    push: (item) => {
      items.push(item)
      if (!scheduled) {
        scheduled = true
        queueMicrotask(atEndOfRun)
      }
    },
    flushNow
  }
}
