/**
 * Protocol faults of a subprocess: each is a crash with a clear reason, the
 * process is replaced, and the next request succeeds.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Worker, WorkerId } from "effect-worker-pool"
import type { Job } from "./fixtures/jobs.ts"
import * as S from "./fixtures/support.ts"

/** What the child does, and the crash reason the parent must give, for the process with `pid`. */
const faults: ReadonlyArray<readonly [string, Job, (pid: number) => RegExp]> = [
  [
    "garbage on stdout",
    { _tag: "Garbage", text: "this is not json\n" },
    (pid) => new RegExp(`^protocol error: process ${pid} sent a line that is not JSON: "this is not json"$`)
  ],
  [
    "JSON that is not a message",
    { _tag: "Garbage", text: '{"hello":"world"}\n' },
    (pid) => new RegExp(`^protocol error: process ${pid} sent a value that is not a protocol message: `)
  ],
  [
    "bytes that are not UTF-8",
    { _tag: "Bytes", bytes: [0xff, 0xfe, 0x0a] },
    (pid) => new RegExp(`^protocol error: process ${pid} sent a line that is not valid UTF-8$`)
  ],
  [
    "a line over the limit, without waiting for its end",
    { _tag: "Huge", bytes: 4096 },
    (pid) => new RegExp(`^protocol error: process ${pid} sent a line longer than the limit of 1024 bytes$`)
  ],
  [
    "an answer to a request that is not in flight",
    { _tag: "UnknownId" },
    (pid) => new RegExp(`^protocol error: process ${pid} answered request 424242, which is not in flight$`)
  ],
  [
    "an answer over the limit (the child refuses to send it)",
    { _tag: "Big", bytes: 4096 },
    () => /^defect: the answer is \d+ bytes on the wire, over the limit of 1024 \(maxLineBytes\)$/
  ]
]

describe("Subprocess protocol faults", { timeout: 30_000 }, () => {
  it.live("each is a crash with a clear reason; the process is replaced and the next request succeeds", () =>
    S.live(() =>
      Effect.gen(function* () {
        const worker = yield* Worker.fromKind(WorkerId.make(0), S.subprocess({ maxLineBytes: 1024 }), S.restartAtOnce)
        for (const [what, job, reason] of faults) {
          const { pid } = yield* worker.dispatch({ _tag: "Echo", value: 0 })
          const crash = S.crashOf(yield* Effect.flip(worker.dispatch(job)))
          assert.match(crash.reason.message, reason(pid), what)
          yield* S.gone([pid], pid)
          const health = yield* S.healthy(worker)
          assert.strictEqual(health.lastCrash?.reason, crash.reason.message, what)
          const next = yield* worker.dispatch({ _tag: "Echo", value: 9 })
          assert.strictEqual(next.value, 9, what)
          assert.notStrictEqual(next.pid, pid, what)
          assert.strictEqual(health.inFlight, 0, what)
        }
        assert.strictEqual((yield* worker.health).crashes, faults.length)
      })
    )
  )
})
