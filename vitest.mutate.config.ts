import { defineConfig } from "vitest/config"
import { BaseSequencer, type TestSpecification } from "vitest/node"
import base from "./vitest.config.ts"

/**
 * The tests Stryker runs against each mutant (`npm run mutate`, stryker.config.mjs; docs/testing-strength.md): the
 * engine's fast tests, in virtual time, without the tests that start threads, subprocesses or servers, and without the
 * long property runs (a mutant that survives runs every test that covers it: they would cost minutes each).
 *
 * A config of its own, not a `mergeConfig` of vitest.config.ts: vitest concatenates `include` arrays, so a merge would
 * run every test.
 */
const files = [
  "test/request.test.ts",
  "test/request-record.test.ts",
  "test/admission-queue.test.ts",
  "test/roster.test.ts",
  "test/latency.test.ts",
  "test/health-record.test.ts",
  "test/restart.test.ts",
  "test/admission.test.ts",
  "test/pool.test.ts",
  "test/worker.test.ts",
  "test/shutdown.test.ts",
  "test/clean-end.test.ts",
  "test/handler-mistakes.test.ts",
  "test/submit.test.ts",
  "test/queue-deadlines.test.ts",
  "test/supervision-logs.test.ts",
  "test/refusal-accounting.test.ts",
  "test/membership.test.ts",
  "test/worker-paths.test.ts",
  "test/caller-fiber.test.ts",
  "test/policy-mistakes.test.ts",
  "test/reference.test.ts",
  "test/resources.test.ts",
  "test/lifecycle.test.ts",
  "test/shortest-expected-delay.test.ts",
  "test/policies.test.ts",
  "test/spares.test.ts",
  "test/observability.test.ts",
  "test/options.test.ts",
  "test/operation-plans.test.ts"
]

/** Runs the files in the order above (quick and pointed first): a mutant stops at the first test that fails. */
class InOrder extends BaseSequencer {
  override async sort(specs: Array<TestSpecification>): Promise<Array<TestSpecification>> {
    const rank = (spec: TestSpecification) => files.findIndex((file) => spec.moduleId.endsWith(file))
    return [...specs].sort((a, b) => rank(a) - rank(b))
  }
}

export default defineConfig({
  // The same aliases as `npm test`: the package's entries resolve to the sources.
  resolve: base.resolve!,
  test: {
    include: files,
    // The files share one module graph: each mutant run loads them in a fraction of the time.
    isolate: false,
    sequence: { sequencer: InOrder },
    // Each of these tests takes at most tens of milliseconds (virtual time), a few hundred on a busy machine: a mutant
    // that makes one hang fails it here (killed) after 2 s, sooner than Stryker's own timeout, which restarts its
    // test runner.
    testTimeout: 2_000,
    // The same bound for the hooks that close what a test opened: a mutant that hangs a close fails here too.
    hookTimeout: 2_000,
    teardownTimeout: 2_000
  }
})
