/**
 * The request record beyond its main moves (test/request.test.ts): what a
 * fresh record and a fresh place in the queue hold, what its plan answers,
 * what each move writes and clears, the number that names it, the tag its
 * caller's outcome is counted under, the exact message of each refusal; and
 * every move against a plain model of the state machine over seeded random
 * runs.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration } from "effect"
import {
  callerTag,
  IllegalTransition,
  leave,
  numberOf,
  type Outcome,
  type Plan,
  Request,
  type RequestState,
  refuse,
  reserve,
  retry,
  settle,
  start,
  unreserve,
  Waiting
} from "../src/internal/request.ts"

const worker = { id: 0 }
const other = { id: 1 }
const incarnation = {}

const plan = (idempotent = false): Plan => ({ timeout: undefined, queueTimeoutMillis: Infinity, idempotent })

const make = (idempotent = false) => new Request("payload", plan(idempotent), undefined, undefined)

/** A request that ran on `worker` and ended with `outcome`. */
const ended = (outcome: Outcome, idempotent = true) => {
  const request = make(idempotent)
  reserve(request, worker, incarnation)
  start(request, 0)
  settle(request, outcome)
  return request
}

/** The `IllegalTransition` that `move` throws. */
const thrown = (move: () => void): IllegalTransition => {
  try {
    move()
  } catch (error) {
    assert.instanceOf(error, IllegalTransition)
    return error as IllegalTransition
  }
  return assert.fail("the move was allowed")
}

/** Every field a move may write. */
const fields = (r: Request) => ({
  state: r.state,
  done: r.done,
  attempts: r.attempts,
  startedAt: r.startedAt,
  worker: r.worker,
  incarnation: r.incarnation,
  outcome: r.outcome,
  tag: r.tag,
  left: r.left,
  timed: r.timed,
  cancel: r.cancel,
  onCaller: r.onCaller
})

describe("a fresh request record", () => {
  it("waits, unadmitted, on no worker and in no line, with nothing to deliver", () => {
    const p = plan()
    const request = new Request("payload", p, undefined, undefined)
    assert.deepStrictEqual(
      {
        payload: request.payload,
        plan: request.plan,
        span: request.span,
        caller: request.caller,
        state: request.state,
        done: request.done,
        admitted: request.admitted,
        probe: request.probe,
        left: request.left,
        onCaller: request.onCaller,
        timed: request.timed,
        attempts: request.attempts,
        since: request.since,
        startedAt: request.startedAt,
        wait: request.wait,
        worker: request.worker,
        incarnation: request.incarnation,
        prev: request.prev,
        next: request.next,
        outcome: request.outcome,
        tag: request.tag,
        path: request.path,
        cancel: request.cancel,
        pending: request.pending,
        resume: request.resume
      },
      {
        payload: "payload",
        plan: p,
        span: undefined,
        caller: undefined,
        state: "Queued",
        done: false,
        admitted: false,
        probe: false,
        left: false,
        onCaller: false,
        timed: false,
        attempts: 0,
        since: 0,
        startedAt: 0,
        wait: undefined,
        worker: undefined,
        incarnation: undefined,
        prev: undefined,
        next: undefined,
        outcome: undefined,
        tag: undefined,
        path: undefined,
        cancel: undefined,
        pending: undefined,
        resume: undefined
      }
    )
    assert.strictEqual(request.plan, p)
  })

  it("answers its timeouts and whether it may run twice from its plan", () => {
    const timeout = Duration.seconds(3)
    const request = new Request(7, { timeout, queueTimeoutMillis: 250, idempotent: true }, undefined, undefined)
    assert.deepStrictEqual([request.timeout, request.queueTimeoutMillis, request.idempotent], [timeout, 250, true])
    assert.deepStrictEqual([make().timeout, make().queueTimeoutMillis, make().idempotent], [undefined, Infinity, false])
  })

  it("gets a place in the queue that is in no line, no heap, and linked to nothing", () => {
    const request = make()
    const node = new Waiting(request, 40)
    assert.deepStrictEqual(
      [node.request, node.deadline, node.line, node.prev, node.next, node.heapIndex],
      [request, 40, 0, undefined, undefined, -1]
    )
  })
})

describe("the number that names a request", () => {
  it("is given the first time it is named, kept, and larger than any given before", () => {
    const a = make()
    const b = make()
    const nb = numberOf(b)
    const na = numberOf(a)
    assert.isAbove(nb, 0)
    assert.strictEqual(na, nb + 1)
    assert.deepStrictEqual([numberOf(a), numberOf(b)], [na, nb])
  })

  it("names the request in each refusal, with the move and the state it was in", () => {
    const request = make()
    const error = thrown(() => start(request, 0))
    assert.strictEqual(error.name, "IllegalTransition")
    assert.instanceOf(error, Error)
    assert.strictEqual(
      error.message,
      `request ${numberOf(request)}: cannot start: only a request with a slot starts (it is Queued)`
    )
    assert.strictEqual(String(error), `IllegalTransition: ${error.message}`)
  })
})

describe("each move", () => {
  it("reserve takes a slot with no outcome of a last run", () => {
    const request = make()
    request.outcome = "crashed"
    reserve(request, worker, incarnation)
    assert.deepStrictEqual(
      [request.state, request.worker, request.incarnation, request.outcome],
      ["Reserved", worker, incarnation, undefined]
    )
  })

  it("unreserve forgets the worker and the incarnation of the slot it gives back", () => {
    const request = make()
    reserve(request, worker, incarnation)
    unreserve(request)
    assert.deepStrictEqual([request.state, request.worker, request.incarnation], ["Queued", undefined, undefined])
    assert.strictEqual(
      thrown(() => unreserve(request)).message,
      `request ${numberOf(request)}: cannot give back its slot: it holds no unused slot (it is Queued)`
    )
  })

  it("start counts each attempt and keeps when the last one started", () => {
    const request = ended("crashed")
    retry(request, other, incarnation)
    start(request, 17)
    assert.deepStrictEqual([request.state, request.attempts, request.startedAt], ["Running", 2, 17])
  })

  it("settle keeps the outcome and nothing else", () => {
    const request = make()
    reserve(request, worker, incarnation)
    start(request, 3)
    settle(request, "timedOut")
    assert.deepStrictEqual(
      [request.state, request.outcome, request.tag, request.worker, request.done],
      ["Settled", "timedOut", undefined, worker, true]
    )
  })

  it("refuse keeps the tag, from the queue and from a slot", () => {
    const queued = make()
    refuse(queued, "QueueTimeout")
    assert.deepStrictEqual([queued.state, queued.tag, queued.outcome], ["Settled", "QueueTimeout", undefined])
    const reserved = make()
    reserve(reserved, worker, incarnation)
    refuse(reserved, "PoolShutdown")
    assert.deepStrictEqual([reserved.state, reserved.tag, reserved.done], ["Settled", "PoolShutdown", true])
  })

  it("leave from the queue or a slot is over, tagged Interrupted; from a run it only marks", () => {
    const reserved = make()
    reserve(reserved, worker, incarnation)
    assert.strictEqual(leave(reserved), "Reserved")
    assert.deepStrictEqual(
      [reserved.state, reserved.tag, reserved.done, reserved.left],
      ["Left", "Interrupted", true, false]
    )
    const running = make()
    reserve(running, worker, incarnation)
    start(running, 0)
    assert.strictEqual(leave(running), "Running")
    assert.deepStrictEqual(
      [running.state, running.tag, running.done, running.left],
      ["Running", undefined, false, true]
    )
  })
})

describe("when a request is over", () => {
  it("is over only once settled or left", () => {
    const request = make()
    assert.isFalse(request.done)
    reserve(request, worker, incarnation)
    assert.isFalse(request.done)
    start(request, 0)
    assert.isFalse(request.done)
    leave(request)
    // Its caller left while it ran: it is not over until its worker lets go of it.
    assert.isFalse(request.done)
    settle(request, "interrupted")
    assert.isTrue(request.done)
    const gone = make()
    leave(gone)
    assert.isTrue(gone.done)
  })

  it("a caller that leaves a request that is over changes nothing", () => {
    const settled = ended("succeeded")
    const before = fields(settled)
    assert.strictEqual(leave(settled), "Settled")
    assert.deepStrictEqual(fields(settled), before)
    const gone = make()
    leave(gone)
    const left = fields(gone)
    assert.strictEqual(leave(gone), "Left")
    assert.deepStrictEqual(fields(gone), left)
  })
})

describe("a retry", () => {
  it("takes a request torn down with its incarnation, as one that crashed", () => {
    const torn = ended("torn")
    retry(torn, other, incarnation)
    assert.deepStrictEqual([torn.state, torn.worker, torn.outcome], ["Reserved", other, undefined])
  })

  it("starts the request afresh: not left, not timed, not on a caller's fiber, nothing to cancel", () => {
    const request = ended("crashed")
    request.left = true
    request.timed = true
    request.onCaller = true
    request.cancel = () => {}
    const fresh = {}
    retry(request, other, fresh)
    assert.deepStrictEqual(
      [request.left, request.timed, request.onCaller, request.cancel, request.worker, request.incarnation],
      [false, false, false, undefined, other, fresh]
    )
  })

  it("is refused for a request that is not settled, whatever outcome it last had", () => {
    const running = make(true)
    reserve(running, worker, incarnation)
    start(running, 0)
    running.outcome = "crashed"
    assert.strictEqual(
      thrown(() => retry(running, other, incarnation)).message,
      `request ${numberOf(running)}: cannot retry: only a request whose worker crashed under it is tried again (it is Running)`
    )
    assert.deepStrictEqual([running.state, running.worker], ["Running", worker])
  })

  it("is refused for a request refused before it ran, or that did not crash", () => {
    const refused = make(true)
    refuse(refused, "QueueTimeout")
    assert.match(thrown(() => retry(refused, other, incarnation)).message, /: cannot retry: only .* \(it is Settled\)$/)
    for (const outcome of ["succeeded", "domainError", "rejected", "timedOut", "interrupted"] as const) {
      const request = ended(outcome)
      assert.match(thrown(() => retry(request, other, incarnation)).message, /cannot retry: only a request whose/)
      assert.deepStrictEqual([request.state, request.outcome, request.worker], ["Settled", outcome, worker])
    }
  })

  it("of a request that is not idempotent is refused as such, and changes nothing", () => {
    for (const outcome of ["crashed", "torn"] as const) {
      const request = ended(outcome, false)
      const before = fields(request)
      assert.strictEqual(
        thrown(() => retry(request, other, incarnation)).message,
        `request ${numberOf(request)}: cannot retry: it is not idempotent (it is Settled)`
      )
      assert.deepStrictEqual(fields(request), before)
    }
  })
})

describe("a refusal", () => {
  it("of a request that is over says so", () => {
    const settled = ended("succeeded")
    const error = thrown(() => refuse(settled, "PoolShutdown"))
    assert.strictEqual(error.message, `request ${numberOf(settled)}: cannot refuse: it is over (it is Settled)`)
    const gone = make()
    leave(gone)
    assert.strictEqual(
      thrown(() => refuse(gone, "PoolShutdown")).message,
      `request ${numberOf(gone)}: cannot refuse: it is over (it is Left)`
    )
    assert.deepStrictEqual([settled.tag, gone.tag], [undefined, "Interrupted"])
  })

  it("to start a request that is over, or runs, says so", () => {
    for (const request of [ended("succeeded"), make()]) {
      if (request.state === "Queued") leave(request)
      assert.match(thrown(() => start(request, 0)).message, /: cannot start: only a request with a slot starts \(it is/)
    }
    const running = make()
    reserve(running, worker, incarnation)
    start(running, 0)
    assert.match(thrown(() => start(running, 1)).message, /cannot start: .* \(it is Running\)$/)
    assert.match(thrown(() => unreserve(running)).message, /cannot give back its slot: .* \(it is Running\)$/)
    assert.deepStrictEqual([running.attempts, running.startedAt, running.worker], [1, 0, worker])
  })

  it("leaves the record as it was", () => {
    const request = ended("succeeded")
    const before = fields(request)
    thrown(() => settle(request, "crashed"))
    thrown(() => reserve(request, other, incarnation))
    thrown(() => unreserve(request))
    thrown(() => start(request, 9))
    thrown(() => refuse(request, "PoolShutdown"))
    assert.deepStrictEqual(fields(request), before)
  })
})

describe("the tag of what a request's caller got", () => {
  it("follows its outcome, or the tag of the error it got", () => {
    const tagged = (outcome: Outcome | undefined, tag?: string) => {
      const request = make()
      request.outcome = outcome
      request.tag = tag
      return callerTag(request)
    }
    assert.deepStrictEqual(
      [
        tagged("succeeded", "Ignored"),
        tagged("domainError"),
        tagged("domainError", "NotFound"),
        tagged("rejected", "Ignored"),
        tagged("crashed"),
        tagged("crashed", "Defect"),
        tagged("torn"),
        tagged("torn", "WorkerStopped"),
        tagged("timedOut", "Ignored"),
        tagged("interrupted", "Ignored"),
        tagged(undefined),
        tagged(undefined, "QueueTimeout")
      ],
      [
        "Success",
        "DomainError",
        "NotFound",
        "InvalidRequest",
        "WorkerCrash",
        "Defect",
        "WorkerCrash",
        "WorkerStopped",
        "RequestTimeout",
        "Interrupted",
        "Defect",
        "QueueTimeout"
      ]
    )
  })

  it("is the refusal's for a request refused, and Interrupted for one whose caller left", () => {
    const refused = make()
    refuse(refused, "PoolBusy")
    const gone = make()
    leave(gone)
    assert.deepStrictEqual([callerTag(refused), callerTag(gone)], ["PoolBusy", "Interrupted"])
  })
})

/** A seeded generator of numbers in [0, 1). */
const seeded = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

type Move = "reserve" | "unreserve" | "start" | "settle" | "retry" | "refuse" | "leave"
const moves: ReadonlyArray<Move> = ["reserve", "unreserve", "start", "settle", "retry", "refuse", "leave"]
const outcomes: ReadonlyArray<Outcome> = [
  "succeeded",
  "domainError",
  "rejected",
  "crashed",
  "timedOut",
  "torn",
  "interrupted"
]

/** The record as a plain model sees it. */
interface Model {
  state: RequestState
  attempts: number
  startedAt: number
  worker: { readonly id: number } | undefined
  incarnation: object | undefined
  outcome: Outcome | undefined
  tag: string | undefined
  left: boolean
}

describe("the request record against a model", () => {
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    it(`allows and refuses each move as the state diagram does (seed ${seed})`, () => {
      const random = seeded(seed)
      const pick = <A>(all: ReadonlyArray<A>): A => all[Math.floor(random() * all.length)]!
      const workers = [worker, other, { id: 2 }]
      let allowed = 0
      let refused = 0
      for (let run = 0; run < 40; run++) {
        const idempotent = random() < 0.5
        const request = make(idempotent)
        const model: Model = {
          state: "Queued",
          attempts: 0,
          startedAt: 0,
          worker: undefined,
          incarnation: undefined,
          outcome: undefined,
          tag: undefined,
          left: false
        }
        for (let step = 0; step < 12; step++) {
          const move = pick(moves)
          const w = pick(workers)
          const inc = { run, step }
          const now = Math.floor(random() * 1000)
          const outcome = pick(outcomes)
          const tag = pick(["PoolBusy", "QueueTimeout", "PoolShutdown"])
          const before = fields(request)
          const s = model.state
          // What the diagram allows from `s`, and what the move leaves behind.
          let legal: boolean
          let result: RequestState | undefined
          switch (move) {
            case "reserve":
              legal = s === "Queued"
              if (legal) Object.assign(model, { state: "Reserved", worker: w, incarnation: inc, outcome: undefined })
              break
            case "unreserve":
              legal = s === "Reserved"
              if (legal) Object.assign(model, { state: "Queued", worker: undefined, incarnation: undefined })
              break
            case "start":
              legal = s === "Reserved"
              if (legal) Object.assign(model, { state: "Running", startedAt: now, attempts: model.attempts + 1 })
              break
            case "settle":
              legal = s === "Running"
              if (legal) Object.assign(model, { state: "Settled", outcome })
              break
            case "retry":
              legal = s === "Settled" && (model.outcome === "crashed" || model.outcome === "torn") && idempotent
              if (legal) {
                Object.assign(model, {
                  state: "Reserved",
                  outcome: undefined,
                  worker: w,
                  incarnation: inc,
                  left: false
                })
              }
              break
            case "refuse":
              legal = s === "Queued" || s === "Reserved"
              if (legal) Object.assign(model, { state: "Settled", tag })
              break
            case "leave":
              legal = true
              result = s
              if (s === "Queued" || s === "Reserved") Object.assign(model, { state: "Left", tag: "Interrupted" })
              else if (s === "Running") model.left = true
              break
          }
          /** The move; what it returns (only `leave` returns something: the state it left from). */
          const apply = (): RequestState | undefined => {
            if (move === "leave") return leave(request)
            if (move === "reserve") reserve(request, w, inc)
            else if (move === "unreserve") unreserve(request)
            else if (move === "start") start(request, now)
            else if (move === "settle") settle(request, outcome)
            else if (move === "retry") retry(request, w, inc)
            else refuse(request, tag)
            return undefined
          }
          if (legal) {
            allowed++
            assert.strictEqual(apply(), result)
          } else {
            refused++
            const error = thrown(apply)
            assert.isTrue(error.message.startsWith(`request ${numberOf(request)}: cannot `))
            assert.isTrue(error.message.endsWith(` (it is ${s})`))
            assert.deepStrictEqual(fields(request), before)
          }
          assert.deepStrictEqual(fields(request), {
            ...model,
            done: model.state === "Settled" || model.state === "Left",
            // Set by the worker, not by a move: a retry clears them, nothing else touches them.
            timed: false,
            cancel: undefined,
            onCaller: false
          })
        }
      }
      // The runs go through both kinds of moves, often.
      assert.isAbove(allowed, 100)
      assert.isAbove(refused, 100)
    })
  }
})
