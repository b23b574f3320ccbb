/**
 * `npm run fuzz`: a seeded, model-based fuzzer of the pool's public API. See
 * docs/fuzzing.md for what it plays, what it checks and how to replay a run.
 *
 *   npm run fuzz
 *   npm run fuzz -- --seed 42 --only caller,sync-throw --runs 1
 *   npm run fuzz -- --list
 */
import * as fs from "node:fs"
import { Effect } from "effect"
import { listing } from "./catalogue.ts"
import { judge } from "./checks.ts"
import { parseFlags, usage } from "./flags.ts"
import { fuzz, play, summaryOf } from "./fuzz.ts"
import { catchUncaught } from "./harness.ts"
import { describePool, describeStep, type Plan } from "./plan.ts"

const parsed = parseFlags(process.argv.slice(2))
if (parsed._tag === "Help") {
  console.log(usage)
} else if (parsed._tag === "List") {
  for (const line of listing()) console.log(line)
} else if (parsed._tag === "Invalid") {
  console.error(`${parsed.message}\n\n${usage}`)
  process.exitCode = 2
} else {
  // A handler's throw that escapes the pool is a finding of the run under way, not the end of the fuzzer.
  catchUncaught()
  const options = parsed.options
  const program =
    options.plan !== undefined
      ? Effect.gen(function* () {
          const plan = JSON.parse(fs.readFileSync(options.plan!, "utf8")) as Plan
          console.log(`replaying ${options.plan}: seed ${plan.seed}, ${plan.target}, ${plan.steps.length} steps`)
          console.log(`  pool: ${describePool(plan)}`)
          for (const step of plan.steps) console.log(`  ${describeStep(step)}`)
          const findings = judge(yield* play(plan))
          for (const f of findings) console.log(`  ${f.invariant}: ${f.message}`)
          console.log(findings.length === 0 ? "no finding" : `${findings.length} findings`)
          if (findings.length > 0) process.exitCode = 1
        })
      : Effect.gen(function* () {
          const report = yield* fuzz(options, (line) => console.log(line))
          for (const line of summaryOf(report)) console.log(line)
          if (!report.passed) process.exitCode = 1
        })
  Effect.runPromise(program).then(
    // Runs the watchdogs gave up on may hold timers or children: the report is out, the process ends.
    () => process.exit(),
    (error) => {
      console.error(error)
      process.exit(2)
    }
  )
}
