/**
 * The benchmark harness works: quick runs without the gateway start their processes, measure,
 * print the table and write raw results with the fields BENCHMARKS.md relies on — the
 * throughput case against the bare proxy, and the back-to-back and trickle cases against the
 * bare proxy and the floor gateway. (The figures themselves are `npm run bench`'s business, not
 * a test's.)
 */
import { execFile, execFileSync } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"

const root = fileURLToPath(new URL("..", import.meta.url))
const built = existsSync(join(root, "packages", "testing", "dist", "index.js"))
if (!built) console.warn("bench smoke test skipped: packages/*/dist is missing (run `npm run build` first)")
const valgrind = (() => {
  try {
    execFileSync("valgrind", ["--version"], { stdio: "ignore" })
    return true
  } catch {
    return false
  }
})()
// CI installs valgrind (`.ci/run`); elsewhere its absence is said, not hidden.
if (!valgrind) console.warn("bench/instructions.mjs smoke test skipped: valgrind is not installed")

/** Runs a bench script (`bench/run.mjs` unless told) with `args`. */
const run = (args: ReadonlyArray<string>, timeout = 25_000, script = "bench/run.mjs") =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [script, ...args], { cwd: root, timeout }, (error, stdout, stderr) => {
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
      expect(result.table.find((r: { metric: string }) => r.metric === "req/s")).toMatchObject({ pass: "pending", must: "≥ 0.50×", aim: "≥ 0.70×" })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 30_000)

  it.skipIf(!built)("runs the back-to-back and trickle cases against the bare proxy and the floor gateway", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bench-smoke-"))
    const out = join(dir, "result.json")
    try {
      const { code, stdout, stderr } = await run(
        ["--quick", "--only", "burst,trickle", "--targets", "baseline,floor", "--trickle-streams", "20", "--out", out],
        60_000
      )
      expect(code, stderr).toBe(0)
      expect(stdout).toMatch(/\| floor\s+\|/)
      expect(stdout).toMatch(/\| floor vs baseline\s+\|/)
      const result = JSON.parse(readFileSync(out, "utf8"))
      expect(result.targets.floor.ok).toBe(true)
      for (const target of ["baseline", "floor"]) {
        const burst = result.cases.burst.summary[target]
        expect(burst.streamsPerSec).toBeGreaterThan(0)
        expect(burst.cpuPerStreamMs).toEqual(expect.any(Number))
        // All 50 chunks, the finish and usage chunks and [DONE] arrive, however they are read.
        expect(burst.eventsPerStream).toBeGreaterThanOrEqual(52)
        expect(burst.eventsPerRead).toEqual(expect.any(Number))
        expect(burst.errors).toBe(0)
        const trickle = result.cases.trickle.summary[target]
        expect(trickle).toMatchObject({ streams: 20, established: 20, expectedChunksPerSec: 20 })
        expect(trickle.chunksPerSec).toBeGreaterThan(0)
        expect(trickle.cpuPerChunkUs).toEqual(expect.any(Number))
        const round = result.cases.trickle.rounds[target][0]
        expect(round).toMatchObject({ chunks: expect.any(Number), established: 20, server: { cpuMs: expect.any(Number) } })
        expect(round.chunks).toBeGreaterThan(0)
      }
      // The upstream wrote every stream of the case in one piece.
      expect(result.cases.burst.upstream.bursts).toBeGreaterThan(0)
      expect(result.cases.burst.upstream.bursts).toBe(result.cases.burst.upstream.served)
      const rowOf = (caseName: string, metric: string) =>
        result.table.find((r: { case: string; metric: string }) => r.case.startsWith(caseName) && r.metric.startsWith(metric))
      expect(rowOf("streaming (50 chunks back to back)", "streams/s")).toMatchObject({ must: "≥ 0.50×", aim: "≥ 0.70×", pass: "pending", floorVsBaseline: expect.stringMatching(/×$/) })
      // A quick window may see no full clock tick of CPU: the ratio is then "—".
      expect(rowOf("trickle", "server CPU µs per delivered chunk")).toMatchObject({ must: "≤ 3.00×", aim: "≤ 1.50×", pass: "pending", floorVsBaseline: expect.stringMatching(/×$|^—$/) })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 70_000)
})

describe("bench/stream-encode.mjs", () => {
  it.skipIf(!built)("runs the in-process decode-and-encode case and prints its figure", async () => {
    const { code, stdout, stderr } = await run(["200"], 25_000, "bench/stream-encode.mjs")
    expect(code, stderr).toBe(0)
    expect(stdout).toMatch(/^stream-encode: \d+\.\d µs per 50-event stream \(min\), \d+\.\d \(median\)$/m)
  }, 30_000)
})

describe("bench/journal-memory.mjs", () => {
  it.skipIf(!built)("runs the journal's path with and without the journal and prints four rounds each", async () => {
    for (const mode of [[], ["--none"]]) {
      const { code, stdout, stderr } = await run(["300", ...mode], 25_000, "bench/journal-memory.mjs")
      expect(code, stderr).toBe(0)
      const rounds = stdout.split("\n").filter((l) => /^round \d: \d+\.\d µs CPU per stream/.test(l))
      expect(rounds).toHaveLength(4)
      expect(rounds.every((l) => l.endsWith("(no journal)"))).toBe(mode.length === 1)
    }
  }, 30_000)
})

describe("bench/instructions.mjs", () => {
  it.skipIf(!built || !valgrind)("counts the reference server's instructions per request under callgrind, by function too", async () => {
    const { code, stdout, stderr } = await run(["--requests", "40", "--warmup", "60", "--top", "3"], 110_000, "bench/instructions.mjs")
    expect(code, stderr).toBe(0)
    const m = /^instructions: (\d+) per request \(main thread\), (\d+) \(all threads\), over 40 requests after 60$/m.exec(stdout)
    expect(m, stdout).not.toBeNull()
    const main = Number(m![1])
    expect(main).toBeGreaterThan(10_000)
    expect(Number(m![2])).toBeGreaterThanOrEqual(main)
    // Three functions, each with its share of the main thread's count.
    expect(stdout.split("\n").filter((l) => /^\s+\d+\s+\d+\.\d%\s+\S/.test(l))).toHaveLength(3)
  }, 120_000)
})
