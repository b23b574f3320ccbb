/**
 * Text rendering for the demo: the health table, and a terminal area that is
 * redrawn in place.
 */
import { type WorkerHealth, type WorkerId, WorkerState } from "effect-worker-pool"

const header = ["id", "state", "in-flight", "limit", "completed", "errored", "crashes", "restarts"]

// The state column is as wide as the longest state, so that the table does not
// shift when a state changes.
const stateWidth = Math.max(...WorkerState.literals.map((state) => state.length))

type Counters = Pick<WorkerHealth, "inFlight" | "completed" | "errored" | "crashes" | "restarts"> & {
  /** How many requests it may hold now (its adaptive or fixed limit). */
  readonly maxInFlight?: number | undefined
}

const row = (id: string, state: string, h: Counters) =>
  [id, state.padEnd(stateWidth), h.inFlight, h.maxInFlight ?? "", h.completed, h.errored, h.crashes, h.restarts].map(
    String
  )

/** One row per worker, as `pool.health` reports them, and a row of totals. */
export const healthTable = (workers: ReadonlyArray<readonly [WorkerId, WorkerHealth]>): string => {
  const sum = (counter: keyof Counters) => workers.reduce((total, [, h]) => total + (h[counter] ?? 0), 0)
  const totals = row("all", "", {
    inFlight: sum("inFlight"),
    maxInFlight: sum("maxInFlight"),
    completed: sum("completed"),
    errored: sum("errored"),
    crashes: sum("crashes"),
    restarts: sum("restarts")
  })
  const rows = [header, ...workers.map(([id, h]) => row(String(id), h.state, h)), totals]
  const widths = header.map((_, column) => Math.max(...rows.map((cells) => cells[column]!.length)))
  // The id and state columns are left-aligned, the counters right-aligned.
  const line = (cells: ReadonlyArray<string>) =>
    cells.map((cell, column) => (column < 2 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join("  ")
  const rule = widths.map((width) => "-".repeat(width)).join("  ")
  const [head, ...body] = rows.map(line)
  const last = body.pop()!
  return [head, rule, ...body, rule, last].join("\n")
}

/** The latest crash of any worker, in words; nothing when none has crashed. */
export const latestCrash = (workers: ReadonlyArray<readonly [WorkerId, WorkerHealth]>): string | undefined => {
  let latest: { readonly id: WorkerId; readonly reason: string; readonly at: number } | undefined
  for (const [id, { lastCrash }] of workers) {
    if (lastCrash !== undefined && (latest === undefined || lastCrash.at > latest.at)) latest = { id, ...lastCrash }
  }
  return latest && `latest crash: worker ${latest.id}, ${latest.reason}`
}

/**
 * A block of lines at the bottom of a terminal that each `draw` replaces:
 * the cursor moves back up over the previous drawing and clears it.
 */
export const terminalArea = (out: NodeJS.WriteStream) => {
  let drawnLines = 0
  return {
    draw: (text: string): void => {
      const up = drawnLines > 0 ? `\x1b[${drawnLines}F` : ""
      out.write(`${up}\x1b[0J${text}\n`)
      drawnLines = text.split("\n").length
    }
  }
}
