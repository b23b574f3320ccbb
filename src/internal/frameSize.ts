/**
 * A lower bound of the size of a value in V8's serialization (the binary
 * frame), counted only as far as a limit: a request far over the limit is
 * refused without being serialised, as `jsonSize` does for JSON.
 */

/**
 * Counts bytes that V8's serializer would write at least for `value`, and
 * stops as soon as the count passes `limit`. Returns the count when it
 * passed the limit, else `undefined` (the value may still be over it: only
 * its serialisation can tell). Only a getter that throws makes it throw.
 *
 * Each string counts its length and two bytes (a tag and its length: a
 * character takes at least a byte), a number two, a boolean, `null` or
 * `undefined` one, bytes (a typed array, an `ArrayBuffer`) their length and
 * two, an array four and its items (a hole or `undefined` nothing), an
 * object three and its keys (each two and its length, an index two) and
 * values. An object is counted once: V8 writes a
 * reference to one it wrote before. Anything else (a `Map`, a `Date`) counts
 * a byte.
 */
export const frameBytesOver = (value: unknown, limit: number): number | undefined => {
  let count = 0
  const stack: Array<unknown> = [value]
  let first: object | undefined
  let seen: Set<object> | undefined
  while (stack.length > 0) {
    const current = stack.pop()
    switch (typeof current) {
      case "string":
        count += current.length + 2
        break
      case "number":
      case "bigint":
        count += 2
        break
      case "object": {
        if (current === null) {
          count += 1
          break
        }
        // The first object needs no set (a request's payload is often the only one).
        if (first === undefined) first = current
        else if (current === first) break
        else {
          seen ??= new Set()
          if (seen.has(current)) break
          seen.add(current)
        }
        if (ArrayBuffer.isView(current) || current instanceof ArrayBuffer) {
          count += current.byteLength + 2
          break
        }
        if (Array.isArray(current)) {
          count += 4
          // Strings and numbers are counted at once, so that a long array ends the count early; a hole counts nothing.
          for (let i = 0; i < current.length && count <= limit; i++) {
            const item: unknown = current[i]
            if (typeof item === "string") count += item.length + 2
            else if (typeof item === "number") count += 2
            else if (item !== undefined) stack.push(item)
          }
          break
        }
        if (Object.getPrototypeOf(current) !== Object.prototype && Object.getPrototypeOf(current) !== null) {
          count += 1
          break
        }
        count += 3
        for (const key in current) {
          if (!Object.hasOwn(current, key)) continue
          const item = (current as Record<string, unknown>)[key]
          // An index ("0", "42") is written as a number: two bytes at least.
          const first = key.charCodeAt(0)
          count += first >= 48 && first <= 57 ? 2 : key.length + 2
          // A string is counted at once, so that a few long ones end the count.
          if (typeof item === "string") count += item.length + 2
          else stack.push(item)
          if (count > limit) return count
        }
        break
      }
      default:
        count += 1
    }
    if (count > limit) return count
  }
  return undefined
}
