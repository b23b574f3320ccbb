/**
 * The processes a thread starts, made known to its parent, which stops those
 * the thread leaves behind when it ends.
 */
import { createRequire, syncBuiltinESMExports } from "node:module"
import type { Transport } from "./transport.ts"

/**
 * Makes the processes a thread starts known to its parent: `spawn`, `exec`,
 * `execFile` and `fork` of `child_process` (also as ESM imports) report each
 * process that starts, and its exit. The synchronous variants return only
 * once their process is gone.
 */
export const trackChildProcesses = (transport: Transport) => {
  const childProcess = createRequire(import.meta.url)("node:child_process") as Record<string, unknown>
  const tracked = new Set<number>()
  const track = (child: unknown, args: ReadonlyArray<unknown>) => {
    const pid = (child as { pid?: unknown } | null)?.pid
    if (typeof pid !== "number" || tracked.has(pid)) return
    tracked.add(pid)
    const group = globalThis.process.platform !== "win32" && args.some(isDetached)
    transport.send({ _tag: "ChildStarted", pid, group })
    // At once: the thread may die in this very turn.
    transport.flush()
    ;(child as { once: (event: string, f: () => void) => void }).once("exit", () => {
      tracked.delete(pid)
      transport.send({ _tag: "ChildExited", pid })
    })
  }
  for (const name of ["spawn", "exec", "execFile", "fork"]) {
    const original = childProcess[name]
    if (typeof original !== "function") continue
    childProcess[name] = function (this: unknown, ...args: Array<unknown>) {
      const child = original.apply(this, args)
      track(child, args)
      return child
    }
  }
  syncBuiltinESMExports()
}

const isDetached = (arg: unknown): boolean =>
  typeof arg === "object" && arg !== null && !Array.isArray(arg) && (arg as { detached?: unknown }).detached === true
