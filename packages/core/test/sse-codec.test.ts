import { SseCodec } from "@breakwater/core"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Stream } from "effect"
import * as fc from "fast-check"

const bytes = (s: string) => new TextEncoder().encode(s)

describe("SseCodec", () => {
  it("decodes id, event, retry, comments, CRLF and multi-line data", () => {
    const retries: Array<number> = []
    const out: Array<SseCodec.SseMessage> = []
    const decoder = SseCodec.makeDecoder({ onEvent: (e) => out.push(e), onComment: (c) => out.push(c), onRetry: (ms) => retries.push(ms) })
    decoder.feed("retry: 1500\r\n\r\n: keep-alive\r\nid: s1:0\r\nevent: message_start\r\ndata: {\"a\":1}\r\n\r\ndata: line one\ndata: line two\n\n")
    decoder.end()
    expect(retries).toEqual([1500])
    expect(out).toEqual([
      { _tag: "Comment", text: "keep-alive" },
      { _tag: "Event", id: "s1:0", event: "message_start", data: "{\"a\":1}" },
      { _tag: "Event", id: undefined, event: undefined, data: "line one\nline two" }
    ])
  })

  it("drops an unterminated last event (a cut stream never yields half an event)", () => {
    expect(SseCodec.decodeAll("data: complete\n\ndata: {\"half\":")).toEqual([
      { _tag: "Event", id: undefined, event: undefined, data: "complete" }
    ])
  })

  it("decodes the same events however the bytes are split, even inside a UTF-8 character", () =>
    fc.assert(fc.property(
      fc.array(fc.string({ unit: "grapheme", minLength: 0, maxLength: 12 }), { minLength: 1, maxLength: 6 }),
      fc.array(fc.nat(), { maxLength: 10 }),
      (datas, cuts) => {
        const clean = datas.map((d) => d.replace(/[\r\n]/g, " "))
        const wire = bytes(clean.map((d) => SseCodec.encodeEvent({ data: d })).join(""))
        const points = [...new Set(cuts.map((c) => c % (wire.length + 1)))].sort((a, b) => a - b)
        const out: Array<string> = []
        const decoder = SseCodec.makeDecoder({ onEvent: (e) => out.push(e.data) })
        let last = 0
        for (const p of [...points, wire.length]) {
          decoder.feed(wire.subarray(last, p))
          last = p
        }
        decoder.end()
        expect(out).toEqual(clean)
      }
    )))

  it.effect("decodes a byte stream into events and comments", () =>
    Effect.gen(function*() {
      const wire = bytes(": ping\n\ndata: caf\u00e9\n\n")
      const parts = [wire.subarray(0, 12), wire.subarray(12, 15), wire.subarray(15)]
      const out = yield* Stream.runCollect(SseCodec.decode(Stream.fromIterable(parts)))
      expect(Chunk.toReadonlyArray(out)).toEqual([
        { _tag: "Comment", text: "ping" },
        { _tag: "Event", id: undefined, event: undefined, data: "café" }
      ])
    }))

  it("encodes events, comments and retry hints that decode back", () => {
    const wire = SseCodec.encodeRetry(2000) + SseCodec.encodeComment("breakwater\nresumed") +
      SseCodec.encodeEvent({ id: "abc:3", event: "x", data: "a\nb" })
    expect(wire).toBe("retry: 2000\n\n: breakwater resumed\n\nid: abc:3\nevent: x\ndata: a\ndata: b\n\n")
    expect(SseCodec.decodeAll(wire)).toEqual([
      { _tag: "Comment", text: "breakwater resumed" },
      { _tag: "Event", id: "abc:3", event: "x", data: "a\nb" }
    ])
  })

  it("encodes a one-line event (the per-chunk frame) as encodeEvent does, and it decodes back", () => {
    const data = JSON.stringify({ text: "line\nbreak" })
    expect(SseCodec.encodeLine(data)).toBe(SseCodec.encodeEvent({ data }))
    expect(SseCodec.encodeLine(data, "s:7")).toBe(SseCodec.encodeEvent({ data, id: "s:7" }))
    expect(SseCodec.decodeAll(SseCodec.encodeLine(data, "s:7"))).toEqual([{ _tag: "Event", id: "s:7", event: undefined, data }])
  })
})
