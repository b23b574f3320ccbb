/**
 * The handshake that opens every connection to a runner, before `effect/rpc`
 * takes the socket over: the client sends one line (`Hello`: the protocol
 * version, the shared secret, the fingerprint of its schemas), the runner
 * answers one line, `{"ok":true}` or a refusal with its reason, and closes
 * the socket when it refuses. A client that has not been admitted never
 * reaches the rpc server.
 */
import { createHash, timingSafeEqual } from "node:crypto"
import * as Net from "node:net"
import type { Duplex } from "node:stream"
import * as Tls from "node:tls"
import * as Effect from "effect/Effect"
import { describe } from "../describe.ts"

/** The longest handshake line either side reads. */
export const maxHandshakeBytes = 16 * 1024

/** What the client says first. */
export interface Hello {
  readonly protocol: number
  readonly token: string | null
  readonly fingerprint: string
}

/**
 * Why a runner refused a client. `Full`: it holds its `maxConnections`;
 * `RateLimited`: too many failed handshakes came from the client's address
 * of late; `HandshakeTimeout`: no handshake within `handshakeTimeout`.
 */
export type Refusal =
  | "Unauthorized"
  | "SchemaMismatch"
  | "ProtocolMismatch"
  | "Draining"
  | "Malformed"
  | "Full"
  | "RateLimited"
  | "HandshakeTimeout"

/** The runner's answer. */
export type Reply = { readonly ok: true } | { readonly refused: Refusal; readonly message: string }

/** A connection that could not be made, or was refused: `message` says which and why. */
export interface ConnectFailure {
  readonly refused: Refusal | undefined
  readonly message: string
}

/**
 * Reads one line from `socket` in flowing mode; what follows it is put back,
 * and the socket is left paused for the next reader. `done` is called at
 * most once: with the line, or with why there is none; never after the
 * returned cancel.
 */
const readLine = (
  socket: Duplex,
  done: (result: { line: string } | { failed: string; empty?: boolean }) => void
): (() => void) => {
  const held: Array<Buffer> = []
  let heldBytes = 0
  let over = false
  const finish = (result: { line: string } | { failed: string; empty?: boolean }) => {
    if (over) return
    over = true
    stop()
    done(result)
  }
  const onData = (chunk: Buffer) => {
    const newline = chunk.indexOf(10)
    if (newline === -1) {
      held.push(chunk)
      heldBytes += chunk.length
      if (heldBytes > maxHandshakeBytes) finish({ failed: `a handshake line over ${maxHandshakeBytes} bytes` })
      return
    }
    held.push(chunk.subarray(0, newline))
    const rest = chunk.subarray(newline + 1)
    socket.pause()
    if (rest.length > 0) socket.unshift(rest)
    finish({ line: Buffer.concat(held).toString("utf8") })
  }
  const onEnd = () => finish({ failed: "the connection was closed during the handshake", empty: heldBytes === 0 })
  const onError = (error: Error) => finish({ failed: errorText(error) })
  const stop = () => {
    socket.off("data", onData)
    socket.off("end", onEnd)
    socket.off("close", onEnd)
    socket.off("error", onError)
  }
  socket.on("data", onData)
  socket.on("end", onEnd)
  socket.on("close", onEnd)
  socket.on("error", onError)
  return () => {
    over = true
    stop()
  }
}

/** A socket error in words, with its code (`ECONNREFUSED`, ...) when it has one. */
export const errorText = (error: unknown): string => {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === "string" && !describe(error).includes(code) ? `${describe(error)} (${code})` : describe(error)
}

const parse = (line: string): unknown => {
  try {
    return JSON.parse(line)
  } catch {
    return undefined
  }
}

/**
 * Opens a connection to a runner (TLS when `tls` is given), says `hello` and
 * waits for the answer, all within `timeoutMillis`. Succeeds with the socket,
 * paused, ready for `effect/rpc`; fails with why it could not.
 */
export const connect = (options: {
  readonly host: string
  readonly port: number
  readonly tls: Tls.ConnectionOptions | undefined
  readonly timeoutMillis: number
  readonly hello: Hello
}): Effect.Effect<Net.Socket, ConnectFailure> =>
  Effect.callback<Net.Socket, ConnectFailure>((resume) => {
    const { host, port } = options
    const socket: Net.Socket =
      options.tls === undefined
        ? Net.connect({ host, port })
        : Tls.connect({ servername: Net.isIP(host) === 0 ? host : undefined, ...options.tls, host, port })
    let settled = false
    let stopReading: (() => void) | undefined
    const fail = (refused: Refusal | undefined, message: string) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      stopReading?.()
      socket.destroy()
      resume(Effect.fail({ refused, message }))
    }
    const timer = setTimeout(
      () => fail(undefined, `it did not answer within ${options.timeoutMillis} ms (connectTimeout)`),
      options.timeoutMillis
    )
    const onError = (error: Error) => fail(undefined, errorText(error))
    socket.once("error", onError)
    socket.once(options.tls === undefined ? "connect" : "secureConnect", () => {
      socket.off("error", onError)
      socket.setNoDelay(true)
      stopReading = readLine(socket, (result) => {
        if ("failed" in result) return fail(undefined, result.failed)
        const reply = parse(result.line) as Partial<{ ok: unknown; refused: unknown; message: unknown }> | undefined
        if (reply?.ok === true) {
          if (settled) return
          settled = true
          clearTimeout(timer)
          return resume(Effect.succeed(socket))
        }
        if (typeof reply?.refused === "string") {
          return fail(reply.refused as Refusal, typeof reply.message === "string" ? reply.message : reply.refused)
        }
        fail(undefined, "it answered the handshake with a line that is not a handshake reply")
      })
      socket.write(`${JSON.stringify(options.hello)}\n`)
    })
    return Effect.sync(() => fail(undefined, "the connection was interrupted"))
  })

/** A digest, so that secrets of any length compare in constant time. */
const digest = (text: string) => createHash("sha256").update(text, "utf8").digest()

/** Whether `given` is the secret `expected`, compared in constant time. */
export const tokenMatches = (given: unknown, expected: string): boolean =>
  timingSafeEqual(digest(typeof given === "string" ? given : ""), digest(expected)) && typeof given === "string"

/** How long a refused client has to read its refusal before its socket is destroyed. */
const refusalLingerMillis = 1000

/**
 * Answers `socket` with a refusal and closes it, without reading anything
 * from it (a runner that is full, a source that is rate limited).
 */
export const refuseAtOnce = (socket: Duplex, refused: Refusal, message: string): void => {
  socket.end(`${JSON.stringify({ refused, message })}\n`)
  // A client that does not read its refusal does not hold the socket open.
  setTimeout(() => socket.destroy(), refusalLingerMillis).unref()
}

/**
 * The runner's side: reads the client's `Hello` within `timeoutMillis` and
 * checks it. Calls `admit` with the socket (paused) once it has answered
 * `ok`, or `refuse`, once, with the refusal it sent before closing the
 * socket (`HandshakeTimeout` when no handshake came in time), or with why
 * there was no handshake (the client closed the connection first).
 */
export const accept = (
  socket: Duplex,
  options: {
    readonly timeoutMillis: number
    readonly check: (hello: Partial<Hello> | undefined) => Reply
    readonly admit: () => void
    /** `silent`: the client closed the connection before it sent a byte (a TCP health check, say). */
    readonly refuse: (refused: Refusal, message: string, silent?: boolean) => void
  }
): void => {
  const refuse = (refused: Refusal, message: string) => {
    clearTimeout(timer)
    refuseAtOnce(socket, refused, message)
    options.refuse(refused, message)
  }
  const timer = setTimeout(() => {
    stop()
    refuse("HandshakeTimeout", `no handshake within ${options.timeoutMillis} ms (handshakeTimeout)`)
  }, options.timeoutMillis)
  const stop = readLine(socket, (result) => {
    if ("failed" in result) {
      clearTimeout(timer)
      socket.destroy()
      if (result.empty === true)
        return options.refuse("Malformed", "the connection was closed before its handshake", true)
      return options.refuse("Malformed", result.failed)
    }
    const parsed = parse(result.line)
    const hello = typeof parsed === "object" && parsed !== null ? (parsed as Partial<Hello>) : undefined
    const reply = options.check(hello)
    if ("refused" in reply) return refuse(reply.refused, reply.message)
    clearTimeout(timer)
    socket.write(`${JSON.stringify(reply)}\n`)
    options.admit()
  })
}
