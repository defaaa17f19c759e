#!/usr/bin/env node
/**
 * The load generator, in a process of its own (pinned away from the server under test), on
 * `undici`. Jobs:
 *
 * - `closed`: N workers each send a request as soon as the previous one finished (throughput).
 * - `open`: requests sent on a fixed schedule (rate/s) whatever the server does; latency is
 *   measured from the *scheduled* send time, so a stalled server cannot hide its tail by
 *   slowing the generator down (coordinated omission).
 * - either with `stream: true`: time to first body byte, SSE events/s, whole-stream time.
 * - `hold-open` / `hold-close`: N concurrent streams opened and held (for RSS per stream), as
 *   fast as the server takes them or spread evenly over `spreadMs` (so that streams trickling
 *   one chunk per interval wake the server at spread-out times).
 * - `held-window`: waits `durationMs` and reports the SSE events the held streams delivered
 *   meanwhile (`ok`), so the orchestrator can divide the server's CPU by chunks delivered.
 * - `sequence`: requests one at a time, each optionally preceded by scripting the upstream
 *   through the orchestrator (the cost of a policy in action).
 * - `probe`: one request, its status, headers and the start of its body.
 *
 * Every job is bounded in request count and in time. Under `bench/run.mjs` jobs arrive over
 * IPC (`{ id, op: "run", job }`); standalone: `node bench/loadgen.mjs --job '<json>'`.
 */
import { parseArgs } from "node:util"
import { performance } from "node:perf_hooks"
import { Pool } from "undici"
import "./internal/orphan-guard.mjs"

const PATH = "/v1/chat/completions"
const payload = (stream, model = "bench-model") =>
  JSON.stringify({ model, messages: [{ role: "user", content: "Say something." }], stream })
const HEADERS = { "content-type": "application/json" }

const pools = new Map()
const poolFor = (origin, connections) => {
  const key = `${origin}|${connections}`
  let pool = pools.get(key)
  if (pool === undefined) {
    pool = new Pool(origin, { connections, pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: 30_000, bodyTimeout: 30_000 })
    pools.set(key, pool)
  }
  return pool
}
const closePools = async () => {
  const all = [...pools.values()]
  pools.clear()
  await Promise.allSettled(all.map((p) => p.destroy()))
}

const summary = (values) => {
  const n = values.length
  if (n === 0) return { count: 0 }
  const sorted = Float64Array.from(values).sort()
  const at = (q) => sorted[Math.min(n - 1, Math.floor(q * n))]
  let sum = 0
  for (const v of sorted) sum += v
  const r = (x) => Math.round(x * 1000) / 1000
  return { count: n, mean: r(sum / n), p50: r(at(0.5)), p90: r(at(0.9)), p99: r(at(0.99)), max: r(sorted[n - 1]) }
}

/**
 * One request; times are measured from `from` (the scheduled or actual send time). `tap`, when
 * given, counts the SSE events as they arrive (`tap.events`).
 */
const once = async (pool, body, stream, from, signal, onFirst, tap) => {
  try {
    const { statusCode, body: res } = await pool.request({ path: PATH, method: "POST", headers: HEADERS, body, signal })
    let first = -1
    let bytes = 0
    let reads = 0
    let events = 0
    let last = 0
    let done = false
    for await (const chunk of res) {
      if (first < 0) {
        first = performance.now()
        if (onFirst !== undefined) onFirst()
      }
      bytes += chunk.length
      reads++
      if (stream) {
        // Count SSE events by their blank-line terminators, across chunk boundaries.
        let i = chunk.indexOf(10)
        while (i !== -1) {
          if ((i > 0 ? chunk[i - 1] : last) === 10) {
            events++
            if (tap !== undefined) tap.events++
          }
          i = chunk.indexOf(10, i + 1)
        }
        last = chunk[chunk.length - 1]
        if (!done && chunk.includes("[DONE]")) done = true
      }
    }
    const end = performance.now()
    return {
      ok: statusCode === 200 && bytes > 0 && (!stream || events > 0),
      status: statusCode,
      total: end - from,
      ttfb: first < 0 ? end - from : first - from,
      events,
      reads,
      done
    }
  } catch (error) {
    return { ok: false, status: 0, error: String(error?.code ?? error?.name ?? error) }
  }
}

const tally = () => ({ ok: 0, errors: 0, statuses: {}, errorKinds: {}, events: 0, reads: 0, done: 0, total: [], ttfb: [] })
const record = (t, r) => {
  if (r.ok) {
    t.ok++
    t.total.push(r.total)
    t.ttfb.push(r.ttfb)
    t.events += r.events ?? 0
    t.reads += r.reads ?? 0
    if (r.done) t.done++
  } else {
    t.errors++
    const kind = r.error ?? `http ${r.status}`
    t.errorKinds[kind] = (t.errorKinds[kind] ?? 0) + 1
  }
  t.statuses[r.status] = (t.statuses[r.status] ?? 0) + 1
}
const report = (t, elapsedMs, stream) => ({
  ok: t.ok,
  errors: t.errors,
  errorKinds: t.errorKinds,
  statuses: t.statuses,
  elapsedMs: Math.round(elapsedMs),
  rps: Math.round((t.ok / elapsedMs) * 1000 * 10) / 10,
  latencyMs: summary(t.total),
  // Events per body read: how many SSE events the server under test delivered together.
  ...(stream ? { ttfbMs: summary(t.ttfb), eventsPerSec: Math.round((t.events / elapsedMs) * 1000), eventsPerRead: t.reads > 0 ? Math.round((t.events / t.reads) * 100) / 100 : undefined, streamsWithDone: t.done } : {})
})

const closed = async (job) => {
  const { url, stream = false, concurrency, durationMs, maxRequests = 1_000_000, model } = job
  const pool = poolFor(url, concurrency)
  const body = payload(stream, model)
  const t = tally()
  let issued = 0
  const start = performance.now()
  const end = start + durationMs
  const worker = async () => {
    while (issued < maxRequests && performance.now() < end) {
      issued++
      const t0 = performance.now()
      record(t, await once(pool, body, stream, t0))
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return report(t, performance.now() - start, stream)
}

const open = (job) => new Promise((resolve) => {
  const { url, stream = false, rate, durationMs, maxInFlight = 2048, connections = 512, model } = job
  const pool = poolFor(url, connections)
  const body = payload(stream, model)
  const total = Math.min(job.maxRequests ?? Infinity, Math.floor((rate * durationMs) / 1000))
  const interval = 1000 / rate
  const t = tally()
  const lag = []
  const start = performance.now() + 5
  let i = 0
  let inFlight = 0
  let dropped = 0
  let finished = false
  const finish = (timedOut = 0) => {
    if (finished) return
    finished = true
    clearTimeout(guard)
    resolve({ ...report(t, performance.now() - start, stream), scheduled: total, dropped, timedOut, sendLagMs: summary(lag), rate })
  }
  const fire = (scheduled) => {
    if (inFlight >= maxInFlight) {
      dropped++
      return
    }
    inFlight++
    lag.push(performance.now() - scheduled)
    once(pool, body, stream, scheduled).then((r) => {
      inFlight--
      if (!finished) record(t, r)
      if (i >= total && inFlight === 0) finish()
    })
  }
  const tick = () => {
    const now = performance.now()
    while (i < total && start + i * interval <= now) fire(start + i++ * interval)
    if (i < total) setTimeout(tick, Math.max(0, start + i * interval - performance.now()))
    else if (inFlight === 0) finish()
  }
  // Whatever the server does, the job ends: what is still in flight then counts as timed out.
  const guard = setTimeout(() => finish(inFlight), durationMs + 15_000)
  setTimeout(tick, 5)
})

let held = []
// SSE events delivered on the held streams since they were opened (every round starts at 0).
const heldTap = { events: 0 }
const holdOpen = async (job) => {
  const { url, count, timeoutMs = 60_000, openConcurrency = 256, spreadMs = 0 } = job
  const pool = poolFor(url, count + 16)
  const body = payload(true)
  const start = performance.now()
  let established = 0
  let failed = 0
  let next = 0
  heldTap.events = 0
  const timers = []
  await new Promise((resolve) => {
    const guard = setTimeout(resolve, timeoutMs)
    const settle = () => {
      if (established + failed >= count) {
        clearTimeout(guard)
        resolve()
      }
    }
    const chain = spreadMs <= 0
    // Open at most `openConcurrency` at a time, so the listen backlog never overflows; or one
    // every spreadMs / count.
    const openOne = () => {
      if (next >= count) return
      next++
      const abort = new AbortController()
      let counted = false
      const promise = once(pool, body, true, performance.now(), abort.signal, () => {
        counted = true
        established++
        settle()
        if (chain) openOne()
      }, heldTap).then((r) => {
        if (!counted) {
          failed++
          settle()
          if (chain) openOne()
        }
        return r
      })
      held.push({ abort, promise })
    }
    if (chain) for (let k = 0; k < Math.min(openConcurrency, count); k++) openOne()
    else for (let k = 0; k < count; k++) timers.push(setTimeout(openOne, (k * spreadMs) / count))
  })
  for (const t of timers) clearTimeout(t)
  return { requested: count, established, failed, elapsedMs: Math.round(performance.now() - start) }
}
const heldWindow = async (job) => {
  const e0 = heldTap.events
  const t0 = performance.now()
  await new Promise((r) => setTimeout(r, job.durationMs))
  const elapsedMs = performance.now() - t0
  const delivered = heldTap.events - e0
  return { ok: delivered, errors: 0, chunks: delivered, elapsedMs: Math.round(elapsedMs), rps: Math.round((delivered / elapsedMs) * 1000 * 10) / 10 }
}
const holdClose = async () => {
  const current = held
  held = []
  for (const h of current) h.abort.abort()
  await Promise.race([Promise.allSettled(current.map((h) => h.promise)), new Promise((r) => setTimeout(r, 15_000))])
  await closePools()
  return { closed: current.length }
}

let rid = 0
const waiting = new Map()
const askParent = (msg) => new Promise((resolve, reject) => {
  const id = ++rid
  waiting.set(id, { resolve, reject })
  process.send({ rid: id, op: "upstream", msg })
})

const sequence = async (job) => {
  const { url, steps, maxMs = 120_000 } = job
  const pool = poolFor(url, 4)
  const byLabel = {}
  const deadline = performance.now() + maxMs
  for (const step of steps) {
    if (performance.now() > deadline) break
    if (step.script !== undefined) await askParent({ op: "script", behaviors: step.script })
    const t0 = performance.now()
    const r = await once(pool, payload(step.stream, step.model), step.stream, t0)
    const t = (byLabel[step.label] ??= { ...tally(), eventCounts: [] })
    record(t, r)
    if (r.ok) t.eventCounts.push(r.events)
  }
  const out = {}
  for (const [label, t] of Object.entries(byLabel)) {
    out[label] = {
      ok: t.ok, errors: t.errors, errorKinds: t.errorKinds, statuses: t.statuses,
      latencyMs: summary(t.total), ttfbMs: summary(t.ttfb), events: summary(t.eventCounts)
    }
  }
  return out
}

const probe = async (job) => {
  const pool = poolFor(job.url, 1)
  const { statusCode, headers, body } = await pool.request({ path: PATH, method: "POST", headers: HEADERS, body: payload(job.stream ?? false, job.model) })
  const text = await body.text()
  return { status: statusCode, headers, body: text.slice(0, job.bytes ?? 4000), length: text.length }
}

const run = async (job) => {
  switch (job.kind) {
    case "closed": return closed(job)
    case "open": return open(job)
    case "hold-open": return holdOpen(job)
    case "hold-close": return holdClose()
    case "held-window": return heldWindow(job)
    case "sequence": return sequence(job)
    case "probe": return probe(job)
    case "close-pools": return closePools()
    default: throw new Error(`unknown job kind ${job.kind}`)
  }
}

if (process.send !== undefined) {
  process.on("message", async (msg) => {
    if (msg.rid !== undefined) {
      const w = waiting.get(msg.rid)
      waiting.delete(msg.rid)
      if (w !== undefined) msg.ok ? w.resolve(msg.value) : w.reject(new Error(msg.error))
      return
    }
    try {
      process.send({ id: msg.id, ok: true, value: await run(msg.job) })
    } catch (error) {
      process.send({ id: msg.id, ok: false, error: String(error?.stack ?? error) })
    }
  })
  process.on("disconnect", () => process.exit(0))
  process.stdout.write("loadgen ready\n")
} else {
  const { values } = parseArgs({ options: { job: { type: "string" } } })
  if (values.job === undefined) throw new Error("usage: node bench/loadgen.mjs --job '{\"kind\":\"closed\",\"url\":\"http://127.0.0.1:8787\",\"concurrency\":64,\"durationMs\":5000}'")
  const result = await run(JSON.parse(values.job))
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`)
  await closePools()
}
