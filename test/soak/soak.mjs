#!/usr/bin/env node
/**
 * `npm run soak`: load and soak for the reliability suite (opt-in; not part of `npm test`).
 *
 * 1. Concurrency sweep: 100 → 2,000 concurrent streaming requests through the gateway (built
 *    with GatewayBuilder, served by HttpHost, in this process) over two mock upstreams, with 20%
 *    of primary calls faulted (errors, cuts, stalls, error events). Records success, requests
 *    that never ended ("hung"), and event-loop lag.
 * 2. Soak: a steady rate with the same faults for SOAK_MINUTES (default 10); memory (RSS, heap
 *    after GC) and open sockets after warm-up and at the end.
 *
 *   node --expose-gc test/soak/soak.mjs [--minutes 10] [--rate 50] [--sweep 100,500,1000,2000]
 *
 * Prints a table and writes it to docs/soak.md.
 */
import { ConfigLoader, GatewayBuilder } from "@breakwater/gateway"
import { HttpHost } from "@breakwater/host-http"
import { StreamJournal } from "@breakwater/stream-resume"
import { MockUpstream } from "@breakwater/testing"
import { Duration, Effect, Exit, Schema, Scope } from "effect"
import { writeFileSync } from "node:fs"
import { monitorEventLoopDelay } from "node:perf_hooks"
import { parseArgs } from "node:util"
import { Agent, request } from "undici"
import { markdownTable } from "../../bench/internal/markdown.mjs"

const { Fault } = MockUpstream

const { values } = parseArgs({
  options: {
    minutes: { type: "string", default: process.env.SOAK_MINUTES ?? "10" },
    rate: { type: "string", default: "50" },
    sweep: { type: "string", default: "100,500,1000,2000" },
    out: { type: "string", default: new URL("../../docs/soak.md", import.meta.url).pathname }
  }
})
const minutes = Number(values.minutes)
const rate = Number(values.rate)
const sweep = values.sweep.split(",").map(Number)
const faults = [
  { fault: Fault.Status({ status: 503 }) },
  { fault: Fault.Status({ status: 429 }), headers: { "retry-after": "0" } },
  { fault: Fault.Cut({ afterChunks: 5 }) },
  { fault: Fault.ErrorEvent({ afterChunks: 8 }) },
  { fault: Fault.Stall({ afterChunks: 4 }) },
  { fault: Fault.ResetBeforeHeaders() }
]

const primary = await MockUpstream.start({ words: 40, chunkDelayMs: 20, maxRequests: 100 })
const secondary = await MockUpstream.start({ words: 40, chunkDelayMs: 20, maxRequests: 100 })
primary.chaos({ rate: 0.2, behaviors: faults, seed: 5 })
const scope = Effect.runSync(Scope.make())
const config = await Effect.runPromise(ConfigLoader.fromObject({
  server: { maxConcurrentRequests: 10_000 },
  upstreams: {
    primary: { provider: "openai", baseUrl: primary.url, models: ["chat"], connections: 4096 },
    secondary: { provider: "anthropic", baseUrl: secondary.origin, models: { chat: "claude-mock" }, connections: 4096 }
  },
  routes: { chat: { upstreams: ["primary", "secondary"], deadline: "30 seconds" } },
  defaults: { timeouts: { idle: "2 seconds", firstToken: "5 seconds" }, retry: { baseDelay: "20 millis" } }
}, {}))
const gateway = await Effect.runPromise(Scope.extend(GatewayBuilder.make(config), scope))
const running = await Effect.runPromise(Scope.extend(HttpHost.serve(gateway, { port: 0, logLevel: "error" }), scope))
const agent = new Agent({ connections: 4096, pipelining: 0 })

let counter = 0
/** One streaming request, read to the end. */
const one = async () => {
  const i = counter++
  const body = { model: "chat", messages: [{ role: "user", content: `soak ${i % 500}` }], stream: true }
  const started = performance.now()
  try {
    const res = await request(`${running.url}/v1/chat/completions`, {
      method: "POST",
      dispatcher: agent,
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      headersTimeout: 60_000,
      bodyTimeout: 60_000
    })
    const text = await res.body.text()
    const data = text.split("\n\n").flatMap((e) => e.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)))
    let got = ""
    let errorEvent
    for (const d of data) {
      if (d === "[DONE]") continue
      const c = JSON.parse(d)
      if (c.error !== undefined) errorEvent = c.error.code ?? c.error.type ?? "error"
      got += c.choices?.[0]?.delta?.content ?? ""
    }
    const ok = res.statusCode === 200 && data.at(-1) === "[DONE]" && errorEvent === undefined
    // Why a request failed, so the table tells faults the gateway could not absorb from overload.
    const why = ok ? undefined : res.statusCode !== 200 ? `http ${res.statusCode} ${/"code":"([^"]+)"/.exec(text)?.[1] ?? ""}`.trim() : errorEvent !== undefined ? `event ${errorEvent}` : "no [DONE]"
    return { ok, why, corrupted: ok && got !== primary.textFor(body), ms: performance.now() - started, hung: false }
  } catch (error) {
    return { ok: false, why: `client ${error?.code ?? error?.name ?? "error"}`, corrupted: false, ms: performance.now() - started, hung: performance.now() - started > 55_000 }
  }
}

const rows = []
/** "http 503 upstream_unavailable ×3, event timeout_idle ×1": the failures of a phase by kind. */
const failureKinds = (outcomes) => {
  const counts = new Map()
  for (const o of outcomes) if (!o.ok) counts.set(o.why, (counts.get(o.why) ?? 0) + 1)
  return counts.size === 0 ? "none" : [...counts].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ×${n}`).join(", ")
}
const lag = monitorEventLoopDelay({ resolution: 10 })
/** One table row: a phase's outcomes. */
const row = (phase, outcomes, wallSeconds) => {
  const ok = outcomes.filter((o) => o.ok).length
  return {
    phase,
    requests: outcomes.length,
    success: `${((100 * ok) / outcomes.length).toFixed(1)}%`,
    corrupted: outcomes.filter((o) => o.corrupted).length,
    hung: outcomes.filter((o) => o.hung).length,
    "p50 ms": Math.round(outcomes.map((o) => o.ms).sort((a, b) => a - b)[Math.floor(outcomes.length / 2)]),
    "loop lag p99 ms": (lag.percentile(99) / 1e6).toFixed(1),
    "wall s": wallSeconds.toFixed(wallSeconds >= 100 ? 0 : 1),
    failures: failureKinds(outcomes)
  }
}
for (const concurrency of sweep) {
  lag.reset()
  lag.enable()
  const t0 = performance.now()
  const outcomes = await Promise.all(Array.from({ length: concurrency }, one))
  lag.disable()
  rows.push(row(`sweep c=${concurrency}`, outcomes, (performance.now() - t0) / 1000))
  process.stderr.write(`${JSON.stringify(rows.at(-1))}\n`)
}

const memory = () => {
  globalThis.gc?.()
  const m = process.memoryUsage()
  return { rssMb: (m.rss / 1048576).toFixed(1), heapMb: (m.heapUsed / 1048576).toFixed(1), sockets: primary.openConnections + secondary.openConnections }
}
const soak = async (ms) => {
  const outcomes = []
  const pending = new Set()
  const end = Date.now() + ms
  while (Date.now() < end) {
    const p = one().then((o) => {
      outcomes.push(o)
      pending.delete(p)
    })
    pending.add(p)
    await new Promise((r) => setTimeout(r, 1000 / rate))
  }
  await Promise.all(pending)
  return outcomes
}
const warmupSeconds = Math.min(60, minutes * 60 / 5)
await soak(warmupSeconds * 1000) // warm-up
const afterWarmup = memory()
lag.reset()
lag.enable()
// A sample a minute: growth that stops once the journal is full is its cap; growth that goes on is a leak.
const samples = []
const sampler = setInterval(() => samples.push({ minute: samples.length + 1, ...memory() }), 60_000)
const outcomes = await soak(minutes * 60_000)
clearInterval(sampler)
lag.disable()
await new Promise((r) => setTimeout(r, 3_000)) // let keep-alive sockets settle
const atEnd = memory()
rows.push(row(`soak ${minutes} min @ ${rate}/s`, outcomes, minutes * 60))

const table = markdownTable(rows)
// The host's memory journal runs with the defaults; the doc explains the heap by them.
const journal = Schema.decodeSync(StreamJournal.JournalOptions)({})
const keptSeconds = Duration.toSeconds(journal.finishedTtl)
const doc = `# Load and soak\n\n\`npm run soak\` (${new Date().toISOString().slice(0, 10)}, ${minutes} min): the gateway (GatewayBuilder + HttpHost, in process) ` +
  `over two mock upstreams (40-word streams, 20 ms between chunks), 20% of primary calls faulted ` +
  `(${faults.map((f) => JSON.stringify(f)).join(", ")}).\n\n${table}\n\n` +
  `Memory after warm-up: RSS ${afterWarmup.rssMb} MB, heap ${afterWarmup.heapMb} MB, ${afterWarmup.sockets} upstream sockets; ` +
  `at the end: RSS ${atEnd.rssMb} MB, heap ${atEnd.heapMb} MB, ${atEnd.sockets} upstream sockets.\n\n` +
  `The heap includes the stream journal, by design: with the default \`StreamJournal\` options every finished stream stays ` +
  `replayable for ${keptSeconds} s, up to ${journal.maxStreams} streams, so at ${rate} streams/s it holds up to ${Math.min(journal.maxStreams, rate * Math.min(keptSeconds, warmupSeconds))} ` +
  `streams after the warm-up and up to ${Math.min(journal.maxStreams, rate * Math.min(keptSeconds, warmupSeconds + minutes * 60))} at the end; growth between the two is bounded by that cap, not by the run's length. ` +
  `RSS is the whole process: the gateway, the load generator and both mock upstreams.\n\n` +
  `| minute | ${samples.map((m) => m.minute).join(" | ")} |\n|---|${samples.map(() => "---").join("|")}|\n` +
  `| heap after GC, MB | ${samples.map((m) => m.heapMb).join(" | ")} |\n| RSS, MB | ${samples.map((m) => m.rssMb).join(" | ")} |\n` +
  `| upstream sockets | ${samples.map((m) => m.sockets).join(" | ")} |\n`
process.stdout.write(`\n${doc}`)
writeFileSync(values.out, doc)
await Effect.runPromise(Scope.close(scope, Exit.void))
await Promise.all([primary.stop(), secondary.stop(), agent.close()])
const failures = rows.filter((r) => r.corrupted > 0 || r.hung > 0)
process.exit(failures.length > 0 ? 1 : 0)
