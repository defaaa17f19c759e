/**
 * The benchmark harness works: a quick baseline-only throughput run starts its processes,
 * measures, prints the table and writes raw results with the fields BENCHMARKS.md relies on.
 * (The figures themselves are `npm run bench`'s business, not a test's.)
 */
import { execFile } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"

const root = fileURLToPath(new URL("..", import.meta.url))
const built = existsSync(join(root, "packages", "testing", "dist", "index.js"))
if (!built) console.warn("bench smoke test skipped: packages/*/dist is missing (run `npm run build` first)")

const run = (args: ReadonlyArray<string>) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, ["bench/run.mjs", ...args], { cwd: root, timeout: 25_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : null, stdout, stderr })
    })
  })

describe("bench/run.mjs", () => {
  it.skipIf(!built)("runs a quick baseline throughput case and writes raw JSON", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bench-smoke-"))
    const out = join(dir, "result.json")
    try {
      const { code, stdout, stderr } = await run(["--quick", "--only", "throughput", "--targets", "baseline", "--out", out])
      expect(code, stderr).toBe(0)
      expect(stdout).toMatch(/\| throughput \(c=64\)\s+\| req\/s/)
      const result = JSON.parse(readFileSync(out, "utf8"))
      expect(result.machine).toMatchObject({ nproc: expect.any(Number), node: process.version })
      expect(result.targets.baseline.ok).toBe(true)
      const summary = result.cases.throughput.summary.baseline
      expect(summary.rps).toBeGreaterThan(0)
      expect(summary.cpuPerRequestMs).toBeGreaterThan(0)
      expect(summary.errors).toBe(0)
      const round = result.cases.throughput.rounds.baseline[0]
      expect(round.ok).toBeGreaterThan(0)
      expect(round.latencyMs).toMatchObject({ p50: expect.any(Number), p99: expect.any(Number) })
      expect(round.server).toMatchObject({ cpuMs: expect.any(Number), rssKiBAfter: expect.any(Number) })
      // Without a gateway in the run, its rows are marked pending rather than passed.
      expect(result.table.find((r: { metric: string }) => r.metric === "req/s")).toMatchObject({ pass: "pending" })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 30_000)
})
