/**
 * The in-process kinds (`WorkerKind.inProcess`, `inProcessScoped`), known by
 * identity: their workers' `maxInFlight` is adaptive by default.
 */
const kinds = new WeakSet<object>()

/** Marks `kind` as an in-process kind, and returns it. */
export const markInProcess = <K extends object>(kind: K): K => {
  kinds.add(kind)
  return kind
}

/** Whether `kind` was made by an in-process constructor. */
export const isInProcess = (kind: object): boolean => kinds.has(kind)
