import { describe, expect, it } from "@effect/vitest"
import { Fifo } from "../src/internal/fifo.js"

interface Item {
  readonly n: number
  gone: boolean
}

describe("Fifo (the journal's eviction order)", () => {
  it("finds the oldest item that is not gone and matches, however many were removed before it", () => {
    const fifo = new Fifo<Item>((i) => i.gone)
    const items: Array<Item> = []
    for (let n = 0; n < 10_000; n++) {
      const item = { n, gone: false }
      items.push(item)
      fifo.push(item)
    }
    // Remove from the front and from the middle, telling the queue each time (it rebuilds itself
    // along the way): order is kept.
    for (let n = 0; n < 9_000; n++) {
      if (n % 3 === 0 || n < 5_000) {
        items[n]!.gone = true
        fifo.forgot()
      }
    }
    // 5,000 is the first not removed (5,001 = 3 × 1,667 was), 5,003 the first odd one left.
    expect(fifo.oldest(() => true)?.n).toBe(5_000)
    expect(fifo.oldest((i) => i.n % 2 === 1)?.n).toBe(5_003)
    expect(fifo.oldest((i) => i.n > 9_998)?.n).toBe(9_999)
    expect(fifo.oldest((i) => i.n > 10_000)).toBeUndefined()
    // Taken oldest first, one at a time, it yields the rest in order.
    const seen: Array<number> = []
    for (let next = fifo.oldest(() => true); next !== undefined; next = fifo.oldest(() => true)) {
      seen.push(next.n)
      next.gone = true
      fifo.forgot()
    }
    expect(seen).toEqual(items.map((i) => i.n).filter((n) => n >= 5_000 && !(n % 3 === 0 && n < 9_000)))
  })
})
