/**
 * Bytes on the subprocess kind: a field marked with `effect/workers`'
 * `Transferable.Uint8Array`, or a plain `Schema.Uint8Array`, travels raw in
 * the binary frame (a frame is at most the payload and 1 KiB) and as a base64
 * string on JSON lines, both ways, wherever it is in the schema. Real processes running
 * test/fixtures/transfer-worker.ts, each ended by its test's scope; the
 * runner's side is also driven by hand, as a parent in another language would.
 */
import * as ChildProcess from "node:child_process"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Option, Schema } from "effect"
import { Transferable } from "effect/workers"
import { Protocol, Subprocess, Worker, WorkerId } from "effect-worker-pool"
import * as Frame from "../src/internal/frame.ts"
import { toJsonWire } from "../src/internal/jsonWire.ts"
import * as S from "./fixtures/support.ts"
import { TransferAnswer, TransferJob } from "./fixtures/transfers.ts"

const script = new URL("./fixtures/transfer-worker.ts", import.meta.url)
const limit = 8 * 1024 * 1024

/** `size` bytes that differ from one another, so that a copy gone wrong shows. */
const pattern = (size: number, seed = 7): Uint8Array<ArrayBuffer> => {
  const bytes = new Uint8Array(size)
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + seed) & 0xff
  return bytes
}

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

const kind = (frame: "json" | "v8") =>
  withFrameEnv(frame, () =>
    Subprocess.node(script, {
      nodePath: S.node,
      execArgv: ["--conditions=effect-worker-pool-source"],
      killGrace: "1 second",
      startTimeout: "20 seconds",
      maxLineBytes: limit,
      request: TransferJob,
      response: TransferAnswer
    })
  )

describe("bytes on the subprocess kind", { timeout: 60_000, concurrent: true }, () => {
  for (const frame of ["v8", "json"] as const) {
    it.live(
      `${frame === "v8" ? "binary frame" : "JSON lines"}: Transferable and plain bytes cross both ways, intact`,
      () =>
        Effect.scoped(
          Effect.gen(function* () {
            const worker = yield* Worker.fromKind(WorkerId.make(0), kind(frame))
            const size = 1024 * 1024 + 3
            const bytes = pattern(size)
            const echoed = yield* worker.dispatch({ _tag: "Echo", bytes })
            assert.deepStrictEqual(echoed.moved, pattern(size))
            // A process cannot take the caller's buffer: it is written, not moved.
            assert.deepStrictEqual(bytes, pattern(size))
            const copied = yield* worker.dispatch({ _tag: "Copy", bytes: pattern(4096, 3) })
            assert.deepStrictEqual(copied.copied, pattern(4096, 3))
            // A view into a larger buffer crosses as its own bytes, and an empty one as none.
            const view = pattern(64, 5).subarray(8, 24)
            assert.deepStrictEqual(
              (yield* worker.dispatch({ _tag: "Echo", bytes: view })).moved,
              pattern(64, 5).slice(8, 24)
            )
            assert.deepStrictEqual(
              (yield* worker.dispatch({ _tag: "Echo", bytes: new Uint8Array(0) })).moved,
              new Uint8Array(0)
            )
            const health = yield* worker.health
            assert.deepStrictEqual([health.state, health.crashes, health.rejected], ["Healthy", 0, 0])
          })
        )
    )
  }
})

/** The transfer worker started by hand, its stdout collected; killed by the scope. */
const startRunner = Effect.acquireRelease(
  Effect.sync(() => {
    const child = ChildProcess.spawn(S.node, ["--conditions=effect-worker-pool-source", fileURLToPath(script)], {
      env: { PATH: process.env.PATH ?? "", [Protocol.maxLineBytesEnv]: String(limit) },
      stdio: ["pipe", "pipe", "inherit"]
    })
    const chunks: Array<Buffer> = []
    let stdout = Buffer.alloc(0)
    let fresh = false
    const waiters = new Set<() => void>()
    child.stdout.on("data", (chunk: Buffer) => {
      chunks.push(chunk)
      fresh = true
      for (const w of waiters) w()
    })
    const exited = Deferred.makeUnsafe<number | null>()
    child.once("exit", (code) => Deferred.doneUnsafe(exited, Exit.succeed(code)))
    /** Waits (on the child's output, not on a timer) until `f` of what it wrote so far gives a value. */
    const until = <A>(f: (out: Buffer) => A | undefined): Effect.Effect<A> =>
      Effect.callback<A>((resume) => {
        const check = () => {
          if (fresh) {
            stdout = Buffer.concat([stdout, ...chunks.splice(0)])
            fresh = false
          }
          const value = f(stdout)
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

/** The first line the runner wrote (its `Ready`), and where its output goes on after it. */
const readyOf = (runner: Effect.Success<typeof startRunner>) =>
  runner.until((out) => {
    const newline = out.indexOf(10)
    return newline === -1
      ? undefined
      : { ready: JSON.parse(out.subarray(0, newline).toString("utf8")), after: newline + 1 }
  })

describe("bytes on the runner's wire, by hand", { timeout: 60_000, concurrent: true }, () => {
  it.live("JSON lines: a bytes field is a base64 string, in the request and in the answer", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const runner = yield* startRunner
        const { after } = yield* readyOf(runner)
        const bytes = pattern(3000)
        const base64 = Buffer.from(bytes).toString("base64")
        // What a parent in another language writes: the bytes as base64, whether the schema marks them Transferable or not.
        runner.child.stdin.write(
          `${JSON.stringify({ _tag: "Request", id: 1, payload: { _tag: "Echo", bytes: base64 } })}\n` +
            `${JSON.stringify({ _tag: "Request", id: 2, payload: { _tag: "Copy", bytes: "AQL/" } })}\n` +
            `${JSON.stringify({ _tag: "Request", id: 3, payload: { _tag: "Echo", bytes: { "0": 1 } } })}\n`
        )
        const lines = yield* runner.until((out) => {
          const lines = out
            .subarray(after)
            .toString("utf8")
            .split("\n")
            .filter((line) => line !== "")
          const answers = lines.map((line) => JSON.parse(line)).filter((m) => m._tag !== "Heartbeat")
          return answers.length >= 3 ? answers.sort((a, b) => a.id - b.id) : undefined
        })
        assert.deepStrictEqual(lines[0], { _tag: "Success", id: 1, value: { moved: base64 } })
        assert.deepStrictEqual(lines[1], { _tag: "Success", id: 2, value: { copied: "AQL/" } })
        // Bytes written any other way are refused: the request, not the worker.
        assert.strictEqual(lines[2]._tag, "Rejected")
        assert.strictEqual(lines[2].reason, 'Expected string   at ["bytes"]')
      })
    )
  )

  it.live("binary frame: the bytes travel raw, each frame at most the payload and 1 KiB", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const runner = yield* startRunner
        const { ready, after } = yield* readyOf(runner)
        assert.strictEqual(ready.frame, "v8")
        const size = 4 * 1024 * 1024 + 5
        // The parent's frame, as the subprocess kind writes it (the short form of a request, its payload encoded).
        const request = Frame.encode<unknown>(
          [1, { _tag: "Echo", bytes: pattern(size) }],
          (batch) => batch,
          limit,
          () => assert.fail("refused")
        )!
        assert.isAtMost(request.length, size + 1024)
        runner.child.stdin.write(Buffer.concat([Buffer.of(Frame.switchByte), request]))
        const answer = yield* runner.until((out) => {
          if (out.length <= after) return undefined
          assert.strictEqual(out[after], Frame.switchByte, "the child's switch comes first")
          const frames = out.subarray(after + 1)
          if (frames.length < Frame.headerBytes) return undefined
          const length = frames.readUInt32BE(0)
          return frames.length >= Frame.headerBytes + length
            ? frames.subarray(0, Frame.headerBytes + length)
            : undefined
        })
        assert.strictEqual(answer[4], Frame.Body.V8)
        assert.isAtMost(answer.length, size + 1024)
        const batches: Array<ReadonlyArray<unknown>> = []
        Frame.makeDecoder(limit, { batch: (b) => batches.push(b), fault: (r) => assert.fail(r) }).push(answer)
        // The answer in its short form: the id, then the value, its bytes as a Uint8Array.
        assert.deepStrictEqual(batches, [[1, { moved: pattern(size) }]])
      })
    )
  )
})

describe("the JSON form of a schema on the wire", () => {
  class Image extends Schema.Class<Image>("Image")({ width: Schema.Number, pixels: Transferable.Uint8Array }) {}
  interface Tree {
    readonly bytes: Uint8Array
    readonly children: ReadonlyArray<Tree>
  }
  const Tree: Schema.Codec<Tree, unknown> = Schema.Struct({
    bytes: Transferable.Uint8Array,
    children: Schema.Array(Schema.suspend(() => Tree))
  })
  const Everywhere = Schema.Struct({
    marked: Transferable.Uint8Array,
    plain: Schema.Uint8Array,
    optional: Schema.optionalKey(Transferable.Uint8Array),
    list: Schema.Array(Transferable.Uint8Array),
    option: Schema.Option(Transferable.Uint8Array),
    image: Image,
    tree: Tree,
    at: Schema.Date
  })

  it.prop(
    "Transferable bytes are base64 wherever they are (structs, classes, options, arrays, recursion), and come back",
    [Schema.Uint8Array],
    ([generated]) => {
      const bytes = Uint8Array.from(generated)
      const codec = toJsonWire(Everywhere)
      const value = {
        marked: bytes,
        plain: bytes,
        optional: bytes,
        list: [bytes, bytes],
        option: Option.some(bytes),
        image: new Image({ width: 1, pixels: bytes }),
        tree: { bytes, children: [{ bytes, children: [] }] },
        at: new Date(0)
      }
      const encoded = Schema.encodeUnknownSync(codec)(value)
      const base64 = Buffer.from(bytes).toString("base64")
      assert.deepStrictEqual(JSON.parse(JSON.stringify(encoded)), {
        marked: base64,
        plain: base64,
        optional: base64,
        list: [base64, base64],
        option: { _tag: "Some", value: base64 },
        image: { width: 1, pixels: base64 },
        tree: { bytes: base64, children: [{ bytes: base64, children: [] }] },
        at: "1970-01-01T00:00:00.000Z"
      })
      assert.deepStrictEqual(Schema.decodeUnknownSync(codec)(JSON.parse(JSON.stringify(encoded))), value)
    }
  )

  it("a schema without Transferable bytes is the one Schema.toCodecJson derives from", () => {
    const Plain = Schema.Struct({ text: Schema.String, bytes: Schema.Uint8Array })
    assert.strictEqual(toJsonWire(Plain).schema, Plain)
  })
})
