import * as Cause from "effect/Cause"
import { type CrashReason, StartFailed, WorkerCrash } from "../WorkerError.ts"

/** A short description of a thrown value or a failure, for a crash reason. */
export const describe = (u: unknown): string => {
  if (u instanceof Error) return u.message === "" ? u.name : `${u.name}: ${u.message}`
  if (typeof u === "string") return u
  try {
    return JSON.stringify(u) ?? String(u)
  } catch {
    return String(u)
  }
}

/** Why an incarnation could not start, from the cause of its failed `spawn`. */
export const spawnFailure = (cause: Cause.Cause<unknown>): CrashReason => {
  const error = Cause.findErrorOption(cause)
  if (error._tag === "Some") {
    return error.value instanceof WorkerCrash
      ? error.value.reason
      : new StartFailed({ message: `start failed: ${describe(error.value)}` })
  }
  if (Cause.hasDies(cause)) return new StartFailed({ message: `start died: ${describe(Cause.squash(cause))}` })
  return new StartFailed({ message: "start was interrupted" })
}
