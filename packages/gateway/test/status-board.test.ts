import { StatusBoard } from "@breakwater/gateway"
import { ModelError } from "@breakwater/core"
import { describe, expect, it } from "@effect/vitest"

/** A board on a clock the test moves. */
const boardAt = (start = 1_700_000_000_000, options: StatusBoard.Options = {}) => {
  let now = start
  const board = StatusBoard.make({ ...options, clock: () => now })
  return { board, advance: (ms: number) => void (now += ms), now: () => now }
}

describe("StatusBoard", () => {
  it("counts requests, errors and the policy events per second", () => {
    const { advance, board } = boardAt()
    const a = board.begin("r1", "gpt", false)
    a.event({ _tag: "Retry", attempt: 1, reason: "Overloaded", waitMillis: 250 })
    a.event({ _tag: "Fallback", from: "a", to: "b", reason: "Overloaded" })
    a.end(200)
    const b = board.begin("r2", "gpt", true)
    b.event({ _tag: "BreakerRejected", key: "a", retryAfterMillis: 1000 })
    b.event({ _tag: "Resume", outcome: "resumed", reason: "reset", seam: 3, splice: "exact", droppedChars: 0 })
    b.end(502, "upstream_error")
    advance(1000)
    const s = board.snapshot()
    expect(s.seconds.requests.slice(-2)).toEqual([2, 0])
    expect(s.seconds.errors.slice(-2)).toEqual([1, 0])
    expect(s.seconds.retries.slice(-2)).toEqual([1, 0])
    expect(s.seconds.fallbacks.slice(-2)).toEqual([1, 0])
    expect(s.seconds.rejections.slice(-2)).toEqual([1, 0])
    expect(s.seconds.resumes.slice(-2)).toEqual([1, 0])
    expect(s.seconds.requests).toHaveLength(600)
    expect(s.window.totals).toMatchObject({ requests: 2, errors: 1, retries: 1, fallbacks: 1, resumes: 1, rejections: 1 })
    expect(s.inflight).toBe(0)
  })

  it("forgets counts older than its history", () => {
    const { advance, board } = boardAt(1_700_000_000_000, { historySeconds: 10 })
    board.begin("r1", "gpt", false).end(200)
    advance(10_000)
    const s = board.snapshot()
    expect(s.seconds.requests).toEqual(new Array(10).fill(0))
  })

  it("reports latency and TTFB percentiles from fixed buckets", () => {
    const { advance, board } = boardAt()
    for (let i = 1; i <= 100; i++) {
      const r = board.begin(`r${i}`, "gpt", true)
      const attempt = r.attempt({ upstream: "a", model: "gpt", attempt: 1, stream: true })!
      advance(i)
      attempt.chunks([])
      attempt.chunks([{} as never])
      advance(i)
      attempt.end({ _tag: "Success", completion: undefined })
      r.end(200)
    }
    const { latency, ttfb } = board.snapshot().window
    expect(latency.count).toBe(100)
    // Latencies are 2..200 ms and TTFBs 1..100 ms; a bucket is at most 25% wide.
    expect(latency.p50).toBeGreaterThanOrEqual(100)
    expect(latency.p50).toBeLessThanOrEqual(125)
    expect(latency.p99).toBeGreaterThanOrEqual(198)
    expect(latency.p99).toBeLessThanOrEqual(250)
    expect(ttfb.p50).toBeGreaterThanOrEqual(50)
    expect(ttfb.p50).toBeLessThanOrEqual(63)
    expect(ttfb.p95).toBeGreaterThanOrEqual(95)
    expect(ttfb.p95).toBeLessThanOrEqual(119)
  })

  it("keeps only the last N requests, oldest first, and updates carry the new ones", () => {
    const { board } = boardAt(1_700_000_000_000, { recentRequests: 5 })
    for (let i = 1; i <= 12; i++) board.begin(`r${i}`, "gpt", false).end(200)
    const s = board.snapshot()
    expect(s.requests.map((r) => r.id)).toEqual(["r8", "r9", "r10", "r11", "r12"])
    expect(board.snapshot({ sinceSeq: 10 }).requests.map((r) => r.id)).toEqual(["r11", "r12"])
  })

  it("records the attempt trail: which upstream, what failed, what the gateway did", () => {
    const { advance, board } = boardAt()
    const r = board.begin("r1", "gpt", false)
    const first = r.attempt({ upstream: "primary", model: "gpt-4o", attempt: 1, stream: false })!
    advance(40)
    first.end({ _tag: "Failure", error: new ModelError.Overloaded({ message: "busy", upstream: "primary" } as never) })
    r.event({ _tag: "Retry", attempt: 1, reason: "Overloaded", waitMillis: 250 })
    advance(250)
    const second = r.attempt({ upstream: "primary", model: "gpt-4o", attempt: 2, stream: false })!
    advance(10)
    second.end({ _tag: "Failure", error: new ModelError.Timeout({ message: "slow", phase: "headers" } as never) })
    r.event({ _tag: "Fallback", from: "primary", to: "backup", reason: "Timeout" })
    const third = r.attempt({ upstream: "backup", model: "gpt-4o", attempt: 1, stream: false })!
    advance(30)
    third.end({ _tag: "Success", completion: undefined })
    r.end(200)
    const [recent] = board.snapshot().requests
    expect(recent!.latencyMs).toBe(330)
    expect(recent!.trail).toEqual([
      { _tag: "Attempt", at: 0, upstream: "primary", model: "gpt-4o", attempt: 1, ms: 40, outcome: "failed", error: "Overloaded" },
      { _tag: "Retry", at: 40, attempt: 1, reason: "Overloaded", waitMillis: 250 },
      { _tag: "Attempt", at: 290, upstream: "primary", model: "gpt-4o", attempt: 2, ms: 10, outcome: "failed", error: "Timeout (headers)" },
      { _tag: "Fallback", at: 300, from: "primary", to: "backup", reason: "Timeout" },
      { _tag: "Attempt", at: 300, upstream: "backup", model: "gpt-4o", attempt: 1, ms: 30, outcome: "ok", error: undefined }
    ])
  })

  it("bounds a request's trail and counts what it left out", () => {
    const { board } = boardAt()
    const r = board.begin("r1", "gpt", false)
    for (let i = 0; i < 100; i++) r.event({ _tag: "Retry", attempt: i, reason: "x", waitMillis: 1 })
    r.end(503, "upstream_unavailable")
    const [recent] = board.snapshot().requests
    expect(recent!.trail.length).toBeLessThan(100)
    expect(recent!.trail.length + recent!.dropped).toBe(100)
    expect(recent!.error).toBe("upstream_unavailable")
  })

  it("keeps breaker transitions once each, bounded", () => {
    const { board } = boardAt(1_700_000_000_000, { transitions: 3 })
    for (const r of [board.begin("a", "m", false), board.begin("b", "m", false)]) {
      // Every request that sees the change reports it: the board keeps one.
      r.event({ _tag: "BreakerTransition", key: "primary", from: "closed", to: "open" })
    }
    expect(board.snapshot().transitions.map((t) => `${t.key}:${t.from}->${t.to}`)).toEqual(["primary:closed->open"])
    const r = board.begin("c", "m", false)
    r.event({ _tag: "BreakerTransition", key: "primary", from: "open", to: "half-open" })
    r.event({ _tag: "BreakerTransition", key: "primary", from: "half-open", to: "closed" })
    r.event({ _tag: "BreakerTransition", key: "backup", from: "closed", to: "open" })
    expect(board.snapshot().transitions.map((t) => `${t.key}:${t.to}`)).toEqual(["primary:half-open", "primary:closed", "backup:open"])
    expect(board.snapshot().inflight).toBe(3)
  })
})
