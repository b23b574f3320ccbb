/**
 * The short form of the most frequent messages in a thread's batches. A
 * batch is an array of protocol messages, in which a parent's `Request` and
 * a child's `Success` may stand as two items: the id (a number) and the
 * payload (or value). Cloning a number costs far less than cloning an object
 * with its keys, and a batch of trivial requests is mostly keys. Each side
 * sends the short form only to a side that said it reads it (the runner's
 * `Ready`, the thread kind's `workerData`).
 *
 * Only a message with no other field than `_tag`, `id` and its payload takes
 * the short form: any other field keeps the message whole.
 */
import type * as Protocol from "../Protocol.ts"

/** Whether `message` has no other field than `_tag`, `id` and `payload` (which it may lack). */
const onlyFields = (message: object, payload: string): boolean => {
  for (const key in message) if (key !== "_tag" && key !== "id" && key !== payload) return false
  return true
}

/** A parent's batch as it is posted: requests in their short form. */
export const shortenToChild = (batch: ReadonlyArray<Protocol.ToChild>): Array<unknown> => {
  const items: Array<unknown> = []
  for (const message of batch) {
    if (message._tag === "Request" && onlyFields(message, "payload")) items.push(message.id, message.payload)
    else items.push(message)
  }
  return items
}

/** A child's batch as it is posted: successes in their short form. */
export const shortenFromChild = (batch: ReadonlyArray<Protocol.FromChild>): Array<unknown> => {
  const items: Array<unknown> = []
  for (const message of batch) {
    if (message._tag === "Success" && onlyFields(message, "value")) items.push(message.id, message.value)
    else items.push(message)
  }
  return items
}

/**
 * Calls `each` with every message of a posted batch, the short forms made
 * whole by `expand` (a number there is not checked: the message's own check
 * does it). Returns why the batch is malformed, after the messages before
 * the fault.
 */
export const expand = (
  batch: ReadonlyArray<unknown>,
  whole: (id: number, payload: unknown) => unknown,
  each: (message: unknown) => void
): string | undefined => {
  for (let i = 0; i < batch.length; i++) {
    const item = batch[i]
    if (typeof item !== "number") each(item)
    else if (i + 1 < batch.length) each(whole(item, batch[++i]))
    else return `a batch that ends with the id ${item} without its payload`
  }
  return undefined
}
