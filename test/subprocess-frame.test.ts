/**
 * How the subprocess kind and the runner agree on their frame: a child that
 * offers the binary frame gets it both ways, one that does not gets JSON
 * lines, and `EFFECT_WORKER_POOL_FRAME=json` keeps lines. The runner's side is
 * driven byte by byte by a parent written here; stray writes to its stdout
 * stay off the wire. Real processes, each ended by its test's scope.
 */
import * as ChildProcess from "node:child_process"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Schema } from "effect"
import { InvalidOptions, InvalidRequest, Protocol, Subprocess, Worker, WorkerId } from "effect-worker-pool"
import * as Frame from "../src/internal/frame.ts"
import * as S from "./fixtures/support.ts"

const frameChild = fileURLToPath(new URL("./fixtures/frame-child.mjs", import.meta.url))
const Text = Schema.Struct({ text: Schema.String })
const Read = Schema.Struct({ read: Schema.String, echo: Schema.String })

/** A kind on the hand-written child; `offer`: it offers the binary frame. */
const handChild = (offer: boolean, options: Partial<Subprocess.Options<unknown, unknown, never>> = {}) =>
  Subprocess.make({
    command: process.execPath,
    args: [frameChild],
    env: { FRAME_OFFER: offer ? "v8" : "none" },
    request: Text,
    response: Read,
    killGrace: "1 second",
    ...options
  })

/** `f` with `Protocol.frameEnv` set to `value` while it runs (the kind reads it when it is made). */
const withFrameEnv = <A>(value: string, f: () => A): A => {
  const before = process.env[Protocol.frameEnv]
  process.env[Protocol.frameEnv] = value
  try {
    return f()
  } finally {
    if (before === undefined) delete process.env[Protocol.frameEnv]
    else process.env[Protocol.frameEnv] = before
  }
}

const dispatchTo = (kind: ReturnType<typeof handChild>, text: string) =>
  Effect.gen(function* () {
    const worker = yield* Worker.fromKind(WorkerId.make(0), kind)
    return yield* worker.dispatch({ text })
  })

describe("the frame of the subprocess kind", { timeout: 30_000, concurrent: true }, () => {
  it.live("a child that offers the binary frame gets it both ways", () =>
    Effect.scoped(
      Effect.gen(function* () {
        // Unless CI forces lines for the whole run: then the parent keeps them, which is what the switch is for.
        const expected = S.frame === "json" ? "json" : "v8"
        assert.deepStrictEqual(yield* dispatchTo(handChild(true), "hello"), { read: expected, echo: "hello" })
      })
    )
  )

  it.live("a child that does not offer it (another language, an older runner) gets JSON lines", () =>
    Effect.scoped(
      Effect.gen(function* () {
        assert.deepStrictEqual(yield* dispatchTo(handChild(false), "hello"), { read: "json", echo: "hello" })
      })
    )
  )

  it.live("EFFECT_WORKER_POOL_FRAME=json keeps JSON lines with a child that offers the frame; v8 takes it", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const lines = withFrameEnv("json", () => handChild(true))
        assert.deepStrictEqual(yield* dispatchTo(lines, "a"), { read: "json", echo: "a" })
        const frames = withFrameEnv("v8", () => handChild(true))
        assert.deepStrictEqual(yield* dispatchTo(frames, "b"), { read: "v8", echo: "b" })
      })
    )
  )

  it.live("any other value of EFFECT_WORKER_POOL_FRAME makes the kind invalid; nothing starts", () =>
    Effect.gen(function* () {
      const kind = withFrameEnv("binary", () => handChild(true))
      assert.instanceOf(kind.invalid, InvalidOptions)
      assert.strictEqual(kind.invalid?.reason, 'EFFECT_WORKER_POOL_FRAME must be "json" or "v8", not "binary"')
      const exit = yield* Effect.exit(Effect.scoped(Worker.fromKind(WorkerId.make(0), kind)))
      assert.isTrue(Exit.isFailure(exit))
    })
  )

  it.live(
    "a request over maxLineBytes is refused with InvalidRequest: by its estimate before it is serialised, else once it is; the others go",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const kind = withFrameEnv("v8", () => handChild(true, { maxLineBytes: 1024, concurrency: 4 }))
          const worker = yield* Worker.fromKind(WorkerId.make(0), kind, { maxInFlight: 4 })
          // The estimate of { text } is its length and 11 bytes: 1,012 characters fit it, not the frame (JSON's body
          // is its length and 15 bytes, V8's more).
          const [far, near, small] = yield* Effect.all(
            [
              Effect.flip(worker.dispatch({ text: "x".repeat(2000) })),
              Effect.flip(worker.dispatch({ text: "y".repeat(1012) })),
              worker.dispatch({ text: "fits" })
            ],
            { concurrency: "unbounded" }
          )
          assert.instanceOf(far, InvalidRequest)
          assert.strictEqual(
            far.reason,
            "the request is at least 2011 bytes on the wire, over the limit of 1024 (maxLineBytes)"
          )
          assert.instanceOf(near, InvalidRequest)
          assert.match(
            near.reason,
            /^the request is 10\d\d bytes on the wire, over the limit of 1024 \(maxLineBytes\)$/
          )
          assert.deepStrictEqual(small, { read: "v8", echo: "fits" })
          const health = yield* worker.health
          assert.deepStrictEqual(
            [health.state, health.crashes, health.rejected, health.completed],
            ["Healthy", 0, 2, 1]
          )
        })
      )
  )

  it.live(
    "a request V8 cannot serialise (a function in an unknown payload) is InvalidRequest; the worker stays up",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const kind = withFrameEnv("v8", () => handChild(true, { request: Schema.Unknown }))
          const worker = yield* Worker.fromKind(WorkerId.make(0), kind)
          const refused = yield* Effect.flip(worker.dispatch({ text: "a", f: () => 1 }))
          assert.instanceOf(refused, InvalidRequest)
          assert.match(refused.reason, /^the request cannot be serialised: Error: \(\) => 1 could not be cloned\.$/)
          assert.deepStrictEqual(yield* worker.dispatch({ text: "b" }), { read: "v8", echo: "b" })
          assert.strictEqual((yield* worker.health).crashes, 0)
        })
      )
  )
})

/** A runner (the test worker) started by hand, its stdout and stderr collected; killed by the scope. */
const startRunner = Effect.acquireRelease(
  Effect.sync(() => {
    const child = ChildProcess.spawn(
      S.node,
      ["--conditions=effect-worker-pool-source", fileURLToPath(S.workerScript)],
      {
        env: { PATH: process.env.PATH ?? "", [Protocol.maxLineBytesEnv]: "1024" },
        stdio: ["pipe", "pipe", "pipe"]
      }
    )
    let stdout = Buffer.alloc(0)
    let stderr = ""
    const waiters = new Set<() => void>()
    const wake = () => {
      for (const w of waiters) w()
    }
    child.stdout.on("data", (chunk: Buffer) => {
      stdout = Buffer.concat([stdout, chunk])
      wake()
    })
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8")
      wake()
    })
    const exited = Deferred.makeUnsafe<number | null>()
    child.once("exit", (code) => {
      Deferred.doneUnsafe(exited, Exit.succeed(code))
      wake()
    })
    /** Waits (on the child's output, not on a timer) until `f` of what it wrote so far gives a value. */
    const until = <A>(f: (out: Buffer, err: string) => A | undefined): Effect.Effect<A> =>
      Effect.callback<A>((resume) => {
        const check = () => {
          const value = f(stdout, stderr)
          if (value === undefined) return
          waiters.delete(check)
          resume(Effect.succeed(value))
        }
        waiters.add(check)
        check()
        return Effect.sync(() => waiters.delete(check))
      })
    return { child, until, exited: Deferred.await(exited) }
  }),
  ({ child }) => Effect.sync(() => child.kill("SIGKILL"))
)

/** The batches in `bytes` (after the switch byte), once `count` of them are whole. */
const batchesIn = (bytes: Buffer, count: number): Array<ReadonlyArray<unknown>> | undefined => {
  const batches: Array<ReadonlyArray<unknown>> = []
  const decoder = Frame.makeDecoder(1024, { batch: (b) => batches.push(b), fault: (r) => assert.fail(r) })
  decoder.push(bytes)
  return batches.length >= count ? batches : undefined
}

describe("the runner's side of the binary frame", { timeout: 30_000, concurrent: true }, () => {
  it.live(
    "offers the frame, switches on the parent's 0xFF, answers in frames; a stray console.log goes to stderr",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const runner = yield* startRunner
          const readyLine = yield* runner.until((out) => {
            const newline = out.indexOf(10)
            return newline === -1 ? undefined : out.subarray(0, newline).toString("utf8")
          })
          assert.deepStrictEqual(JSON.parse(readyLine), { _tag: "Ready", protocol: Protocol.version, frame: "v8" })
          const afterReady = Buffer.byteLength(readyLine) + 1

          // Two requests in their short form, in one frame; the first logs with console.log before it answers.
          const request = Frame.encode<unknown>(
            [1, { _tag: "Log", text: "a stray line" }, 2, { _tag: "Echo", value: 5 }],
            (b) => b,
            1024,
            () => assert.fail("refused")
          )!
          runner.child.stdin.write(Buffer.concat([Buffer.of(Frame.switchByte), request]))

          const batches = yield* runner.until((out) => {
            if (out.length <= afterReady) return undefined
            assert.strictEqual(out[afterReady], Frame.switchByte, "the child's switch comes first")
            const batches = batchesIn(out.subarray(afterReady + 1), 1)
            const items = batches?.flat() ?? []
            return items.length >= 4 ? items : undefined
          })
          const pid = runner.child.pid
          // Successes in their short form: the id, then the value, in the schema's encoded form.
          assert.deepStrictEqual(batches, [
            1,
            { pid, thread: 0, text: "a stray line" },
            2,
            { pid, thread: 0, value: 5 }
          ])
          yield* runner.until((_, err) => (err.includes("a stray line\n") ? true : undefined))
        })
      )
  )

  it.live("a frame over its limit from the parent is a protocol fault: the runner exits with code 2 and says why", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const runner = yield* startRunner
        yield* runner.until((out) => (out.includes(10) ? true : undefined))
        runner.child.stdin.write(Uint8Array.of(Frame.switchByte, 0x7f, 0xff, 0xff, 0xff))
        assert.strictEqual(yield* runner.exited, 2)
        yield* runner.until((_, err) =>
          err.includes("protocol error: the parent sent a frame of 2147483647 bytes, over the limit of 1024 bytes")
            ? true
            : undefined
        )
      })
    )
  )

  it.live("a parent that writes a JSON line first keeps JSON lines both ways", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const runner = yield* startRunner
        yield* runner.until((out) => (out.includes(10) ? true : undefined))
        runner.child.stdin.write(`${JSON.stringify({ _tag: "Request", id: 1, payload: { _tag: "Echo", value: 7 } })}\n`)
        const answer = yield* runner.until((out) => {
          const lines = out.toString("utf8").split("\n")
          return lines.length >= 3 ? lines[1] : undefined
        })
        assert.deepStrictEqual(JSON.parse(answer), {
          _tag: "Success",
          id: 1,
          value: { pid: runner.child.pid, thread: 0, value: 7 }
        })
      })
    )
  )
})
