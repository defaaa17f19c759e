#!/usr/bin/env node
/**
 * `npm run bench`: Breakwater's reference server against a bare pass-through proxy, on
 * loopback, interleaved so noise hits both. See BENCHMARKS.md.
 *
 *   node bench/run.mjs [--quick] [--only <case>[,<case>]] [--targets baseline,gateway]
 *                      [--rounds N] [--streams N] [--out file.json] [--cpu-prof] [--no-pin]
 *                      [--upstream-impl auto|mock|fast]
 *
 * Cases: throughput, latency, streaming, memory, policy.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { cpus, tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { parseArgs } from "node:util"
import { setTimeout as sleep } from "node:timers/promises"
import { canPin, cpuMs, machineBusyMs, pinPid, rssKiB, startNode } from "./internal/procs.mjs"

const ROOT = fileURLToPath(new URL("..", import.meta.url))
const BENCH = join(ROOT, "bench")
const GUARD = pathToFileURL(join(BENCH, "internal", "orphan-guard.mjs")).href
const GATEWAY_MAIN = join(ROOT, "examples", "reference-server", "dist", "main.js")

const { values: flags } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    only: { type: "string" },
    targets: { type: "string", default: "baseline,gateway" },
    rounds: { type: "string" },
    streams: { type: "string" },
    out: { type: "string" },
    "cpu-prof": { type: "boolean", default: false },
    "no-pin": { type: "boolean", default: false },
    "upstream-impl": { type: "string", default: "auto" }
  }
})

const CASES = ["throughput", "latency", "streaming", "memory", "policy"]
const only = flags.only === undefined ? CASES : flags.only.split(",").map((s) => s.trim())
for (const c of only) if (!CASES.includes(c)) throw new Error(`unknown case "${c}" (cases: ${CASES.join(", ")})`)

const quick = flags.quick
const P = {
  rounds: Number(flags.rounds ?? (quick ? 1 : 3)),
  warmupMs: quick ? 300 : 3_000,
  throughput: { concurrency: 64, durationMs: quick ? 1_000 : 8_000 },
  latency: { rate: 500, durationMs: quick ? 1_000 : 8_000 },
  streaming: { chunks: 50, ttfbRate: 100, ttfbMs: quick ? 1_000 : 6_000, concurrency: 64, durationMs: quick ? 1_000 : 6_000 },
  memory: { streams: Number(flags.streams ?? (quick ? 200 : 5_000)), chunkDelayMs: 1_000, settleMs: quick ? 500 : 2_000 },
  policy: { iterations: quick ? 2 : 40, cutAfterChunks: 25 },
  pauseMs: quick ? 50 : 250
}

// --- the machine -------------------------------------------------------------------------
const nproc = cpus().length
const cpuModel = (() => {
  try {
    return /model name\s*:\s*(.+)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1]?.trim() ?? cpus()[0]?.model
  } catch {
    return cpus()[0]?.model
  }
})()
const pin = !flags["no-pin"] && canPin(nproc)
// The server under test gets CPU 0; the load generator, the upstream and this orchestrator CPU 1.
const SERVER_CPU = pin ? 0 : undefined
const LOAD_CPU = pin ? 1 : undefined
if (pin) pinPid(process.pid, 1)

const log = (line) => process.stderr.write(`${line}\n`)
const startedAt = new Date()
const stamp = startedAt.toISOString().replace(/[:.]/g, "-")

// --- the targets -------------------------------------------------------------------------
const profDir = join(BENCH, "results", "profiles", stamp)
const profArgs = flags["cpu-prof"] ? ["--cpu-prof", `--cpu-prof-dir=${profDir}`] : []

const gatewayConfig = (upstreamUrl, streams) => ({
  // Server and pool sizes are raised so 5,000 held streams fit; every policy keeps its default.
  server: { host: "127.0.0.1", port: 0, maxConcurrentRequests: Math.max(8192, streams * 2) },
  upstreams: {
    mock: { provider: "openai", baseUrl: `${upstreamUrl}/v1`, models: ["bench-model", "bench-model-fast-retry"], connections: Math.max(8192, streams * 2) }
  },
  routes: {
    "bench-model": { upstreams: ["mock"] },
    // The same baseline with a 1 ms retry backoff: the retry machinery's cost without the wait.
    "bench-model-fast-retry": { upstreams: ["mock"], retry: { baseDelay: 1, maxDelay: 1 } }
  }
})

/** The servers under test: adding one is one entry. Each starts a process and returns its handle. */
const TARGETS = {
  baseline: ({ upstream }) => startNode({
    name: "baseline",
    args: ["--expose-gc", ...profArgs, join(BENCH, "baseline-proxy.mjs"), "--upstream", upstream.url, "--connections", String(Math.max(8192, P.memory.streams * 2))],
    cpu: SERVER_CPU,
    ready: /baseline listening on (http:\/\/\S+)/
  }),
  gateway: ({ upstream }) => {
    if (!existsSync(GATEWAY_MAIN)) throw new Error(`${GATEWAY_MAIN} is missing (run npm run build)`)
    const file = join(tmpdir(), `breakwater-bench-${process.pid}.json`)
    writeFileSync(file, JSON.stringify(gatewayConfig(upstream.url, P.memory.streams), null, 2))
    return startNode({
      name: "gateway",
      args: ["--expose-gc", "--import", GUARD, ...profArgs, GATEWAY_MAIN, file],
      cpu: SERVER_CPU,
      env: { BREAKWATER_LOG_LEVEL: "warning" },
      ready: /listening on (http:\/\/[^\s)]+)/
    })
  }
}

// --- helpers -----------------------------------------------------------------------------
const median = (xs) => {
  const v = xs.filter((x) => typeof x === "number" && Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return undefined
  const m = Math.floor(v.length / 2)
  return v.length % 2 === 1 ? v[m] : (v[m - 1] + v[m]) / 2
}
const round = (x, d = 3) => (x === undefined || !Number.isFinite(x) ? undefined : Math.round(x * 10 ** d) / 10 ** d)

let loadgen
let upstream
const noise = []
const servers = {}

/** CPU time of every bench process, this one included. */
const benchCpuMs = () => {
  const own = process.cpuUsage()
  let total = (own.user + own.system) / 1000
  for (const p of new Set([upstream, loadgen, ...Object.values(servers)])) {
    try { total += cpuMs(p.pid) } catch { /* exited */ }
  }
  return total
}

/** Runs one load job against `server`, with its CPU time measured around it. */
const measured = async (server, job) => {
  const cpu0 = cpuMs(server.pid)
  const rss0 = rssKiB(server.pid)
  const load0 = cpuMs(loadgen.pid) + (server === upstream ? 0 : cpuMs(upstream.pid))
  const ours0 = benchCpuMs()
  const busy0 = machineBusyMs()
  const result = await loadgen.call({ op: "run", job: { ...job, url: server.url } }, (job.durationMs ?? 60_000) + 60_000)
  const busy1 = machineBusyMs()
  const ours1 = benchCpuMs()
  const cpu1 = cpuMs(server.pid)
  const load1 = cpuMs(loadgen.pid) + (server === upstream ? 0 : cpuMs(upstream.pid))
  const served = result.ok ?? 0
  const cpu = cpu1 - cpu0
  await sleep(P.pauseMs)
  noise.push(Math.max(0, (busy1 - busy0) - (ours1 - ours0)) / Math.max(1, result.elapsedMs))
  return {
    ...result,
    server: {
      cpuMs: round(cpu, 1),
      cpuPerRequestMs: served > 0 ? round(cpu / served, 4) : undefined,
      cpuUtilization: result.elapsedMs > 0 ? round(cpu / result.elapsedMs, 3) : undefined,
      rssKiBBefore: rss0,
      rssKiBAfter: rssKiB(server.pid)
    },
    // The load generator and the upstream share the other CPU: near 1.0 here means the load
    // side, not the server under test, bounded the run.
    loadCpuUtilization: result.elapsedMs > 0 ? round((load1 - load0) / result.elapsedMs, 3) : undefined,
    // CPUs' worth of work by processes outside the bench during the run: the noise it suffered.
    otherCpu: result.elapsedMs > 0 ? round(Math.max(0, (busy1 - busy0) - (ours1 - ours0)) / result.elapsedMs, 3) : undefined
  }
}

/** Interleaved rounds: for each round, every target in turn (A B A B …). */
const interleaved = async (names, job) => {
  const rounds = {}
  for (const n of names) rounds[n] = []
  for (let r = 0; r < P.rounds; r++) {
    for (const n of names) {
      log(`  round ${r + 1}/${P.rounds}: ${n}`)
      rounds[n].push(await measured(servers[n], job))
    }
  }
  return rounds
}

const targetNames = () => Object.keys(servers).filter((n) => n !== "direct")

// --- the cases ---------------------------------------------------------------------------
const cases = {
  throughput: async () => {
    const rounds = await interleaved(targetNames(), { kind: "closed", stream: false, ...P.throughput })
    const summary = {}
    for (const [n, rs] of Object.entries(rounds)) {
      summary[n] = {
        rps: median(rs.map((r) => r.rps)),
        cpuPerRequestMs: median(rs.map((r) => r.server.cpuPerRequestMs)),
        cpuUtilization: median(rs.map((r) => r.server.cpuUtilization)),
        loadCpuUtilization: median(rs.map((r) => r.loadCpuUtilization)),
        otherCpu: Math.max(...rs.map((r) => r.otherCpu ?? 0)),
        p50Ms: median(rs.map((r) => r.latencyMs.p50)),
        p99Ms: median(rs.map((r) => r.latencyMs.p99)),
        errors: rs.reduce((a, r) => a + r.errors, 0)
      }
    }
    return { params: P.throughput, rounds, summary }
  },

  latency: async () => {
    const names = ["direct", ...targetNames()]
    const rounds = await interleaved(names, { kind: "open", stream: false, ...P.latency })
    const summary = {}
    for (const [n, rs] of Object.entries(rounds)) {
      summary[n] = {
        p50Ms: median(rs.map((r) => r.latencyMs.p50)),
        p90Ms: median(rs.map((r) => r.latencyMs.p90)),
        p99Ms: median(rs.map((r) => r.latencyMs.p99)),
        maxMs: median(rs.map((r) => r.latencyMs.max)),
        achievedRps: median(rs.map((r) => r.rps)),
        cpuPerRequestMs: median(rs.map((r) => r.server.cpuPerRequestMs)),
        sendLagP99Ms: median(rs.map((r) => r.sendLagMs.p99)),
        errors: rs.reduce((a, r) => a + r.errors + r.dropped + r.timedOut, 0)
      }
    }
    return { params: P.latency, rounds, summary }
  },

  streaming: async () => {
    const names = ["direct", ...targetNames()]
    const ttfb = await interleaved(names, { kind: "open", stream: true, rate: P.streaming.ttfbRate, durationMs: P.streaming.ttfbMs })
    const tput = await interleaved(targetNames(), { kind: "closed", stream: true, concurrency: P.streaming.concurrency, durationMs: P.streaming.durationMs })
    const summary = {}
    for (const n of names) {
      summary[n] = {
        ttfbP50Ms: median(ttfb[n].map((r) => r.ttfbMs.p50)),
        ttfbP99Ms: median(ttfb[n].map((r) => r.ttfbMs.p99)),
        streamP50Ms: median(ttfb[n].map((r) => r.latencyMs.p50)),
        eventsPerStream: median(ttfb[n].map((r) => (r.ok > 0 ? (r.eventsPerSec * r.elapsedMs) / 1000 / r.ok : undefined))),
        errors: ttfb[n].reduce((a, r) => a + r.errors + r.dropped + r.timedOut, 0)
      }
      if (tput[n] !== undefined) {
        Object.assign(summary[n], {
          streamsPerSec: median(tput[n].map((r) => r.rps)),
          eventsPerSec: median(tput[n].map((r) => r.eventsPerSec)),
          cpuPerStreamMs: median(tput[n].map((r) => r.server.cpuPerRequestMs)),
          errors: summary[n].errors + tput[n].reduce((a, r) => a + r.errors, 0)
        })
      }
    }
    return { params: P.streaming, rounds: { ttfb, throughput: tput }, summary }
  },

  memory: async () => {
    const { streams, chunkDelayMs, settleMs } = P.memory
    await upstream.call({ op: "setDefault", behavior: { chunkDelayMs, words: 1_000 } })
    const rounds = {}
    try {
      for (const n of targetNames()) rounds[n] = { idle: await servers[n].memory(), rounds: [] }
      for (let r = 0; r < P.rounds; r++) {
        for (const n of targetNames()) {
          log(`  round ${r + 1}/${P.rounds}: ${n} (${streams} streams)`)
          const s = servers[n]
          const before = await s.memory()
          const opened = await loadgen.call({ op: "run", job: { kind: "hold-open", url: s.url, count: streams, timeoutMs: 60_000 } }, 120_000)
          await sleep(settleMs)
          // RSS as the OS sees it with every stream open, then the heap they retain after a GC.
          const openRssKiB = rssKiB(s.pid)
          const open = await s.memory()
          const closed = await loadgen.call({ op: "run", job: { kind: "hold-close" } }, 60_000)
          await sleep(settleMs)
          const after = await s.memory()
          rounds[n].rounds.push({ before, openRssKiB, open, after, ...opened, closed: closed.closed })
        }
      }
    } finally {
      await upstream.call({ op: "reset" })
    }
    const summary = {}
    for (const [n, m] of Object.entries(rounds)) {
      const rs = m.rounds
      const first = rs[0]
      const last = rs[rs.length - 1]
      const kib = (bytes) => bytes / 1024
      summary[n] = {
        streams,
        established: Math.min(...rs.map((r) => r.established)),
        idleRssKiB: round(kib(m.idle?.rss ?? Number.NaN), 0),
        openRssKiB: rs.map((r) => r.openRssKiB),
        // RSS added per open stream in the first round, from the idle process after warm-up
        // (later rounds reuse pages the first one committed, so they would under-report).
        perStreamKiB: round((first.openRssKiB - kib(m.idle?.rss ?? Number.NaN)) / first.established, 2),
        // Live heap per open stream after a full GC, median over rounds.
        heapPerStreamKiB: round(median(rs.map((r) => (r.open && r.before ? kib(r.open.heapUsed - r.before.heapUsed) / r.established : undefined))), 2),
        heapAfterKiB: rs.map((r) => round(kib(r.after?.heapUsed ?? Number.NaN), 0)),
        rssAfterKiB: rs.map((r) => round(kib(r.after?.rss ?? Number.NaN), 0)),
        // Growth: the live heap once every stream is closed, last round against the first.
        heapGrowthRatio: rs.length > 1 && first.after && last.after ? round(last.after.heapUsed / first.after.heapUsed, 3) : undefined
      }
    }
    return { params: P.memory, rounds, summary }
  },

  policy: async () => {
    const steps = []
    for (let i = 0; i < P.policy.iterations; i++) {
      steps.push(
        { label: "plain", stream: false },
        { label: "plain", stream: false },
        { label: "retried", stream: false, script: [{ status: 503 }] },
        { label: "stream", stream: true },
        { label: "stream", stream: true },
        { label: "resumed", stream: true, script: [{ cutAfterChunks: P.policy.cutAfterChunks }] },
        { label: "retried-1ms-backoff", stream: false, model: "bench-model-fast-retry", script: [{ status: 503 }] }
      )
    }
    const result = {}
    const undisturbed = steps.filter((s) => s.script === undefined)
    for (const n of targetNames()) {
      log(`  ${n}`)
      // The bare proxy has no policy to exercise: it runs the undisturbed requests only.
      const job = { kind: "sequence", url: servers[n].url, steps: n === "gateway" ? steps : undisturbed, maxMs: 300_000 }
      result[n] = await loadgen.call({ op: "run", job }, 330_000)
      await upstream.call({ op: "reset" })
    }
    const summary = {}
    for (const [n, r] of Object.entries(result)) {
      summary[n] = {}
      for (const [label, v] of Object.entries(r)) {
        summary[n][label] = { p50Ms: v.latencyMs.p50, p99Ms: v.latencyMs.p99, ttfbP50Ms: v.ttfbMs.p50, eventsP50: v.events.p50, ok: v.ok, errors: v.errors }
      }
    }
    return { params: P.policy, rounds: result, summary }
  }
}

// --- the table ---------------------------------------------------------------------------
const fmt = (x, d = 2) => (x === undefined || x === null || Number.isNaN(x) ? "—" : typeof x === "number" ? x.toFixed(d) : String(x))

const buildRows = (results) => {
  const rows = []
  const row = (kase, metric, v, check) => rows.push({ case: kase, metric, ...v, ...check })
  const gwOk = servers.gateway !== undefined
  const cmp = (kind, base, gw, limit) => {
    if (!gwOk || base === undefined || gw === undefined) return { vsBaseline: gwOk ? "—" : "pending", target: limit.text, pass: gwOk ? undefined : "pending" }
    if (kind === "ratio-min") { const v = gw / base; return { vsBaseline: `${fmt(v)}×`, target: limit.text, pass: v >= limit.value } }
    if (kind === "ratio-max") { const v = gw / base; return { vsBaseline: `${fmt(v)}×`, target: limit.text, pass: v <= limit.value } }
    const d = gw - base
    return { vsBaseline: `${d >= 0 ? "+" : ""}${fmt(d, 3)} ms`, target: limit.text, pass: d <= limit.value }
  }
  const t = results.throughput?.summary
  if (t !== undefined) {
    row("throughput (c=64)", "req/s", { baseline: fmt(t.baseline?.rps, 0), gateway: fmt(t.gateway?.rps, 0) }, cmp("ratio-min", t.baseline?.rps, t.gateway?.rps, { text: "≥ 0.70×", value: 0.7 }))
    row("throughput (c=64)", "server CPU ms/req", { baseline: fmt(t.baseline?.cpuPerRequestMs, 4), gateway: fmt(t.gateway?.cpuPerRequestMs, 4) }, cmp("ratio-max", t.baseline?.cpuPerRequestMs, t.gateway?.cpuPerRequestMs, { text: "≤ 1.50×", value: 1.5 }))
    row("throughput (c=64)", "server CPU utilisation", { baseline: fmt(t.baseline?.cpuUtilization), gateway: fmt(t.gateway?.cpuUtilization) }, { vsBaseline: "", target: "(1.00 = core saturated)" })
    row("throughput (c=64)", "other processes' CPU (noise, max)", { baseline: fmt(t.baseline?.otherCpu), gateway: fmt(t.gateway?.otherCpu) }, { vsBaseline: "", target: "(0 = quiet machine)" })
    row("throughput (c=64)", "load-side CPU utilisation", { baseline: fmt(t.baseline?.loadCpuUtilization), gateway: fmt(t.gateway?.loadCpuUtilization) }, { vsBaseline: "", target: "(loadgen + upstream)" })
  }
  const l = results.latency?.summary
  if (l !== undefined) {
    row("latency (500 req/s open)", "p50 ms", { direct: fmt(l.direct?.p50Ms, 3), baseline: fmt(l.baseline?.p50Ms, 3), gateway: fmt(l.gateway?.p50Ms, 3) }, cmp("diff", l.baseline?.p50Ms, l.gateway?.p50Ms, { text: "≤ +0.3 ms", value: 0.3 }))
    row("latency (500 req/s open)", "p90 ms", { direct: fmt(l.direct?.p90Ms, 3), baseline: fmt(l.baseline?.p90Ms, 3), gateway: fmt(l.gateway?.p90Ms, 3) }, cmp("diff", l.baseline?.p90Ms, l.gateway?.p90Ms, { text: "", value: Infinity }))
    row("latency (500 req/s open)", "p99 ms", { direct: fmt(l.direct?.p99Ms, 3), baseline: fmt(l.baseline?.p99Ms, 3), gateway: fmt(l.gateway?.p99Ms, 3) }, cmp("diff", l.baseline?.p99Ms, l.gateway?.p99Ms, { text: "≤ +2 ms", value: 2 }))
    row("latency (500 req/s open)", "server CPU ms/req", { baseline: fmt(l.baseline?.cpuPerRequestMs, 4), gateway: fmt(l.gateway?.cpuPerRequestMs, 4) }, cmp("ratio-max", l.baseline?.cpuPerRequestMs, l.gateway?.cpuPerRequestMs, { text: "", value: Infinity }))
  }
  const s = results.streaming?.summary
  if (s !== undefined) {
    row("streaming (50 chunks)", "TTFB p50 ms (100 streams/s)", { direct: fmt(s.direct?.ttfbP50Ms, 3), baseline: fmt(s.baseline?.ttfbP50Ms, 3), gateway: fmt(s.gateway?.ttfbP50Ms, 3) }, cmp("diff", s.baseline?.ttfbP50Ms, s.gateway?.ttfbP50Ms, { text: "≤ +0.5 ms", value: 0.5 }))
    row("streaming (50 chunks)", "TTFB p99 ms", { direct: fmt(s.direct?.ttfbP99Ms, 3), baseline: fmt(s.baseline?.ttfbP99Ms, 3), gateway: fmt(s.gateway?.ttfbP99Ms, 3) }, cmp("diff", s.baseline?.ttfbP99Ms, s.gateway?.ttfbP99Ms, { text: "", value: Infinity }))
    row("streaming (50 chunks)", "streams/s (c=64)", { baseline: fmt(s.baseline?.streamsPerSec, 0), gateway: fmt(s.gateway?.streamsPerSec, 0) }, cmp("ratio-min", s.baseline?.streamsPerSec, s.gateway?.streamsPerSec, { text: "≥ 0.70×", value: 0.7 }))
    row("streaming (50 chunks)", "chunks/s (c=64)", { baseline: fmt(s.baseline?.eventsPerSec, 0), gateway: fmt(s.gateway?.eventsPerSec, 0) }, cmp("ratio-min", s.baseline?.eventsPerSec, s.gateway?.eventsPerSec, { text: "", value: 0 }))
    row("streaming (50 chunks)", "server CPU ms/stream", { baseline: fmt(s.baseline?.cpuPerStreamMs, 4), gateway: fmt(s.gateway?.cpuPerStreamMs, 4) }, cmp("ratio-max", s.baseline?.cpuPerStreamMs, s.gateway?.cpuPerStreamMs, { text: "", value: Infinity }))
  }
  const m = results.memory?.summary
  if (m !== undefined) {
    const n = m.baseline?.streams ?? m.gateway?.streams
    const kb = (x) => (x === undefined ? undefined : (x * 1024) / 1000)
    rows.push({ case: `memory (${n} open streams)`, metric: "RSS per stream KB", baseline: fmt(kb(m.baseline?.perStreamKiB), 1), gateway: fmt(kb(m.gateway?.perStreamKiB), 1), vsBaseline: gwOk ? "" : "pending", target: "≤ 30 KB", pass: gwOk ? (m.gateway?.perStreamKiB !== undefined ? kb(m.gateway.perStreamKiB) <= 30 : undefined) : "pending" })
    rows.push({ case: `memory (${n} open streams)`, metric: "live heap per stream KB (after GC)", baseline: fmt(kb(m.baseline?.heapPerStreamKiB), 1), gateway: fmt(kb(m.gateway?.heapPerStreamKiB), 1), vsBaseline: "", target: "" })
    rows.push({ case: `memory (${n} open streams)`, metric: "heap after close, last/first round", baseline: fmt(m.baseline?.heapGrowthRatio, 3), gateway: fmt(m.gateway?.heapGrowthRatio, 3), vsBaseline: gwOk ? "" : "pending", target: "≤ 1.10 (no growth)", pass: gwOk ? (m.gateway?.heapGrowthRatio !== undefined ? m.gateway.heapGrowthRatio <= 1.1 : undefined) : "pending" })
    rows.push({ case: `memory (${n} open streams)`, metric: "streams established", baseline: fmt(m.baseline?.established, 0), gateway: fmt(m.gateway?.established, 0), vsBaseline: "", target: `${n}`, pass: gwOk ? m.gateway?.established === n : "pending" })
  }
  const p = results.policy?.summary
  if (p !== undefined) {
    const g = p.gateway
    const b = p.baseline
    const added = (x, y) => (x === undefined || y === undefined ? "—" : `+${fmt(x - y, 3)} ms`)
    rows.push({ case: "policy in action (p50)", metric: "non-streaming, undisturbed ms", baseline: fmt(b?.plain?.p50Ms, 3), gateway: fmt(g?.plain?.p50Ms, 3), vsBaseline: gwOk ? "" : "pending", target: "" })
    rows.push({ case: "policy in action (p50)", metric: "retried (503, then 200) ms", gateway: fmt(g?.retried?.p50Ms, 3), vsBaseline: gwOk ? added(g?.retried?.p50Ms, g?.plain?.p50Ms) : "pending", target: "(incl. 0–200 ms jittered backoff)", pass: gwOk ? (g?.retried?.errors === 0 && g?.retried?.ok > 0) : "pending" })
    rows.push({ case: "policy in action (p50)", metric: "retried, 1 ms backoff route ms", gateway: fmt(g?.["retried-1ms-backoff"]?.p50Ms, 3), vsBaseline: gwOk ? added(g?.["retried-1ms-backoff"]?.p50Ms, g?.plain?.p50Ms) : "pending", target: "(the machinery alone)", pass: gwOk ? (g?.["retried-1ms-backoff"]?.errors === 0 && g?.["retried-1ms-backoff"]?.ok > 0) : "pending" })
    rows.push({ case: "policy in action (p50)", metric: "stream, undisturbed ms", baseline: fmt(b?.stream?.p50Ms, 3), gateway: fmt(g?.stream?.p50Ms, 3), vsBaseline: "", target: "" })
    rows.push({ case: "policy in action (p50)", metric: `resumed (cut after ${P.policy.cutAfterChunks}) ms`, gateway: fmt(g?.resumed?.p50Ms, 3), vsBaseline: gwOk ? added(g?.resumed?.p50Ms, g?.stream?.p50Ms) : "pending", target: "", pass: gwOk ? (g?.resumed?.errors === 0 && g?.resumed?.ok > 0) : "pending" })
  }
  if (noise.length > 0) {
    const sorted = [...noise].sort((a, b) => a - b)
    rows.push({ case: "machine", metric: "other processes' CPU during runs (median / max)", baseline: `${fmt(sorted[Math.floor(sorted.length / 2)])} / ${fmt(sorted[sorted.length - 1])}`, vsBaseline: "", target: "(CPUs; 0 = quiet)" })
  }
  return rows
}

const printTable = (rows) => {
  const cols = [["case", "case"], ["metric", "metric"], ["direct", "direct"], ["baseline", "baseline"], ["gateway", "gateway"], ["vsBaseline", "gateway vs baseline"], ["target", "target"], ["pass", "pass"]]
  const cell = (r, k) => {
    const v = r[k]
    if (k === "pass") return v === true ? "PASS" : v === false ? "FAIL" : v === "pending" ? "pending" : ""
    return v === undefined ? "" : String(v)
  }
  const widths = cols.map(([k, h]) => Math.max(h.length, ...rows.map((r) => cell(r, k).length)))
  const line = (vals) => `| ${vals.map((v, i) => v.padEnd(widths[i])).join(" | ")} |`
  const out = [line(cols.map(([, h]) => h)), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`]
  for (const r of rows) out.push(line(cols.map(([k]) => cell(r, k))))
  return out.join("\n")
}

// --- main --------------------------------------------------------------------------------
const main = async () => {
  const result = {
    startedAt: startedAt.toISOString(),
    command: `node bench/run.mjs ${process.argv.slice(2).join(" ")}`.trim(),
    machine: { nproc, cpuModel, node: process.version, platform: `${process.platform} ${process.arch}`, pinned: pin, layout: pin ? "server under test on CPU 0; load generator, upstream and orchestrator on CPU 1" : "unpinned" },
    params: P,
    targets: {},
    cases: {}
  }
  log(`bench: ${nproc} CPUs (${cpuModel}), Node ${process.version}, ${pin ? "pinned" : "unpinned"}${quick ? ", quick" : ""}`)

  upstream = await startNode({
    name: "upstream",
    args: [join(BENCH, "upstream.mjs"), "--words", String(P.streaming.chunks), "--impl", flags["upstream-impl"]],
    cpu: LOAD_CPU,
    ipc: true,
    ready: /upstream listening on (http:\/\/\S+)/
  })
  result.upstream = { url: upstream.url, impl: /\((\w+)\)/.exec(upstream.output())?.[1] }
  log(`bench: upstream ${upstream.url} (${result.upstream.impl})`)
  servers.direct = upstream

  loadgen = await startNode({ name: "loadgen", args: [join(BENCH, "loadgen.mjs")], cpu: LOAD_CPU, ipc: true, ready: /^loadgen (ready)/ })
  loadgen.onMessage(async (msg) => {
    if (msg.op !== "upstream") return
    try {
      const value = await upstream.call(msg.msg)
      loadgen.send({ rid: msg.rid, ok: true, value })
    } catch (error) {
      loadgen.send({ rid: msg.rid, ok: false, error: String(error.message) })
    }
  })

  for (const name of flags.targets.split(",").map((s) => s.trim()).filter(Boolean)) {
    const start = TARGETS[name]
    if (start === undefined) throw new Error(`unknown target "${name}" (targets: ${Object.keys(TARGETS).join(", ")})`)
    try {
      const server = await start({ upstream })
      // A target must answer correctly before it is measured.
      const plain = await loadgen.call({ op: "run", job: { kind: "probe", url: server.url } })
      const stream = await loadgen.call({ op: "run", job: { kind: "probe", url: server.url, stream: true } })
      if (plain.status !== 200 || !plain.body.includes("choices")) throw new Error(`non-streaming probe answered ${plain.status}: ${plain.body.slice(0, 300)}`)
      if (stream.status !== 200 || !stream.body.includes("data:")) throw new Error(`streaming probe answered ${stream.status}: ${stream.body.slice(0, 300)}`)
      servers[name] = server
      result.targets[name] = { ok: true, url: server.url, pid: server.pid, probe: { streamTail: stream.body.slice(-200) } }
      log(`bench: ${name} ${server.url} (pid ${server.pid})`)
    } catch (error) {
      result.targets[name] = { ok: false, error: String(error.message) }
      log(`bench: ${name} unavailable, its rows are pending: ${error.message}`)
    }
  }
  if (targetNames().length === 0) throw new Error("no target started")

  log(`bench: warm-up ${P.warmupMs} ms per target`)
  for (const n of targetNames()) {
    await loadgen.call({ op: "run", job: { kind: "closed", url: servers[n].url, stream: false, concurrency: 64, durationMs: P.warmupMs } })
    await loadgen.call({ op: "run", job: { kind: "closed", url: servers[n].url, stream: true, concurrency: 16, durationMs: Math.ceil(P.warmupMs / 2) } })
  }

  for (const name of only) {
    log(`bench: ${name}`)
    const t0 = Date.now()
    try {
      result.cases[name] = await cases[name]()
    } catch (error) {
      result.cases[name] = { error: String(error.stack ?? error) }
      log(`bench: ${name} failed: ${error.message}`)
    }
    result.cases[name].wallMs = Date.now() - t0
  }

  if (servers.gateway !== undefined) {
    try {
      const res = await fetch(`${servers.gateway.url}/metrics`, { signal: AbortSignal.timeout(5_000) })
      result.gatewayMetrics = await res.text()
    } catch { /* the metrics scrape is a convenience */ }
  }

  result.table = buildRows(result.cases)
  const table = printTable(result.table)
  process.stdout.write(`\n${table}\n\n`)
  const failed = result.table.filter((r) => r.pass === false).length
  result.finishedAt = new Date().toISOString()
  const out = flags.out ?? join(BENCH, "results", `${stamp}.json`)
  mkdirSync(join(out, ".."), { recursive: true })
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`)
  process.stdout.write(`raw results: ${out}${failed > 0 ? ` (${failed} target${failed > 1 ? "s" : ""} missed)` : ""}\n`)
  return result
}

let exitCode = 0
try {
  await main()
} catch (error) {
  log(`bench failed: ${error.stack ?? error}`)
  exitCode = 1
} finally {
  await Promise.allSettled([...Object.values(servers), loadgen].filter((s) => s !== undefined).map((s) => s.stop(3_000)))
}
process.exit(exitCode)
