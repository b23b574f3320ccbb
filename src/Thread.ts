/**
 * Thread workers: each incarnation is a Node `worker_threads` Worker running
 * a script that calls `Runner.run` (the same script a subprocess runs).
 * Messages are the `Protocol` messages, posted as objects, an array of them
 * per `postMessage` (all a side has ready in one synchronous run): payloads keep the
 * encoded form of their schemas and cross by structured clone, so dates,
 * maps and typed arrays need no JSON encoding.
 *
 * A field whose schema is an `effect/workers` `Transferable` schema (such as
 * `Transferable.Uint8Array`) is not copied: its buffer moves through
 * `postMessage`'s transfer list, to the thread with the request and back with
 * the answer. The caller's buffer is detached once its request is posted (a
 * request refused or still waiting keeps it); a request holding a detached
 * buffer, such as the retry of an idempotent request that moved it to a
 * thread that crashed, is refused with `InvalidRequest`.
 *
 * ```ts no-run
 * import { Schema } from "effect"
 * import { Transferable } from "effect/workers"
 *
 * // `pixels` moves to the thread and back; `width` is cloned.
 * const Image = Schema.Struct({ width: Schema.Number, pixels: Transferable.Uint8Array })
 * ```
 *
 * The outcomes are those of the subprocess kind (see `Subprocess`): a thread
 * that exits (`process.exit` in it), throws an uncaught exception, runs out of
 * memory (see `resourceLimits`), posts something that is not a protocol
 * message or answers an unknown id crashes its worker: every request in
 * flight on it fails with `WorkerCrash`, and it is replaced. A thread that
 * ignores a cancel past `cancelGrace`, or runs a request past its timeout, is
 * terminated and replaced.
 *
 * A thread shares its process with the pool: it cannot take the process down
 * by crashing, but a native crash (a segfault in an addon) or an exhausted
 * process heap can. Use subprocesses for full isolation.
 *
 * Stopping a thread sends it `Shutdown` and waits up to `shutdownTimeout` for
 * it to exit; replacing a crashed one skips that wait. Then it is terminated,
 * and the processes it started with `child_process` that still run get
 * `SIGTERM`, then `SIGKILL` after `killGrace`.
 *
 * A thread whose event loop is blocked cannot be told from a busy one: an
 * idle thread that stops sending heartbeats for `silenceLimit` is a crash,
 * a busy one is trusted.
 *
 * @since 0.1.0
 */

import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import * as WorkerThreads from "node:worker_threads"
import { Deferred, Duration, Effect, Exit } from "effect"
import { makeBatcher } from "./internal/batch.ts"
import * as ChildFrame from "./internal/childFrame.ts"
import * as Client from "./internal/client.ts"
import { describe } from "./internal/describe.ts"
import { MemoryReports, memoryReportsEntry } from "./internal/memoryReports.ts"
import * as Rules from "./internal/options.ts"
import { isAlive, signal } from "./internal/processState.ts"
import * as Settings from "./internal/settings.ts"
import { shortenToChild } from "./internal/shortForm.ts"
import { withTail } from "./internal/stderr.ts"
import { movingEncoding, type Payloads, postBatch } from "./internal/transfer.ts"
import * as Protocol from "./Protocol.ts"
import type { CommonOptions } from "./Subprocess.ts"
import type { InvalidRequest } from "./WireError.ts"
import { Defect, type DomainError, Exited, ProtocolFault, StartFailed, WorkerCrash } from "./WorkerError.ts"
import type { WorkerKind } from "./WorkerKind.ts"

/**
 * Options of a thread worker: the `Subprocess.CommonOptions` (schemas,
 * `concurrency`, `startTimeout`, `cancelGrace`, `shutdownTimeout`, `stderr`),
 * and
 *
 * | option           | default                          | meaning                                               |
 * |------------------|----------------------------------|-------------------------------------------------------|
 * | `execArgv`       | the parent's `process.execArgv`  | Node options of the thread (such as `--conditions=effect-worker-pool-source`) |
 * | `argv`           | `[]`                             | appended to the thread's `process.argv`               |
 * | `inheritEnv`     | `Subprocess.defaultInheritedEnv` | names of the parent's environment variables its `process.env` gets, or `"all"` |
 * | `env`            | `{}`                             | more variables for its `process.env`                  |
 * | `resourceLimits` | Node's defaults                  | heap limits; a thread over them crashes its worker    |
 * | `killGrace`      | `2 seconds`                      | for the processes the thread started: from `SIGTERM` to `SIGKILL` |
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import type { Thread } from "effect-worker-pool"
 *
 * const options: Thread.Options<Uint8Array, number, never> = {
 *   request: Schema.Uint8Array,
 *   response: Schema.Number,
 *   resourceLimits: { maxOldGenerationSizeMb: 256 }
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<Req, Resp, E> extends CommonOptions<Req, Resp, E> {
  readonly execArgv?: ReadonlyArray<string> | undefined
  readonly argv?: ReadonlyArray<string> | undefined
  readonly inheritEnv?: ReadonlyArray<string> | "all" | undefined
  readonly env?: Readonly<Record<string, string>> | undefined
  readonly resourceLimits?: WorkerThreads.ResourceLimits | undefined
  readonly killGrace?: Duration.Input | undefined
}

/** After the thread exits, how long its stderr may take to deliver what it wrote. */
const settleTime = Duration.millis(250)
/** How long `terminate` may take before the thread is given up on. */
const terminateTimeout = Duration.seconds(5)
/** How often the processes a thread left are looked at, while they have `killGrace` to exit. */
const killPoll = Duration.millis(10)

/** Where a request's payload is in the messages to a thread. */
const requestPayloads: Payloads<Protocol.ToChild> = {
  of: (message) => (message._tag === "Request" ? message.payload : undefined),
  with: (message, payload) => ({ ...(message as Protocol.Request), payload })
}

/**
 * What a thread runs first: it turns Node's compile cache on (unless the
 * process has one already, or it is disabled), then loads the script.
 */
const bootstrap = `
const { workerData } = require("node:worker_threads")
const { enableCompileCache, getCompileCacheDir } = require("node:module")
if (getCompileCacheDir?.() === undefined && process.env.NODE_DISABLE_COMPILE_CACHE === undefined) {
  try { enableCompileCache?.(workerData.compileCache) } catch {}
}
if (workerData.path !== undefined) process.argv[1] = workerData.path
import(workerData.script)
`

/**
 * Stops the processes a thread started and left: `SIGTERM` (to the group of
 * those that lead one), up to `killGrace` for them to exit, then `SIGKILL`.
 */
const stopLeftovers = (children: Map<number, boolean>, killGrace: Duration.Duration) =>
  Effect.gen(function* () {
    if (children.size === 0) return
    const left = [...children]
    children.clear()
    for (const [pid, group] of left) signal(pid, group, "SIGTERM")
    const deadline = Date.now() + Duration.toMillis(killGrace)
    while (left.some(([pid]) => isAlive(pid)) && Date.now() < deadline) yield* Effect.sleep(killPoll)
    // A group may outlive its leader: it gets the SIGKILL too.
    for (const [pid, group] of left) if (group || isAlive(pid)) signal(pid, group, "SIGKILL")
  })

/**
 * The thread kind: `spawn` starts `script` in a new worker thread, waits for
 * the runner's `Ready`, and hands the pool an incarnation whose requests are
 * posted to the thread. With invalid options it returns a kind that
 * `Worker.fromKind` fails with `InvalidOptions` (nothing starts).
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Thread, Worker, WorkerPool } from "effect-worker-pool"
 *
 * const kind = Thread.make(new URL("./worker.js", import.meta.url), {
 *   request: Schema.Struct({ text: Schema.String }),
 *   response: Schema.Number
 * })
 *
 * const program = Effect.scoped(
 *   Effect.gen(function* () {
 *     const pool = yield* WorkerPool.make({ size: 4, worker: (id) => Worker.fromKind(id, kind) })
 *     return yield* pool.dispatch({ text: "how long is this?" })
 *   })
 * )
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <Req, Resp, E = DomainError>(
  script: string | URL,
  options: Options<Req, Resp, E>
): WorkerKind<Req, Resp, E | InvalidRequest> =>
  Settings.checkedKind("thread", () => build<Req, Resp, E>(script, decodeOptions(options)))

/** Reads the options, once; throws `InvalidOptions` when they are invalid. */
const decodeOptions = Rules.decode(Settings.ThreadOptions)

/** The kind of `script` with `settings`. */
const build = <Req, Resp, E>(
  script: string | URL,
  settings: Settings.ThreadSettings<Req, Resp, E>
): WorkerKind<Req, Resp, E | InvalidRequest> => {
  // Requests (a group's payloads too) move the buffers of their `Transferable` fields (see transfer.ts).
  const codecs = Client.cloneCodecs(settings.request, settings.response, settings.error, movingEncoding)
  const where = typeof script === "string" ? script : script.href
  const url = typeof script === "string" ? pathToFileURL(path.resolve(script)).href : script.href
  const workerData = {
    script: url,
    // What `process.argv[1]` is in a thread started on the script itself.
    path: typeof script === "string" ? path.resolve(script) : script.protocol === "file:" ? fileURLToPath(script) : url,
    compileCache: Settings.compileCacheDir(),
    // This parent reads successes in their short form: the runner may post them so.
    shortSuccesses: true
  }

  const spawn = Effect.gen(function* () {
    const reportsMemory = yield* MemoryReports
    // Runs after the thread is terminated (finalizers run last-added first).
    const children = new Map<number, boolean>()
    yield* Effect.addFinalizer(() => stopLeftovers(children, settings.killGrace))
    const worker = yield* Effect.acquireRelease(
      Effect.try({
        try: () =>
          new WorkerThreads.Worker(bootstrap, {
            eval: true,
            workerData,
            ...(settings.execArgv === undefined ? {} : { execArgv: [...settings.execArgv] }),
            argv: [...settings.argv],
            env: {
              ...Settings.childEnv(settings.inheritEnv, settings.env),
              [Protocol.heartbeatEnv]: Settings.heartbeatMillis(settings),
              ...memoryReportsEntry(reportsMemory)
            },
            ...(settings.resourceLimits === undefined ? {} : { resourceLimits: settings.resourceLimits }),
            stderr: true
          }),
        catch: (error) =>
          new WorkerCrash({
            reason: new StartFailed({ message: `could not start a thread for ${where}: ${describe(error)}` })
          })
      }),
      (worker) => Effect.promise(() => worker.terminate()).pipe(Effect.timeoutOption(terminateTimeout), Effect.asVoid)
    )
    const label = `thread ${worker.threadId}`
    // Heard from the start: a thread that dies before the frame is wired must not go unnoticed, nor its error
    // be an unhandled 'error' event of this process.
    const exitCode = Deferred.makeUnsafe<number>()
    worker.on("exit", (code) => Deferred.doneUnsafe(exitCode, Exit.succeed(code)))
    let earlyError: { readonly error: unknown } | undefined
    const onEarlyError = (error: unknown) => {
      earlyError ??= { error }
    }
    worker.on("error", onEarlyError)
    return yield* ChildFrame.open<Req, Resp, E>({
      kind: "thread",
      label,
      annotate: Effect.annotateLogs({ workerKind: "thread", threadId: worker.threadId }),
      settings,
      codecs,
      onChildProcess: (message) => {
        if (message._tag === "ChildStarted") children.set(message.pid, message.group)
        else children.delete(message.pid)
      },
      stderr: { stream: worker.stderr, end: "end", pausable: false },
      connect: (client, stderr) =>
        Effect.sync(() => {
          // Messages of one synchronous run leave in one postMessage, requests
          // in their short form if the runner reads it, with the buffers they
          // move; one that cannot be cloned is sent on its own, and refused,
          // as is one whose buffer was transferred already.
          const outbox = makeBatcher<Protocol.ToChild>((batch) =>
            postBatch(
              batch,
              requestPayloads,
              (messages, transfer) =>
                worker.postMessage(client.shortRequests() ? shortenToChild(messages) : messages, transfer),
              (message, why) => {
                if (message._tag === "Request") client.refuse(message.id, `the request ${why}`)
              }
            )
          )
          worker.on("message", client.receiveBatch)
          worker.on("messageerror", (error) =>
            client.die(
              new ProtocolFault({
                message: `protocol error: ${label} sent a message that cannot be deserialised: ${describe(error)}`
              })
            )
          )
          const threw = (error: unknown) =>
            client.die(new Defect({ message: withTail(`${label} threw ${describe(error)}`, stderr.tail()) }))
          worker.off("error", onEarlyError)
          worker.on("error", threw)
          if (earlyError !== undefined) threw(earlyError.error)
          const channel: ChildFrame.Channel = {
            send: (message) => {
              outbox.push(message)
              return undefined
            },
            death: Effect.gen(function* () {
              const code = yield* Deferred.await(exitCode)
              yield* Effect.timeoutOption(stderr.ended, settleTime)
              return new Exited({ message: withTail(`${label} exited with code ${code}`, stderr.tail()), code })
            }),
            shutdown: (graceful) => {
              if (!graceful) return Effect.void
              try {
                outbox.flushNow()
                worker.postMessage([{ _tag: "Shutdown" }] satisfies Array<Protocol.ToChild>)
              } catch {
                return Effect.void
              }
              return Effect.asVoid(Effect.timeoutOption(Deferred.await(exitCode), settings.shutdownTimeout))
            }
          }
          return channel
        })
    })
  })

  return { name: "thread", spawn, concurrency: settings.concurrency, spare: true }
}
