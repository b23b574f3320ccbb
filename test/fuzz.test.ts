/**
 * The fuzzer (fuzz/, docs/fuzzing.md): its plans are a function of their
 * seed; each of its checks catches the broken outcome it is there for; a
 * failing plan shrinks to the steps that break it; and a CI-sized slice of
 * a fuzz run (fixed seeds, in-process in virtual time, threads and
 * subprocesses in real time, and a short leak check) finds nothing.
 */
import * as fs from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Testing } from "effect-worker-pool/testing"
import { catalogue, targets } from "../fuzz/catalogue.ts"
import { checks, deadlineOf, type Finding, judge } from "../fuzz/checks.ts"
import { defaults, type FuzzOptions, parseFlags } from "../fuzz/flags.ts"
import { describeFailure, fuzz, summaryOf } from "../fuzz/fuzz.ts"
import { catchUncaught } from "../fuzz/harness.ts"
import { runLeakCheck } from "../fuzz/leak.ts"
import { entriesOf, makePlan, type Plan, type Request } from "../fuzz/plan.ts"
import type { RunRecord } from "../fuzz/record.ts"
import { shrink } from "../fuzz/shrink.ts"

describe("fuzz plans", () => {
  it("are a function of their seed, target, length and catalogue", () => {
    for (const target of targets) {
      const options = { seed: 42, target, ops: 150 }
      assert.deepStrictEqual(makePlan(options), makePlan(options))
      assert.notDeepEqual(makePlan(options), makePlan({ ...options, seed: 43 }))
      assert.strictEqual(makePlan(options).steps.length, 150)
    }
  })

  it("play only the behaviours of their target, or those --only names (with plain answers around them)", () => {
    for (const target of targets) {
      const allowed = new Set(catalogue.filter((e) => e.targets.includes(target)).map((e) => e.name))
      for (let seed = 0; seed < 20; seed++) {
        for (const name of entriesOf(makePlan({ seed, target, ops: 300 })).keys()) {
          assert.isTrue(allowed.has(name), `${target} played ${name}`)
        }
      }
    }
    const only = new Set(["sync-throw", "interrupt-served"])
    for (let seed = 0; seed < 20; seed++) {
      for (const name of entriesOf(makePlan({ seed, target: "caller", ops: 100, only })).keys()) {
        assert.include(["sync-throw", "interrupt-served", "success", "slow-answer"], name)
      }
    }
  })

  it("over a full run's seeds play every behaviour of the catalogue", () => {
    const played = new Set<string>()
    for (const target of targets) {
      for (let seed = 0; seed < 40; seed++)
        for (const name of entriesOf(makePlan({ seed, target, ops: 200 })).keys()) played.add(name)
    }
    const never = catalogue.map((e) => e.name).filter((name) => !played.has(name) && !name.startsWith("interrupt-"))
    assert.deepStrictEqual(never, [])
    assert.isAtLeast(catalogue.length, 20)
  })
})

describe("fuzz docs", () => {
  it("list every behaviour of the catalogue and every check", () => {
    const page = fs.readFileSync(new URL("../docs/fuzzing.md", import.meta.url), "utf8")
    for (const entry of catalogue) assert.include(page, `| \`${entry.name}\``, entry.name)
    for (const check of checks) assert.include(page, `| ${check.name} `, check.name)
  })
})

describe("fuzz flags", () => {
  it("read the seed, the budget and --only's targets and behaviours", () => {
    const parsed = parseFlags(["--seed", "7", "--only", "fiber,sync-throw", "--runs", "1"])
    assert.strictEqual(parsed._tag, "Options")
    if (parsed._tag !== "Options") return
    assert.strictEqual(parsed.options.seed, 7)
    assert.deepStrictEqual(parsed.options.targets, ["fiber"])
    assert.deepStrictEqual([...(parsed.options.only ?? [])], ["sync-throw"])
    assert.strictEqual(parsed.options.runs, 1)
    assert.strictEqual(parsed.options.leakPools, 0)
    const full = parseFlags([])
    assert.isTrue(full._tag === "Options" && full.options.leakPools === defaults.leakPools)
  })

  it("refuse what they do not know, saying which flag", () => {
    for (const [args, says] of [
      [["--only", "nothing"], "nothing"],
      [["--ops", "-1"], "--ops"],
      [["--only", "thread,non-effect-value"], "no target"]
    ] as const) {
      const parsed = parseFlags(args)
      assert.strictEqual(parsed._tag, "Invalid", args.join(" "))
      if (parsed._tag === "Invalid") assert.include(parsed.message, says)
    }
  })
})

/**
 * A record of a small run that kept every promise, made by hand: one worker
 * answers #1, fails #2 with a domain error and answers #3 after 50 ms; #4
 * waits behind #3 and times out in the queue after 10 ms; the pool closes
 * at 100 ms and has closed at 150 ms.
 */
const cleanRecord = (): RunRecord => {
  const request = (id: number, act: Request["act"], extra?: Partial<Request>): Request => ({
    _tag: "Request",
    id,
    act,
    tags: [],
    ...extra
  })
  const steps: Plan["steps"] = [
    request(1, { _tag: "Succeed" }),
    request(2, { _tag: "Domain" }),
    request(3, { _tag: "Slow", millis: 50, ending: "answer" }),
    request(4, { _tag: "Succeed" }, { queueTimeoutMillis: 10 }),
    { _tag: "Advance", millis: 100 }
  ]
  const plan: Plan = {
    seed: 1,
    target: "caller",
    pool: {
      workers: 1,
      maxInFlight: 1,
      timeoutMillis: undefined,
      queueTimeoutMillis: 1_000,
      queueCapacity: 1024,
      queueStrategy: "suspend",
      drainMillis: 100,
      policy: "RoundRobin",
      restartMillis: 10,
      ejection: true,
      maxRetries: 1,
      spares: 0,
      maxLineBytes: undefined,
      cancelGraceMillis: 200,
      learnThrows: false
    },
    steps
  }
  const ended = (seq: number, endedAt: number, outcome: RunRecord["requests"][number]["outcome"]) => ({
    request: steps[seq] as Request,
    seq,
    dispatchedAt: 0,
    endedAt,
    outcome,
    interruptedAt: undefined,
    interruptStage: undefined
  })
  return {
    plan,
    requests: [
      ended(0, 0, { _tag: "Success", value: 1 }),
      ended(1, 0, {
        _tag: "Failure",
        error: "DomainError",
        workerId: undefined,
        reason: undefined,
        message: "request 2 is bad"
      }),
      ended(2, 50, { _tag: "Success", value: 3 }),
      ended(3, 10, {
        _tag: "Failure",
        error: "QueueTimeout",
        workerId: undefined,
        reason: undefined,
        message: "no worker took the request within its queue timeout of 10 ms"
      })
    ],
    workers: [{ id: 0, standalone: false, health: Testing.health({ state: "Stopped", completed: 3, errored: 1 }) }],
    samples: [
      { seq: 0, at: 0, queued: 0 },
      { seq: 1, at: 0, queued: 0 },
      { seq: 2, at: 0, queued: 0 },
      { seq: 3, at: 0, queued: 1 },
      { seq: 4, at: 100, queued: 0 }
    ],
    removals: [],
    closeAt: 100,
    closeSeq: 5,
    closedAt: 150,
    stuck: [],
    leftovers: [],
    logs: [],
    incidents: [],
    elapsedMillis: 1
  }
}

const invariantsOf = (findings: ReadonlyArray<Finding>) => [...new Set(findings.map((f) => f.invariant))]

describe("fuzz checks", () => {
  it("find nothing in a run that kept every promise", () => {
    assert.deepStrictEqual(judge(cleanRecord()), [])
  })

  const domainError = (message: string) =>
    ({ _tag: "Failure", error: "DomainError", workerId: undefined, reason: undefined, message }) as const

  /** Each invariant, with a record broken by hand in the way it is there to catch. */
  const breakages: ReadonlyArray<{
    readonly invariant: string
    readonly what: string
    readonly breakIt: (record: RunRecord) => void
  }> = [
    {
      invariant: "the run ends",
      what: "a run its watchdog gave up on",
      breakIt: (r) => {
        r.incidents.push("the run did not finish within 60000 ms of real time")
      }
    },
    {
      invariant: "one outcome",
      what: "a request that never ended",
      breakIt: (r) => {
        r.requests[0]!.outcome = undefined
        r.requests[0]!.endedAt = undefined
      }
    },
    {
      invariant: "typed outcome",
      what: "a defect",
      breakIt: (r) => {
        r.requests[1]!.outcome = { _tag: "Defect", message: "Error: thrown" }
      }
    },
    {
      invariant: "typed outcome",
      what: "an interruption nobody asked for",
      breakIt: (r) => {
        r.requests[0]!.outcome = { _tag: "Interrupted" }
      }
    },
    {
      invariant: "outcome follows the behaviour",
      what: "a domain error from a worker that answers, an answer from one that fails",
      breakIt: (r) => {
        // Swapped, so that the counts still add up.
        r.requests[0]!.outcome = domainError("not bad")
        r.requests[1]!.outcome = { _tag: "Success", value: 2 }
      }
    },
    {
      invariant: "outcome follows the behaviour",
      what: "another request's answer",
      breakIt: (r) => {
        r.requests[2]!.outcome = { _tag: "Success", value: 2 }
      }
    },
    {
      invariant: "ends in time",
      what: "a request that ended past the drain",
      breakIt: (r) => {
        r.requests[2]!.endedAt = 250
      }
    },
    {
      invariant: "waiting requests are queued",
      what: "an empty queue while a request waited in it",
      breakIt: (r) => {
        r.samples[3] = { seq: 3, at: 0, queued: 0 }
      }
    },
    {
      invariant: "counters add up",
      what: "a worker that counted more requests than reached it",
      breakIt: (r) => {
        r.workers[0]!.health = Testing.health({ state: "Stopped", completed: 5, errored: 1 })
      }
    },
    {
      invariant: "no slot left taken",
      what: "a slot still taken",
      breakIt: (r) => {
        r.workers[0]!.health = { ...r.workers[0]!.health!, inFlight: 1 }
      }
    },
    {
      invariant: "close returns in time",
      what: "a close that never returned",
      breakIt: (r) => {
        r.closedAt = undefined
      }
    },
    {
      invariant: "close returns in time",
      what: "a close that returned past the drain",
      breakIt: (r) => {
        r.closedAt = 250
      }
    },
    {
      invariant: "nothing left running",
      what: "a handler still running",
      breakIt: (r) => {
        r.leftovers.push("1 handler effects are still running")
      }
    },
    {
      invariant: "nothing logged amiss",
      what: "a stack overflow logged",
      breakIt: (r) => {
        r.logs.push({ level: "Error", message: "RangeError: Maximum call stack size exceeded" })
      }
    }
  ]

  for (const { invariant, what, breakIt } of breakages) {
    it(`"${invariant}" catches ${what}`, () => {
      const record = cleanRecord()
      breakIt(record)
      assert.deepStrictEqual(invariantsOf(judge(record)), [invariant])
    })
  }

  it("each has a name, a description, and a test above", () => {
    const tested = new Set(breakages.map((b) => b.invariant))
    for (const check of checks) {
      assert.isTrue(check.description.length > 20, check.name)
      assert.isTrue(tested.has(check.name), `no test breaks "${check.name}"`)
    }
  })

  it("bound a request by its queue timeout, its run, and the close", () => {
    const record = cleanRecord()
    const [, , slow, waiting] = record.requests
    // The close at 100 ms with a drain of 100 ms cuts before 0 + 1000 + 50.
    assert.strictEqual(deadlineOf(slow!, record), 200)
    assert.strictEqual(deadlineOf(waiting!, { ...record, closeAt: undefined }), 10)
  })
})

describe("fuzz shrinking", () => {
  it.effect("keeps only the steps that still break the invariant", () =>
    Effect.gen(function* () {
      const plan = makePlan({ seed: 3, target: "caller", ops: 120 })
      const culprit = plan.steps.filter((s): s is Request => s._tag === "Request")[7]!
      const judgeFake = (candidate: Plan) =>
        Effect.succeed(
          candidate.steps.includes(culprit) ? [{ invariant: "typed outcome", message: `#${culprit.id} died` }] : []
        )
      const shrunk = yield* shrink(plan, (f) => f.invariant === "typed outcome", judgeFake, {
        attempts: 1_000,
        millis: 10_000
      })
      assert.deepStrictEqual(shrunk?.plan.steps, [culprit])
    })
  )
})

const slice = (overrides: Partial<FuzzOptions>): FuzzOptions => ({
  seed: 20_260_101,
  ops: 0,
  oopOps: 0,
  opsPerRun: 200,
  oopOpsPerRun: 40,
  targets: [...targets],
  only: undefined,
  except: undefined,
  runs: undefined,
  budgetMillis: 10 * 60_000,
  leakPools: 0,
  leakLoad: 100,
  shrink: false,
  plan: undefined,
  ...overrides
})

/** Runs a slice and fails with what it found, every failing run described. */
const expectNoFinding = (options: FuzzOptions) =>
  Effect.gen(function* () {
    catchUncaught()
    const lines: Array<string> = []
    const report = yield* fuzz(options, (line) => lines.push(line))
    const failures = report.runs.filter((r) => r.findings.length > 0).flatMap((r) => describeFailure(r, options))
    assert.deepStrictEqual(failures, [], [...failures, ...summaryOf(report)].join("\n"))
    assert.isTrue(report.passed, summaryOf(report).join("\n"))
    return report
  })

describe("fuzz slice", () => {
  it.live(
    "in process, virtual time: 4,000 operations on the caller-fiber path and the fiber path keep every promise",
    () =>
      Effect.map(expectNoFinding(slice({ ops: 4_000, targets: ["caller", "fiber"] })), (report) => {
        assert.isAtLeast(report.inProcessOps, 4_000)
      }),
    120_000
  )

  it.live(
    "threads and subprocesses, real time: 160 operations of every kind, and requests refused on their way out of the queue, keep every promise and leave no process or thread",
    () =>
      Effect.gen(function* () {
        const wide = yield* expectNoFinding(slice({ oopOps: 160, targets: ["thread", "subprocess"] }))
        assert.isAtLeast(wide.outOfProcessOps, 160)
        // One worker, a request running and one queued behind it that the wire refuses, good ones behind.
        for (const [target, refusal] of [
          ["subprocess", "oversized-request"],
          ["thread", "encode-failure"]
        ] as const) {
          const narrow = slice({ seed: 2, oopOps: 80, oopOpsPerRun: 80, targets: [target], only: new Set([refusal]) })
          yield* expectNoFinding(narrow)
        }
      }),
    180_000
  )

  it.live(
    "pools made, loaded and closed one after another are collected once closed",
    () =>
      Effect.gen(function* () {
        const report = yield* runLeakCheck({ pools: 40, load: 100, seed: 1, timeoutMillis: 120_000, heapMB: 512 })
        assert.isTrue(report.completed, report.ended)
        const last = report.heap[report.heap.length - 1]
        assert.strictEqual(last?.reachable, 0, `closed pools still reachable: ${JSON.stringify(report.heap)}`)
      }),
    150_000
  )
})
