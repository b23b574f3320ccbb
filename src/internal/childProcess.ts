/**
 * A child process of the subprocess kind, with Node's `child_process`
 * directly: its pipes are read and written without a stream library between
 * them and the wire, and its process group dies with its scope.
 *
 * On POSIX the child leads a process group of its own (a detached spawn), so
 * that what it starts dies with it: stopping it sends `SIGTERM` to the whole
 * group, waits up to `killGrace` for the group to be gone, then sends
 * `SIGKILL` and waits up to one more second. On Windows, `taskkill /T /F`
 * ends the tree.
 */
import * as NodeChildProcess from "node:child_process"
import { Effect } from "effect"
import { describe } from "./describe.ts"
import { processState } from "./processState.ts"

const isWindows = globalThis.process.platform === "win32"
/** After `SIGKILL`, how long the group may take to be gone (its members reaped). */
const lastGraceMillis = 1_000
const pollMillis = 10

export interface SpawnOptions {
  readonly command: string
  readonly args: ReadonlyArray<string>
  readonly cwd?: string | undefined
  readonly env: Record<string, string>
}

/** Starts the child, with its three pipes; fails with why it could not start. */
export const spawn = (options: SpawnOptions): Effect.Effect<NodeChildProcess.ChildProcessWithoutNullStreams, string> =>
  Effect.callback((resume) => {
    let child: NodeChildProcess.ChildProcessWithoutNullStreams
    try {
      child = NodeChildProcess.spawn(options.command, [...options.args], {
        cwd: options.cwd,
        env: options.env,
        stdio: "pipe",
        detached: !isWindows,
        windowsHide: true,
        shell: false
      })
    } catch (error) {
      return resume(Effect.fail(describe(error)))
    }
    const onSpawn = () => {
      child.off("error", onError)
      // A signal that cannot be delivered later is an 'error' too: it must not throw.
      child.on("error", () => {})
      resume(Effect.succeed(child))
    }
    const onError = (error: Error) => {
      child.off("spawn", onSpawn)
      resume(Effect.fail(error.message))
    }
    child.once("spawn", onSpawn)
    child.once("error", onError)
  })

/** Node has seen the child exit (its pid may be reused from then on). */
export const hasExited = (child: NodeChildProcess.ChildProcess): boolean =>
  child.exitCode !== null || child.signalCode !== null

/** The child has not exited, or a member of its process group still exists. */
const isAlive = (child: NodeChildProcess.ChildProcess): boolean => {
  if (!hasExited(child)) return true
  if (isWindows) return false
  try {
    globalThis.process.kill(-child.pid!, 0)
    return true
  } catch (error) {
    // The group exists but has no member that can be signalled (zombies, on macOS).
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

/** Sends `signal` to the child's whole process group (its tree on Windows); never throws. */
export const signalGroup = (child: NodeChildProcess.ChildProcess, signal: NodeJS.Signals): void => {
  if (isWindows) {
    if (!hasExited(child)) {
      NodeChildProcess.execFile("taskkill", ["/pid", String(child.pid), "/T", "/F"], { windowsHide: true }, () => {})
    }
    return
  }
  try {
    globalThis.process.kill(-child.pid!, signal)
  } catch {
    // The group is gone, or only zombies are left in it.
    if (!hasExited(child)) {
      try {
        child.kill(signal)
      } catch {
        // Gone meanwhile.
      }
    }
  }
}

const waitUntilGone = (child: NodeChildProcess.ChildProcess, millis: number): Effect.Effect<boolean> =>
  Effect.gen(function* () {
    const deadline = Date.now() + millis
    while (isAlive(child)) {
      if (Date.now() >= deadline) return false
      yield* Effect.sleep(pollMillis)
    }
    return true
  })

/**
 * Stops the child's process group: `SIGTERM`, up to `killGraceMillis`, then
 * `SIGKILL`. A stopped process (`SIGSTOP`, a debugger, a freezer) cannot act
 * on `SIGTERM` until it runs again: it gets `SIGKILL` at once.
 */
export const terminate = (child: NodeChildProcess.ChildProcess, killGraceMillis: number): Effect.Effect<void> =>
  Effect.gen(function* () {
    if (!isAlive(child)) return
    if (child.pid !== undefined && processState(child.pid) === "stopped") {
      signalGroup(child, "SIGKILL")
      yield* waitUntilGone(child, lastGraceMillis)
      return
    }
    signalGroup(child, "SIGTERM")
    if (yield* waitUntilGone(child, killGraceMillis)) return
    signalGroup(child, "SIGKILL")
    yield* waitUntilGone(child, lastGraceMillis)
  })
