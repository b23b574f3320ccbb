/**
 * How a runner talks to its parent: over stdio (a subprocess: JSON lines,
 * or binary frames once the parent switched to them, at most `maxLineBytes`
 * each, stray writes to stdout sent to stderr) or
 * over the thread's port (batches of messages, successes in their short form
 * to a parent that reads it). Either sends the messages of one turn
 * together.
 */
import * as WorkerThreads from "node:worker_threads"
import * as Protocol from "../../Protocol.ts"
import { makeBatcher } from "../batch.ts"
import { describe } from "../describe.ts"
import * as Frame from "../frame.ts"
import { jsonFrame } from "../jsonSize.ts"
import { expand, shortenFromChild } from "../shortForm.ts"
import { type Payloads, postBatch } from "../transfer.ts"

/** What reaches the runner: a message, the parent's end, or a message it could not read. */
export type Inbound = Protocol.ToChild | { readonly _tag: "End" } | { readonly _tag: "Fault"; readonly reason: string }

/** One way to the parent and back. */
export interface Transport {
  readonly kind: "stdio" | "thread"
  /** Whether payloads cross in their schemas' encoded form (cloned or framed by V8), not as JSON values. */
  readonly structured: () => boolean
  /**
   * Sends one message at the end of the turn; returns why it cannot be sent,
   * in which case nothing will be.
   */
  readonly send: (message: Protocol.FromChild) => string | undefined
  /** Sends what is held now. */
  readonly flush: () => void
  /** Whether anything was sent since the last call. */
  readonly active: () => boolean
  readonly start: (deliver: (message: Inbound) => void) => void
  readonly close: () => void
}

const end: Inbound = { _tag: "End" }

const what = (message: Protocol.FromChild) => (message._tag === "Failure" ? "error" : "response")

/**
 * A transport over stdin and stdout: JSON lines of at most `maxLineBytes`,
 * or, once the parent's first byte says it switched (see `frame.ts`), binary
 * frames of at most `maxLineBytes` both ways.
 */
export const stdioTransport = (maxLineBytes: number): Transport => {
  const stdout = globalThis.process.stdout
  const stdin = globalThis.process.stdin
  const original = stdout.write
  const write = original.bind(stdout)
  let sent = false
  /** Undecided until the parent's first byte; then whether frames go both ways. */
  let mode: "undecided" | "lines" | "frames" = "undecided"
  const out = makeBatcher<string>((lines) => {
    lines.push("")
    sent = true
    write(lines.join("\n"))
  })
  /** An answer that cannot be framed is replaced by a crash that says why. */
  const refuse: Frame.Refuse<Protocol.FromChild> = (message, problem) =>
    "id" in message && message._tag !== "Crash"
      ? {
          _tag: "Crash",
          id: message.id,
          reason:
            problem._tag === "Over"
              ? `defect: the answer is ${problem.bytes} bytes on the wire, over the limit of ${maxLineBytes} (maxLineBytes)`
              : `defect: the ${what(message)} cannot be serialised: ${describe(problem.error)}`
        }
      : undefined
  // A frame is written into one buffer again and again while each write completes at once (a pipe on Linux): no
  // buffer to allocate, or to collect, per frame.
  let scratch = Buffer.allocUnsafeSlow(64 * 1024)
  const outFrames = makeBatcher<Protocol.FromChild>((batch) => {
    const free = stdout.writableLength === 0
    const frames = Frame.encode(batch, shortenFromChild, maxLineBytes, refuse, free ? scratch : undefined)
    if (frames === undefined) return
    sent = true
    write(frames)
    // Still held by the stream: the next frame gets a buffer of its own.
    if (frames.buffer === scratch.buffer && stdout.writableLength !== 0)
      scratch = Buffer.allocUnsafeSlow(scratch.length)
  })
  let deliver: (message: Inbound) => void = () => {}
  const lines = Protocol.makeLineDecoder(maxLineBytes)
  const frames = Frame.makeDecoder(maxLineBytes, {
    batch: (batch) => deliverBatch(batch, deliver),
    fault: (reason) => deliver({ _tag: "Fault", reason: `the parent sent ${reason}` })
  })
  const onLines = (chunk: Uint8Array) => {
    for (const event of lines.push(chunk)) {
      if (event._tag === "Fault") return deliver({ _tag: "Fault", reason: `the parent sent ${event.reason}` })
      const parsed = Protocol.parseToChild(event.text)
      deliver(
        parsed._tag === "Message" ? parsed.message : { _tag: "Fault", reason: `the parent sent ${parsed.reason}` }
      )
    }
  }
  const onData = (chunk: Uint8Array) => {
    if (mode === "frames") return frames.push(chunk)
    if (mode === "lines") return onLines(chunk)
    if (chunk.length === 0) return
    if (chunk[0] !== Frame.switchByte) {
      mode = "lines"
      return onLines(chunk)
    }
    // The parent switched: what was written as lines leaves first, then the same byte, then only frames.
    mode = "frames"
    out.flushNow()
    write(switchBuffer)
    frames.push(chunk.subarray(1))
  }
  const onEnd = () => deliver(end)
  return {
    kind: "stdio",
    structured: () => mode === "frames",
    send: (message) => {
      if (mode === "frames") {
        outFrames.push(message)
        return undefined
      }
      const frame = jsonFrame(message, maxLineBytes, false)
      if (frame._tag === "NotJson") return `the ${what(message)} is not JSON: ${describe(frame.error)}`
      if (frame._tag === "Over") {
        return `the answer is ${frame.bytes} bytes on the wire, over the limit of ${maxLineBytes} (maxLineBytes)`
      }
      out.push(frame.text)
      return undefined
    },
    flush: () => {
      out.flushNow()
      outFrames.flushNow()
    },
    active: () => {
      const was = sent
      sent = false
      return was
    },
    start: (f) => {
      deliver = f
      // Stray writes to stdout would corrupt the protocol (lines or frames): they go to stderr.
      stdout.write = globalThis.process.stderr.write.bind(globalThis.process.stderr) as typeof stdout.write
      // A parent that is gone breaks the pipe: that is the end too.
      stdout.on("error", onEnd)
      stdin.on("data", onData)
      stdin.on("end", onEnd)
      stdin.on("error", onEnd)
    },
    close: () => {
      out.flushNow()
      outFrames.flushNow()
      stdout.write = original
      stdin.off("data", onData)
      stdin.off("end", onEnd)
      stdin.off("error", onEnd)
      stdin.pause()
    }
  }
}

const switchBuffer = Uint8Array.of(Frame.switchByte)

/** A `Request` in its short form, made whole. */
const requestOf = (id: number, payload: unknown): Protocol.Request => ({ _tag: "Request", id, payload })

/** A `Request` of an operation in its short form, made whole (its id is checked with the message). */
const operationRequestOf = (operation: string, id: unknown, payload: unknown) => ({
  _tag: "Request",
  id,
  payload,
  operation
})

/** Delivers each message of a parent's batch (a thread's message, or a frame), short forms made whole. */
const deliverBatch = (batch: ReadonlyArray<unknown>, deliver: (message: Inbound) => void) => {
  const malformed = expand(
    batch,
    requestOf,
    (value) => {
      const decoded = Protocol.decodeToChild(value)
      deliver(
        decoded._tag === "Message" ? decoded.message : { _tag: "Fault", reason: `the parent sent ${decoded.reason}` }
      )
    },
    operationRequestOf
  )
  if (malformed !== undefined) deliver({ _tag: "Fault", reason: `the parent sent ${malformed}` })
}

/** Where an answer's payload is in the messages to the parent. */
const answerPayloads: Payloads<Protocol.FromChild> = {
  of: (message) =>
    message._tag === "Success" ? message.value : message._tag === "Failure" ? message.error : undefined,
  with: (message, payload) =>
    message._tag === "Success" ? { ...message, value: payload } : { ...(message as Protocol.Failure), error: payload }
}

/** A transport over the thread's port (successes in their short form when the parent said it reads them). */
export const threadTransport = (port: WorkerThreads.MessagePort): Transport => {
  // Successes take their short form only to a parent that said it reads it (a thread kind's `workerData`).
  const short = (WorkerThreads.workerData as { readonly shortSuccesses?: unknown } | null)?.shortSuccesses === true
  let sent = false
  const out = makeBatcher<Protocol.FromChild>((batch) => {
    sent = true
    // With the buffers the answers move; one that cannot be cloned, or whose buffer was transferred
    // already, is a crash.
    postBatch(
      batch,
      answerPayloads,
      (messages, transfer) => port.postMessage(short ? shortenFromChild(messages) : messages, transfer),
      (message, why) => {
        if ("id" in message) {
          const reason = `defect: the ${what(message)} ${why}`
          port.postMessage([{ _tag: "Crash", id: message.id, reason } satisfies Protocol.Crash])
        }
      }
    )
  })
  let deliver: (message: Inbound) => void = () => {}
  const onMessage = (batch: unknown) => {
    if (!Array.isArray(batch)) {
      return deliver({ _tag: "Fault", reason: "the parent sent a value that is not a batch of protocol messages" })
    }
    deliverBatch(batch, deliver)
  }
  const onClose = () => deliver(end)
  return {
    kind: "thread",
    structured: () => true,
    send: (message) => {
      out.push(message)
      return undefined
    },
    flush: out.flushNow,
    active: () => {
      const was = sent
      sent = false
      return was
    },
    start: (f) => {
      deliver = f
      port.on("message", onMessage)
      port.on("close", onClose)
    },
    close: () => {
      out.flushNow()
      port.off("message", onMessage)
      port.off("close", onClose)
    }
  }
}
