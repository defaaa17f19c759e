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

  it("keeps an append's frames as the client's bytes when given them, after a prefix that is not a frame", () => {
    const log = new FrameLog()
    const frames = ["id: s:1\ndata: {\"é\":\"☃\"}\n\n", "id: s:2\ndata: \"😀 done\"\n\n"]
    const hint = "retry: 1500\n\n"
    const bytes = new TextEncoder().encode(hint + frames.join(""))
    expect(log.append(frames, 0, bytes, hint.length)).toBe(frames[0]!.length + frames[1]!.length)
    // A later append as text, and a repeated one with bytes (its kept prefix skipped: as text).
    expect(log.append(["x\n\n"], 0)).toBe(3)
    expect(log.append(["x\n\n", "ü\n\n"], 1, new TextEncoder().encode("x\n\nü\n\n"))).toBe(3)
    expect([0, 1, 2, 3].map((i) => log.at(i))).toEqual([...frames, "x\n\n", "ü\n\n"])
    expect(log.shift()).toBe(frames[0]!.length)
    expect(log.at(0)).toBe(frames[1])
  })

  it("reads frames in any order, and after the oldest are dropped", () => {
    const log = new FrameLog()
    log.append(["a\n\n", "bb\n\n", "ccc\n\n"], 0)
    log.append(["d\n\n"], 0)
    expect([log.at(2), log.at(0), log.at(3), log.at(1)]).toEqual(["ccc\n\n", "a\n\n", "d\n\n", "bb\n\n"])
    expect(log.shift()).toBe(3)
    expect([log.at(1), log.at(0), log.at(2)]).toEqual(["ccc\n\n", "bb\n\n", "d\n\n"])
    expect([log.shift(), log.shift()]).toEqual([4, 5])
    expect(log.at(0)).toBe("d\n\n")
  })

  it("keeps frames of any length, in appends of any size", () => {
    const log = new FrameLog()
    const long = "x".repeat(70_000)
    const many = Array.from({ length: 9_000 }, (_, i) => `${i}\n\n`)
    expect(log.append(["a\n\n", long, "b\n\n"], 0)).toBe(6 + long.length)
    expect(log.append(many, 0)).toBe(many.join("").length)
    expect(log.append([long], 0)).toBe(long.length)
    expect(log.length).toBe(3 + many.length + 1)
    expect(log.at(1)).toBe(long)
    expect(log.at(2)).toBe("b\n\n")
    expect(log.at(3 + 8_999)).toBe("8999\n\n")
    expect(log.at(3 + many.length)).toBe(long)
    expect(log.at(3 + 4_500)).toBe("4500\n\n")
    expect([log.shift(), log.shift(), log.shift(), log.shift()]).toEqual([3, long.length, 3, 3])
    expect(log.at(0)).toBe("1\n\n")
  })

  it("behaves as an array of the frames under any appends and drops (property)", () => {
    const op = fc.oneof(
      fc.record({
        append: fc.array(fc.string({ unit: "binary", maxLength: 12 }), { maxLength: 6 }),
        from: fc.nat(7),
        bytes: fc.option(fc.string({ unit: "binary", maxLength: 4 }), { nil: undefined })
      }),
      fc.constant({ shift: true as const }),
      // A read anywhere (a replay from any event on), between appends and drops.
      fc.record({ read: fc.nat(300) })
    )
    fc.assert(fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
      const log = new FrameLog()
      const model: Array<string> = []
      for (const o of ops) {
        if ("shift" in o) {
          if (model.length === 0) continue
          expect(log.shift()).toBe(model.shift()!.length)
        } else if ("read" in o) {
          for (let i = o.read % Math.max(1, model.length); i < Math.min(model.length, o.read % Math.max(1, model.length) + 3); i++) {
            expect(log.at(i)).toBe(model[i])
          }
        } else {
          const added = o.append.slice(o.from)
          // With bytes: the client's write, a prefix that is not a frame, then the frames.
          const bytes = o.bytes === undefined ? undefined : new TextEncoder().encode(o.bytes + o.append.join(""))
          expect(log.append(o.append, o.from, bytes, o.bytes?.length)).toBe(added.reduce((n, f) => n + f.length, 0))
          model.push(...added)
        }
        expect(log.length).toBe(model.length)
      }
      for (let i = 0; i < model.length; i++) expect(log.at(i)).toBe(model[i])
    }))
  })
})
