/**
 * Protocol faults of a subprocess: each is a crash with a clear reason, the
 * process is replaced, and the next request succeeds.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Worker, WorkerId } from "effect-worker-pool"
import type { Job } from "./fixtures/jobs.ts"
import * as S from "./fixtures/support.ts"

type Fault = readonly [string, Job, (pid: number) => RegExp]

/** What the child does on JSON lines, and the crash reason the parent must give, for the process with `pid`. */
const lineFaults: ReadonlyArray<Fault> = [
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

/** The same on binary frames (the child switched to them: what it writes raw is read as frames). */
const frameFaults: ReadonlyArray<Fault> = [
  [
    "garbage on stdout: its first bytes are a length far over the limit",
    { _tag: "Garbage", text: "this is not json\n" },
    (pid) =>
      new RegExp(`^protocol error: process ${pid} sent a frame of 1952999795 bytes, over the limit of 1024 bytes$`)
  ],
  [
    "a length over the limit, without waiting for the body",
    { _tag: "Bytes", bytes: [0, 0, 4, 1] },
    (pid) => new RegExp(`^protocol error: process ${pid} sent a frame of 1025 bytes, over the limit of 1024 bytes$`)
  ],
  [
    "a frame of 0 bytes",
    { _tag: "Bytes", bytes: [0, 0, 0, 0] },
    (pid) => new RegExp(`^protocol error: process ${pid} sent a frame of 0 bytes$`)
  ],
  [
    "a body that does not deserialize",
    { _tag: "Bytes", bytes: [0, 0, 0, 3, 0x56, 1, 2, 3] },
    (pid) => new RegExp(`^protocol error: process ${pid} sent a frame that cannot be deserialized: `)
  ],
  [
    "a body of an unknown kind",
    { _tag: "Bytes", bytes: [0, 0, 0, 2, 0x41, 0x5b, 0x5d] },
    (pid) => new RegExp(`^protocol error: process ${pid} sent a frame whose body is of an unknown kind \\(0x41\\)$`)
  ],
  [
    "a JSON body that is not JSON text",
    { _tag: "Bytes", bytes: [0, 0, 0, 3, 0x4a, 0x5b, 0x31, 0x2c] },
    (pid) => new RegExp(`^protocol error: process ${pid} sent a frame that is not JSON text: `)
  ],
  [
    "a JSON body that is not UTF-8",
    { _tag: "Bytes", bytes: [0, 0, 0, 3, 0x4a, 0x22, 0xc3, 0x22] },
    (pid) => new RegExp(`^protocol error: process ${pid} sent a frame that is not JSON text: `)
  ],
  [
    "a frame that is not a batch",
    { _tag: "Bytes", bytes: S.frameBytes({ hello: "world" }) },
    (pid) =>
      new RegExp(
        `^protocol error: process ${pid} sent a frame that is not a batch \\(an array\\) of protocol messages$`
      )
  ],
  [
    "a sparse batch far longer than its bytes (walking it would take minutes)",
    { _tag: "Bytes", bytes: S.frameBytes(Object.assign([], { length: 2 ** 31 })) },
    (pid) =>
      new RegExp(
        `^protocol error: process ${pid} sent a frame that is not a batch \\(an array\\) of protocol messages$`
      )
  ],
  [
    "a JSON body that is not a batch",
    { _tag: "Bytes", bytes: S.frameBytes({ hello: "world" }, "json") },
    (pid) =>
      new RegExp(
        `^protocol error: process ${pid} sent a frame that is not a batch \\(an array\\) of protocol messages$`
      )
  ],
  [
    "a batch holding a value that is not a message",
    { _tag: "Bytes", bytes: S.frameBytes([{ hello: "world" }], "json") },
    (pid) => new RegExp(`^protocol error: process ${pid} sent a value that is not a protocol message: `)
  ],
  [
    "an answer to a request that is not in flight (a short success)",
    { _tag: "Bytes", bytes: S.frameBytes([424242, { pid: 1, thread: 0 }]) },
    (pid) => new RegExp(`^protocol error: process ${pid} answered request 424242, which is not in flight$`)
  ],
  [
    "an answer over the limit (the child refuses to send it)",
    { _tag: "Big", bytes: 4096 },
    () => /^defect: the answer is \d+ bytes on the wire, over the limit of 1024 \(maxLineBytes\)$/
  ]
]

const faults = S.frame === "json" ? lineFaults : frameFaults

// A safety net: the frame table starts 15 processes in turn, each 1 to 3 s on a busy 2-CPU machine.
describe(`Subprocess protocol faults (${S.frame === "json" ? "JSON lines" : "binary frames"})`, {
  timeout: 90_000
}, () => {
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
