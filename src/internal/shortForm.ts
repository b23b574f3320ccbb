/**
 * The short form of the most frequent messages in a thread's batches. A
 * batch is an array of protocol messages, in which a parent's `Request` and
 * a child's `Success` may stand as two items: the id (a number) and the
 * payload (or value). Cloning a number costs far less than cloning an object
 * with its keys, and a batch of trivial requests is mostly keys. Each side
 * sends the short form only to a side that said it reads it (the runner's
 * `Ready`, the thread kind's `workerData`).
 *
 * A parent's `Request` of a group's operation (with `operation`) stands as
 * three items: the operation's tag (a string), the id and the payload; a
 * parent sends it only to a child whose `Ready` says `operations`.
 *
 * Only a message with no other field than `_tag`, `id` and its payload (and
 * a request's `operation`) takes the short form: any other field keeps the
 * message whole.
 */
import type * as Protocol from "../Protocol.ts"

/** Whether `message` has no other field than `_tag`, `id`, `payload` (which it may lack) and `also`. */
const onlyFields = (message: object, payload: string, also?: string): boolean => {
  for (const key in message) if (key !== "_tag" && key !== "id" && key !== payload && key !== also) return false
  return true
}

/** A parent's batch as it is posted: requests in their short form. */
export const shortenToChild = (batch: ReadonlyArray<Protocol.ToChild>): Array<unknown> => {
  const items: Array<unknown> = []
  for (const message of batch) {
    if (message._tag !== "Request") items.push(message)
    else if (message.operation === undefined) {
      if (onlyFields(message, "payload")) items.push(message.id, message.payload)
      else items.push(message)
    } else if (onlyFields(message, "payload", "operation")) items.push(message.operation, message.id, message.payload)
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
 * does it), and, given `operation`, a request's three items by it (without
 * it, a string is an item like any other, for `each` to refuse). Returns why
 * the batch is malformed, after the messages before the fault.
 */
export const expand = (
  batch: ReadonlyArray<unknown>,
  whole: (id: number, payload: unknown) => unknown,
  each: (message: unknown) => void,
  operation?: (tag: string, id: unknown, payload: unknown) => unknown
): string | undefined => {
  for (let i = 0; i < batch.length; i++) {
    const item = batch[i]
    if (typeof item === "number") {
      if (i + 1 < batch.length) each(whole(item, batch[++i]))
      else return `a batch that ends with the id ${item} without its payload`
    } else if (typeof item === "string" && operation !== undefined) {
      if (i + 2 >= batch.length) return `a batch that ends with the operation ${item} without its id and payload`
      each(operation(item, batch[i + 1], batch[i + 2]))
      i += 2
    } else each(item)
  }
  return undefined
}
