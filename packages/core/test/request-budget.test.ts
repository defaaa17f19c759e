import { RequestBudget } from "@breakwater/core"
import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"

const limits = (ratio: number, minPerSecond: number, windowMillis = 10_000): RequestBudget.Limits => ({ ratio, minPerSecond, windowMillis })

describe("RequestBudget", () => {
  it("extras may reach the ratio of the requests in the window, no more", () => {
    const budget = RequestBudget.make(limits(0.2, 0))
    for (let i = 0; i < 10; i++) budget.recordRequest(500)
    expect([budget.tryExtra(600), budget.tryExtra(700), budget.tryExtra(800)]).toEqual([true, true, false])
  })

  it("the floor allows a few extras per second with no requests at all, and refills each second", () => {
    const budget = RequestBudget.make(limits(0, 2))
    expect([budget.tryExtra(0), budget.tryExtra(10), budget.tryExtra(20)]).toEqual([true, true, false])
    expect([budget.tryExtra(1000), budget.tryExtra(1500), budget.tryExtra(1999)]).toEqual([true, true, false])
  })

  it("the window slides: requests older than the window no longer buy extras", () => {
    const budget = RequestBudget.make(limits(0.5, 0, 3000))
    for (let i = 0; i < 4; i++) budget.recordRequest(0)
    expect(budget.tryExtra(2999)).toBe(true)
    // Second 3 is outside a three-second window that started at second 0.
    expect(budget.tryExtra(3000)).toBe(false)
  })

  it("a window is at least one bucket, rounded up to whole seconds", () => {
    expect(RequestBudget.bucketsFor(0)).toBe(1)
    expect(RequestBudget.bucketsFor(1500)).toBe(2)
    expect(RequestBudget.makeWindow(10_000).buckets).toBe(10)
  })

  it("agrees with the rule as documented, over random histories", () => {
    type Op = { readonly dt: number; readonly requests: number; readonly extra: boolean }
    const op = fc.record({ dt: fc.integer({ min: 0, max: 2500 }), requests: fc.integer({ min: 0, max: 3 }), extra: fc.boolean() })
    fc.assert(
      fc.property(
        fc.array(op, { maxLength: 200 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer({ min: 0, max: 3 }),
        fc.integer({ min: 1, max: 8000 }),
        (ops: ReadonlyArray<Op>, ratio, minPerSecond, windowMillis) => {
          const l = limits(ratio, minPerSecond, windowMillis)
          const window = RequestBudget.makeWindow(windowMillis)
          const buckets = RequestBudget.bucketsFor(windowMillis)
          // The reference: every event kept, summed by second.
          const events: Array<{ second: number; requests: number; extras: number }> = []
          let now = 0
          for (const o of ops) {
            now += o.dt
            const second = Math.floor(now / 1000)
            events.push({ second, requests: o.requests, extras: 0 })
            let expected = true
            if (o.extra) {
              const inSecond = events.filter((e) => e.second === second).reduce((n, e) => n + e.extras, 0)
              const inWindow = events.filter((e) => e.second > second - buckets)
              const requests = inWindow.reduce((n, e) => n + e.requests, 0)
              const extras = inWindow.reduce((n, e) => n + e.extras, 0)
              expected = inSecond < minPerSecond || extras < ratio * requests
              if (expected) events[events.length - 1]!.extras = 1
            }
            expect(window.acquire(now, o.requests, o.extra, l)).toBe(expected)
          }
        }
      ),
      { numRuns: 300 }
    )
  })
})
