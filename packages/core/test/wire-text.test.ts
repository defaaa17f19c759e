import { describe, expect, it } from "@effect/vitest"
import { WireText } from "../src/index.js"

const text = `{"a": 1, "b": "caf\\u00e9"}`

describe("WireText", () => {
  it("an object sent on unchanged encodes as its upstream text, once, and adds nothing to the object", () => {
    const value = WireText.attach(JSON.parse(text), text)
    expect(value).toStrictEqual(JSON.parse(text))
    expect(Object.getOwnPropertySymbols(value)).toEqual([])
    expect(WireText.encode(value)).toBe(text)
    // Given out once: the entry is released when it is taken.
    expect(WireText.take(value)).toBeUndefined()
    expect(WireText.encode(value)).toBe(`{"a":1,"b":"café"}`)
  })

  it("a body's bytes go out as they came, once, as bytes; a text-only reader gets the object encoded", () => {
    const pretty = `{\n  "a": 1,\n  "b": "café"\n}`
    const bytes = new TextEncoder().encode(pretty)
    const value = WireText.attachBytes(JSON.parse(pretty) as object, bytes)
    expect(WireText.encodeBody(value)).toBe(bytes)
    // Given out once.
    expect(WireText.encodeBody(value)).toBe(`{"a":1,"b":"café"}`)
    // Bytes may hold line breaks: `take` (for SSE data lines) lets them go and gives none out.
    const again = WireText.attachBytes(JSON.parse(pretty) as object, bytes)
    expect(WireText.take(again)).toBeUndefined()
    expect(WireText.encodeBody(again)).toBe(`{"a":1,"b":"café"}`)
    // A text attached the usual way is a body too.
    expect(WireText.encodeBody(WireText.attach(JSON.parse(text) as object, text))).toBe(text)
    // Over 16 KiB: not held.
    const big = new TextEncoder().encode(JSON.stringify({ s: "x".repeat(17 * 1024) }))
    const large = WireText.attachBytes(JSON.parse(new TextDecoder().decode(big)) as object, big)
    expect(typeof WireText.encodeBody(large)).toBe("string")
  })

  it("texts are found whatever order they are taken in, and each object gets its own", () => {
    const values = Array.from({ length: 40 }, (_, i) => {
      const t = `{"i": ${i}}`
      return { t, v: WireText.attach(JSON.parse(t) as object, t) }
    })
    for (const { t, v } of [...values.slice(20), ...values.slice(0, 20).reverse()]) expect(WireText.encode(v)).toBe(t)
  })

  it("only a bounded number of texts is held: the oldest go first, and are encoded", () => {
    const first = WireText.attach(JSON.parse(text) as object, text)
    for (let i = 0; i < 1000; i++) WireText.attach({ i }, `{"i": ${i}}`)
    expect(WireText.take(first)).toBeUndefined()
    expect(WireText.encode(first)).toBe(`{"a":1,"b":"café"}`)
  })

  it("a copy, even an identical one, has no text and is encoded", () => {
    const value = WireText.attach(JSON.parse(text) as Record<string, unknown>, text)
    const copy = { ...value }
    expect(WireText.take(copy)).toBeUndefined()
    expect(WireText.encode(copy)).toBe(`{"a":1,"b":"café"}`)
    expect(WireText.encode({ ...value, a: 2 })).toBe(`{"a":2,"b":"café"}`)
    expect(WireText.encode(Object.assign({}, value, { a: 3 }))).toBe(`{"a":3,"b":"café"}`)
    expect(WireText.encode(structuredClone(value))).toBe(`{"a":1,"b":"café"}`)
  })

  it("a text with a line break is not recorded (an SSE data line cannot carry it)", () => {
    for (const broken of [`{"a":\n1}`, `{"a":\r1}`]) {
      const value = WireText.attach(JSON.parse(broken), broken)
      expect(WireText.take(value)).toBeUndefined()
      expect(WireText.encode(value)).toBe(`{"a":1}`)
    }
  })

  it("a text over 16 KiB is not held (an unclaimed entry must stay small): the object is encoded", () => {
    const big = JSON.stringify({ s: "x".repeat(16 * 1024) }).replace(`{"s"`, `{ "s"`)
    const value = WireText.attach(JSON.parse(big) as object, big)
    expect(WireText.take(value)).toBeUndefined()
    const fits = `{ "s": "${"x".repeat(16 * 1024 - 10)}"}`
    expect(fits.length).toBeLessThanOrEqual(16 * 1024)
    expect(WireText.encode(WireText.attach(JSON.parse(fits) as object, fits))).toBe(fits)
  })

  it("an object nothing was attached to is encoded", () => {
    expect(WireText.encode({ x: [1, "y"] })).toBe(`{"x":[1,"y"]}`)
  })
})
