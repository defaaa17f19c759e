/**
 * The benchmark harness works: quick runs without the gateway start their processes, measure,
 * print the table and write raw results with the fields BENCHMARKS.md relies on — the
 * throughput case against the bare proxy, and the back-to-back and trickle cases against the
 * bare proxy and the floor gateway. (The figures themselves are `npm run bench`'s business, not
 * a test's.)
 */
import { execFile, execFileSync, spawn } from "node:child_process"
import { once } from "node:events"
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

  it.skipIf(!built)("runs the back-to-back and trickle cases against the bare proxy and the floor gateway, journaled and not", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bench-smoke-"))
    const out = join(dir, "result.json")
    try {
      const { code, stdout, stderr } = await run(
        ["--quick", "--only", "burst,trickle", "--targets", "baseline,floor,floor-journal", "--trickle-streams", "20", "--out", out],
        60_000
      )
      expect(code, stderr).toBe(0)
      expect(stdout).toMatch(/\| floor\s+\|/)
      expect(stdout).toMatch(/\| floor vs baseline\s+\|/)
      expect(stdout).toMatch(/\| floor \+ journal vs baseline\s+\|/)
      const result = JSON.parse(readFileSync(out, "utf8"))
      expect(result.targets.floor.ok).toBe(true)
      expect(result.targets["floor-journal"].ok).toBe(true)
      for (const target of ["baseline", "floor", "floor-journal"]) {
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
      expect(rowOf("streaming (50 chunks back to back)", "streams/s")).toMatchObject({ must: "≥ 0.50×", aim: "≥ 0.70×", pass: "pending", floorVsBaseline: expect.stringMatching(/×$/), floorJournalVsBaseline: expect.stringMatching(/×$/) })
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

describe("bench/floor-gateway.mjs", () => {
  it.skipIf(!built)("with BENCH_FLOOR_JOURNAL=1 journals a stream as the gateway does: a stream id, a retry hint, an id on every event", async () => {
    const { MockUpstream } = await import("@breakwater/testing")
    const upstream = await MockUpstream.start({ words: 5 })
    const floor = spawn(process.execPath, ["bench/floor-gateway.mjs", "--upstream", upstream.origin], {
      cwd: root,
      env: { ...process.env, BENCH_FLOOR_JOURNAL: "1" },
      stdio: ["ignore", "pipe", "inherit"]
    })
    try {
      // A floor that fails to start exits: the test says so rather than timing out.
      const [line] = (await Promise.race([once(floor.stdout!, "data"), once(floor, "exit").then(([code]) => {
        throw new Error(`the floor exited with ${code}`)
      })])) as [Buffer]
      const url = /listening on (\S+)/.exec(line.toString())![1]
      const post = () =>
        fetch(`${url}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ model: "m", stream: true, messages: [{ role: "user", content: "hi" }] })
        })
      const res = await post()
      const streamId = res.headers.get("x-breakwater-stream-id")
      expect(streamId).toMatch(/^bws_[0-9a-f]{32}$/)
      const events = (await res.text()).split("\n\n").filter((e) => e !== "")
      expect(events[0]).toBe("retry: 1000")
      const rest = events.slice(1)
      expect(rest.length).toBeGreaterThan(5)
      rest.forEach((event, i) => expect(event.split("\n")[0]).toBe(`id: ${streamId}:${i + 1}`))
      expect(rest.at(-1)).toMatch(/\ndata: \[DONE\]$/)
      // A stream of its own per call.
      expect((await post()).headers.get("x-breakwater-stream-id")).not.toBe(streamId)
    } finally {
      floor.kill()
      await upstream.stop()
    }
  }, 30_000)
})
