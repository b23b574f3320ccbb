/**
 * A child's stderr: split into lines of bounded length, forwarded to the
 * logger, and its last lines kept for the crash reason.
 */

/** Splits bytes into lines; a line longer than `maxLineBytes` is cut, the rest of it dropped. */
export const makeLogLines = (maxLineBytes: number) => {
  const text = new TextDecoder("utf-8")
  let parts: Array<Uint8Array> = []
  let kept = 0
  let dropped = 0
  const finish = (): string => {
    const bytes = new Uint8Array(kept)
    let offset = 0
    for (const part of parts) {
      bytes.set(part, offset)
      offset += part.length
    }
    const line = text.decode(bytes).replace(/\r$/, "")
    const result = dropped > 0 ? `${line}… [${dropped} more bytes]` : line
    parts = []
    kept = 0
    dropped = 0
    return result
  }
  const keep = (bytes: Uint8Array) => {
    const room = maxLineBytes - kept
    if (bytes.length <= room) {
      if (bytes.length > 0) parts.push(bytes.slice())
      kept += bytes.length
    } else {
      if (room > 0) parts.push(bytes.slice(0, room))
      kept += Math.max(room, 0)
      dropped += bytes.length - Math.max(room, 0)
    }
  }
  return {
    push: (chunk: Uint8Array): Array<string> => {
      const lines: Array<string> = []
      let start = 0
      while (start < chunk.length) {
        const newline = chunk.indexOf(10, start)
        if (newline === -1) {
          keep(chunk.subarray(start))
          break
        }
        keep(chunk.subarray(start, newline))
        lines.push(finish())
        start = newline + 1
      }
      return lines
    },
    /** The unfinished last line, if any. */
    flush: (): Array<string> => (kept > 0 || dropped > 0 ? [finish()] : [])
  }
}

/** The last `size` non-blank lines seen. */
export const makeTail = (size: number) => {
  const lines: Array<string> = []
  return {
    push: (line: string) => {
      if (size <= 0 || line.trim() === "") return
      lines.push(line)
      if (lines.length > size) lines.shift()
    },
    lines: (): ReadonlyArray<string> => lines
  }
}

/** How many characters of each stderr line a crash reason shows. */
const reasonLineChars = 300

/** `reason`, followed by the last lines of stderr when there are any. */
export const withTail = (reason: string, tail: ReadonlyArray<string>): string =>
  tail.length === 0
    ? reason
    : `${reason}; last stderr: ${tail.map((l) => (l.length > reasonLineChars ? `${l.slice(0, reasonLineChars)}…` : l)).join(" | ")}`
