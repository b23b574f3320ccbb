/**
 * A request's one record: every legal move, and every illegal one refused
 * as a defect of the engine with a message that names the request, the
 * move and the state it was in.
 */
import { assert, describe, it } from "@effect/vitest"
import {
  IllegalTransition,
  leave,
  Request,
  refuse,
  reserve,
  retry,
  settle,
  start,
  unreserve
} from "../src/internal/request.ts"

const worker = { id: 0 }
const other = { id: 1 }
const incarnation = {}

const make = (idempotent = false) =>
  new Request("payload", { timeout: undefined, queueTimeoutMillis: Infinity, idempotent }, undefined, undefined)

/** The message of the `IllegalTransition` that `move` throws. */
const refusal = (move: () => void): string => {
  try {
    move()
  } catch (error) {
    assert.instanceOf(error, IllegalTransition)
    return (error as IllegalTransition).message
  }
  return assert.fail("the move was allowed")
}

describe("the request record", () => {
  it("goes Queued → Reserved → Running → Settled, and counts its attempts", () => {
    const request = make()
    assert.strictEqual(request.state, "Queued")
    reserve(request, worker, incarnation)
    assert.deepStrictEqual([request.state, request.worker, request.incarnation], ["Reserved", worker, incarnation])
    start(request, 42)
    assert.deepStrictEqual([request.state, request.startedAt, request.attempts], ["Running", 42, 1])
    settle(request, "succeeded")
    assert.deepStrictEqual([request.state, request.outcome, request.done], ["Settled", "succeeded", true])
  })

  it("gives an unused slot back and waits again", () => {
    const request = make()
    reserve(request, worker, incarnation)
    unreserve(request)
    assert.strictEqual(request.state, "Queued")
    reserve(request, other, incarnation)
    assert.strictEqual(request.worker, other)
  })

  it("is refused only before it runs", () => {
    const queued = make()
    refuse(queued, "QueueTimeout")
    assert.deepStrictEqual([queued.state, queued.tag, queued.done], ["Settled", "QueueTimeout", true])
    const reserved = make()
    reserve(reserved, worker, incarnation)
    refuse(reserved, "PoolShutdown")
    assert.strictEqual(reserved.state, "Settled")
    const running = make()
    reserve(running, worker, incarnation)
    start(running, 0)
    assert.match(
      refusal(() => refuse(running, "PoolShutdown")),
      /^request \d+: cannot refuse: it runs \(it is Running\)$/
    )
  })

  it("leaves from the queue or from a slot; a running request is marked and stays running", () => {
    const queued = make()
    assert.strictEqual(leave(queued), "Queued")
    assert.deepStrictEqual([queued.state, queued.tag, queued.done], ["Left", "Interrupted", true])
    const reserved = make()
    reserve(reserved, worker, incarnation)
    assert.strictEqual(leave(reserved), "Reserved")
    assert.strictEqual(reserved.state, "Left")
    const running = make()
    reserve(running, worker, incarnation)
    start(running, 0)
    assert.strictEqual(leave(running), "Running")
    assert.deepStrictEqual([running.state, running.left], ["Running", true])
    // Its worker lets go of it: it settles, as interrupted.
    settle(running, "interrupted")
    assert.strictEqual(running.state, "Settled")
    // A caller that leaves as its outcome is on its way changes nothing.
    assert.strictEqual(leave(running), "Settled")
    assert.strictEqual(running.state, "Settled")
  })

  it("is tried again after a crash only when idempotent, on another worker", () => {
    const request = make(true)
    reserve(request, worker, incarnation)
    start(request, 0)
    settle(request, "crashed")
    retry(request, other, incarnation)
    assert.deepStrictEqual([request.state, request.worker, request.outcome], ["Reserved", other, undefined])
    start(request, 5)
    assert.strictEqual(request.attempts, 2)

    const plain = make()
    reserve(plain, worker, incarnation)
    start(plain, 0)
    settle(plain, "crashed")
    assert.match(
      refusal(() => retry(plain, other, incarnation)),
      /cannot retry: it is not idempotent/
    )

    const answered = make(true)
    reserve(answered, worker, incarnation)
    start(answered, 0)
    settle(answered, "succeeded")
    assert.match(
      refusal(() => retry(answered, other, incarnation)),
      /cannot retry: only a request whose worker crashed under it is tried again \(it is Settled\)/
    )
  })

  it("refuses a second serve, a second settle, a settle after leaving, and a start without a slot", () => {
    const served = make()
    reserve(served, worker, incarnation)
    assert.match(
      refusal(() => reserve(served, other, incarnation)),
      /^request \d+: cannot reserve a slot: only a queued request is served \(it is Reserved\)$/
    )

    const settled = make()
    reserve(settled, worker, incarnation)
    start(settled, 0)
    settle(settled, "succeeded")
    assert.match(
      refusal(() => settle(settled, "crashed")),
      /^request \d+: cannot settle: it was settled already \(it is Settled\)$/
    )

    const left = make()
    leave(left)
    assert.match(
      refusal(() => settle(left, "succeeded")),
      /^request \d+: cannot settle: its caller left before it ran \(it is Left\)$/
    )
    assert.match(
      refusal(() => reserve(left, worker, incarnation)),
      /cannot reserve a slot/
    )

    const queued = make()
    assert.match(
      refusal(() => start(queued, 0)),
      /^request \d+: cannot start: only a request with a slot starts/
    )
    assert.match(
      refusal(() => settle(queued, "succeeded")),
      /cannot settle: it never started \(it is Queued\)$/
    )
    assert.match(
      refusal(() => unreserve(queued)),
      /cannot give back its slot: it holds no unused slot/
    )
  })
})
