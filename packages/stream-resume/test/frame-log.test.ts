import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import { FrameLog } from "../src/internal/frameLog.js"

describe("FrameLog", () => {
  it("keeps each frame of an append as it came, and a repeated prefix can be skipped", () => {
    const log = new FrameLog()
    expect(log.append(["a:1\n\n", "b:22\n\n", "c:333\n\n"], 0)).toBe(5 + 6 + 7)
    expect(log.append(["b:22\n\n", "d\n\n"], 1)).toBe(3)
    expect(log.append(["x"], 1)).toBe(0)
    expect(log.length).toBe(4)
    expect([0, 1, 2, 3].map((i) => log.at(i))).toEqual(["a:1\n\n", "b:22\n\n", "c:333\n\n", "d\n\n"])
  })

  it("behaves as an array of the frames under any appends and drops (property)", () => {
    const op = fc.oneof(
      fc.record({ append: fc.array(fc.string({ maxLength: 12 }), { maxLength: 6 }), from: fc.nat(7) }),
      fc.constant({ shift: true as const })
    )
    fc.assert(fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
      const log = new FrameLog()
      const model: Array<string> = []
      for (const o of ops) {
        if ("shift" in o) {
          if (model.length === 0) continue
          expect(log.shift()).toBe(model.shift()!.length)
        } else {
          const added = o.append.slice(o.from)
          expect(log.append(o.append, o.from)).toBe(added.reduce((n, f) => n + f.length, 0))
          model.push(...added)
        }
        expect(log.length).toBe(model.length)
      }
      for (let i = 0; i < model.length; i++) expect(log.at(i)).toBe(model[i])
    }))
  })
})
