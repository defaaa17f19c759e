// `npm run mutation`: StrykerJS over the policy state machines and the resume splice, run by
// vitest against the unit tests of their packages (vitest.mutation.config.mjs). Not part of
// `npm test`; the score and every surviving mutant are recorded in docs/mutation.md.
/** @type {import("@stryker-mutator/api/core").PartialStrykerOptions} */
export default {
  testRunner: "vitest",
  vitest: { configFile: "vitest.mutation.config.mjs", related: false },
  plugins: ["@stryker-mutator/vitest-runner"],
  mutate: [
    "packages/circuit-breaker/src/internal/machine.ts",
    "packages/router/src/internal/stats.ts",
    "packages/stream-resume/src/internal/splice.ts",
    "packages/core/src/internal/requestBudget.ts"
  ],
  coverageAnalysis: "perTest",
  concurrency: 2,
  timeoutMS: 20000,
  reporters: ["clear-text", "progress", "json"],
  jsonReporter: { fileName: "reports/mutation/mutation.json" },
  ignorePatterns: ["dist", "bench/results", "docs", "reports", ".turbo", "*.cpuprofile"],
  tempDirName: ".stryker-tmp",
  cleanTempDir: "always"
}
