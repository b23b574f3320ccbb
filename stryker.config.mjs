// Mutation testing of the engine: `npm run mutate` (docs/testing-strength.md). Not part of CI.
/** @type {import("@stryker-mutator/api/core").PartialStrykerOptions} */
export default {
  mutate: [
    "src/internal/pool.ts",
    "src/internal/pool/**/*.ts",
    "src/internal/request.ts",
    "src/internal/worker.ts",
    "src/internal/supervisor.ts",
    "src/internal/restart.ts",
    "src/internal/health.ts",
    "src/internal/roster.ts",
    "src/internal/latency.ts",
    "src/internal/handler.ts",
    "src/internal/callerFiber.ts",
    "src/internal/fiberFrames.ts",
    "src/DispatchPolicy.ts"
  ],
  testRunner: "vitest",
  // The engine's fast tests only, in an order of their own.
  vitest: { configFile: "vitest.mutate.config.ts" },
  coverageAnalysis: "perTest",
  // Most of a mutant's time is a wait (a test that a mutant makes hang waits for vitest's testTimeout): four test
  // runners at once keep 2 CPUs busy.
  concurrency: 4,
  // Stryker's tsconfig step rewrites `extends` and `references` (this project has neither) through TypeScript's JS
  // API, which TypeScript 7 does not have: a tsconfig file that does not exist skips the step.
  tsconfigFile: "tsconfig.stryker-skip.json",
  // vitest strips types without checking them: no `// @ts-nocheck` to add.
  disableTypeChecks: false,
  // `npm run mutate` after the first run tests only the mutants whose code or tests changed. The file is kept out of
  // git (docs/testing-strength.md says why).
  incremental: true,
  incrementalFile: "reports/mutation/stryker-incremental.json",
  reporters: ["clear-text", "progress", "html", "json"],
  htmlReporter: { fileName: "reports/mutation/mutation.html" },
  jsonReporter: { fileName: "reports/mutation/mutation.json" },
  clearTextReporter: { allowColor: false, logTests: false, maxTestsToLog: 0 },
  // A busy machine runs tests slower: a mutant times out after 2.5 times its tests' time in the first run, plus 5 s.
  // A test that hangs in virtual time fails sooner, at vitest's testTimeout (vitest.mutate.config.ts).
  timeoutFactor: 2.5,
  timeoutMS: 5_000,
  dryRunTimeoutMinutes: 30,
  ignorePatterns: ["reports", "dist", "coverage", "docs", "bench", "sim", "chaos", "test/.examples"],
  tempDirName: ".stryker-tmp",
  thresholds: { high: 90, low: 80, break: null }
}
