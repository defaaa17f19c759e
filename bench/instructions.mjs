#!/usr/bin/env node
/**
 * `npm run bench:instructions`: how many machine instructions the reference server executes per
 * request (or per back-to-back 50-event stream), counted by valgrind's callgrind over a fixed
 * number of requests after a warm-up. A count, not a time: the same build gives the same figure
 * within ~1–3% on a busy machine, where CPU-time ratios swing ±20% (BENCHMARKS.md, "Counting
 * instructions"). It is the A/B tool for a change too small to see in `npm run bench`; the
 * bench's ratios stay the figures of record.
 *
 *   node bench/instructions.mjs [--stream] [--requests N] [--warmup N] [--top K]
 *                               [--main <reference server main.js>] [--keep]
 *
 * `--main`: another build's `examples/reference-server/dist/main.js` (an A/B: run this once per
 * build). `--top K`: the K functions with the most instructions of their own, JavaScript ones by
 * name (the server runs with `--perf-basic-prof` for that). Main thread only: V8's compiler and
 * collector threads are reported apart, as their share depends on how far the JIT got.
 * `--keep`: leaves the callgrind files (and the perf map, with `--top`) in the scratch directory
 * it names, for `callgrind_annotate` or a closer look.
 * Needs valgrind (`apt-get install valgrind`).
 */
import { execFileSync, spawn } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { MockUpstream } from "@breakwater/testing"
import { Pool } from "undici"
import { gatewayConfig } from "./internal/gateway-config.mjs"
import { startFastUpstream } from "./internal/fast-upstream.mjs"

const ROOT = fileURLToPath(new URL("..", import.meta.url))
const { values: flags } = parseArgs({
  options: {
    stream: { type: "boolean", default: false },
    requests: { type: "string" },
    warmup: { type: "string" },
    top: { type: "string", default: "0" },
    keep: { type: "boolean", default: false },
    main: { type: "string", default: join(ROOT, "examples", "reference-server", "dist", "main.js") }
  }
})
const stream = flags.stream
const requests = Number(flags.requests ?? (stream ? 1_000 : 3_000))
const warmup = Number(flags.warmup ?? (stream ? 3_000 : 6_000))
const top = Number(flags.top)

try {
  execFileSync("valgrind", ["--version"], { stdio: "ignore" })
} catch {
  console.error("bench:instructions needs valgrind (apt-get install valgrind)")
  process.exit(2)
}

const dir = mkdtempSync(join(tmpdir(), "breakwater-instructions-"))
// The bench's upstreams: back-to-back streams from its own mock (every event of a stream in one
// write, as the burst case), answers from @breakwater/testing's MockUpstream in fast mode.
const upstream = stream
  ? await startFastUpstream({ words: 50 })
  : await MockUpstream.start({ words: 50, fast: true })
if (stream) upstream.setDefault({ burst: true })
const upstreamUrl = stream ? upstream.url : upstream.origin
const config = join(dir, "gateway.json")
writeFileSync(config, JSON.stringify(gatewayConfig(upstreamUrl, 1_000)))

const out = join(dir, "callgrind.out")
const server = spawn("valgrind", [
  "--tool=callgrind", "--instr-atstart=no", "--separate-threads=yes", `--callgrind-out-file=${out}`,
  process.execPath, "--expose-gc", ...(top > 0 ? ["--perf-basic-prof"] : []), flags.main, config
  // In the scratch directory: `--perf-basic-prof` also leaves an `isolate-*.log` in the cwd.
], { cwd: dir, env: { ...process.env, BREAKWATER_LOG_LEVEL: "warning" }, stdio: ["ignore", "pipe", "pipe"] })
const url = await new Promise((resolve, reject) => {
  let text = ""
  const onData = (data) => {
    text += data.toString("utf8")
    const m = /listening on (http:\/\/[^\s)]+)/.exec(text)
    if (m !== null) resolve(m[1])
  }
  server.stdout.on("data", onData)
  server.stderr.on("data", onData)
  server.once("exit", (code) => reject(new Error(`the server exited (${code}) before listening:\n${text.slice(-2000)}`)))
})
// valgrind runs the program in its own process: callgrind_control finds it by pid.
const control = (...args) => execFileSync("callgrind_control", [...args, String(server.pid)], { stdio: "ignore" })

const body = JSON.stringify({ model: "bench-model", messages: [{ role: "user", content: "Say something." }], stream })
const pool = new Pool(url, { connections: 8, keepAliveTimeout: 600_000 })
const load = async (n) => {
  let left = n
  let failed = 0
  const worker = async () => {
    while (left-- > 0) {
      const r = await pool.request({ path: "/v1/chat/completions", method: "POST", headers: { "content-type": "application/json" }, body })
      await r.body.text()
      if (r.statusCode !== 200) failed++
    }
  }
  await Promise.all(Array.from({ length: 8 }, worker))
  if (failed > 0) throw new Error(`${failed} of ${n} requests failed`)
}

process.stderr.write(`bench:instructions: warming up (${warmup} ${stream ? "streams" : "requests"} under valgrind)…\n`)
await load(warmup)
control("-i", "on")
await load(requests)
control("-i", "off")
control("-d")
await pool.close()
const exited = new Promise((resolve) => server.once("exit", resolve))
server.kill("SIGTERM")
await exited
await upstream.close()

const files = readdirSync(dir).filter((f) => f.startsWith("callgrind.out")).map((f) => join(dir, f))
const totalOf = (file) => Number(/^totals: (\d+)/m.exec(readFileSync(file, "utf8"))?.[1] ?? 0)
// Files are per dump and per thread (`-01` is the main thread); each dump holds what ran since the last.
const main = files.filter((f) => f.endsWith("-01")).reduce((a, f) => a + totalOf(f), 0)
const all = files.reduce((a, f) => a + totalOf(f), 0)
const unit = stream ? "stream" : "request"
console.log(`instructions: ${Math.round(main / requests)} per ${unit} (main thread), ${Math.round(all / requests)} (all threads), over ${requests} ${unit}s after ${warmup}`)

if (top > 0) {
  const map = readFileSync(`/tmp/perf-${server.pid}.map`, "utf8").split("\n").filter(Boolean)
    .map((line) => {
      const [start, size, ...name] = line.split(" ")
      return [parseInt(start, 16), parseInt(size, 16), name.join(" ")]
    })
    .sort((a, b) => a[0] - b[0])
  const jsName = (address) => {
    let lo = 0
    let hi = map.length - 1
    let found = -1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      if (map[mid][0] <= address) {
        found = mid
        lo = mid + 1
      } else hi = mid - 1
    }
    return found >= 0 && address < map[found][0] + map[found][1] ? map[found][2] : undefined
  }
  const self = new Map()
  const names = new Map()
  for (const file of files.filter((f) => f.endsWith("-01"))) {
    let fn
    let inCall = false
    for (const line of readFileSync(file, "utf8").split("\n")) {
      if (line.startsWith("fn=")) {
        // Compressed names: "(id) name" the first time, "(id)" after.
        const m = /^\((\d+)\)(?: (.*))?$/.exec(line.slice(3))
        if (m !== null && m[2] !== undefined) names.set(m[1], m[2])
        const raw = m === null ? line.slice(3) : names.get(m[1])
        const hex = /^0x([0-9a-f]+)$/.exec(raw)
        fn = hex === null ? raw.replace(/\(.*$/, "") : jsName(parseInt(hex[1], 16)) ?? raw
      } else if (line.startsWith("cfn=")) {
        const m = /^\((\d+)\)(?: (.*))?$/.exec(line.slice(4))
        if (m !== null && m[2] !== undefined) names.set(m[1], m[2])
      } else if (line.startsWith("calls=")) {
        inCall = true
      } else if (/^[0-9+*-]/.test(line)) {
        // The line after `calls=` is the call's inclusive cost, not the caller's own.
        if (inCall) inCall = false
        else self.set(fn, (self.get(fn) ?? 0) + Number(line.trim().split(/\s+/).at(-1)))
      }
    }
  }
  for (const [name, n] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${String(Math.round(n / requests)).padStart(9)}  ${(100 * n / main).toFixed(1).padStart(5)}%  ${name.replace(`file://${ROOT}`, "").slice(0, 140)}`)
  }
  if (flags.keep) writeFileSync(join(dir, "perf.map"), readFileSync(`/tmp/perf-${server.pid}.map`))
  rmSync(`/tmp/perf-${server.pid}.map`, { force: true })
}
if (flags.keep) console.log(`kept: ${dir}`)
else rmSync(dir, { recursive: true, force: true })
