/**
 * Subprocess workers: each incarnation is a child process, spawned with
 * Node's `child_process` (arguments as an array, never through a shell), that
 * speaks JSON lines over its stdin and stdout (see `Protocol`), or binary
 * frames written by V8's serializer when the child is a runner on Node that
 * offers them (unless `Protocol.frameEnv` says `json`): the lines (or the
 * frame) one side has ready in one synchronous run leave in one write. Write
 * the child with `Runner`.
 *
 * What a child can do to its caller, and what the caller gets:
 *
 * | the child                                         | the caller gets                 | the worker                |
 * |---------------------------------------------------|---------------------------------|---------------------------|
 * | answers, or fails with a domain error             | the response, or the error      | stays up                  |
 * | cannot decode the request                         | `InvalidRequest`                | stays up                  |
 * | handler raises `WorkerCrash` or dies              | `WorkerCrash`                   | replaced                  |
 * | exits, is killed, closes its pipes                | `WorkerCrash` (exit code or signal, last stderr lines) | replaced |
 * | writes garbage, a line over the limit, an unknown id | `WorkerCrash` ("protocol error: ...") | replaced         |
 * | ignores a cancel for `cancelGrace`                | (the caller already left)       | killed and replaced       |
 * | is stopped (`SIGSTOP`), or idle and silent for `silenceLimit` | `WorkerCrash` ("stopped responding") | killed and replaced |
 * | hangs past a request timeout                      | `RequestTimeout`                | killed and replaced       |
 *
 * Every request in flight on a process that dies fails with the same
 * `WorkerCrash`, within a bounded time: at once for an exit, a signal, a
 * protocol fault; after `cancelGrace` for an ignored cancel.
 *
 * Stopping a process (shutdown of its worker or pool, removal) closes its
 * stdin and waits up to `shutdownTimeout` for it to exit; replacing a crashed
 * one skips that wait. Then its whole process group gets `SIGTERM`, and
 * `SIGKILL` after `killGrace`: no process survives its worker's scope.
 *
 * @since 0.1.0
 */

import { fileURLToPath } from "node:url"
import { Deferred, Duration, Effect, Exit } from "effect"
import { makeBatcher } from "./internal/batch.ts"
import * as ChildFrame from "./internal/childFrame.ts"
import * as ChildProcess from "./internal/childProcess.ts"
import * as Client from "./internal/client.ts"
import { describe } from "./internal/describe.ts"
import * as Frame from "./internal/frame.ts"
import { frameBytesOver } from "./internal/frameSize.ts"
import { jsonFrame } from "./internal/jsonSize.ts"
import { MemoryReports, memoryReportsEntry } from "./internal/memoryReports.ts"
import * as Rules from "./internal/options.ts"
import { processState } from "./internal/processState.ts"
import * as Settings from "./internal/settings.ts"
import { shortenToChild } from "./internal/shortForm.ts"
import { exitReason } from "./internal/stderr.ts"
import * as Protocol from "./Protocol.ts"
import type { InvalidRequest } from "./WireError.ts"
import { type DomainError, ProtocolFault, StartFailed, WorkerCrash } from "./WorkerError.ts"
import type { WorkerKind } from "./WorkerKind.ts"

/**
 * A schema usable on the wire: it needs no services to encode or decode.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import type { Subprocess } from "effect-worker-pool"
 *
 * const Job: Subprocess.Codec<{ readonly text: string }> = Schema.Struct({ text: Schema.String })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type Codec<A> = Client.Codec<A>

/**
 * Options shared by the subprocess and thread kinds.
 *
 * | option            | default        | meaning                                                                  |
 * |-------------------|----------------|--------------------------------------------------------------------------|
 * | `request`         | (required)     | schema of a request, as the handler takes it                             |
 * | `response`        | (required)     | schema of a response                                                     |
 * | `error`           | `DomainError`  | schema of the handler's domain errors, which cross the boundary intact   |
 * | `concurrency`     | `1`            | requests one child holds at once; more wait in the parent. A worker of this kind gets it as its default `maxInFlight` |
 * | `startTimeout`    | `10 seconds`   | from spawn to the runner's `Ready`; past it the start is a crash         |
 * | `cancelGrace`     | `1 second`     | how long a cancelled request may run on; past it the child is replaced   |
 * | `shutdownTimeout` | `2 seconds`    | on shutdown, how long the child has to exit by itself                    |
 * | `heartbeatInterval` | `500 millis` | how often the runner sends a heartbeat when it sends nothing else        |
 * | `silenceLimit`    | `1500 millis`  | how long a child may be silent: then a stopped process is killed, an idle child is a crash, a busy one is trusted. Longer than `heartbeatInterval` |
 * | `stderr.logLevel` | `"Info"`       | level at which the child's stderr lines are logged (`"None"`: not logged) |
 * | `stderr.maxLineBytes` | `4096`     | longer stderr lines are cut                                              |
 * | `stderr.tailLines`| `10`           | how many last stderr lines a crash reason quotes                         |
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import type { Subprocess } from "effect-worker-pool"
 *
 * const options: Subprocess.CommonOptions<number, number, never> = {
 *   request: Schema.Number,
 *   response: Schema.Number,
 *   concurrency: 4,
 *   cancelGrace: "500 millis",
 *   stderr: { logLevel: "Debug" }
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface CommonOptions<Req, Resp, E> extends Settings.CommonInput {
  readonly request: Codec<Req>
  readonly response: Codec<Resp>
  readonly error?: Codec<E> | undefined
}

/**
 * Options of a subprocess worker: the {@link CommonOptions}, and
 *
 * | option         | default                   | meaning                                                    |
 * |----------------|---------------------------|------------------------------------------------------------|
 * | `command`      | (required)                | the program; it is not run through a shell                 |
 * | `args`         | `[]`                      | its arguments, each passed as is                           |
 * | `cwd`          | the parent's              | its working directory                                      |
 * | `inheritEnv`   | {@link defaultInheritedEnv} | names of the parent's environment variables it gets, or `"all"` |
 * | `env`          | `{}`                      | more variables, set after the inherited ones               |
 * | `maxLineBytes` | `Protocol.defaultMaxLineBytes` (1 MiB) | longest line (or binary frame) either way; the runner learns it from the environment variable `Protocol.maxLineBytesEnv` |
 * | `killGrace`    | `2 seconds`               | from `SIGTERM` to `SIGKILL`                                |
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import type { Subprocess } from "effect-worker-pool"
 *
 * const options: Subprocess.Options<string, number, never> = {
 *   command: "python3",
 *   args: ["-u", "worker.py"],
 *   env: { MODEL: "small" },
 *   request: Schema.String,
 *   response: Schema.Number
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<Req, Resp, E> extends CommonOptions<Req, Resp, E> {
  readonly command: string
  readonly args?: ReadonlyArray<string> | undefined
  readonly cwd?: string | undefined
  readonly inheritEnv?: ReadonlyArray<string> | "all" | undefined
  readonly env?: Readonly<Record<string, string>> | undefined
  readonly maxLineBytes?: number | undefined
  readonly killGrace?: Duration.Input | undefined
}

/**
 * The environment variables a child gets from its parent unless told
 * otherwise: the search path, the home and temporary directories, the locale,
 * the terminal and their Windows counterparts. Nothing else, so that the
 * parent's secrets (tokens, keys, passwords) do not leak into the child.
 *
 * @example
 * ```ts
 * import { Subprocess } from "effect-worker-pool"
 *
 * // Inherit the defaults and one more name.
 * const inheritEnv = [...Subprocess.defaultInheritedEnv, "HF_HOME"]
 * ```
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultInheritedEnv: ReadonlyArray<string> = Settings.defaultInheritedEnv

/** The byte that switches a side to binary frames. */
const switchBuffer = Uint8Array.of(Frame.switchByte)

/**
 * Whether a parent takes the binary frame a child offers: yes unless
 * `Protocol.frameEnv` says `json`. Throws `InvalidOptions` for any other value.
 */
const framesWanted = (): boolean => {
  const value = globalThis.process.env[Protocol.frameEnv]
  if (value === undefined || value === "" || value === "v8") return true
  if (value === "json") return false
  return Rules.invalid(`${Protocol.frameEnv} must be "json" or "v8", not ${JSON.stringify(value)}`)
}

/** After the process exits, how long its pipes may take to deliver what it wrote. */
const settleTime = Duration.millis(250)
/** After stdin broke, how long to wait for the exit that usually explains it. */
const brokenPipeWait = Duration.millis(500)

/**
 * The subprocess kind. `spawn` starts `command` with `args`, waits for the
 * runner's `Ready`, and hands the pool an incarnation whose requests travel
 * as JSON lines, or in binary frames when the child offers them. It spawns
 * with Node's `child_process` and needs no service. With invalid options it returns a kind that `Worker.fromKind`
 * fails with `InvalidOptions` (nothing starts).
 *
 * The kind's errors are the handler's domain errors `E` and `InvalidRequest`
 * (the request never reached the handler); crashes are `WorkerCrash`.
 * A request timeout replaces the process (`restartOnTimeout`).
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Subprocess, Worker, WorkerPool } from "effect-worker-pool"
 *
 * const kind = Subprocess.make({
 *   command: process.execPath,
 *   args: ["worker.js"],
 *   request: Schema.Struct({ text: Schema.String }),
 *   response: Schema.Number
 * })
 *
 * const program = Effect.scoped(
 *   Effect.gen(function* () {
 *     const pool = yield* WorkerPool.make({ size: 2, worker: (id) => Worker.fromKind(id, kind) })
 *     return yield* pool.dispatch({ text: "how long is this?" })
 *   })
 * )
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <Req, Resp, E = DomainError>(
  options: Options<Req, Resp, E>
): WorkerKind<Req, Resp, E | InvalidRequest> =>
  Settings.checkedKind("subprocess", () => build<Req, Resp, E>(decodeOptions(options)))

/** Reads the options, once; throws `InvalidOptions` when they are invalid. */
const decodeOptions = Rules.decode(Settings.SubprocessOptions)

/** The kind with `settings`. */
const build = <Req, Resp, E>(
  settings: Settings.SubprocessSettings<Req, Resp, E>
): WorkerKind<Req, Resp, E | InvalidRequest> => {
  const { command, args, maxLineBytes } = settings
  const takesFrames = framesWanted()
  const jsonCodecs = Client.jsonCodecs(settings.request, settings.response, settings.error)
  // With the binary frame, payloads cross in their schemas' encoded form (as a thread's do): encoded once, framed once.
  const structuredCodecs = Client.cloneCodecs(settings.request, settings.response, settings.error)
  const overLimit = (bytes: string) =>
    `the request is ${bytes} bytes on the wire, over the limit of ${maxLineBytes} (maxLineBytes)`

  /** One message as a line, or why it cannot be one; a request's size is estimated first, so a huge one is never serialised. */
  const toLine = (message: Protocol.ToChild): string | { readonly refused: string } => {
    const frame = jsonFrame(message, maxLineBytes, message._tag === "Request")
    switch (frame._tag) {
      case "Text":
        return frame.text
      case "Over":
        return { refused: overLimit(frame.bytes) }
      case "NotJson":
        return { refused: `the request is not JSON: ${describe(frame.error)}` }
    }
  }

  const spawn = Effect.gen(function* () {
    const env = {
      ...Settings.withCompileCache(Settings.childEnv(settings.inheritEnv, settings.env)),
      [Protocol.maxLineBytesEnv]: String(maxLineBytes),
      [Protocol.heartbeatEnv]: Settings.heartbeatMillis(settings),
      ...memoryReportsEntry(yield* MemoryReports)
    }
    // Released last: the whole process group gets SIGTERM, and SIGKILL after killGrace.
    const child = yield* Effect.acquireRelease(
      ChildProcess.spawn({ command, args, cwd: settings.cwd, env }).pipe(
        Effect.mapError(
          (error) => new WorkerCrash({ reason: new StartFailed({ message: `could not start ${command}: ${error}` }) })
        )
      ),
      (child) => ChildProcess.terminate(child, Duration.toMillis(settings.killGrace))
    )
    // Defined: the child has started.
    const pid = child.pid!
    const label = `process ${pid}`
    // stdin: the lines (or the frame) of one synchronous run leave in one write. Its errors are listened for from the start.
    let stdinBroken = false
    const brokenPipe = Deferred.makeUnsafe<string>()
    const lines = makeBatcher<string>((batch) => {
      if (stdinBroken) return
      batch.push("")
      child.stdin.write(batch.join("\n"))
    })
    // Whether this parent switched to binary frames (at the child's Ready), and whether the child did (its 0xFF).
    let framesOut = false
    let framesIn = false
    const codecs: { -readonly [K in keyof Client.Codecs<Resp, E>]: Client.Codecs<Resp, E>[K] } = { ...jsonCodecs }
    let refuseFramed: Frame.Refuse<Protocol.ToChild> = () => undefined
    // A frame is written into one buffer again and again while each write completes at once (the pipe had room):
    // no buffer to allocate, or to collect, per frame.
    let scratch = Buffer.allocUnsafeSlow(64 * 1024)
    const frames = makeBatcher<Protocol.ToChild>((batch) => {
      if (stdinBroken) return
      const free = child.stdin.writableLength === 0
      const bytes = Frame.encode(batch, shortenToChild, maxLineBytes, refuseFramed, free ? scratch : undefined)
      if (bytes === undefined) return
      child.stdin.write(bytes)
      // Still held by the stream: the next frame gets a buffer of its own.
      if (bytes.buffer === scratch.buffer && child.stdin.writableLength !== 0) {
        scratch = Buffer.allocUnsafeSlow(scratch.length)
      }
    })
    child.stdin.on("error", (error) => {
      stdinBroken = true
      Deferred.doneUnsafe(brokenPipe, Exit.succeed(describe(error)))
    })
    child.stdout.on("error", () => {})
    child.stderr.on("error", () => {})
    return yield* ChildFrame.open<Req, Resp, E>({
      kind: "subprocess",
      label,
      annotate: Effect.annotateLogs({ workerKind: "subprocess", pid }),
      settings,
      codecs,
      probe: () => processState(pid),
      killStopped: () => ChildProcess.signalGroup(child, "SIGKILL"),
      stderr: { stream: child.stderr, end: "close", pausable: true },
      // Nothing was sent before the Ready: from here on, frames (and payloads in their encoded form) both ways.
      onReady: (ready) => {
        if (ready.frame !== "v8" || !takesFrames || stdinBroken) return
        framesOut = true
        Object.assign(codecs, structuredCodecs)
        child.stdin.write(switchBuffer)
      },
      connect: (client, stderr) =>
        Effect.gen(function* () {
          yield* Effect.gen(function* () {
            const error = yield* Deferred.await(brokenPipe)
            // A dead child breaks the pipe: its exit, with its code, is the better reason.
            yield* Effect.timeoutOption(client.exited, brokenPipeWait)
            client.die(new ProtocolFault({ message: `broken pipe: could not write to ${label}: ${error}` }))
          }).pipe(Effect.forkScoped)

          // A request that cannot be framed after all: its caller gets InvalidRequest.
          refuseFramed = (message, problem) => {
            if (message._tag === "Request") {
              client.refuse(
                message.id,
                problem._tag === "Over"
                  ? overLimit(String(problem.bytes))
                  : `the request cannot be serialised: ${describe(problem.error)}`
              )
            }
            return undefined
          }
          const fault = (reason: string) =>
            client.die(new ProtocolFault({ message: `protocol error: ${label} sent ${reason}` }))

          // stdout: protocol lines, at most maxLineBytes of an unfinished one held; after the child's 0xFF, frames
          // of at most maxLineBytes.
          const stdoutEnded = Deferred.makeUnsafe<void>()
          const decoder = Protocol.makeLineDecoder(maxLineBytes)
          const frameDecoder = Frame.makeDecoder(maxLineBytes, { batch: client.receiveBatch, fault })
          const readLines = (chunk: Uint8Array) => {
            for (const event of decoder.push(chunk)) {
              if (event._tag === "Line") client.receiveLine(event.text)
              else fault(event.reason)
            }
          }
          child.stdout.on("data", (chunk: Uint8Array) => {
            client.heard()
            if (framesIn) return frameDecoder.push(chunk)
            const at = framesOut ? chunk.indexOf(Frame.switchByte) : -1
            if (at === -1) return readLines(chunk)
            readLines(chunk.subarray(0, at))
            if (decoder.failed) return
            if (decoder.pending > 0) return fault("its switch to binary frames in the middle of a line")
            framesIn = true
            frameDecoder.push(chunk.subarray(at + 1))
          })
          child.stdout.once("close", () => Deferred.doneUnsafe(stdoutEnded, Exit.void))

          const exitStatus = Deferred.makeUnsafe<{ readonly code: number | null; readonly signal: string | null }>()
          const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
            Deferred.doneUnsafe(exitStatus, Exit.succeed({ code, signal }))
          if (ChildProcess.hasExited(child)) onExit(child.exitCode, child.signalCode)
          else child.once("exit", onExit)

          const channel: ChildFrame.Channel = {
            send: (message) => {
              if (framesOut) {
                // A request's size is bounded first (its payload, without serialising it), so a huge one costs nothing.
                if (message._tag === "Request") {
                  const atLeast = frameBytesOver(message.payload, maxLineBytes)
                  if (atLeast !== undefined) return overLimit(`at least ${atLeast}`)
                }
                frames.push(message)
                return undefined
              }
              const line = toLine(message)
              if (typeof line !== "string") return line.refused
              lines.push(line)
              return undefined
            },
            // The exit (or the end of stdout), once the pipes have delivered what they hold.
            death: Effect.gen(function* () {
              yield* Effect.raceFirst(Deferred.await(exitStatus), Deferred.await(stdoutEnded))
              const status = yield* Effect.timeoutOption(Deferred.await(exitStatus), settleTime)
              yield* Effect.timeoutOption(Deferred.await(stdoutEnded), settleTime)
              yield* Effect.timeoutOption(stderr.ended, settleTime)
              return exitReason(label, status._tag === "Some" ? status.value : undefined, stderr.tail())
            }),
            // Before the process group is signalled (SIGTERM, SIGKILL after killGrace): a shutdown lets a live
            // child exit by itself; a crash goes straight to the signals.
            shutdown: (graceful) => {
              lines.flushNow()
              frames.flushNow()
              child.stdin.end()
              if (!graceful) return Effect.void
              return Effect.asVoid(Effect.timeoutOption(Deferred.await(exitStatus), settings.shutdownTimeout))
            }
          }
          return channel
        })
    })
  })

  return { name: "subprocess", spawn, concurrency: settings.concurrency, spare: true }
}

/**
 * Options of {@link node}: the subprocess {@link Options} without `command`,
 * plus
 *
 * - `execArgv`: options for Node itself, before the script (default none;
 *   the parent's are not copied). For a TypeScript worker that imports this
 *   package from source, `["--conditions=effect-worker-pool-source"]`.
 * - `args`: arguments after the script.
 * - `nodePath`: the Node binary (default `process.execPath`).
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import type { Subprocess } from "effect-worker-pool"
 *
 * const options: Subprocess.NodeOptions<number, number, never> = {
 *   execArgv: ["--max-old-space-size=256"],
 *   request: Schema.Number,
 *   response: Schema.Number
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface NodeOptions<Req, Resp, E> extends Omit<Options<Req, Resp, E>, "command"> {
  readonly execArgv?: ReadonlyArray<string> | undefined
  readonly nodePath?: string | undefined
}

/**
 * A subprocess kind that runs a Node script, usually one that calls
 * `Runner.run`.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Subprocess } from "effect-worker-pool"
 *
 * const kind = Subprocess.node(new URL("./worker.ts", import.meta.url), {
 *   request: Schema.Number,
 *   response: Schema.Number,
 *   concurrency: 2
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const node = <Req, Resp, E = DomainError>(
  script: string | URL,
  options: NodeOptions<Req, Resp, E>
): WorkerKind<Req, Resp, E | InvalidRequest> => {
  const { execArgv, nodePath, args, ...rest } = options
  const path = typeof script === "string" ? script : fileURLToPath(script)
  return make({
    ...rest,
    command: nodePath ?? globalThis.process.execPath,
    args: [...(execArgv ?? []), path, ...(args ?? [])]
  })
}
