/**
 * The tests `npm run mutation` (StrykerJS) runs against each mutant: the unit tests of the
 * packages whose state machines and splice it mutates (stryker.config.mjs). Not part of `npm test`.
 */
import { defineConfig } from "vitest/config"
import base from "./vitest.config.ts"

export default defineConfig({
  resolve: base.resolve,
  test: {
    ...base.test,
    include: [
      "packages/circuit-breaker/test/**/*.test.ts",
      "packages/router/test/**/*.test.ts",
      "packages/stream-resume/test/**/*.test.ts",
      "packages/retry/test/**/*.test.ts",
      "packages/core/test/request-budget.test.ts"
    ]
  }
})
