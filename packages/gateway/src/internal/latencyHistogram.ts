/**
 * Latency histograms in a ring of time slots: a fixed set of log-spaced buckets per slot, so the
 * memory is fixed whatever the traffic and a percentile over any run of slots is a walk over at
 * most `slots × buckets` counts.
 */

/** Bucket `i` holds values up to `GROWTH^i` ms: about 12% resolution from 1 ms to ~7 minutes. */
const GROWTH = 1.25
const LOG_GROWTH = Math.log(GROWTH)
export const BUCKETS = 56

export const bucketOf = (ms: number): number =>
  ms <= 1 ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log(ms) / LOG_GROWTH))

/** The upper bound of bucket `i`, in ms (what a percentile in it reports). */
export const upperOf = (i: number): number => Math.round(GROWTH ** i * 10) / 10

export interface Percentiles {
  readonly count: number
  readonly p50: number | null
  readonly p95: number | null
  readonly p99: number | null
}

export interface SlotHistograms {
  readonly slots: number
  readonly slotMs: number
  /** Which slot start (ms since the epoch, a multiple of `slotMs`) each slot holds. */
  readonly slotStart: Float64Array
  readonly counts: Uint32Array
}

export const make = (slots: number, slotMs: number): SlotHistograms => ({
  slots,
  slotMs,
  slotStart: new Float64Array(slots).fill(-1),
  counts: new Uint32Array(slots * BUCKETS)
})

/** The slot index for time `now`, cleared first when it held an older slot. */
const slotFor = (h: SlotHistograms, now: number): number => {
  const start = now - (now % h.slotMs)
  const i = Math.floor(start / h.slotMs) % h.slots
  if (h.slotStart[i] !== start) {
    h.slotStart[i] = start
    h.counts.fill(0, i * BUCKETS, (i + 1) * BUCKETS)
  }
  return i
}

export const record = (h: SlotHistograms, now: number, ms: number): void => {
  h.counts[slotFor(h, now) * BUCKETS + bucketOf(ms)]! += 1
}

/** Percentiles over the slots that start in `[from, to]` (ms since the epoch). */
export const percentiles = (h: SlotHistograms, from: number, to: number): Percentiles => {
  const sum = new Uint32Array(BUCKETS)
  let count = 0
  for (let i = 0; i < h.slots; i++) {
    const start = h.slotStart[i]!
    if (start < from || start > to) continue
    const base = i * BUCKETS
    for (let b = 0; b < BUCKETS; b++) {
      const n = h.counts[base + b]!
      sum[b]! += n
      count += n
    }
  }
  if (count === 0) return { count: 0, p50: null, p95: null, p99: null }
  return { count, p50: rank(sum, count, 0.5), p95: rank(sum, count, 0.95), p99: rank(sum, count, 0.99) }
}

const rank = (sum: Uint32Array, count: number, q: number): number => {
  const target = Math.max(1, Math.ceil(q * count))
  let seen = 0
  for (let b = 0; b < BUCKETS; b++) {
    seen += sum[b]!
    if (seen >= target) return upperOf(b)
  }
  return upperOf(BUCKETS - 1)
}
