/**
 * The chaos run, CI-sized: both runs (the library's default options, then a
 * tight restart budget) of 1,000 requests each over real threads and
 * processes, with every fault planned 12 times in each run; every check must
 * pass. What is checked holds on any machine, however busy: each planned
 * fault is injected and either happens or meets an outcome the pool allows,
 * never a count of what a timer managed. Also the parts it is built on: the
 * seeded plan, the rule that judges a fault by its request's outcome, the
 * window count of the budget check, the rule that judges refusals, the flags.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, References } from "effect"
import { WorkerId } from "effect-worker-pool"
import { type ChaosOptions, chaos, defaults, failuresOf } from "../chaos/chaos.ts"
import { densestWithin, faultProblems, missedCount, refusalAllowed } from "../chaos/checks.ts"
import { parseFlags } from "../chaos/flags.ts"
import { faultNames, makePlan, type Step } from "../chaos/plan.ts"
import { type Refusal, type RequestFault, requestFate, type Seen, type SeenMember } from "../chaos/run.ts"

const planSettings = { seed: 7, stream: 0, requests: 500, faults: 20, hangTimeoutMillis: 100 }

const tally = (steps: ReadonlyArray<Step>) => {
  const counts = new Map<string, number>()
  for (const step of steps) {
    const key = step._tag === "Request" ? (step.fault ?? "none") : step._tag
    counts.set(key, (counts.get(key) ?? 0) + 1)
  }
  return counts
}

describe("chaos plan", () => {
  it("is a function of its seed and stream", () => {
    assert.deepStrictEqual(makePlan(planSettings), makePlan(planSettings))
    assert.notDeepEqual(makePlan(planSettings), makePlan({ ...planSettings, seed: 8 }))
    assert.notDeepEqual(makePlan(planSettings), makePlan({ ...planSettings, stream: 1 }))
  })

  it("holds every request in order, and each fault exactly `faults` times", () => {
    const steps = makePlan(planSettings)
    const requests = steps.filter((step) => step._tag === "Request")
    assert.deepStrictEqual(
      requests.map((step) => step.index),
      Array.from({ length: 500 }, (_, i) => i)
    )
    const counts = tally(steps)
    for (const fault of ["crash", "exit", "hang", "domain", "interrupt", "Kill", "Add", "Remove"]) {
      assert.strictEqual(counts.get(fault), 20, fault)
    }
    assert.strictEqual(counts.get("none"), 500 - 5 * 20)
    // Only hanging requests carry a timeout; only interrupted ones an interruption.
    for (const step of requests) {
      assert.strictEqual(step.timeoutMillis !== undefined, step.fault === "hang")
      assert.strictEqual(step.interruptAfterMillis !== undefined, step.fault === "interrupt")
    }
    // An interrupted request never ends on its own: its interruption finds it running however slow the machine.
    for (const step of requests.filter((step) => step.fault === "interrupt")) {
      assert.deepStrictEqual(step.job, { _tag: "Hang" })
    }
    // Adds and removes alternate, a remove first.
    const membership = steps.filter((step) => step._tag === "Add" || step._tag === "Remove").map((step) => step._tag)
    assert.deepStrictEqual(
      membership,
      Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? "Remove" : "Add"))
    )
  })

  it("refuses more faulty requests than requests", () => {
    assert.throws(() => makePlan({ ...planSettings, requests: 99 }), RangeError)
  })
})

describe("chaos fault rule", () => {
  const fate = (fault: RequestFault, seen: Seen) => {
    const judged = requestFate(fault, seen)
    return judged._tag === "Missed" ? judged.because : judged._tag === "Unexplained" ? `?${judged.seen}` : "ok"
  }
  const crashed: Seen = { kind: "crashed", reason: "Exited" }
  const refused: Seen = { kind: "refused" }

  it("counts a fault as happened only when its request's outcome proves it", () => {
    assert.strictEqual(fate("crash", crashed), "ok")
    assert.strictEqual(fate("exit", crashed), "ok")
    assert.strictEqual(fate("hang", { kind: "error", tag: "RequestTimeout" }), "ok")
    assert.strictEqual(fate("domain", { kind: "error", tag: "DomainError" }), "ok")
    assert.strictEqual(fate("interrupt", { kind: "interrupted" }), "ok")
  })

  it("allows a fault not to happen only when the pool refused its request or a crash of its incarnation ended it", () => {
    for (const fault of ["crash", "exit", "hang", "domain", "interrupt"] as const) {
      assert.strictEqual(fate(fault, refused), "refused: no worker could take it or come back", fault)
    }
    for (const fault of ["hang", "domain", "interrupt"] as const) {
      assert.strictEqual(fate(fault, crashed), "ended by a crash of its incarnation (Exited)", fault)
    }
  })

  it("finds every other outcome unexplained", () => {
    assert.strictEqual(fate("crash", { kind: "success" }), "?succeeded")
    assert.strictEqual(fate("exit", { kind: "error", tag: "DomainError" }), "?failed with DomainError")
    assert.strictEqual(fate("hang", { kind: "error", tag: "QueueTimeout" }), "?failed with QueueTimeout")
    assert.strictEqual(fate("domain", { kind: "interrupted" }), "?was interrupted")
    // An interrupted request never answers on its own: a success means its interruption was lost.
    assert.strictEqual(fate("interrupt", { kind: "success" }), "?succeeded")
    assert.strictEqual(fate("interrupt", { kind: "stray", what: "a defect" }), "?a defect")
  })
})

describe("chaos budget check", () => {
  it("finds the restarts of the densest window of the given width", () => {
    assert.deepStrictEqual(densestWithin([], 1000), [])
    assert.deepStrictEqual(densestWithin([0, 500, 999, 1000, 1998], 1000), [0, 500, 999])
    assert.deepStrictEqual(densestWithin([3000, 0, 1000, 2000], 1000), [0])
  })
})

describe("chaos refusal check", () => {
  const member = (id: number, state: SeenMember["state"], failedStarts = 0): SeenMember => ({
    id: WorkerId.make(id),
    state,
    failedStarts
  })
  const refusal = (seen: ReadonlyArray<SeenMember> | undefined): Refusal => ({
    request: 0,
    reason: "NoWorker",
    message: "no worker available: none of the 4 workers can take a request or is coming back",
    seen
  })

  it("allows a refusal only while every member was retired, stopped or failing to start", () => {
    const cannot = [member(0, "Retired"), member(1, "Stopped"), member(2, "Restarting", 2), member(3, "Starting", 1)]
    assert.isTrue(refusalAllowed(refusal(cannot)))
    assert.isTrue(refusalAllowed(refusal([])))
    for (const could of [member(4, "Healthy"), member(4, "Ejected"), member(4, "Restarting"), member(4, "Starting")]) {
      assert.isFalse(refusalAllowed(refusal([...cannot, could])), could.state)
    }
    // A refusal its request's fiber did not see is not judged allowed.
    assert.isFalse(refusalAllowed(refusal(undefined)))
  })

  it("allows only refusals whose reason is NoWorker", () => {
    assert.isFalse(refusalAllowed({ ...refusal([]), reason: "Reported", message: "a crash, on purpose" }))
  })
})

describe("chaos flags", () => {
  it("read integers, fall back to the defaults, and draw a seed when none is given", () => {
    const parsed = parseFlags(["--seed", "42", "--requests", "2000"])
    assert.deepStrictEqual(parsed, { _tag: "Options", options: { ...defaults, seed: 42, requests: 2000 } })
    const drawn = parseFlags([])
    assert.strictEqual(drawn._tag, "Options")
    if (drawn._tag === "Options") assert.isTrue(Number.isSafeInteger(drawn.options.seed) && drawn.options.seed >= 0)
  })

  it("reject what is not a valid setting, saying which flag", () => {
    const cases: ReadonlyArray<readonly [ReadonlyArray<string>, string]> = [
      [["--seed", "x"], "--seed"],
      [["--requests", "0"], "--requests"],
      [["--faults", "1.5"], "--faults"],
      [["--nope"], "nope"],
      [["--requests", "10"], "--requests 10"]
    ]
    for (const [args, says] of cases) {
      const parsed = parseFlags(args)
      assert.strictEqual(parsed._tag, "Invalid", args.join(" "))
      if (parsed._tag === "Invalid") assert.include(parsed.message, says)
    }
  })
})

describe("chaos run", () => {
  const options: ChaosOptions = { ...defaults, seed: 20_240_601, requests: 1_000, faults: 12 }

  it.live(
    "CI-sized: every request gets one outcome in time, counters add up, no process or thread is left, the budget holds",
    () =>
      Effect.gen(function* () {
        const lines: Array<string> = []
        const report = yield* chaos(options, (line) => lines.push(line))
        const output = lines.join("\n")
        assert.deepStrictEqual(failuresOf(report), [], output)
        assert.isTrue(report.passed, output)
        assert.deepStrictEqual(
          report.runs.map(({ result }) => result.settings.name),
          ["default", "budget"]
        )
        const requests = report.runs.reduce((n, { result }) => n + result.issued, 0)
        assert.isAtLeast(requests, 2_000)
        // Every fault the plan scheduled was injected, and happened or met an outcome that allows it.
        for (const { result } of report.runs) {
          assert.deepStrictEqual(faultProblems(result), [], output)
          for (const fault of faultNames) {
            const fate = result.faults[fault]
            assert.strictEqual(fate.planned, 12, `${result.settings.name} ${fault}`)
            assert.strictEqual(fate.happened + missedCount(fate), 12, `${result.settings.name} ${fault}\n${output}`)
          }
        }
        const common = ["lost", "hung", "outcomes", "counters", "processes", "threads", "faults", "refusals"]
        const defaultChecks = report.runs[0]!.checks.map((check) => check.name)
        assert.includeMembers(defaultChecks, [...common, "retired"])
        const budgetChecks = report.runs[1]!.checks.map((check) => check.name)
        assert.includeMembers(budgetChecks, [...common, "budget", "restarts seen"])
      }).pipe(Effect.provideService(References.MinimumLogLevel, "None")),
    // Starting threads and processes again is most of the run: 40 s on an idle 2-vCPU machine, over 120 s on a busy one.
    300_000
  )
})
