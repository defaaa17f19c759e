/**
 * Latency statistics (EWMA and percentiles) that `npm run mutation` found unchecked
 * (docs/mutation.md): least-latency ranking and hedging delays are read from them.
 */
import { describe, expect, it } from "@effect/vitest"
import { Stats } from "../src/internal/stats.js"

describe("router latency stats", () => {
  it("the EWMA starts at the first sample and moves by alpha toward each new one", () => {
    const s = new Stats()
    expect(s.ewma).toBeUndefined()
    s.record(100, 0.25)
    expect(s.ewma).toBe(100)
    s.record(200, 0.25)
    expect(s.ewma).toBe(125)
    s.record(125, 0.25)
    expect(s.ewma).toBe(125)
  })

  it("percentiles by nearest rank over the samples, none below minSamples", () => {
    const s = new Stats()
    expect(s.percentile(50, 0)).toBeUndefined()
    for (const v of [50, 10, 40, 20, 30]) s.record(v, 0.5)
    expect(s.percentile(50, 6)).toBeUndefined()
    expect(s.percentile(50, 5)).toBe(30)
    expect(s.percentile(0, 1)).toBe(10)
    expect(s.percentile(20, 1)).toBe(10)
    expect(s.percentile(21, 1)).toBe(20)
    expect(s.percentile(100, 1)).toBe(50)
    expect(s.percentile(95, 1)).toBe(50)
  })

  it("keeps the last 128 samples, and a percentile follows new samples (re-sorted within 8 of them)", () => {
    const s = new Stats()
    for (let i = 0; i < 128; i++) s.record(1, 0.5)
    expect(s.percentile(100, 1)).toBe(1)
    for (let i = 0; i < 8; i++) s.record(1_000, 0.5)
    expect(s.percentile(100, 1)).toBe(1_000)
    // 128 more slow samples push every fast one out of the ring.
    for (let i = 0; i < 128; i++) s.record(1_000, 0.5)
    expect(s.percentile(0, 1)).toBe(1_000)
  })
})
