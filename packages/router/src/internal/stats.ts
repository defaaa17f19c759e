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

const BUCKET_MILLIS = 1000

/**
 * The hedging budget: a sliding window of one-second buckets (a ring) counting requests and
 * hedges; a hedge is allowed while hedges stay below `ratio` of the requests in the window, or
 * below `minPerSecond` in the current second.
 */
export class HedgeBudget {
  private readonly seconds: Float64Array
  private readonly requests: Float64Array
  private readonly hedges: Float64Array
  constructor(
    private readonly size: number,
    private readonly ratio: number,
    private readonly minPerSecond: number
  ) {
    this.seconds = new Float64Array(size).fill(-1)
    this.requests = new Float64Array(size)
    this.hedges = new Float64Array(size)
  }

  private bucket(now: number): number {
    const second = Math.floor(now / BUCKET_MILLIS)
    const i = second % this.size
    if (this.seconds[i] !== second) {
      this.seconds[i] = second
      this.requests[i] = 0
      this.hedges[i] = 0
    }
    return i
  }

  recordRequest(now: number): void {
    this.requests[this.bucket(now)]! += 1
  }

  tryHedge(now: number): boolean {
    const i = this.bucket(now)
    let allowed = this.hedges[i]! < this.minPerSecond
    if (!allowed) {
      const oldest = Math.floor(now / BUCKET_MILLIS) - this.size
      let requests = 0
      let hedges = 0
      for (let j = 0; j < this.size; j++) {
        if (this.seconds[j]! > oldest) {
          requests += this.requests[j]!
          hedges += this.hedges[j]!
        }
      }
      allowed = hedges < this.ratio * requests
    }
    if (allowed) this.hedges[i]! += 1
    return allowed
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
