/**
 * `npm run chaos`: a seeded chaos run over real threads and processes. See
 * docs/chaos.md for what it does, its flags and its checks.
 *
 *   npm run chaos
 *   npm run chaos -- --seed 42 --requests 1000 --faults 12
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect, References } from "effect"
import { chaos, failuresOf, summaryOf } from "./chaos.ts"
import { parseFlags, usage } from "./flags.ts"

const parsed = parseFlags(process.argv.slice(2))
if (parsed._tag === "Help") {
  console.log(usage)
} else if (parsed._tag === "Invalid") {
  console.error(`${parsed.message}\n\n${usage}`)
  process.exitCode = 2
} else {
  const program = Effect.gen(function* () {
    const report = yield* chaos(parsed.options, (line) => console.log(line))
    for (const line of failuresOf(report)) console.error(line)
    console.log(summaryOf(report))
    if (!report.passed) process.exitCode = 1
  }).pipe(
    // The pool logs every crash and restart: thousands of lines in a chaos run.
    Effect.provideService(References.MinimumLogLevel, "None")
  )
  NodeRuntime.runMain(program)
}
