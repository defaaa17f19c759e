import type { Budget, Limits, SlidingWindow } from "../RequestBudget.js"

const BUCKET_MILLIS = 1000

/** @internal */
export const bucketsFor = (windowMillis: number): number => Math.max(1, Math.ceil(windowMillis / BUCKET_MILLIS))

/**
 * A ring of one-second buckets: each bucket remembers which second it holds, so stale buckets
 * count as empty without a sweep. Recording requests touches one bucket; only a request for an
 * extra token sums the window.
 */
class Window implements SlidingWindow {
  private readonly seconds: Float64Array
  private readonly requests: Float64Array
  private readonly extras: Float64Array
  constructor(readonly buckets: number) {
    this.seconds = new Float64Array(buckets).fill(-1)
    this.requests = new Float64Array(buckets)
    this.extras = new Float64Array(buckets)
  }

  private bucket(second: number): number {
    const i = second % this.buckets
    if (this.seconds[i] !== second) {
      this.seconds[i] = second
      this.requests[i] = 0
      this.extras[i] = 0
    }
    return i
  }

  acquire(now: number, requests: number, extra: boolean, limits: Limits): boolean {
    const second = Math.floor(now / BUCKET_MILLIS)
    const i = this.bucket(second)
    if (requests !== 0) this.requests[i]! += requests
    if (!extra) return true
    // The floor: a quiet service may always spend a few extra requests per second.
    let allowed = this.extras[i]! < limits.minPerSecond
    if (!allowed) {
      let windowRequests = 0
      let windowExtras = 0
      const oldest = second - this.buckets
      for (let j = 0; j < this.buckets; j++) {
        if (this.seconds[j]! > oldest) {
          windowRequests += this.requests[j]!
          windowExtras += this.extras[j]!
        }
      }
      allowed = windowExtras < limits.ratio * windowRequests
    }
    if (allowed) this.extras[i]! += 1
    return allowed
  }
}

/** @internal */
export const makeWindow = (windowMillis: number): SlidingWindow => new Window(bucketsFor(windowMillis))

/** @internal */
export const make = (limits: Limits): Budget => {
  const window = makeWindow(limits.windowMillis)
  return {
    limits,
    recordRequest: (now) => {
      window.acquire(now, 1, false, limits)
    },
    tryExtra: (now) => window.acquire(now, 0, true, limits)
  }
}
