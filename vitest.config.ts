import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

const root = fileURLToPath(new URL(".", import.meta.url))

export default defineConfig({
  resolve: {
    // Tests run against each package's sources, so `npm test` never depends on a stale dist/.
    alias: [{ find: /^@breakwater\/([a-z-]+)$/, replacement: `${root}packages/$1/src/index.ts` }]
  },
  test: {
    include: ["packages/*/test/**/*.test.ts", "test/**/*.test.ts", "examples/*/test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000
  }
})
