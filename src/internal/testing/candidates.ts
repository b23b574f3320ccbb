/**
 * The Schema of the candidates a policy can be offered. It is a declaration:
 * its values are validated by `isCandidate`, and generated from a flat
 * description (`Spec`) whose fields vary independently, so that every
 * generated health record keeps its invariants without values being thrown
 * away, and a failing case shrinks field by field.
 */
import { Schema, SchemaGetter } from "effect"
import type { Candidate } from "../../DispatchPolicy.ts"
import type { WorkerHealth } from "../../WorkerHealth.ts"
import type { WorkerId } from "../../WorkerId.ts"
import { healthProblem } from "./consistency.ts"

/** Bounds of the generated candidates. */
export interface Bounds {
  readonly maxWorkers: number
  readonly maxInFlight: number
  readonly now: number
}

const int = (minimum: number, maximum: number) => Schema.Int.check(Schema.isBetween({ minimum, maximum }))

const specOf = (bounds: Bounds) =>
  Schema.Struct({
    id: int(0, Math.max(63, 4 * bounds.maxWorkers - 1)),
    maxInFlight: int(1, bounds.maxInFlight),
    load: int(0, bounds.maxInFlight - 1),
    succeeded: int(0, 1000),
    domainErrors: int(0, 100),
    crashed: int(0, 20),
    timeouts: int(0, 20),
    interrupted: int(0, 100),
    failedStarts: int(0, 3),
    streak: int(0, 20),
    attempt: int(0, 3),
    ejections: int(0, 3),
    startedAt: int(0, bounds.now),
    crashedAt: int(0, bounds.now)
  })

type Spec = ReturnType<typeof specOf>["Type"]

/** A healthy worker with a free slot, whose counters keep their invariants. */
const fromSpec = (spec: Spec): Candidate => {
  const inFlight = spec.load % spec.maxInFlight
  const errored = spec.domainErrors + spec.crashed + spec.timeouts
  // Every crash of a healthy worker (a request's, or a failed start's) was followed by a restart.
  const crashes = spec.crashed + spec.failedStarts
  const health: { -readonly [K in keyof WorkerHealth]: WorkerHealth[K] } = {
    state: "Healthy",
    inFlight,
    completed: spec.succeeded + errored + spec.interrupted,
    errored,
    timeouts: spec.timeouts,
    interrupted: spec.interrupted,
    rejected: 0,
    crashes,
    restarts: crashes,
    attempt: Math.min(spec.attempt, crashes),
    failedStarts: 0,
    consecutiveFailures: spec.streak % (spec.crashed + spec.timeouts + 1),
    ejections: spec.ejections
  }
  if (inFlight > 0) health.oldestInFlightSince = spec.startedAt
  if (crashes > 0) health.lastCrash = { reason: "scripted crash", at: spec.crashedAt }
  return { id: spec.id as WorkerId, health, maxInFlight: spec.maxInFlight }
}

/** A candidate a pool could offer: a whole id, a free slot, an up worker, consistent counters. */
const isCandidate = (u: unknown): u is Candidate => {
  if (typeof u !== "object" || u === null) return false
  const c = u as Candidate
  if (!(Number.isSafeInteger(c.id) && c.id >= 0 && Number.isSafeInteger(c.maxInFlight) && c.maxInFlight >= 1)) {
    return false
  }
  const h = c.health
  if (typeof h !== "object" || h === null || (h.state !== "Healthy" && h.state !== "Ejected")) return false
  return h.inFlight < c.maxInFlight && healthProblem(h, false, "") === undefined
}

const distinctIds = Schema.makeFilter<ReadonlyArray<Candidate>>(
  (candidates) => new Set(candidates.map((c) => c.id)).size === candidates.length,
  { expected: "candidates with distinct ids", arbitraryConstraint: { uniqueBy: (c: Candidate) => c.id } }
)

/** The Schema of non-empty arrays of candidates with distinct ids, within `bounds`. */
export const schema = (bounds: Bounds): Schema.Schema<ReadonlyArray<Candidate>> => {
  const Spec = specOf(bounds)
  const Candidate = Schema.declare<Candidate>(isCandidate, {
    expected: "a candidate a pool could offer",
    toCodecArbitrary: () =>
      Schema.link<Candidate>()(Spec, {
        decode: SchemaGetter.transform(fromSpec),
        encode: SchemaGetter.forbidden(() => "candidates are generated, not encoded")
      })
  })
  return Schema.Array(Candidate).check(Schema.isMinLength(1), Schema.isMaxLength(bounds.maxWorkers), distinctIds)
}
