/**
 * A lower bound of the size of a value as JSON, counted only as far as a
 * limit: a request far over the line limit is refused without being
 * serialised.
 */

/**
 * Counts bytes that `JSON.stringify(value)` would write at least, and stops
 * as soon as the count passes `limit`. Returns the count when it passed the
 * limit, else `undefined` (the value may still be over it: only its
 * serialisation can tell). Never throws; a cycle counts until the limit.
 *
 * Each string counts its UTF-16 length plus its quotes (UTF-8 needs at least
 * a byte per code unit), a number one byte, an array its brackets and commas
 * (and its elements their own), a key its length plus quotes and colon. What JSON leaves out (functions, `undefined` properties) and what
 * decides its own form (`toJSON`) count nothing.
 */
export const jsonBytesOver = (value: unknown, limit: number): number | undefined => {
  let count = 0
  const stack: Array<unknown> = [value]
  while (stack.length > 0) {
    const current = stack.pop()
    switch (typeof current) {
      case "string":
        count += current.length + 2
        break
      case "number":
      case "bigint":
        count += 1
        break
      case "boolean":
        count += 4
        break
      case "object": {
        if (current === null) {
          count += 4
          break
        }
        if (typeof (current as { toJSON?: unknown }).toJSON === "function") break
        if (Array.isArray(current)) {
          // Brackets and commas; each element counts its own bytes.
          count += current.length === 0 ? 2 : current.length + 1
          if (count > limit) return count
          for (let i = 0; i < current.length; i++) stack.push(current[i])
          break
        }
        count += 1
        for (const key in current) {
          if (!Object.hasOwn(current, key)) continue
          const item = (current as Record<string, unknown>)[key]
          if (item === undefined || typeof item === "function" || typeof item === "symbol") continue
          count += key.length + 4
          // A string is counted at once, so that a few long ones end the count.
          if (typeof item === "string") count += item.length + 2
          else stack.push(item)
          if (count > limit) return count
        }
        break
      }
    }
    if (count > limit) return count
  }
  return undefined
}

/** What {@link jsonFrame} gives: the JSON text, or why there is none. */
export type JsonFrame =
  | { readonly _tag: "Text"; readonly text: string }
  /** Over the limit: `bytes` is its size in UTF-8 (`at least n` when estimated before any serialisation). */
  | { readonly _tag: "Over"; readonly bytes: string }
  /** `JSON.stringify` threw (a `BigInt`, a getter that throws, ...). */
  | { readonly _tag: "NotJson"; readonly error: unknown }

/**
 * `value` as one JSON text of at most `limit` bytes in UTF-8: the frame of
 * every JSON wire (the subprocess kind's lines both ways, the remote kind's
 * payloads). With `estimate`, a value that {@link jsonBytesOver} finds over
 * the limit is refused before it is serialised (a request far over the limit
 * costs nothing); the text's exact size is measured only when it could be
 * over (UTF-8 takes at most three bytes per UTF-16 code unit).
 */
export const jsonFrame = (value: unknown, limit: number, estimate: boolean): JsonFrame => {
  if (estimate) {
    const atLeast = jsonBytesOver(value, limit)
    if (atLeast !== undefined) return { _tag: "Over", bytes: `at least ${atLeast}` }
  }
  let text: string
  try {
    text = JSON.stringify(value) ?? ""
  } catch (error) {
    return { _tag: "NotJson", error }
  }
  if (text.length * 3 > limit) {
    const bytes = Buffer.byteLength(text, "utf8")
    if (bytes > limit) return { _tag: "Over", bytes: String(bytes) }
  }
  return { _tag: "Text", text }
}
