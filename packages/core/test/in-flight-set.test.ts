import { InFlightSet } from "@breakwater/core"
import { describe, expect, it } from "@effect/vitest"

describe("InFlightSet", () => {
  it("holds what was added until it is removed, and iterates the entries in it", () => {
    const set = InFlightSet.make<{ readonly id: number }>()
    const a = { id: 1 }, b = { id: 2 }, c = { id: 3 }
    const sa = set.add(a), sb = set.add(b), sc = set.add(c)
    expect(set.size).toBe(3)
    expect([...set]).toEqual([a, b, c])
    expect(set.remove(sb)).toBe(true)
    expect(set.size).toBe(2)
    expect([...set]).toEqual([a, c])
    expect(set.remove(sa)).toBe(true)
    expect(set.remove(sc)).toBe(true)
    expect(set.size).toBe(0)
    expect([...set]).toEqual([])
  })

  it("a slot removed twice is removed once (the second says false), and never removes a newer entry", () => {
    const set = InFlightSet.make<string>()
    const first = set.add("first")
    expect(set.remove(first)).toBe(true)
    expect(set.remove(first)).toBe(false)
    expect(set.size).toBe(0)
    // The freed slot is reused; the stale handle's double remove above did not free it twice.
    const second = set.add("second")
    const third = set.add("third")
    expect(second).not.toBe(third)
    expect([...set].sort()).toEqual(["second", "third"])
  })

  it("reuses freed slots, so a steady churn does not grow it", () => {
    const set = InFlightSet.make<number>()
    const live: Array<InFlightSet.Slot> = []
    let highest = 0
    for (let i = 0; i < 10_000; i++) {
      const slot = set.add(i)
      highest = Math.max(highest, slot)
      live.push(slot)
      if (live.length > 64) set.remove(live.shift()!)
    }
    expect(set.size).toBe(64)
    expect(highest).toBeLessThan(65)
    expect([...set]).toHaveLength(64)
  })
})
