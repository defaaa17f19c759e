#!/usr/bin/env node
/**
 * `npm run bench`: Breakwater's reference server against a bare pass-through proxy, on
 * loopback, interleaved so noise hits both. See BENCHMARKS.md.
 *
 *   node bench/run.mjs [--quick] [--only <case>[,<case>]] [--targets baseline,floor,gateway]
 *                      [--rounds N] [--streams N] [--trickle-streams N] [--out file.json]
 *                      [--cpu-prof] [--no-pin] [--upstream-impl auto|mock|fast] [--telemetry]
 *                      [--node-flags="<flags for every server under test>"]
 *
 * Cases: throughput, latency, streaming, burst, trickle, memory, policy. Targets: the bare proxy
 * (`baseline`, the yardstick), the floor gateway (`floor`: plain Node that parses the traffic,
 * no policies) and Breakwater's reference server (`gateway`), judged by issue #19's must/aim
 * targets. `floor-journal` (not in the default targets) is the floor that also journals its
 * streams as plainly as Node allows (`BENCH_FLOOR_JOURNAL=1`, see floor-gateway.mjs): what the
 * gateway's reconnect journal, on by default, is to be read against
 * (`--only burst --targets baseline,floor,floor-journal,gateway`).
 *
 * An A/B of two builds in one interleaved run: `BENCH_AB_MAIN=<other build's
 * examples/reference-server/dist/main.js>` runs that reference server in the `floor` column
 * (the table still calls it "floor"), with `BENCH_AB_ENV=K=V,…` added to its environment.
 * Two builds measured in separate runs differ by more than most changes do (the machine's speed
 * drifts by tens of percent within minutes).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { cpus, tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { parseArgs } from "node:util"
import { setTimeout as sleep } from "node:timers/promises"
import { gatewayConfig } from "./internal/gateway-config.mjs"
import { canPin, cpuMs, machineBusyMs, pinPid, rssKiB, startNode } from "./internal/procs.mjs"

const ROOT = fileURLToPath(new URL("..", import.meta.url))
const BENCH = join(ROOT, "bench")
const GUARD = pathToFileURL(join(BENCH, "internal", "orphan-guard.mjs")).href
const GATEWAY_MAIN = join(ROOT, "examples", "reference-server", "dist", "main.js")

const { values: flags } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    only: { type: "string" },
    targets: { type: "string", default: "baseline,floor,gateway" },
    rounds: { type: "string" },
    streams: { type: "string" },
    "trickle-streams": { type: "string" },
    out: { type: "string" },
    "cpu-prof": { type: "boolean", default: false },
    telemetry: { type: "boolean", default: false },
    "node-flags": { type: "string", default: "" },
    "no-pin": { type: "boolean", default: false },
    "upstream-impl": { type: "string", default: "auto" }
  }
})

const CASES = ["throughput", "latency", "streaming", "burst", "trickle", "memory", "policy"]
const only = flags.only === undefined ? CASES : flags.only.split(",").map((s) => s.trim())
for (const c of only) if (!CASES.includes(c)) throw new Error(`unknown case "${c}" (cases: ${CASES.join(", ")})`)

const quick = flags.quick
const P = {
  rounds: Number(flags.rounds ?? (quick ? 1 : 3)),
  warmupMs: quick ? 300 : 3_000,
  throughput: { concurrency: 64, durationMs: quick ? 1_000 : 8_000 },
  latency: { rate: 500, durationMs: quick ? 1_000 : 8_000 },
  streaming: { chunks: 50, ttfbRate: 100, ttfbMs: quick ? 1_000 : 6_000, concurrency: 64, durationMs: quick ? 1_000 : 6_000 },
  // The same 50-chunk streams written by the upstream in one write: many events per socket read.
  burst: { chunks: 50, concurrency: 64, durationMs: quick ? 1_000 : 6_000 },
  // Held streams that each get one chunk per interval, opened spread over one interval so the
  // wake-ups spread too; CPU is measured over a fixed window once every stream trickles.
  trickle: { streams: Number(flags["trickle-streams"] ?? (quick ? 50 : 1_000)), intervalMs: 1_000, settleMs: quick ? 1_100 : 2_500, windowMs: quick ? 1_000 : 10_000 },
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
// --node-flags: the same V8/Node flags for every server under test (e.g. a larger young
// generation, "--max-semi-space-size=64"), so the ratios still compare like with like.
const nodeFlags = flags["node-flags"].split(/\s+/).filter((f) => f !== "")
const profArgs = [...nodeFlags, ...(flags["cpu-prof"] ? ["--cpu-prof", `--cpu-prof-dir=${profDir}`] : [])]

// The most streams any case holds open at once: servers and pools are sized for them.
const heldStreams = Math.max(P.memory.streams, P.trickle.streams)

/** The servers under test: adding one is one entry. Each starts a process and returns its handle. */
const benchServer = (name, file, env = {}, says = name) => ({ upstream }) => startNode({
  name,
  args: ["--expose-gc", ...profArgs, join(BENCH, file), "--upstream", upstream.url, "--connections", String(Math.max(8192, heldStreams * 2))],
  cpu: SERVER_CPU,
  env,
  ready: new RegExp(`${says} listening on (http:\\/\\/\\S+)`)
})
const TARGETS = {
  baseline: benchServer("baseline", "baseline-proxy.mjs"),
  // BENCH_AB_MAIN: an A/B of two builds in one interleaved run (see the usage above).
  floor: process.env.BENCH_AB_MAIN === undefined
    ? benchServer("floor", "floor-gateway.mjs")
    : (a) => gatewayTarget(a, "floor", process.env.BENCH_AB_MAIN, abEnv(process.env.BENCH_AB_ENV)),
  "floor-journal": benchServer("floor-journal", "floor-gateway.mjs", { BENCH_FLOOR_JOURNAL: "1" }, "floor"),
  // BENCH_GATEWAY_HOST=platform: the same gateway behind host-platform (informational).
  gateway: (a) => gatewayTarget(a, "gateway", process.env.BENCH_GATEWAY_HOST === "platform" ? join(BENCH, "platform-gateway.mjs") : GATEWAY_MAIN, {})
}
function abEnv(list = "") {
  return Object.fromEntries(list.split(",").filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]))
}
/** A reference server `main` (a build's `examples/reference-server/dist/main.js`) on the bench's config. */
function gatewayTarget({ upstream }, name, main, extraEnv) {
  if (!existsSync(main)) throw new Error(`${main} is missing (run npm run build)`)
  const file = join(tmpdir(), `breakwater-bench-${process.pid}-${name}.json`)
  writeFileSync(file, JSON.stringify(gatewayConfig(upstream.url, heldStreams, { telemetry: flags.telemetry }), null, 2))
  return startNode({
    name,
    args: ["--expose-gc", "--import", GUARD, ...profArgs, main, file],
    cpu: SERVER_CPU,
    env: {
      ...extraEnv,
      BREAKWATER_LOG_LEVEL: "warning",
      ...(otlpSink === undefined ? {} : { OTEL_EXPORTER_OTLP_ENDPOINT: otlpSink.url, OTEL_TRACES_SAMPLER: "always_on" })
    },
    ready: /listening on (http:\/\/[^\s)]+)/
  })
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

/** The same warm-up for every target: non-streaming calls, then streams. */
const warmUp = async (server) => {
  await loadgen.call({ op: "run", job: { kind: "closed", url: server.url, stream: false, concurrency: 64, durationMs: P.warmupMs } })
  await loadgen.call({ op: "run", job: { kind: "closed", url: server.url, stream: true, concurrency: 16, durationMs: Math.ceil(P.warmupMs / 2) } })
}

/** Replaces target `n` with a fresh process of the same kind, warmed up. */
const restart = async (n) => {
  const old = servers[n]
  const exited = new Promise((resolve) => old.child.once("exit", resolve))
  old.child.kill("SIGKILL")
  await exited
  const server = await TARGETS[n]({ upstream })
  await warmUp(server)
  servers[n] = server
  return server
}
/** The OTLP receiver of a `--telemetry` run. */
let otlpSink
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
          eventsPerRead: median(tput[n].map((r) => r.eventsPerRead)),
          cpuUtilization: median(tput[n].map((r) => r.server.cpuUtilization)),
          loadCpuUtilization: median(tput[n].map((r) => r.loadCpuUtilization)),
          errors: summary[n].errors + tput[n].reduce((a, r) => a + r.errors, 0)
        })
      }
    }
    return { params: P.streaming, rounds: { ttfb, throughput: tput }, summary }
  },

  burst: async () => {
    await upstream.call({ op: "setDefault", behavior: { burst: true } })
    const before = await upstream.call({ op: "stats" })
    let rounds
    let after
    try {
      rounds = await interleaved(targetNames(), { kind: "closed", stream: true, concurrency: P.burst.concurrency, durationMs: P.burst.durationMs })
    } finally {
      after = await upstream.call({ op: "stats" })
      await upstream.call({ op: "reset" })
    }
    // Every response of the case should have been written in one piece.
    const upstreamStats = { served: after.served - before.served, bursts: after.bursts - before.bursts }
    const summary = {}
    for (const [n, rs] of Object.entries(rounds)) {
      summary[n] = {
        streamsPerSec: median(rs.map((r) => r.rps)),
        eventsPerSec: median(rs.map((r) => r.eventsPerSec)),
        eventsPerStream: median(rs.map((r) => (r.ok > 0 ? (r.eventsPerSec * r.elapsedMs) / 1000 / r.ok : undefined))),
        eventsPerRead: median(rs.map((r) => r.eventsPerRead)),
        cpuPerStreamMs: median(rs.map((r) => r.server.cpuPerRequestMs)),
        cpuUtilization: median(rs.map((r) => r.server.cpuUtilization)),
        loadCpuUtilization: median(rs.map((r) => r.loadCpuUtilization)),
        errors: rs.reduce((a, r) => a + r.errors, 0)
      }
    }
    return { params: P.burst, upstream: upstreamStats, rounds, summary }
  },

  trickle: async () => {
    const { streams, intervalMs, settleMs, windowMs } = P.trickle
    await upstream.call({ op: "setDefault", behavior: { chunkDelayMs: intervalMs, words: 1_000 } })
    const rounds = {}
    for (const n of targetNames()) rounds[n] = []
    try {
      for (let r = 0; r < P.rounds; r++) {
        for (const n of targetNames()) {
          log(`  round ${r + 1}/${P.rounds}: ${n} (${streams} trickling streams)`)
          const s = servers[n]
          const opened = await loadgen.call({ op: "run", job: { kind: "hold-open", url: s.url, count: streams, spreadMs: intervalMs, timeoutMs: 30_000 } }, 60_000)
          // Past one interval every stream trickles; the window then sees the steady state.
          await sleep(settleMs)
          let window
          try {
            window = await measured(s, { kind: "held-window", durationMs: windowMs })
          } finally {
            await loadgen.call({ op: "run", job: { kind: "hold-close" } }, 60_000)
          }
          rounds[n].push({ ...window, established: opened.established, failed: opened.failed, openMs: opened.elapsedMs })
          await sleep(P.pauseMs)
        }
      }
    } finally {
      await upstream.call({ op: "reset" })
    }
    const summary = {}
    for (const [n, rs] of Object.entries(rounds)) {
      summary[n] = {
        streams,
        established: Math.min(...rs.map((r) => r.established)),
        // Server CPU over the window divided by the chunks the clients received in it.
        cpuPerChunkUs: round(median(rs.map((r) => (r.server.cpuPerRequestMs === undefined ? undefined : r.server.cpuPerRequestMs * 1000))), 1),
        chunksPerSec: median(rs.map((r) => r.rps)),
        expectedChunksPerSec: round((streams * 1000) / intervalMs, 0),
        cpuUtilization: median(rs.map((r) => r.server.cpuUtilization)),
        loadCpuUtilization: median(rs.map((r) => r.loadCpuUtilization)),
        otherCpu: Math.max(...rs.map((r) => r.otherCpu ?? 0))
      }
    }
    return { params: P.trickle, rounds, summary }
  },

  memory: async () => {
    const { streams, chunkDelayMs, settleMs } = P.memory
    const rounds = {}
    try {
      for (let r = 0; r < P.rounds; r++) {
        for (const n of targetNames()) {
          log(`  round ${r + 1}/${P.rounds}: ${n} (${streams} streams, fresh process)`)
          // Each round on a fresh, warmed-up process: what earlier cases (or rounds) left behind
          // would otherwise be freed while the streams open and hide their cost. The gateway's
          // journal is the case in point: full of finished streams, it evicts as many as are
          // opened; and a round's detached streams still run into the next.
          await upstream.call({ op: "reset" })
          const s = await restart(n)
          await upstream.call({ op: "setDefault", behavior: { chunkDelayMs, words: 1_000 } })
          const before = await s.memory()
          if (r === 0) rounds[n] = { idle: before, rounds: [] }
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
        // RSS added per open stream in the first round, from the idle process after warm-up.
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
      // Two retried requests in twelve (17%): within the default retry budget (retries up to 20%
      // of the requests), which refuses retries beyond it, as it should, and would turn the
      // case's retried requests into 503s (it did at two in seven).
      steps.push(
        { label: "plain", stream: false },
        { label: "plain", stream: false },
        { label: "plain", stream: false },
        { label: "retried", stream: false, script: [{ fault: { _tag: "Status", status: 503 } }] },
        { label: "stream", stream: true },
        { label: "stream", stream: true },
        { label: "stream", stream: true },
        { label: "resumed", stream: true, script: [{ fault: { _tag: "Cut", afterChunks: P.policy.cutAfterChunks } }] },
        { label: "plain", stream: false },
        { label: "plain", stream: false },
        { label: "retried-1ms-backoff", stream: false, model: "bench-model-fast-retry", script: [{ fault: { _tag: "Status", status: 503 } }] },
        { label: "stream", stream: true }
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

/**
 * Issue #19's targets, ratios or differences to the same-run bare proxy: `must` decides PASS or
 * FAIL, `aim` is shown beside it. `ratio-min`/`ratio-max` divide by the baseline, `diff`
 * subtracts it (ms), `max` is an absolute bound.
 */
const GOALS = {
  throughput: { kind: "ratio-min", must: 0.5, aim: 0.7 },
  cpuPerRequest: { kind: "ratio-max", must: 2, aim: 1.5 },
  p50Added: { kind: "diff", must: 0.3, aim: 0.2 },
  p99Added: { kind: "diff", must: 5, aim: 2 },
  ttfbAdded: { kind: "diff", must: 1, aim: 0.5 },
  streamsPerSec: { kind: "ratio-min", must: 0.5, aim: 0.7 },
  cpuPerChunk: { kind: "ratio-max", must: 3, aim: 1.5 },
  heapPerStream: { kind: "max", must: 40, aim: 25, unit: "KB" }
}
const goalText = (g, v) =>
  g.kind === "ratio-min" ? `≥ ${fmt(v)}×` : g.kind === "ratio-max" ? `≤ ${fmt(v)}×` : g.kind === "diff" ? `≤ +${v} ms` : `≤ ${v} ${g.unit}`
const COLUMNS = ["direct", "baseline", "floor", "floor-journal", "gateway"]

const buildRows = (results) => {
  const rows = []
  const inRun = (n) => n === "direct" || servers[n] !== undefined
  const gwOk = servers.gateway !== undefined
  /** How `x` compares with the baseline's `base`: a ratio or an added time. */
  const versus = (kind, base, x) => {
    if (kind === undefined || kind === "max") return ""
    if (base === undefined || x === undefined) return "—"
    if (kind === "diff") {
      const d = x - base
      return `${d >= 0 ? "+" : ""}${fmt(d, 3)} ms`
    }
    return base === 0 ? "—" : `${fmt(x / base)}×`
  }
  const meets = (g, limit, base, x) => {
    if (x === undefined || (g.kind !== "max" && base === undefined)) return false
    if (g.kind === "ratio-min") return x / base >= limit
    if (g.kind === "ratio-max") return x / base <= limit
    if (g.kind === "diff") return x - base <= limit
    return x <= limit
  }
  /**
   * One row: `v` holds the figures per column (`COLUMNS`); with a
   * `goal` the gateway is judged against it (`also`: a further condition for PASS), `compare`
   * only shows the ratios/differences, `note` explains an informational row.
   */
  const row = (kase, metric, v, { digits = 2, goal, compare = goal?.kind, note = "", also = true } = {}) => {
    const r = { case: kase, metric }
    for (const k of COLUMNS) r[k] = k in v && inRun(k) ? fmt(v[k], digits) : ""
    r.floorVsBaseline = servers.floor !== undefined ? versus(compare, v.baseline, v.floor) : ""
    r.floorJournalVsBaseline = servers["floor-journal"] !== undefined ? versus(compare, v.baseline, v["floor-journal"]) : ""
    r.vsBaseline = gwOk ? versus(compare, v.baseline, v.gateway) : goal !== undefined ? "pending" : ""
    r.must = goal !== undefined ? goalText(goal, goal.must) : note
    r.pass = goal === undefined ? undefined : gwOk ? also && meets(goal, goal.must, v.baseline, v.gateway) : "pending"
    r.aim = goal !== undefined ? goalText(goal, goal.aim) : ""
    r.aimMet = goal === undefined || !gwOk ? undefined : also && meets(goal, goal.aim, v.baseline, v.gateway)
    rows.push(r)
  }
  // The upstream (`direct`) has a column only where it was measured.
  const pick = (summary, key) =>
    Object.fromEntries(COLUMNS.filter((k) => summary[k] !== undefined && (k !== "direct" || summary[k][key] !== undefined)).map((k) => [k, summary[k][key]]))

  /** The closed-loop streaming rows, for chunks written one by one and back to back alike. */
  const streamRows = (k, summary) => {
    row(k, "streams/s (c=64)", pick(summary, "streamsPerSec"), { digits: 0, goal: GOALS.streamsPerSec })
    row(k, "chunks/s (c=64)", pick(summary, "eventsPerSec"), { digits: 0, compare: "ratio" })
    row(k, "server CPU ms/stream", pick(summary, "cpuPerStreamMs"), { digits: 4, compare: "ratio" })
    row(k, "SSE events per client read", pick(summary, "eventsPerRead"), { note: "(how the server's writes arrive)" })
    // A bare proxy that does not saturate its core while the load side does was bounded by the
    // load side: its streams/s, and every ratio to it, are then understated.
    row(k, "server CPU utilisation (c=64)", pick(summary, "cpuUtilization"), { note: "(1.00 = core saturated)" })
    row(k, "load-side CPU utilisation (c=64)", pick(summary, "loadCpuUtilization"), { note: "(loadgen + upstream)" })
  }

  const t = results.throughput?.summary
  if (t !== undefined) {
    const k = "throughput (c=64)"
    row(k, "req/s", pick(t, "rps"), { digits: 0, goal: GOALS.throughput })
    row(k, "server CPU ms/req", pick(t, "cpuPerRequestMs"), { digits: 4, goal: GOALS.cpuPerRequest })
    row(k, "server CPU utilisation", pick(t, "cpuUtilization"), { note: "(1.00 = core saturated)" })
    row(k, "other processes' CPU (noise, max)", pick(t, "otherCpu"), { note: "(0 = quiet machine)" })
    row(k, "load-side CPU utilisation", pick(t, "loadCpuUtilization"), { note: "(loadgen + upstream)" })
  }
  const l = results.latency?.summary
  if (l !== undefined) {
    const k = "latency (500 req/s open)"
    row(k, "p50 ms", pick(l, "p50Ms"), { digits: 3, goal: GOALS.p50Added })
    row(k, "p90 ms", pick(l, "p90Ms"), { digits: 3, compare: "diff" })
    row(k, "p99 ms", pick(l, "p99Ms"), { digits: 3, goal: GOALS.p99Added })
    row(k, "server CPU ms/req", pick(l, "cpuPerRequestMs"), { digits: 4, compare: "ratio" })
  }
  const s = results.streaming?.summary
  if (s !== undefined) {
    const k = "streaming (50 chunks)"
    row(k, "TTFB p50 ms (100 streams/s)", pick(s, "ttfbP50Ms"), { digits: 3, goal: GOALS.ttfbAdded })
    row(k, "TTFB p99 ms", pick(s, "ttfbP99Ms"), { digits: 3, compare: "diff" })
    streamRows(k, s)
  }
  const bu = results.burst?.summary
  if (bu !== undefined) streamRows("streaming (50 chunks back to back)", bu)
  const tr = results.trickle?.summary
  if (tr !== undefined) {
    const any = Object.values(tr)[0]
    const k = `trickle (${any.streams} streams, 1 chunk/${P.trickle.intervalMs / 1000} s)`
    row(k, "server CPU µs per delivered chunk", pick(tr, "cpuPerChunkUs"), { digits: 1, goal: GOALS.cpuPerChunk, also: tr.gateway?.established === any.streams })
    row(k, `chunks delivered/s (expected ${any.expectedChunksPerSec})`, pick(tr, "chunksPerSec"), { digits: 0, compare: "ratio" })
    row(k, "streams established", pick(tr, "established"), { digits: 0, note: `(${any.streams}: all)` })
    row(k, "server CPU utilisation", pick(tr, "cpuUtilization"), { note: "(1.00 = core saturated)" })
  }
  const m = results.memory?.summary
  if (m !== undefined) {
    const n = Object.values(m)[0].streams
    const k = `memory (${n} open streams)`
    const kb = (x) => (x === undefined ? undefined : (x * 1024) / 1000)
    const inKB = (key) => Object.fromEntries(Object.entries(pick(m, key)).map(([c, x]) => [c, kb(x)]))
    row(k, "live heap per stream KB (after GC)", inKB("heapPerStreamKiB"), { digits: 1, goal: GOALS.heapPerStream, also: m.gateway?.established === n })
    row(k, "streams established", pick(m, "established"), { digits: 0, note: `(all ${n}, for the heap row)` })
    row(k, "RSS per stream KB", inKB("perStreamKiB"), { digits: 1, note: "(info)" })
    row(k, "heap after close, last/first round", pick(m, "heapGrowthRatio"), { digits: 3, note: "(≈ 1: no growth; the gateway's journal keeps finished streams)" })
  }
  const p = results.policy?.summary
  if (p !== undefined) {
    const g = p.gateway
    const k = "policy in action (p50)"
    const added = (x, y) => (x === undefined || y === undefined ? "—" : `+${fmt(x - y, 3)} ms`)
    const worked = (x) => (gwOk ? x?.errors === 0 && x?.ok > 0 : "pending")
    const info = (metric, v, extra) => rows.push({ case: k, metric, direct: "", baseline: "", floor: "", gateway: "", floorVsBaseline: "", vsBaseline: "", must: "", aim: "", ...v, ...extra })
    info("non-streaming, undisturbed ms", { baseline: fmt(p.baseline?.plain?.p50Ms, 3), floor: fmt(p.floor?.plain?.p50Ms, 3), gateway: fmt(g?.plain?.p50Ms, 3) })
    info("retried (503, then 200) ms", { gateway: fmt(g?.retried?.p50Ms, 3) }, { vsBaseline: gwOk ? added(g?.retried?.p50Ms, g?.plain?.p50Ms) : "pending", must: "(incl. 0–200 ms jittered backoff)", pass: worked(g?.retried) })
    info("retried, 1 ms backoff route ms", { gateway: fmt(g?.["retried-1ms-backoff"]?.p50Ms, 3) }, { vsBaseline: gwOk ? added(g?.["retried-1ms-backoff"]?.p50Ms, g?.plain?.p50Ms) : "pending", must: "(the machinery alone)", pass: worked(g?.["retried-1ms-backoff"]) })
    info("stream, undisturbed ms", { baseline: fmt(p.baseline?.stream?.p50Ms, 3), floor: fmt(p.floor?.stream?.p50Ms, 3), gateway: fmt(g?.stream?.p50Ms, 3) })
    info(`resumed (cut after ${P.policy.cutAfterChunks}) ms`, { gateway: fmt(g?.resumed?.p50Ms, 3) }, { vsBaseline: gwOk ? added(g?.resumed?.p50Ms, g?.stream?.p50Ms) : "pending", pass: worked(g?.resumed) })
  }
  if (noise.length > 0) {
    const sorted = [...noise].sort((a, b) => a - b)
    rows.push({ case: "machine", metric: "other processes' CPU during runs (median / max)", direct: "", baseline: `${fmt(sorted[Math.floor(sorted.length / 2)])} / ${fmt(sorted[sorted.length - 1])}`, floor: "", gateway: "", floorVsBaseline: "", vsBaseline: "", must: "(CPUs; 0 = quiet)", aim: "" })
  }
  return rows
}

const printTable = (rows) => {
  const cols = [
    ["case", "case"], ["metric", "metric"], ["direct", "direct"], ["baseline", "baseline"], ["floor", "floor"], ["floor-journal", "floor + journal"],
    ["gateway", "gateway"], ["floorVsBaseline", "floor vs baseline"], ["floorJournalVsBaseline", "floor + journal vs baseline"], ["vsBaseline", "gateway vs baseline"], ["must", "must"], ["pass", "pass"], ["aim", "aim"], ["aimMet", "at aim"]
  ]
  const cell = (r, k) => {
    const v = r[k]
    if (k === "pass") return v === true ? "PASS" : v === false ? "FAIL" : v === "pending" ? "pending" : ""
    if (k === "aimMet") return v === true ? "yes" : v === false ? "no" : ""
    return v === undefined ? "" : String(v)
  }
  // A column no row fills (e.g. `floor` when it is not in the run) is left out.
  const shown = cols.filter(([k]) => k === "case" || k === "metric" || rows.some((r) => cell(r, k) !== ""))
  const widths = shown.map(([k, h]) => Math.max(h.length, ...rows.map((r) => cell(r, k).length)))
  const line = (vals) => `| ${vals.map((v, i) => v.padEnd(widths[i])).join(" | ")} |`
  const out = [line(shown.map(([, h]) => h)), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`]
  for (const r of rows) out.push(line(shown.map(([k]) => cell(r, k))))
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

  if (flags.telemetry) {
    otlpSink = await startNode({ name: "otlp-sink", args: [join(BENCH, "internal", "otlp-sink.mjs")], cpu: LOAD_CPU, ready: /otlp sink listening on (http:\/\/\S+)/ })
    log(`bench: telemetry on, spans exported to ${otlpSink.url}`)
  }

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
  for (const n of targetNames()) await warmUp(servers[n])

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
  const belowAim = result.table.filter((r) => r.aimMet === false).length
  result.finishedAt = new Date().toISOString()
  const out = flags.out ?? join(BENCH, "results", `${stamp}.json`)
  mkdirSync(join(out, ".."), { recursive: true })
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`)
  process.stdout.write(`raw results: ${out}${failed > 0 ? ` (${failed} must target${failed > 1 ? "s" : ""} missed)` : ""}${belowAim > 0 ? ` (${belowAim} below aim)` : ""}\n`)
  return result
}

let exitCode = 0
try {
  await main()
} catch (error) {
  log(`bench failed: ${error.stack ?? error}`)
  exitCode = 1
} finally {
  await Promise.allSettled([...Object.values(servers), loadgen, otlpSink].filter((s) => s !== undefined).map((s) => s.stop(3_000)))
}
process.exit(exitCode)
