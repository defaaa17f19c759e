/**
 * Rules of the pure machine that `npm run mutation` found unchecked (docs/mutation.md): the
 * time window's edges and slow-call rate, the empty window, the stale-permit guards and the
 * retry hint while probes are out.
 */
import { BreakerState } from "@breakwater/circuit-breaker"
import { describe, expect, it } from "@effect/vitest"

type Config = BreakerState.Config
type State = BreakerState.BreakerState

const base: Config = {
  window: { kind: "time", millis: 10_000 },
  minimumCalls: 100,
  failureRateThreshold: 50,
  slowCallRateThreshold: 100,
  slowCallMillis: 1_000,
  openMillis: 30_000,
  openMultiplier: 2,
  maxOpenMillis: 60_000,
  halfOpenProbes: 2,
  halfOpenRule: "all-succeed",
  probeTimeoutMillis: 5_000
}

/** Records one call at `now` (closed phase). */
const call = (s: State, now: number, outcome: "success" | "failure", slow = false, config = base): State => {
  const [permit, next] = BreakerState.acquire(s, "c", now, config)
  return BreakerState.record(next, permit, outcome, slow, now, config)
}

describe("BreakerState: time window and rates", () => {
  it("an empty window has rates 0, not NaN (count and time windows)", () => {
    expect(BreakerState.rates(BreakerState.initial, 0, base)).toEqual({ calls: 0, failureRate: 0, slowRate: 0 })
    expect(BreakerState.rates(BreakerState.initial, 0, { ...base, window: { kind: "count", size: 4 } })).toEqual({ calls: 0, failureRate: 0, slowRate: 0 })
  })

  it("counts calls per one-second bucket, slow ones too, and drops a bucket once it is wholly out of the window", () => {
    let s = BreakerState.initial
    s = call(s, 1_200, "failure", true) // bucket [1000, 2000)
    s = call(s, 1_900, "success")
    s = call(s, 5_500, "success", true) // bucket [5000, 6000)
    s = call(s, 5_600, "success")
    expect(s.buckets.map((b) => [b.at, b.calls, b.failures, b.slow])).toEqual([[1_000, 2, 1, 1], [5_000, 2, 0, 1]])
    expect(BreakerState.rates(s, 5_600, base)).toEqual({ calls: 4, failureRate: 25, slowRate: 50 })
    // At 12 000 the window begins at 2 000, exactly where the first bucket ends: out.
    expect(BreakerState.rates(s, 11_999, base).calls).toBe(4)
    expect(BreakerState.rates(s, 12_000, base)).toEqual({ calls: 2, failureRate: 0, slowRate: 50 })
    // A record then prunes it from the state as well.
    let pruned = call(s, 11_999, "success")
    expect(pruned.buckets.map((b) => b.at)).toEqual([1_000, 5_000, 11_000])
    pruned = call(s, 12_000, "success")
    expect(pruned.buckets.map((b) => b.at)).toEqual([5_000, 12_000])
  })
})

describe("BreakerState: stale permits change nothing", () => {
  const tripped = (config = base): State => {
    let s = BreakerState.initial
    for (let i = 0; i < 4; i++) s = call(s, 0, "failure", false, { ...config, minimumCalls: 4 })
    return s
  }

  it("a call permit from before a trip, recorded after it, is ignored", () => {
    const config = { ...base, minimumCalls: 4 }
    const [straggler, s0] = BreakerState.acquire(BreakerState.initial, "s", 0, config)
    let s = s0
    for (let i = 0; i < 4; i++) s = call(s, 0, "failure", false, config)
    expect(s.phase).toBe("open")
    expect(BreakerState.record(s, straggler, "failure", false, 1, config)).toBe(s)
    expect(BreakerState.record(s, straggler, "success", false, 1, config)).toBe(s)
  })

  it("a rejected permit, a probe recorded outside half-open, and an unknown probe id are ignored", () => {
    const config = { ...base, minimumCalls: 4 }
    const open = tripped()
    const [rejected, same] = BreakerState.acquire(open, "r", 1, config)
    expect(rejected._tag).toBe("Rejected")
    expect(BreakerState.record(same, rejected, "failure", false, 1, config)).toBe(same)
    const [probe, half] = BreakerState.acquire(open, "p", 30_000, config)
    expect(probe._tag).toBe("Probe")
    // The same permit against a state whose phase is not half-open (same generation, forged):
    const closedSameGeneration: State = { ...half, phase: "closed" }
    expect(BreakerState.record(closedSameGeneration, probe, "success", false, 30_001, config)).toBe(closedSameGeneration)
    const unknown = { ...probe, id: "nobody" } as BreakerState.Permit
    expect(BreakerState.record(half, unknown, "failure", false, 30_001, config)).toBe(half)
    // A call permit of the current generation while not closed counts for nothing.
    const call_ = { _tag: "Call", generation: half.generation } as BreakerState.Permit
    expect(BreakerState.record(half, call_, "failure", false, 30_001, config)).toBe(half)
  })

  it("while every probe slot is taken, a refused caller is told to come back within a second, not after the open duration", () => {
    const config = { ...base, minimumCalls: 4, halfOpenProbes: 1 }
    const [, half] = BreakerState.acquire(tripped(config), "p", 30_000, config)
    const [refused] = BreakerState.acquire(half, "q", 30_001, config)
    expect(refused).toEqual({ _tag: "Rejected", retryAfterMillis: 1_000 })
  })

  it("every phase change moves the generation forward, closing included, so no permit of an earlier phase matches a later one", () => {
    const config = { ...base, minimumCalls: 4, halfOpenProbes: 1 }
    const seen: Array<number> = [BreakerState.initial.generation]
    const open = tripped(config)
    seen.push(open.generation)
    const [probe, half] = BreakerState.acquire(open, "p", 30_000, config)
    seen.push(half.generation)
    const closed = BreakerState.record(half, probe, "success", false, 30_001, config)
    expect(closed.phase).toBe("closed")
    seen.push(closed.generation)
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThan(seen[i - 1]!)
  })
})
