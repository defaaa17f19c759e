import * as Effect from "effect/Effect"
import type { Acquire, Limits, RetryBudgetStore } from "../RetryBudget.js"

const BUCKET_MILLIS = 1000

/**
 * A sliding window of one-second buckets (a ring): each bucket remembers which second it
 * holds, so stale buckets count as empty without a sweep. Recording a request touches one
 * bucket; only a retry decision sums the window.
 */
class Window {
  readonly seconds: Float64Array
  readonly requests: Float64Array
  readonly retries: Float64Array
  constructor(readonly size: number) {
    this.seconds = new Float64Array(size).fill(-1)
    this.requests = new Float64Array(size)
    this.retries = new Float64Array(size)
  }

  private bucket(second: number): number {
    const i = second % this.size
    if (this.seconds[i] !== second) {
      this.seconds[i] = second
      this.requests[i] = 0
      this.retries[i] = 0
    }
    return i
  }

  acquire(now: number, requests: number, retry: boolean, limits: Limits): boolean {
    const second = Math.floor(now / BUCKET_MILLIS)
    const i = this.bucket(second)
    this.requests[i]! += requests
    if (!retry) return true
    // The floor: a quiet service may always retry a few times per second.
    let allowed = this.retries[i]! < limits.minPerSecond
    if (!allowed) {
      let windowRequests = 0
      let windowRetries = 0
      const oldest = second - this.size
      for (let j = 0; j < this.size; j++) {
        if (this.seconds[j]! > oldest) {
          windowRequests += this.requests[j]!
          windowRetries += this.retries[j]!
        }
      }
      allowed = windowRetries < limits.ratio * windowRequests
    }
    if (allowed) this.retries[i]! += 1
    return allowed
  }
}

export const makeMemory: Effect.Effect<RetryBudgetStore> = Effect.sync(() => {
  const windows = new Map<string, Window>()
  return {
    acquire: (input: Acquire) =>
      Effect.sync(() => {
        let window = windows.get(input.key)
        const size = Math.max(1, Math.ceil(input.limits.windowMillis / BUCKET_MILLIS))
        if (window === undefined || window.size !== size) {
          window = new Window(size)
          windows.set(input.key, window)
        }
        return window.acquire(input.now, input.requests, input.retry, input.limits)
      })
  }
})
