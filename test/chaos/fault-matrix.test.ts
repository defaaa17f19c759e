/**
 * The fault matrix: the reference stack (GatewayBuilder + HttpHost) over two mock upstreams,
 * each fault injected on the primary at several rates. For every cell it records the client's
 * success rate, the latency added over an undisturbed run, attempts per request, and streams
 * whose text differs from the uninterrupted text ("corrupted"). Goals: with a healthy secondary,
 * every request succeeds and no stream is corrupted; with no healthy upstream, every request
 * ends within its deadline with a clear error and none hangs.
 *
 * Short form in `npm test`; `CHAOS_FULL=1` (what `npm run soak:matrix` sets) runs every rate with
 * more requests and writes the table to docs/chaos-matrix.md.
 */
import { ConfigLoader, GatewayBuilder } from "@breakwater/gateway"
import { HttpHost } from "@breakwater/host-http"
import { MockUpstream } from "@breakwater/testing"
import { Effect, Exit, Scope } from "effect"
import { writeFileSync } from "node:fs"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { behaviorOf, faults } from "./support/faults.js"

const { Fault } = MockUpstream

const FULL = process.env["CHAOS_FULL"] === "1"
const RATES = FULL ? [0.05, 0.3, 1] : [0.3, 1]
const REQUESTS = FULL ? 60 : 12
const CONCURRENCY = 6
const DEADLINE_MS = 8_000

interface Outcome {
  readonly ok: boolean
  readonly corrupted: boolean
  readonly ms: number
  readonly attempts: number
  readonly status: number
  readonly error?: string
}

let primary: MockUpstream.MockUpstream
let secondary: MockUpstream.MockUpstream
let url = ""
let scope: Scope.CloseableScope | undefined
const rows: Array<Record<string, string | number>> = []

/**
 * The wait a 429 asked for, from the moment the mock answered it. A timer may fire a millisecond
 * early against `Date.now()` (whole milliseconds on both sides): that much slack, no more.
 */
const TIMER_SLACK_MS = 2
const askedWait = (r: MockUpstream.RecordedRequest): number | undefined => {
  const headers = r.behavior.headers ?? {}
  if (r.behavior.fault?._tag !== "Status" || r.behavior.fault.status !== 429) return undefined
  if (headers["retry-after-ms"] !== undefined) return Number(headers["retry-after-ms"])
  const value = headers["retry-after"]
  if (value === undefined) return undefined
  return /^\d+$/.test(value) ? Number(value) * 1_000 : Date.parse(value) - r.at
}
const questionOf = (r: MockUpstream.RecordedRequest) => JSON.stringify((r.body as { messages?: unknown }).messages)

/**
 * Every time the primary was called again for a request it had answered with a 429, the call
 * came no sooner than the Retry-After it sent (whatever the order of retry and fallback). Returns
 * how many such retries there were.
 */
const expectRetryAfterHonoured = (requests: ReadonlyArray<MockUpstream.RecordedRequest>): number => {
  let retries = 0
  requests.forEach((r, i) => {
    const wait = askedWait(r)
    if (wait === undefined) return
    const next = requests.slice(i + 1).find((later) => questionOf(later) === questionOf(r))
    if (next === undefined) return
    retries++
    expect(next.at - r.at, `retry of ${questionOf(r)}`).toBeGreaterThanOrEqual(wait - TIMER_SLACK_MS)
  })
  return retries
}

/** A fresh gateway per cell: no breaker state or latency statistics carried from the last fault. */
const startGateway = async (breaker: Record<string, unknown> = {}) => {
  if (scope !== undefined) await Effect.runPromise(Scope.close(scope, Exit.void))
  scope = Effect.runSync(Scope.make())
  const config = await Effect.runPromise(ConfigLoader.fromObject({
    server: { maxConcurrentRequests: 512 },
    upstreams: {
      primary: { provider: "openai", baseUrl: primary.url, models: ["chat"] },
      secondary: { provider: "anthropic", baseUrl: secondary.origin, models: { chat: "claude-mock" } }
    },
    routes: { chat: { upstreams: ["primary", "secondary"], deadline: DEADLINE_MS }, solo: { upstreams: ["primary"], deadline: DEADLINE_MS } },
    defaults: {
      retry: { baseDelay: "5 millis", maxDelay: "50 millis", maxRetryAfter: "2 seconds" },
      timeouts: { headers: "400 millis", firstToken: "600 millis", idle: "400 millis" },
      breaker
    }
  }, {}))
  const gateway = await Effect.runPromise(Scope.extend(GatewayBuilder.make(config), scope))
  url = (await Effect.runPromise(Scope.extend(HttpHost.serve(gateway, { port: 0, logLevel: "none" }), scope))).url
}

beforeAll(async () => {
  primary = await MockUpstream.start({ words: 24 })
  secondary = await MockUpstream.start({ words: 24 })
})
afterAll(async () => {
  if (scope !== undefined) await Effect.runPromise(Scope.close(scope, Exit.void))
  await Promise.all([primary.stop(), secondary.stop()])
  if (rows.length === 0) return
  const header = Object.keys(rows[0]!)
  const table = [
    `| ${header.join(" | ")} |`,
    `|${header.map(() => "---").join("|")}|`,
    ...rows.map((r) => `| ${header.map((h) => r[h]).join(" | ")} |`)
  ].join("\n")
  process.stdout.write(`\nfault matrix (${REQUESTS} streaming requests per cell, ${CONCURRENCY} at once):\n${table}\n`)
  if (FULL) {
    writeFileSync(
      new URL("../../docs/chaos-matrix.md", import.meta.url),
      `# Fault matrix\n\n\`npm run soak:matrix\` (${new Date().toISOString().slice(0, 10)}): ` +
        `${REQUESTS} streaming requests per cell, ${CONCURRENCY} at once, through GatewayBuilder + HttpHost (a fresh gateway per cell), ` +
        `the fault on the primary (OpenAI format) at the given rate, a healthy secondary (Anthropic format). ` +
        `Added latency is against the same fresh gateway undisturbed, measured right before the fault; attempts counts upstream calls made before the response committed (x-breakwater-attempts; mid-stream faults are resumed after it).\n\n${table}\n`
    )
  }
})

const ask = (i: number, model = "chat") => ({ model, messages: [{ role: "user", content: `question ${i}` }], stream: true })

/** One streaming request, read to the end; never longer than the deadline plus a margin. */
const one = async (i: number, model = "chat"): Promise<Outcome> => {
  const started = performance.now()
  try {
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(ask(i, model)),
      signal: AbortSignal.timeout(DEADLINE_MS + 3_000)
    })
    const body = await res.text()
    const ms = performance.now() - started
    const attempts = Number(res.headers.get("x-breakwater-attempts") ?? 0)
    if (res.status !== 200) return { ok: false, corrupted: false, ms, attempts, status: res.status, error: body.slice(0, 120) }
    // SSE events: `id:` and `data:` lines (comments and the retry hint carry no data).
    const frames = body.split("\n\n").flatMap((event) => event.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)))
    const done = frames.at(-1) === "[DONE]"
    let text = ""
    let errorEvent = false
    for (const f of frames) {
      if (f === "[DONE]") continue
      const chunk = JSON.parse(f) as { error?: unknown; choices?: Array<{ delta?: { content?: string } }> }
      if (chunk.error !== undefined) errorEvent = true
      text += chunk.choices?.[0]?.delta?.content ?? ""
    }
    const expected = primary.textFor(ask(i))
    // A stream that says it is complete must be; one that ends with an error event is a failure, not corruption.
    const corrupted = done && text !== expected
    if (corrupted && process.env["CHAOS_DEBUG"] === "1") process.stderr.write(`corrupted #${i}\n  expected ${JSON.stringify(expected)}\n  got      ${JSON.stringify(text)}\n`)
    return { ok: done && !errorEvent && text === expected, corrupted, ms, attempts, status: res.status }
  } catch (error) {
    return { ok: false, corrupted: false, ms: performance.now() - started, attempts: 0, status: 0, error: String(error) }
  }
}

const runCell = async (count: number): Promise<Array<Outcome>> => {
  const out: Array<Outcome> = []
  let next = 0
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < count) out.push(await one(next++))
  }))
  return out
}

const percentile = (values: ReadonlyArray<number>, p: number) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0
}


describe("fault matrix", { timeout: 600_000 }, () => {
  it("undisturbed: every request succeeds", async () => {
    primary.reset()
    secondary.reset()
    await startGateway()
    await runCell(REQUESTS) // warm-up
    const outcomes = await runCell(REQUESTS)
    expect(outcomes.every((o) => o.ok)).toBe(true)
    rows.push({ fault: "none", rate: "0%", success: "100%", "p50 +ms": 0, "p99 +ms": 0, "attempts before 200": 1, corrupted: 0 })
  })

  for (const [name, behavior] of faults) {
    for (const rate of RATES) {
      it(`${name} at ${rate * 100}% on the primary: every request succeeds, no stream is corrupted`, async () => {
        primary.reset()
        secondary.reset()
        await startGateway()
        // The same fresh gateway, undisturbed, is this cell's baseline (warm, same moment).
        await runCell(CONCURRENCY)
        const base = await runCell(REQUESTS)
        primary.chaos({ rate, behaviors: [behaviorOf(behavior)], seed: 11 })
        const outcomes = await runCell(REQUESTS)
        primary.chaos(undefined)
        expectRetryAfterHonoured(primary.requests)
        const ok = outcomes.filter((o) => o.ok).length
        const corrupted = outcomes.filter((o) => o.corrupted).length
        rows.push({
          fault: name,
          rate: `${rate * 100}%`,
          success: `${Math.round((100 * ok) / outcomes.length)}%`,
          "p50 +ms": Math.round(percentile(outcomes.map((o) => o.ms), 50) - percentile(base.map((o) => o.ms), 50)),
          "p99 +ms": Math.round(percentile(outcomes.map((o) => o.ms), 99) - percentile(base.map((o) => o.ms), 99)),
          "attempts before 200": (outcomes.reduce((n, o) => n + o.attempts, 0) / outcomes.length).toFixed(2),
          corrupted
        })
        expect(corrupted).toBe(0)
        expect(outcomes.filter((o) => !o.ok).map((o) => `${o.status} ${o.error ?? ""}`)).toEqual([])
      })
    }
  }

  it("primary down for a while, then back: served throughout, and the primary serves again after", async () => {
    primary.reset()
    secondary.reset()
    await startGateway({ openDuration: "300 millis" })
    await runCell(CONCURRENCY)
    const base = await runCell(REQUESTS)
    await primary.stop()
    const during = await runCell(REQUESTS)
    await primary.restart()
    expect(during.every((o) => o.ok)).toBe(true)
    // Back: once its breaker lets a probe through (open 300 ms here), the primary serves again.
    primary.reset()
    // Requests keep going (each must succeed) until the breaker's probe reaches the primary; the
    // open duration grows with each trip, so the bound is time (10 s), not a count of requests
    // (a fast gateway sent 100 of them inside 300 ms).
    const giveUpAt = Date.now() + 10_000
    for (let i = 0; primary.received === 0; i++) {
      if (Date.now() > giveUpAt) throw new Error("the primary never served again after its restart")
      expect((await one(1_000 + i)).ok).toBe(true)
    }
    const after = await runCell(REQUESTS)
    expect(after.every((o) => o.ok)).toBe(true)
    expect(await Promise.all(primary.requests.map((r) => r.closed))).toEqual(primary.requests.map(() => false))
    expect(primary.requests.length).toBeGreaterThan(REQUESTS / 2)
    rows.push({ fault: "primary down (refused)", rate: "100%", success: `${Math.round((100 * during.filter((o) => o.ok).length) / during.length)}%`, "p50 +ms": Math.round(percentile(during.map((o) => o.ms), 50) - percentile(base.map((o) => o.ms), 50)), "p99 +ms": Math.round(percentile(during.map((o) => o.ms), 99) - percentile(base.map((o) => o.ms), 99)), "attempts before 200": (during.reduce((n, o) => n + o.attempts, 0) / during.length).toFixed(2), corrupted: during.filter((o) => o.corrupted).length })
  })

  // No secondary to fall back to: the retry of a 429 must wait what the upstream asked, in each of its three forms.
  for (const [name, fault] of faults.slice(0, 3)) {
    it(`${name} with no secondary: the retry comes no sooner than Retry-After, then succeeds`, async () => {
      primary.reset()
      secondary.reset()
      await startGateway()
      const behavior = behaviorOf(fault)
      primary.script(behavior)
      const outcome = await one(0, "solo")
      expect(outcome.ok, outcome.error).toBe(true)
      const [refused, retried] = primary.requests
      expect(primary.requests.length).toBe(2)
      expect(askedWait(refused!)).toBeGreaterThan(0)
      expect(expectRetryAfterHonoured(primary.requests)).toBe(1)
      expect(retried!.at - refused!.at).toBeGreaterThanOrEqual(askedWait(refused!)! - TIMER_SLACK_MS)
      expect(secondary.received).toBe(0)
    })
  }

  it("no healthy upstream: every request ends within its deadline with a clear error, none hangs", async () => {
    primary.reset()
    secondary.reset()
    await startGateway()
    primary.setDefault({ fault: Fault.Stall({ afterChunks: 2 }) })
    secondary.setDefault({ fault: Fault.Status({ status: 503 }) })
    const outcomes = await runCell(Math.min(REQUESTS, 12))
    primary.setDefault({})
    secondary.setDefault({})
    for (const o of outcomes) {
      expect(o.ok).toBe(false)
      expect(o.corrupted).toBe(false)
      expect(o.ms).toBeLessThan(DEADLINE_MS + 1_000)
      expect(o.status === 0 ? o.error : "answered").toBe("answered")
    }
  })
})
