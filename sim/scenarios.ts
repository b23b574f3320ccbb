/**
 * The scenarios of the simulation. Times are fractions of the span of
 * arrivals; loads are utilisations (arrival rate / sum of base speeds).
 */
import type { Scenario } from "./model.ts"

const eight = (speed: number) => Array.from({ length: 8 }, () => speed)

/** Falls linearly from 1 to 0.1 at mid-run, then recovers to 1 at the end. */
const valley = (fraction: number) => 1 - 0.9 * (1 - Math.abs(2 * fraction - 1))

/** Five times slower (speed 0.2) for the middle third of the run, at full speed before and after. */
const slowMiddleThird = (fraction: number) => (fraction >= 1 / 3 && fraction < 2 / 3 ? 0.2 : 1)

/** Three times slower (speed 1/3) for half a minute, from 10 s to 40 s of virtual time. */
const slowHalfMinute = (_: number, millis: number) => (millis >= 10_000 && millis < 40_000 ? 1 / 3 : 1)

/** The modes of the adaptive-concurrency scenarios: the defaults, and the defaults with the old one slot. */
const capacityModes = ["defaults", "defaults, maxInFlight 1"]

const twelve = Array.from({ length: 12 }, () => 1)

/**
 * I/O-bound loads, for adaptive per-worker concurrency: a dozen in-process
 * workers whose handler waits 100 to 300 ms (a call to another service), at
 * 240 and 480 requests a second (loads 2 and 4 of a dozen workers that
 * serve one request each per unit; each worker must hold 4 and 8 requests at
 * once on average). The goal: at least 99.9 % answered within 1 s with the
 * default options.
 */
export const capacityScenarios: ReadonlyArray<Scenario> = [
  {
    id: "io",
    title: "I/O-bound workers",
    description:
      "12 in-process workers whose handler waits 100 to 300 ms (uniform) for every request at once, " +
      "whatever else they hold; 240 and 480 requests a second.",
    speeds: twelve,
    io: true,
    service: "io",
    loads: [2, 4],
    modes: capacityModes
  },
  {
    id: "io-slow",
    title: "I/O-bound workers, one of them slow for half a minute",
    description:
      "The I/O-bound scenario; from 10 s to 40 s of the run, worker 0 waits three times longer (300 to 900 ms: " +
      "each of its answers is still within 1 s, so a request answered late is one that waited for it).",
    speeds: twelve,
    io: true,
    service: "io",
    drift: { worker: 0, factor: slowHalfMinute },
    loads: [2, 4],
    modes: capacityModes
  },
  {
    id: "io-hung",
    title: "I/O-bound workers, one of them stops answering",
    description:
      "The I/O-bound scenario; from one third of the run on, worker 0 accepts requests and never answers. " +
      "The pool's request timeout is 1 s; passive ejection is on with its defaults.",
    speeds: twelve,
    io: true,
    service: "io",
    fault: { _tag: "Hang", worker: 0, at: 1 / 3 },
    timeoutUnits: 10,
    loads: [2, 4],
    modes: capacityModes
  }
]

export const scenarios: ReadonlyArray<Scenario> = [
  {
    id: "identical",
    title: "Identical workers",
    description: "8 workers of speed 1.",
    speeds: eight(1),
    loads: [0.5, 0.7, 0.9, 0.95]
  },
  {
    id: "mixed",
    title: "Mixed speeds",
    description: "8 workers of speeds 2, 2, 1, 1, 1, 1, 0.5, 0.5 (ids 0 to 7).",
    speeds: [2, 2, 1, 1, 1, 1, 0.5, 0.5],
    loads: [0.5, 0.7, 0.9]
  },
  {
    id: "one-slow",
    title: "One worker 10× slower",
    description: "8 workers: 7 of speed 1, worker 7 of speed 0.1.",
    speeds: [1, 1, 1, 1, 1, 1, 1, 0.1],
    loads: [0.5, 0.7, 0.9]
  },
  {
    id: "drift",
    title: "One worker drifting",
    description:
      "8 workers of speed 1; worker 0 slows down linearly to 0.1 at mid-run, then recovers to 1 by the end. " +
      "Loads are against the nominal capacity of 8 (at the slowest, the capacity is 7.1).",
    speeds: eight(1),
    drift: { worker: 0, factor: valley },
    loads: [0.5, 0.7, 0.85]
  },
  {
    id: "slowdown",
    title: "One of twelve workers slows down",
    description:
      "12 workers of speed 1; for the middle third of the run worker 0 runs 5× slower (speed 0.2), then recovers. " +
      "Loads are against the nominal capacity of 12 (11.2 while worker 0 is slow). The goal: the default policy, " +
      "with workers that queue requests themselves, sends worker 0 while it is slow at most 1.1 × the requests " +
      "`PeakEwma` sends it.",
    speeds: Array.from({ length: 12 }, () => 1),
    drift: { worker: 0, factor: slowMiddleThird },
    loads: [0.5, 0.7, 0.8]
  },
  {
    id: "crash",
    title: "A crash with restart",
    description:
      "8 workers of speed 1; at one third of the run worker 0 crashes (`WorkerCrash`) on the request it starts " +
      "serving, which fails with every request queued on it; it restarts after the default restart schedule.",
    speeds: eight(1),
    fault: { _tag: "Crash", worker: 0, at: 1 / 3 },
    loads: [0.5, 0.7, 0.9]
  },
  {
    id: "crash-loop",
    title: "A crash loop",
    description:
      "8 workers of speed 1; from one third of the run on, worker 0 crashes on every request it starts serving. " +
      "It is restarted with the default schedule (100 ms doubling, jittered) until its restart budget " +
      "(5 restarts within 1 minute) is spent, then retired: 7 workers carry the load. " +
      "Loads stop at 80 %: 90 % of 8 is more than 7 workers can serve.",
    speeds: eight(1),
    fault: { _tag: "CrashLoop", worker: 0, at: 1 / 3 },
    worker: { maxRestarts: 5, restartWindow: "1 minute" },
    loads: [0.5, 0.7, 0.8]
  },
  {
    id: "hung",
    title: "A hung worker",
    description:
      "8 workers of speed 1; from one third of the run on, worker 0 accepts requests and never answers. " +
      "The pool's request timeout is 20 units (2 s); passive ejection is on with its defaults. " +
      "Loads stop at 80 %: with one worker lost, 90 % of 8 is more than 7 workers can serve.",
    speeds: eight(1),
    fault: { _tag: "Hang", worker: 0, at: 1 / 3 },
    timeoutUnits: 20,
    loads: [0.5, 0.7, 0.8]
  },
  {
    id: "hung-no-ejection",
    title: "A hung worker, ejection off",
    description:
      "The hung-worker scenario with the pool's passive ejection turned off (`ejection: false`), so that only the " +
      "policy keeps traffic away from the worker that never answers.",
    speeds: eight(1),
    fault: { _tag: "Hang", worker: 0, at: 1 / 3 },
    timeoutUnits: 20,
    ejection: false,
    loads: [0.5, 0.7, 0.8]
  }
]
