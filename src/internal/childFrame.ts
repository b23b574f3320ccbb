/**
 * The frame of a local child's incarnation (a thread, a subprocess): what
 * every local kind does around its child, written once. The frame makes the
 * client that speaks the protocol, logs the child's stderr line by line and
 * keeps its last lines for the crash reason, tells the client of the child's
 * death, runs the reaper of cancelled requests and the silence watch, shuts
 * the child down gracefully when the incarnation is stopped, and waits for
 * its `Ready`.
 *
 * A kind starts its child (a resource of the incarnation's scope) and fills
 * the frame with a channel, in the shape of `effect/workers`'
 * `Worker.makePlatform`: how a message goes to the child (`send`), how the
 * child's messages and errors reach the client (wired by `connect`), its
 * stderr, how its death shows (`death`) and how it is asked to stop
 * (`shutdown`). A new local kind (Bun, a browser's Web Worker) is a spawn and
 * a channel.
 */
import type { Readable } from "node:stream"
import { Cause, Deferred, Effect, Exit, type Scope } from "effect"
import type * as Protocol from "../Protocol.ts"
import type { InvalidRequest } from "../WireError.ts"
import { type CrashReason, Stopped, type WorkerCrash } from "../WorkerError.ts"
import type { Incarnation } from "../WorkerKind.ts"
import * as Client from "./client.ts"
import type { CommonSettings } from "./settings.ts"
import { makeLogLines, makeStderrLog, makeTail } from "./stderr.ts"

/** A child's way to and from its parent, wired to the frame's client. */
export interface Channel {
  /** Sends one message to the child, or says why it cannot (its request is then refused with that reason). */
  readonly send: (message: Protocol.ToChild) => string | undefined
  /** Completes with why the child is gone, once it is and its pipes have delivered what they held. */
  readonly death: Effect.Effect<CrashReason>
  /**
   * Runs first when the incarnation ends; `graceful` when it is stopped
   * (not crashed) and the child is alive: the child may then be asked to
   * exit by itself, and waited for.
   */
  readonly shutdown: (graceful: boolean) => Effect.Effect<void>
}

/** What a kind gives the frame. */
export interface Frame<Resp, E> {
  /** The kind's name, for the line logged when the child is ready (`thread ready`). */
  readonly kind: string
  /** The child, in words (`thread 3`, `process 4242`), for crash reasons. */
  readonly label: string
  /** Names the child in what its incarnation logs. */
  readonly annotate: <A, E2, R>(self: Effect.Effect<A, E2, R>) => Effect.Effect<A, E2, R>
  readonly settings: CommonSettings
  readonly codecs: Client.Codecs<Resp, E>
  /** The client's options that only some kinds have (a process's state, the processes a thread starts). */
  readonly probe?: Client.ClientOptions<Resp, E>["probe"]
  readonly killStopped?: Client.ClientOptions<Resp, E>["killStopped"]
  readonly onChildProcess?: Client.ClientOptions<Resp, E>["onChildProcess"]
  readonly onReady?: Client.ClientOptions<Resp, E>["onReady"]
  /**
   * The child's stderr; `end` is the event after which it says no more;
   * `pausable`: the stream is paused while the log is behind (a child that
   * writes faster than the logger takes its lines waits).
   */
  readonly stderr: { readonly stream: Readable; readonly end: "end" | "close"; readonly pausable: boolean }
  /** Wires the child's messages and errors to `client`; `tail` is the child's last stderr lines, `stderrEnded` their end. */
  readonly connect: (
    client: Client.Client<unknown, Resp, E>,
    stderr: { readonly tail: () => ReadonlyArray<string>; readonly ended: Effect.Effect<void> }
  ) => Effect.Effect<Channel, never, Scope.Scope>
}

/** Runs the frame around a started child: the incarnation, once the child is ready. */
export const open = <Req, Resp, E>(
  frame: Frame<Resp, E>
): Effect.Effect<Incarnation<Req, Resp, E | InvalidRequest>, WorkerCrash, Scope.Scope> =>
  Effect.gen(function* () {
    const { settings, label, annotate } = frame
    let send: Channel["send"] = () => `${label} is not connected`
    // The child's memory reports: the last one, and who listens (see `memoryReports.ts`).
    let memory: number | undefined
    let onMemory: ((bytes: number) => void) | undefined
    const client = yield* Client.make<Req, Resp, E>({
      label,
      codecs: frame.codecs,
      concurrency: settings.concurrency,
      cancelGrace: settings.cancelGrace,
      silenceLimit: settings.silenceLimit,
      ...(frame.probe === undefined ? {} : { probe: frame.probe }),
      ...(frame.killStopped === undefined ? {} : { killStopped: frame.killStopped }),
      ...(frame.onChildProcess === undefined ? {} : { onChildProcess: frame.onChildProcess }),
      ...(frame.onReady === undefined ? {} : { onReady: frame.onReady }),
      onMemory: (bytes) => {
        memory = bytes
        onMemory?.(bytes)
      },
      send: (message) => send(message)
    })
    // Requests run on their callers' fibers: when the incarnation is stopped,
    // whatever it still holds fails here (the kind settles on its death).
    yield* Effect.addFinalizer(() => Effect.sync(() => client.die(new Stopped({ message: `${label} was stopped` }))))

    // stderr: logged line by line, the last lines kept for the crash reason.
    const { stream } = frame.stderr
    const stderrLines = makeLogLines(settings.stderr.maxLineBytes)
    const tail = makeTail(settings.stderr.tailLines)
    const log = yield* makeStderrLog(
      settings.stderr.logLevel,
      annotate,
      frame.stderr.pausable ? { pause: () => stream.pause(), resume: () => stream.resume() } : undefined
    )
    const stderrEnded = Deferred.makeUnsafe<void>()
    const collect = (lines: ReadonlyArray<string>) => {
      for (const line of lines) {
        tail.push(line)
        log.push(line)
      }
    }
    stream.on("data", (chunk: Uint8Array) => collect(stderrLines.push(chunk)))
    stream.once(frame.stderr.end, () => {
      collect(stderrLines.flush())
      Deferred.doneUnsafe(stderrEnded, Exit.void)
    })
    stream.on("error", () => Deferred.doneUnsafe(stderrEnded, Exit.void))

    const channel = yield* frame.connect(client as Client.Client<unknown, Resp, E>, {
      tail: () => tail.lines(),
      ended: Deferred.await(stderrEnded)
    })
    send = channel.send
    yield* Effect.forkScoped(Effect.flatMap(channel.death, (reason) => Effect.sync(() => client.die(reason))))
    yield* Effect.forkScoped(client.reaper)
    yield* Effect.forkScoped(client.watchdog)

    // Runs before the fibers above are interrupted and before the child is stopped.
    yield* Effect.addFinalizer((exit) =>
      Effect.suspend(() =>
        channel.shutdown(
          client.deathReason() === undefined && Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause)
        )
      )
    )

    yield* client.awaitReady(settings.startTimeout)
    yield* Effect.logDebug(`${frame.kind} ready`).pipe(annotate)
    return {
      run: client.run,
      submit: client.start,
      exited: client.exited,
      memory: (listener) => {
        onMemory = listener
        if (memory !== undefined) listener(memory)
      },
      restartOnTimeout: true,
      settlesOnDeath: true
    }
  })
