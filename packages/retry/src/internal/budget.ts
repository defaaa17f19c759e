import { RequestBudget } from "@breakwater/core"
import * as Effect from "effect/Effect"
import type { Acquire, RetryBudgetStore } from "../RetryBudget.js"

export const makeMemory: Effect.Effect<RetryBudgetStore> = Effect.sync(() => {
  const windows = new Map<string, RequestBudget.SlidingWindow>()
  return {
    acquire: (input: Acquire) =>
      Effect.sync(() => {
        let window = windows.get(input.key)
        if (window === undefined || window.buckets !== RequestBudget.bucketsFor(input.limits.windowMillis)) {
          window = RequestBudget.makeWindow(input.limits.windowMillis)
          windows.set(input.key, window)
        }
        return window.acquire(input.now, input.requests, input.retry, input.limits)
      })
  }
})
