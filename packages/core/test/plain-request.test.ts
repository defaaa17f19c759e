/**
 * Issue #19 (per-request CPU): `decodeChatRequest` takes a plain-reads path for requests of the
 * common shape and returns them as they are. It must never accept what the `ChatRequest` Schema
 * refuses, never differ from the Schema's result, and never let a body past limits the general
 * path would enforce.
 */
import { ChatCompletion } from "@breakwater/core"
import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import fc from "fast-check"
import { plainRequest, plainRequestDepth } from "../src/internal/plainRequest.js"
import { knownFields, limitProblem } from "../src/internal/requestLimits.js"

const decodeSchema = Schema.decodeUnknownEither(ChatCompletion.ChatRequest, { errors: "all", onExcessProperty: "preserve" })
const known = knownFields(ChatCompletion.ChatRequest, ChatCompletion.Message.members)

/** `decodeChatRequest` as it was before the fast path: the limits, then the Schema. */
const generalDecode = (input: unknown, limits: ChatCompletion.RequestLimits): Either.Either<unknown, string> => {
  const problem = limitProblem(input, limits, known)
  if (problem !== undefined) return Either.left(problem)
  return Either.mapLeft(decodeSchema(input), ChatCompletion.describeParseError)
}

// The general path throws on an array without a prototype (its depth check iterates it): not a
// JSON value, but the fast path must leave it to that path all the same.
const outcome = (decode: () => Either.Either<unknown, string>) => {
  try {
    return Either.match(decode(), { onLeft: (left) => ({ left }), onRight: (right) => ({ right }) })
  } catch (error) {
    return { threw: String(error) }
  }
}

/** Values of the wrong kind, empty ones, and `null` / `undefined` where a field may not take them. */
const oddValue = fc.oneof(
  fc.constantFrom<unknown>(
    undefined, null, true, false, "", "x", 0, -0, 1, NaN, Infinity, -Infinity,
    [], {}, ["a"], [1], [null], [undefined], { extra: 1 },
    [{ type: "text", text: "hi" }], [{ type: "image_url", image_url: { url: "u" } }]
  ),
  fc.double(),
  fc.string({ maxLength: 3 }),
  fc.boolean()
)

/** Numbers on and just past the edges of [min, max], non-integers inside it, -0 and the non-finite. */
const numberNear = (min: number, max: number) =>
  fc.oneof(
    fc.constantFrom(min, max, min - 1e-9, max + 1e-9, min - 0.5, max + 0.5, (min + max) / 2 + 0.5, -0, NaN, Infinity, -Infinity, Number.MAX_SAFE_INTEGER + 1),
    fc.double({ min: min - 1, max: max + 1 })
  )

const unknownKey = fc.constantFrom(
  "extra", "__proto__", "name", "content", "tool_call_id", "tool_calls", "refusal", "role",
  "tools", "tool_choice", "response_format", "metadata", "include_usage", "arguments", "index"
)

type Fields = Record<string, fc.Arbitrary<unknown>>

/**
 * Requests around the common shape. `valid` draws only what the Schema accepts; otherwise every field is now and
 * then replaced by an edge value, a required one dropped, an unknown one added (as an own
 * property, as `JSON.parse` makes it, `__proto__` included) or the prototype taken away.
 */
const requests = (valid: boolean): fc.Arbitrary<unknown> => {
  // One near miss in a few requests, so that the fast path takes a good share of them.
  const oneIn = <A>(n: number, arb: fc.Arbitrary<A>): fc.Arbitrary<A | null> =>
    fc.oneof({ arbitrary: fc.constant(null), weight: n - 1 }, { arbitrary: arb, weight: 1 })
  // A field is now and then an odd value or one of its own near misses.
  const field = (arb: fc.Arbitrary<unknown>, ...near: Array<fc.Arbitrary<unknown>>): fc.Arbitrary<unknown> =>
    valid ? arb : fc.oneof({ arbitrary: arb, weight: 40 }, { arbitrary: oddValue, weight: 1 }, ...near.map((arbitrary) => ({ arbitrary, weight: 1 })))
  const nullable = (arb: fc.Arbitrary<unknown>, ...near: Array<fc.Arbitrary<unknown>>) =>
    field(fc.oneof({ arbitrary: arb, weight: 4 }, { arbitrary: fc.constant(null), weight: 1 }), ...near)
  const notNull = fc.constant(null)
  // `foreign`: fields another shape has (a tool message's `name`, a user message's
  // `tool_call_id`), sometimes some of them.
  const objectOf = (required: Fields, optional: Fields, foreign: Fields = {}): fc.Arbitrary<unknown> => {
    const base = fc.tuple(fc.record(required), fc.record(optional, { requiredKeys: [] }))
    if (valid) return base.map(([r, o]) => ({ ...r, ...o }))
    const requiredKeys = Object.keys(required)
    return fc.tuple(
      fc.tuple(base, oneIn(10, fc.record(foreign, { requiredKeys: [] }))).map(([[r, o], f]) => [r, { ...f, ...o }] as const),
      requiredKeys.length > 0 ? oneIn(60, fc.constantFrom(...requiredKeys)) : fc.constant(null),
      oneIn(40, fc.tuple(unknownKey, oddValue)),
      fc.integer({ min: 0, max: 100 })
    ).map(([[r, o], drop, extra, bare]) => {
      const object: Record<string, unknown> = { ...r, ...o }
      if (drop !== null) delete object[drop]
      if (extra !== null) Object.defineProperty(object, extra[0], { value: extra[1], enumerable: true, writable: true, configurable: true })
      return bare === 0 ? Object.assign(Object.create(null), object) : object
    })
  }
  const text = fc.string({ maxLength: 4 })
  const list = <A>(arb: fc.Arbitrary<A>, minLength: number) => {
    const array = fc.array(arb, { minLength, maxLength: 3 })
    if (valid) return array
    return fc.tuple(array, fc.integer({ min: 0, max: 100 })).map(([items, bare]) => (bare === 0 ? Object.setPrototypeOf([...items], null) : items))
  }
  const functionCall = objectOf({ name: field(text, notNull), arguments: field(text, notNull) }, {})
  const toolCall = objectOf({ id: field(text, notNull), type: field(fc.constant("function"), fc.constantFrom("Function", "tool")), function: field(functionCall) }, {})
  const toolCalls = list(toolCall, 0)
  const message = fc.oneof(
    objectOf(
      { role: field(fc.constantFrom("system", "developer", "user"), fc.constantFrom("usr", "System", "function", "")), content: field(text, notNull) },
      { name: field(text, notNull) },
      { tool_call_id: text, tool_calls: toolCalls, refusal: text }
    ),
    objectOf({ role: field(fc.constant("assistant")) }, {
      content: nullable(text),
      refusal: nullable(text),
      name: field(text, notNull),
      tool_calls: field(toolCalls, notNull)
    }, { tool_call_id: text }),
    objectOf({ role: field(fc.constant("tool")), content: field(text, notNull), tool_call_id: field(text, notNull) }, {}, { name: text, refusal: text })
  )
  const positiveInt = nullable(fc.integer({ min: 1, max: 2 ** 31 }), numberNear(1, 2 ** 31))
  const request = objectOf(
    { model: field(fc.string({ minLength: 1, maxLength: 4 }), fc.constant("")), messages: field(list(message, 1), fc.constant([])) },
    {
      stream: nullable(fc.boolean()),
      stream_options: nullable(objectOf({}, { include_usage: field(fc.boolean(), notNull) })),
      temperature: nullable(fc.double({ min: 0, max: 2, noNaN: true }), numberNear(0, 2)),
      top_p: nullable(fc.double({ min: 0, max: 1, noNaN: true }), numberNear(0, 1)),
      n: positiveInt,
      max_tokens: positiveInt,
      max_completion_tokens: positiveInt,
      stop: nullable(fc.oneof(text, fc.array(text, { maxLength: 3 })), fc.array(oddValue, { minLength: 1, maxLength: 2 })),
      presence_penalty: nullable(fc.double({ min: -2, max: 2, noNaN: true }), numberNear(-2, 2)),
      frequency_penalty: nullable(fc.double({ min: -2, max: 2, noNaN: true }), numberNear(-2, 2)),
      seed: nullable(fc.maxSafeInteger(), numberNear(-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER)),
      user: field(text, notNull),
      parallel_tool_calls: field(fc.boolean(), notNull),
      logprobs: nullable(fc.boolean()),
      top_logprobs: nullable(fc.integer({ min: 0, max: 20 }), numberNear(0, 20))
    },
    {
      tools: fc.constant([{ type: "function", function: { name: "f" } }]),
      tool_choice: fc.constantFrom("auto", "none"),
      response_format: fc.constant({ type: "json_object" })
    }
  )
  return request
}

const limits = fc.oneof(
  { arbitrary: fc.constant(ChatCompletion.defaultRequestLimits), weight: 3 },
  { arbitrary: fc.record({ maxDepth: fc.integer({ min: 0, max: 8 }), maxUnknownFieldChars: fc.integer({ min: -1, max: 40 }) }), weight: 1 }
)

describe("ChatCompletion.decodeChatRequest fast path", () => {
  it("accepts only what the Schema accepts, as the Schema would decode it, and decodes as the general path does", () => {
    fc.assert(
      fc.property(requests(false), limits, (input, limits) => {
        const plain = plainRequest(input)
        if (plain !== undefined) {
          expect(plain).toBe(input)
          const decoded = decodeSchema(input)
          if (Either.isLeft(decoded)) {
            throw new Error(`the fast path accepted what the Schema refuses: ${ChatCompletion.describeParseError(decoded.left)}`)
          }
          expect(decoded.right).toStrictEqual(input)
          // Why the fast path may skip the limits: nothing unknown, and no deeper than it says.
          expect(limitProblem(input, { maxDepth: plainRequestDepth, maxUnknownFieldChars: 0 }, known)).toBeUndefined()
        }
        expect(outcome(() => ChatCompletion.decodeChatRequest(input, limits))).toStrictEqual(outcome(() => generalDecode(input, limits)))
      }),
      { numRuns: 5000 }
    )
  })

  it("takes every request of the common shape", () => {
    fc.assert(
      fc.property(requests(true), (input) => {
        expect(plainRequest(input)).toBe(input)
        expect(Either.getOrThrow(ChatCompletion.decodeChatRequest(input))).toBe(input)
      }),
      { numRuns: 500 }
    )
  })

  it("returns a typical request itself, tool calls and options included", () => {
    const body = JSON.parse(JSON.stringify({
      model: "gpt-4o-mini",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "Weather in Paris?", name: "u1" },
        { role: "assistant", content: null, tool_calls: [{ id: "c1", type: "function", function: { name: "weather", arguments: "{\"city\":\"Paris\"}" } }] },
        { role: "tool", content: "18C", tool_call_id: "c1" }
      ],
      stream: true,
      stream_options: { include_usage: true },
      temperature: 0.2,
      max_tokens: 256,
      stop: ["\n\n"],
      seed: 7
    }))
    expect(Either.getOrThrow(ChatCompletion.decodeChatRequest(body))).toBe(body)
  })

  it("answers for arrays without a prototype (a caller's value, not JSON.parse's) instead of throwing", () => {
    const bare = <A>(items: Array<A>): Array<A> => Object.setPrototypeOf(items, null)
    const messages = bare([{ role: "user", content: "hi" }])
    expect(limitProblem({ model: "m", messages }, ChatCompletion.defaultRequestLimits, known)).toBeUndefined()
    expect(limitProblem({ model: "m", messages: bare([bare([bare([])])]) }, { maxDepth: 3, maxUnknownFieldChars: 0 }, known))
      .toBe("the body is nested deeper than 3 levels")
    expect(outcome(() => ChatCompletion.decodeChatRequest({ model: "m", messages }))).not.toHaveProperty("threw")
  })

  it("sends a request with an unknown field, or with tools, through the Schema (a copy, unknown fields kept)", () => {
    const base = { model: "m", messages: [{ role: "user", content: "hi" }] }
    const tools = [{ type: "function", function: { name: "f", parameters: { type: "object" } } }]
    for (const body of [{ ...base, service_tier: "auto" }, { ...base, tools }]) {
      expect(plainRequest(body)).toBeUndefined()
      const decoded = Either.getOrThrow(ChatCompletion.decodeChatRequest(body))
      expect(decoded).not.toBe(body)
      expect(decoded).toStrictEqual(body)
    }
  })

  it("leaves limits tighter than the shapes it takes to the general path", () => {
    const body = {
      model: "m",
      messages: [{ role: "assistant", tool_calls: [{ id: "c1", type: "function", function: { name: "f", arguments: "{}" } }] }]
    }
    expect(plainRequest(body)).toBe(body)
    expect(ChatCompletion.decodeChatRequest(body, { maxDepth: 5, maxUnknownFieldChars: 0 })).toStrictEqual(Either.left("the body is nested deeper than 5 levels"))
    expect(Either.isRight(ChatCompletion.decodeChatRequest(body, { maxDepth: 6, maxUnknownFieldChars: 0 }))).toBe(true)
  })
})
