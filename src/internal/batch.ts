/**
 * Frames batched per turn of the event loop: everything one side has ready
 * in a turn leaves in one write or one message.
 */

/** Collects items; `flush` gets all of them at once, at the end of the turn in which the first one came. */
export interface Batcher<A> {
  readonly push: (item: A) => void
  /** Hands over what is held now, without waiting for the end of the turn. */
  readonly flushNow: () => void
}

/** Makes a {@link Batcher} that hands its items to `flush`. */
export const makeBatcher = <A>(flush: (items: Array<A>) => void): Batcher<A> => {
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
        setImmediate(atEndOfTurn)
      }
    },
    flushNow
  }
}
