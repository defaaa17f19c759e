/**
 * Per-upstream latency statistics: an EWMA (what least-latency ranks by) and a ring of recent
 * samples (what a percentile hedging delay is read from).
 */
const RING = 128
// A percentile is re-sorted only after this many new samples: cheap enough per request, and
// the hedging delay does not need to track every single sample.
const RESORT_EVERY = 8

export class Stats {
  ewma: number | undefined = undefined
  private readonly ring = new Float64Array(RING)
  private count = 0
  private sorted: Float64Array | undefined = undefined
  private sinceSort = 0

  record(millis: number, alpha: number): void {
    this.ewma = this.ewma === undefined ? millis : alpha * millis + (1 - alpha) * this.ewma
    this.ring[this.count % RING] = millis
    this.count++
    this.sinceSort++
  }

  /** The `p`-th percentile (0-100) of the recent samples, or `undefined` below `minSamples`. */
  percentile(p: number, minSamples: number): number | undefined {
    const n = Math.min(this.count, RING)
    if (n === 0 || this.count < minSamples) return undefined
    if (this.sorted === undefined || this.sinceSort >= RESORT_EVERY) {
      this.sorted = this.ring.slice(0, n).sort()
      this.sinceSort = 0
    }
    const sorted = this.sorted
    const rank = Math.ceil((p / 100) * sorted.length) - 1
    return sorted[Math.min(sorted.length - 1, Math.max(0, rank))]!
  }
}

/** A small seeded PRNG (mulberry32): one draw from Effect's `Random` seeds all of a request's choices. */
export const prng = (seed: number): () => number => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
