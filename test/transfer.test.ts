/**
 * Zero-copy buffers on the thread kind: fields marked with `effect/workers`'
 * `Transferable` schemas move through `postMessage`'s transfer list, both
 * ways; a plain `Uint8Array` is copied; a buffer is transferred only when its
 * request is posted, and a detached one is never sent again. Real threads
 * running test/fixtures/transfer-worker.ts, and a property test of the
 * posting of a batch over a real `MessageChannel`.
 */
import { MessageChannel } from "node:worker_threads"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Schema } from "effect"
import { DispatchPolicy, InvalidRequest, PoolBusy, Thread, Worker, WorkerId, WorkerPool } from "effect-worker-pool"
import { Moving, postBatch } from "../src/internal/transfer.ts"
import * as S from "./fixtures/support.ts"
import { TransferAnswer, TransferJob } from "./fixtures/transfers.ts"

const script = new URL("./fixtures/transfer-worker.ts", import.meta.url)

const kind = (concurrency = 1) =>
  Thread.make(script, {
    execArgv: ["--conditions=effect-worker-pool-source"],
    cancelGrace: "5 seconds",
    shutdownTimeout: "1 second",
    startTimeout: "20 seconds",
    concurrency,
    request: TransferJob,
    response: TransferAnswer
  })

/** `size` bytes that differ from one another, so that a copy gone wrong shows. */
const pattern = (size: number, seed = 7): Uint8Array<ArrayBuffer> => {
  const bytes = new Uint8Array(size)
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + seed) & 0xff
  return bytes
}

const isDetached = (bytes: Uint8Array) => (bytes.buffer as { readonly detached?: boolean }).detached === true

/** The `InvalidRequest` of a request whose buffer moved already. */
const detachedReason = /^the request holds a detached buffer/

describe("Transferred buffers, thread kind", { timeout: 60_000 }, () => {
  it.live("a Transferable field moves to the thread and its answer moves back, intact", () =>
    S.live(() =>
      Effect.gen(function* () {
        const worker = yield* Worker.fromKind(WorkerId.make(0), kind())
        const size = 1024 * 1024 + 3
        const bytes = pattern(size)
        const answer = yield* worker.dispatch({ _tag: "Echo", bytes })
        // The caller's buffer moved: it is detached here.
        assert.isTrue(isDetached(bytes))
        assert.strictEqual(bytes.byteLength, 0)
        assert.deepStrictEqual(answer.moved, pattern(size))
        // The answer's buffer moved too: the worker's reference to it is detached.
        assert.strictEqual((yield* worker.dispatch({ _tag: "Last" })).length, 0)
        // A view into a larger buffer moves the whole buffer, and arrives as the same view.
        const whole = pattern(64, 3)
        const view = whole.subarray(8, 24)
        const back = yield* worker.dispatch({ _tag: "Echo", bytes: view })
        assert.deepStrictEqual(back.moved, pattern(64, 3).subarray(8, 24))
        assert.strictEqual(whole.byteLength, 0)
      })
    )
  )

  it.live("a plain Uint8Array is copied both ways, as is a pooled Node Buffer marked Transferable", () =>
    S.live(() =>
      Effect.gen(function* () {
        const worker = yield* Worker.fromKind(WorkerId.make(0), kind())
        const bytes = pattern(4096)
        const answer = yield* worker.dispatch({ _tag: "Copy", bytes })
        assert.deepStrictEqual(answer.copied, pattern(4096))
        assert.isFalse(isDetached(bytes))
        assert.deepStrictEqual(bytes, pattern(4096))
        // The worker keeps its copy: the answer was copied, not moved.
        assert.strictEqual((yield* worker.dispatch({ _tag: "Last" })).length, 4096)
        // Node's pool of small buffers cannot move: such a buffer is copied, not refused.
        const pooled = Buffer.from("small and pooled")
        const echoed = yield* worker.dispatch({ _tag: "Echo", bytes: pooled })
        assert.deepStrictEqual(Buffer.from(echoed.moved!).toString(), "small and pooled")
        assert.strictEqual(pooled.toString(), "small and pooled")
      })
    )
  )

  it.live("a request refused at admission, or left while it waited, keeps its buffer; a later one moves it", () =>
    S.live((logs) =>
      Effect.gen(function* () {
        const pool = yield* WorkerPool.make({
          size: 1,
          worker: (id) => Worker.fromKind(id, kind()),
          queueCapacity: 1,
          queueStrategy: "fail",
          spares: 0
        })
        const holding = yield* Effect.forkChild(pool.dispatch({ _tag: "Hold", bytes: pattern(16) }))
        yield* logs.waitFor(/^holding 1$/)
        const queuedBytes = pattern(1000, 1)
        const queued = yield* Effect.forkChild(pool.dispatch({ _tag: "Echo", bytes: queuedBytes }))
        yield* S.eventuallyEffect(
          "the request waits in the queue",
          Effect.map(pool.queued, (n) => n === 1)
        )
        assert.isFalse(isDetached(queuedBytes))

        const refusedBytes = pattern(1000, 2)
        const refused = yield* Effect.flip(pool.dispatch({ _tag: "Echo", bytes: refusedBytes }))
        assert.instanceOf(refused, PoolBusy)
        assert.isFalse(isDetached(refusedBytes))
        assert.deepStrictEqual(refusedBytes, pattern(1000, 2))

        yield* Fiber.interrupt(queued)
        assert.isFalse(isDetached(queuedBytes))
        assert.deepStrictEqual(queuedBytes, pattern(1000, 1))

        yield* Fiber.interrupt(holding)
        const answer = yield* pool.dispatch({ _tag: "Echo", bytes: refusedBytes })
        assert.deepStrictEqual(answer.moved, pattern(1000, 2))
        assert.isTrue(isDetached(refusedBytes))
      })
    )
  )

  it.live("a request waiting in the parent for a slot of its thread keeps its buffer until it is posted", () =>
    S.live((logs) =>
      Effect.gen(function* () {
        // Two requests on the worker, one slot in its thread: the second waits in the parent.
        const worker = yield* Worker.fromKind(WorkerId.make(0), kind(1), { maxInFlight: 2 })
        const holding = yield* Effect.forkChild(worker.dispatch({ _tag: "Hold", bytes: pattern(16) }))
        yield* logs.waitFor(/^holding 1$/)
        const bytes = pattern(2000, 5)
        const waiting = yield* Effect.forkChild(worker.dispatch({ _tag: "Echo", bytes }))
        yield* S.until(worker, "holds two requests", (h) => h.inFlight === 2)
        assert.isFalse(isDetached(bytes))
        yield* Fiber.interrupt(holding)
        const answer = yield* Fiber.join(waiting)
        assert.deepStrictEqual(answer.moved, pattern(2000, 5))
        assert.isTrue(isDetached(bytes))
      })
    )
  )

  it.live("an idempotent request whose buffer moved to a thread that crashed is not sent again: InvalidRequest", () =>
    S.live((logs) =>
      Effect.gen(function* () {
        const pool = yield* WorkerPool.make({
          policy: DispatchPolicy.RoundRobin,
          size: 2,
          worker: (id) => Worker.fromKind(id, kind(), S.restartAtOnce),
          spares: 0
        })
        const bytes = pattern(1024)
        const error = yield* Effect.flip(pool.dispatch({ _tag: "Exit", bytes }, { idempotent: true }))
        // The first thread got the whole buffer before it exited.
        yield* logs.waitFor(/^exiting 1 1024$/)
        // The retry, on the other thread, is refused before it is posted: the buffer left with the first attempt.
        assert.instanceOf(error, InvalidRequest)
        assert.match(error.reason, detachedReason)
        assert.isTrue(isDetached(bytes))
        const health = yield* pool.health
        assert.deepStrictEqual(
          health.map(([, h]) => h.crashes),
          [1, 0]
        )
        // A request that holds a detached buffer from the start is refused the same way, and the pool serves on.
        const again = yield* Effect.flip(pool.dispatch({ _tag: "Echo", bytes }))
        assert.instanceOf(again, InvalidRequest)
        assert.match(again.reason, detachedReason)
        assert.deepStrictEqual((yield* pool.dispatch({ _tag: "Echo", bytes: pattern(8) })).moved, pattern(8))
      })
    )
  )
})

/** What a message of the property test's batches holds. */
const Item = Schema.Literals(["plain", "moving", "listedTwice", "sharing", "detached", "unclonable"])

describe("postBatch", () => {
  it.effect.prop(
    "every message is posted once or refused once; what is posted moves its buffers, what is refused keeps them",
    { items: Schema.Array(Item) },
    ({ items }) =>
      Effect.sync(() => {
        const { port1, port2 } = new MessageChannel()
        try {
          interface Message {
            readonly id: number
            readonly payload: unknown
          }
          const buffers: Array<ArrayBuffer | undefined> = []
          let previous: ArrayBuffer | undefined
          const batch: Array<Message> = items.map((item, id) => {
            const buffer = item === "sharing" && previous !== undefined ? previous : new ArrayBuffer(8)
            const view = new Uint8Array(buffer)
            if (item === "detached") structuredClone(buffer, { transfer: [buffer] })
            buffers.push(item === "plain" ? undefined : buffer)
            if (item === "moving" || item === "listedTwice") previous = buffer
            switch (item) {
              case "plain":
                return { id, payload: new Uint8Array(8) }
              case "listedTwice":
                return { id, payload: new Moving({ view }, [buffer, buffer]) }
              case "unclonable":
                return { id, payload: new Moving({ view, f: () => id }, [buffer]) }
              default:
                return { id, payload: new Moving({ view }, [buffer]) }
            }
          })
          const posted: Array<Message> = []
          const refused = new Map<number, string>()
          postBatch<Message>(
            batch,
            { of: (m) => m.payload, with: (m, payload) => ({ ...m, payload }) },
            (messages, transfer) => {
              port1.postMessage(messages, transfer)
              posted.push(...messages)
            },
            (message, why) => {
              assert.isFalse(refused.has(message.id), `refused twice: ${message.id}`)
              refused.set(message.id, why)
            }
          )
          const postedIds = posted.map((m) => m.id)
          assert.strictEqual(new Set(postedIds).size, postedIds.length, "posted once")
          for (let id = 0; id < items.length; id++) {
            assert.notStrictEqual(postedIds.includes(id), refused.has(id), `message ${id}: posted or refused`)
          }
          for (const message of posted) assert.notInstanceOf(message.payload, Moving)
          const unclonable = items.includes("unclonable")
          for (let id = 0; id < items.length; id++) {
            const item = items[id]!
            const buffer = buffers[id]
            if (item === "detached") {
              assert.match(refused.get(id)!, /detached/)
              continue
            }
            if (item === "unclonable") {
              assert.match(refused.get(id)!, /cannot be cloned/)
              continue
            }
            // A message refused only when a failed batch fell back to one post each and a message before it
            // had moved the buffer it shares.
            if (refused.has(id)) {
              assert.isTrue(unclonable && item === "sharing", `message ${id} (${item}): ${refused.get(id)}`)
              assert.match(refused.get(id)!, /detached/)
              continue
            }
            if (buffer !== undefined) {
              assert.isTrue((buffer as { readonly detached?: boolean }).detached, `message ${id} (${item}) moved`)
            }
          }
          // A plain buffer is copied: no message ever detaches it.
          for (const message of posted) {
            if (items[message.id] === "plain") assert.strictEqual((message.payload as Uint8Array).byteLength, 8)
          }
          // A failed post moves nothing: the buffer of a message that cannot be cloned stays.
          for (let id = 0; id < items.length; id++) {
            if (items[id] === "unclonable") {
              assert.notStrictEqual((buffers[id] as { readonly detached?: boolean }).detached, true)
            }
          }
        } finally {
          port1.close()
          port2.close()
        }
      })
  )
})
