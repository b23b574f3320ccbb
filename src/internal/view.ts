/**
 * A view of candidates built outside a pool, every candidate eligible: what
 * `Testing.view` and the deprecated `DispatchPolicy.view` return. It lives
 * here so that the library's main entry does not load the test kit.
 */
import type { Candidate, WorkerView } from "../DispatchPolicy.ts"
import { Roster } from "./roster.ts"

/** A view over `candidates`, sorted by id, all eligible. */
export const viewOf = (candidates: ReadonlyArray<Candidate>): WorkerView => {
  const roster = new Roster()
  const sorted = [...candidates].sort((a, b) => a.id - b.id)
  roster.reset(sorted)
  sorted.forEach((c, rank) => {
    roster.update(rank, true, c.health)
  })
  return roster
}
