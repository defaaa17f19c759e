import { afterEach, describe, expect, it, vi } from "@effect/vitest"
import * as fc from "fast-check"
import { JsonTemplate } from "../src/index.js"

const chunkPaths: ReadonlyArray<JsonTemplate.Path> = [
  ["id"],
  ["created"],
  ["choices", 0, "delta", "content"],
  ["choices", 0, "delta", "tool_calls", 0, "function", "arguments"],
  ["obfuscation"]
]

const chunk = (delta: object, extra: object = {}) =>
  JSON.stringify({
    id: "chatcmpl-1",
    object: "chat.completion.chunk",
    created: 1700000000,
    model: "gpt-test",
    choices: [{ index: 0, delta, logprobs: null, finish_reason: null }],
    ...extra
  })

/** What `JSON.parse` does with `text`: its value, or its error's message. */
const reference = (text: string): { readonly value?: unknown; readonly error?: string } => {
  try {
    return { value: JSON.parse(text) }
  } catch (e) {
    return { error: (e as Error).message }
  }
}

const outcome = (parse: JsonTemplate.Parser, text: string): { readonly value?: unknown; readonly error?: string } => {
  try {
    return { value: parse(text) }
  } catch (e) {
    return { error: (e as Error).message }
  }
}

/** Same value, same key order (a re-encoding compares both), same error. */
const expectSame = (parse: JsonTemplate.Parser, text: string) => {
  const want = reference(text)
  const got = outcome(parse, text)
  expect(got.error).toBe(want.error)
  expect(got.value).toStrictEqual(want.value)
  expect(JSON.stringify(got.value)).toBe(JSON.stringify(want.value))
}

afterEach(() => {
  vi.restoreAllMocks()
})

describe("JsonTemplate", () => {
  it("each shape is parsed in full once: later events and later streams of that shape are not", () => {
    const paths: ReadonlyArray<JsonTemplate.Path> = [
      ["id"],
      ["created"],
      ["choices", 0, "delta", "content"],
      ["choices", 0, "finish_reason"],
      ["usage", "completion_tokens"],
      ["usage", "total_tokens"]
    ]
    const stream = (id: string, created: number) => {
      const head = (choices: unknown, usage: unknown) => JSON.stringify({ id, object: "chat.completion.chunk", created, model: "m", choices, usage })
      const choice = (delta: object, finish: string | null) => [{ index: 0, delta, logprobs: null, finish_reason: finish }]
      return [
        head(choice({ role: "assistant", content: "" }, null), null),
        ...Array.from({ length: 24 }, (_, i) => head(choice({ content: ` word${i} é ☃` }, null), null)),
        ...Array.from({ length: 24 }, (_, i) => head(choice({ content: `word ${i} "quoted" \\ \u0001` }, null), null)),
        head(choice({}, "stop"), null),
        head([], { prompt_tokens: 1, completion_tokens: created % 100, total_tokens: 1 + (created % 100) })
      ]
    }
    const parse = JsonTemplate.make(paths)
    const spy = vi.spyOn(JSON, "parse")
    const whole = () => spy.mock.calls.filter(([t]) => (t as string).startsWith("{")).length
    const first = stream("chatcmpl-1", 1700000001)
    expect(first.map((t) => parse(t))).toStrictEqual(first.map((t) => JSON.parse(t) as unknown))
    // The four shapes (role, text, finish, usage): each parsed in full, and once more to learn it.
    const learning = whole()
    expect(learning).toBe(8 + first.length)
    const second = stream("chatcmpl-2", 1700000057)
    expect(second.map((t) => parse(t))).toStrictEqual(second.map((t) => JSON.parse(t) as unknown))
    // The second stream: none of its events parsed in full (only the reference parses above).
    expect(whole()).toBe(learning + second.length)
  })

  it("shapes that never repeat stop the learning: at most a few second parses, then one in 64", () => {
    const parse = JsonTemplate.make([["text"]])
    const spy = vi.spyOn(JSON, "parse")
    const events = Array.from({ length: 640 }, (_, i) => JSON.stringify({ text: "t", [`k${i}`]: i }))
    for (const t of events) expect(parse(t)).toStrictEqual(JSON.parse(t))
    const whole = spy.mock.calls.filter(([t]) => (t as string).startsWith("{")).length
    // Each event parsed in full and by the reference; what is over that is learning's second parses.
    const learning = whole - 2 * events.length
    expect(learning).toBeGreaterThan(0)
    expect(learning).toBeLessThanOrEqual(4 + 640 / 64)
  })

  it("each result is its own object along the paths; what is off them is shared", () => {
    const parse = JsonTemplate.make(chunkPaths)
    const [a, b, c] = [chunk({ content: "a" }), chunk({ content: "b" }), chunk({ content: "c" })].map((t) => parse(t)) as Array<any>
    expect([a.choices[0].delta.content, b.choices[0].delta.content, c.choices[0].delta.content]).toEqual(["a", "b", "c"])
    expect(b).not.toBe(c)
    expect(b.choices).not.toBe(c.choices)
    expect(b.choices[0]).not.toBe(c.choices[0])
    expect(b.choices[0].delta).not.toBe(c.choices[0].delta)
  })

  it("two changing strings (text and padding) at once, including an empty one", () => {
    const parse = JsonTemplate.make(chunkPaths)
    for (const [content, obfuscation] of [["x", "ab"], ["", "abcdef"], ["yz", ""], ["\n\t", "q"], ["", ""]]) {
      expectSame(parse, chunk({ content }, { obfuscation }))
    }
  })

  it("tool call arguments stream through their own template", () => {
    const parse = JsonTemplate.make(chunkPaths)
    const call = (args: string) => chunk({ tool_calls: [{ index: 0, function: { arguments: args } }] })
    for (const args of ["", "{\"ci", "ty\": \"Par", "is\"}"]) expectSame(parse, call(args))
  })

  it("a changed token that is not one JSON string is not taken for one: it parses, or throws, as JSON.parse does", () => {
    const parse = JsonTemplate.make(chunkPaths)
    expectSame(parse, chunk({ content: "a" }))
    expectSame(parse, chunk({ content: "b" }))
    const good = chunk({ content: "HOLE" })
    for (
      const token of [
        `"a\nb"`, // a raw line break
        `"a\u0000b"`, // a raw control character
        `"a\\qb"`, // an escape JSON does not have
        `"a\\u12"`, // a short \u escape
        `"a\\"`, // the closing quote escaped
        `"a","model":"other"`, // a second member smuggled in
        `"a" `, // whitespace: JSON, but not the template's text
        `1`, // not a string
        `null`,
        `"a\\"b"`, // an escaped quote: a string
        `"\\ud83d\\ude00"` // a surrogate pair
      ]
    ) {
      expectSame(parse, good.replace(`"HOLE"`, token))
      expectSame(parse, chunk({ content: "c" }))
    }
  })

  it("a key that occurs twice: the template is the one JSON.parse keeps (the last)", () => {
    const parse = JsonTemplate.make([["a"]])
    for (const [x, y] of [["1", "2"], ["3", "4"], ["5", "6"], ["7", "8"]]) expectSame(parse, `{"a":"${x}","b":0,"a":"${y}"}`)
  })

  it("the same key with the same string elsewhere first is not taken for the path's", () => {
    const parse = JsonTemplate.make([["data", "text"]])
    for (const [other, text] of [["a", "a"], ["a", "a"], ["z", "a"], ["a", "b"], ["y", "y"]]) {
      expectSame(parse, `{"other":{"text":"${other}"},"data":{"text":"${text}"}}`)
    }
  })

  it("text after the template's end is JSON.parse's error (or whitespace, its value)", () => {
    const parse = JsonTemplate.make(chunkPaths)
    for (const tail of ["", "x", " ", "", "}", "\n", ""]) expectSame(parse, chunk({ content: `t${tail.length}` }) + tail)
  })

  it("the path's key inside another string does not mislead it", () => {
    const parse = JsonTemplate.make([["data", "text"]])
    for (const t of ["a", "b", "c"]) expectSame(parse, `{"note":"\\"text\\":\\"${t}\\"","data":{"text":"${t}"}}`)
  })

  it("non-object JSON, arrays and malformed text are JSON.parse's answers", () => {
    const parse = JsonTemplate.make([[0]])
    for (const t of ["1", "\"s\"", "null", "[\"a\"]", "[\"b\"]", "[\"c\"]", "[\"c\",1]", "{", "", "[\"d\"] x"]) expectSame(parse, t)
  })

  it("property: any sequence of chunks and mutations of them parses as JSON.parse parses each", () => {
    const text = fc.string({ unit: "binary", maxLength: 12 })
    const delta = fc.oneof(
      fc.record({ content: text }),
      fc.record({ role: fc.constant("assistant"), content: text }),
      fc.record({ tool_calls: fc.tuple(fc.record({ index: fc.constant(0), function: fc.record({ arguments: text }) })) }),
      fc.constant({})
    )
    // Streams interleaved: ids and timestamps from a few (numbers of every JSON form included).
    const id = fc.constantFrom("chatcmpl-1", "chatcmpl-22", "x\"y")
    const created = fc.constantFrom(1700000000, 0, -1, 1.5, 1e21, 2.5e-7, -0)
    const event = fc.tuple(delta, fc.option(text, { nil: undefined }), fc.option(fc.nat(20), { nil: undefined }), fc.string({ maxLength: 3 }), id, created)
      .map(([d, obfuscation, cut, insert, id, created]) => {
        const t = chunk(d, { id, created, ...(obfuscation === undefined ? {} : { obfuscation }) })
        // Now and then, the text cut or with characters put in: malformed or of another shape.
        if (cut === undefined) return t
        const at = t.length - 1 - (cut * 7) % t.length
        return t.slice(0, at) + insert + t.slice(at + (cut % 3))
      })
    fc.assert(
      fc.property(fc.array(event, { maxLength: 30 }), (events) => {
        const parse = JsonTemplate.make(chunkPaths)
        for (const t of events) expectSame(parse, t)
      }),
      { numRuns: 300 }
    )
  })
})
