import { AdapterKit, ChatCompletion, SseCodec } from "@breakwater/core"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as fc from "fast-check"
import { readFileSync } from "node:fs"
import { Readable } from "node:stream"
import * as Wire from "../../provider-anthropic/src/internal/wire.js"
import { ClientApi, MessagesApi } from "../src/index.js"

const fixture = (name: string) => readFileSync(new URL(`../../provider-anthropic/test/fixtures/${name}`, import.meta.url))
const json = (name: string): any => JSON.parse(fixture(name).toString("utf8"))

const decoded = (input: unknown): ChatCompletion.ChatRequest => {
  const result = MessagesApi.decodeRequest(input)
  if (Either.isLeft(result)) throw new Error(result.left.message)
  return result.right
}
const problem = (input: unknown): string => {
  const result = MessagesApi.decodeRequest(input)
  if (Either.isRight(result)) throw new Error("decoded a bad body")
  expect(result.left).toBeInstanceOf(MessagesApi.InvalidRequest)
  return result.left.message
}

/** The canonical chunks the Anthropic adapter reads from a Messages event stream. */
const chunksOf = (sse: string | Uint8Array) =>
  Stream.runCollect(
    AdapterKit.sseChunks(
      "anthropic",
      { status: 200, header: () => undefined, body: Readable.from([typeof sse === "string" ? Buffer.from(sse) : sse]) as never },
      "claude-test",
      Wire.frameHandler("anthropic", "claude-test", 1, (s) => s)
    )
  ).pipe(Effect.map(Chunk.toArray))

const events = (sse: string) =>
  SseCodec.decodeAll(sse).flatMap((m) => (m._tag === "Event" ? [{ event: m.event, data: JSON.parse(m.data) }] : []))

const base = { id: "chatcmpl-1", object: "chat.completion.chunk" as const, created: 1, model: "m" }
const delta = (d: ChatCompletion.ChatCompletionChunk["choices"][number]["delta"], finish: string | null = null): ChatCompletion.ChatCompletionChunk => ({
  ...base,
  choices: [{ index: 0, delta: d, finish_reason: finish }]
})
const usage = (prompt: number, completion: number): ChatCompletion.ChatCompletionChunk => ({
  ...base,
  choices: [],
  usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion }
})
const heartbeat = ChatCompletion.heartbeat("chatcmpl-1", "m", 1)

describe("MessagesApi.decodeRequest", () => {
  it("decodes a real Messages request into the canonical one the Anthropic adapter sends back unchanged", () => {
    const original = json("request-anthropic.json")
    const canonical = decoded(original)
    expect(Schema.is(ChatCompletion.ChatRequest)(canonical)).toBe(true)
    expect(Wire.encodeRequest(canonical, 4096, false)).toEqual(original)
  })

  it("translates every block kind", () => {
    const canonical = decoded(json("request-anthropic.json"))
    expect(canonical.messages).toEqual([
      { role: "system", content: "You are terse.\n\nAnswer in English." },
      {
        role: "user",
        content: [
          { type: "text", text: "What is in this image, and what's the weather there?" },
          { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } },
          { type: "image_url", image_url: { url: "https://example.com/paris.jpg" } }
        ]
      },
      {
        role: "assistant",
        content: "Paris. Let me check.",
        tool_calls: [
          { id: "toolu_1", type: "function", function: { name: "get_weather", arguments: "{\"location\":\"Paris\"}" } },
          { id: "toolu_2", type: "function", function: { name: "get_time", arguments: "{}" } }
        ]
      },
      { role: "tool", tool_call_id: "toolu_1", content: "18°C, cloudy" },
      { role: "tool", tool_call_id: "toolu_2", content: [{ type: "text", text: "14:05" }] },
      { role: "user", content: [{ type: "text", text: "Thanks. Summarise." }] },
      { role: "assistant", content: "Summary:" }
    ])
    expect(canonical).toMatchObject({
      model: "claude-sonnet-4-20250514",
      max_tokens: 300,
      stop: ["END"],
      temperature: 1,
      top_p: 0.9,
      user: "user-42",
      tool_choice: "required",
      parallel_tool_calls: false
    })
    expect(canonical.tools?.[0]).toEqual({
      type: "function",
      function: {
        name: "get_weather",
        description: "Current weather for a place",
        parameters: { type: "object", properties: { location: { type: "string" } }, required: ["location"] }
      }
    })
  })

  it("takes system blocks, tool choices, top_k, unknown block types, images in tool results, a stream; drops thinking blocks", () => {
    const canonical = decoded({
      model: "claude",
      max_tokens: 10,
      system: [{ type: "text", text: "Be ", cache_control: { type: "ephemeral" } }, { type: "text", text: "brief." }],
      messages: [
        { role: "user", content: [{ type: "document", source: { type: "text", media_type: "text/plain", data: "doc" } }, { type: "text", text: "hi" }] },
        { role: "assistant", content: [{ type: "thinking", thinking: "hmm", signature: "sig" }, { type: "tool_use", id: "t1", name: "shot", input: {} }] },
        {
          role: "user",
          content: [{ type: "tool_result", tool_use_id: "t1", is_error: false, content: [{ type: "text", text: "done" }, { type: "image", source: { type: "url", url: "https://x/y.png" } }] }]
        },
        { role: "assistant", content: [{ type: "tool_use", id: "t2", name: "shot", input: {} }] },
        { role: "user", content: [{ type: "tool_result", tool_use_id: "t2" }] }
      ],
      tool_choice: { type: "tool", name: "shot" },
      top_k: 5,
      stream: true,
      thinking: { type: "enabled", budget_tokens: 1024 }
    })
    expect(canonical.messages).toEqual([
      { role: "system", content: "Be brief." },
      { role: "user", content: [{ type: "document", source: { type: "text", media_type: "text/plain", data: "doc" } }, { type: "text", text: "hi" }] },
      { role: "assistant", content: null, tool_calls: [{ id: "t1", type: "function", function: { name: "shot", arguments: "{}" } }] },
      { role: "tool", tool_call_id: "t1", content: [{ type: "text", text: "done" }] },
      { role: "user", content: [{ type: "image_url", image_url: { url: "https://x/y.png" } }] },
      { role: "assistant", content: null, tool_calls: [{ id: "t2", type: "function", function: { name: "shot", arguments: "{}" } }] },
      { role: "tool", tool_call_id: "t2", content: "" }
    ])
    expect(canonical.tool_choice).toEqual({ type: "function", function: { name: "shot" } })
    expect(canonical.stream).toBe(true)
    expect(canonical.stream_options).toEqual({ include_usage: true })
    expect((canonical as Record<string, unknown>).top_k).toBe(5)
    expect((canonical as Record<string, unknown>).thinking).toBeUndefined()
    expect(decoded({ model: "c", max_tokens: 1, messages: [{ role: "user", content: "x" }], tool_choice: { type: "none" } }).tool_choice).toBe("none")
    expect(decoded({ model: "c", max_tokens: 1, messages: [{ role: "user", content: "x" }], tool_choice: { type: "auto" } }).tool_choice).toBe("auto")
  })

  it("refuses bad bodies with a message that names the problem", () => {
    const ok = { model: "claude", max_tokens: 10, messages: [{ role: "user", content: "hi" }] }
    expect(problem({ ...ok, max_tokens: undefined })).toMatch(/max_tokens/)
    expect(problem({ ...ok, max_tokens: 0 })).toMatch(/max_tokens must be a positive integer/)
    expect(problem({ ...ok, messages: [] })).toMatch(/messages must be a non-empty array/)
    expect(problem({ ...ok, messages: [{ role: "system", content: "x" }] })).toMatch(/messages\.0\.role/)
    expect(problem({ ...ok, temperature: 1.5 })).toMatch(/temperature/)
    expect(problem({ ...ok, messages: [{ role: "user", content: [{ type: "image", source: { type: "file" } }] }] })).toMatch(/messages\.0\.content/)
    expect(problem({ ...ok, messages: [{ role: "user", content: [{ type: "tool_use", id: "t", name: "f", input: {} }] }] })).toMatch(
      /a user message cannot hold a tool_use block/
    )
    expect(problem({ ...ok, messages: [{ role: "assistant", content: [{ type: "tool_result", tool_use_id: "t" }] }] })).toMatch(
      /an assistant message cannot hold a tool_result block/
    )
    expect(problem({ ...ok, tools: [{ type: "web_search_20250305", name: "web_search" }] })).toMatch(/only custom tools/)
    expect(problem({ ...ok, tools: [{ name: "bad name!", input_schema: {} }] })).toMatch(/tool name/)
    expect(problem("hello")).toMatch(/^invalid request: /)
    expect(Either.getLeft(MessagesApi.parseRequest("{oops")).pipe((l) => l._tag === "Some" && l.value.message)).toMatch(/not valid JSON/)
  })

  it("refuses a body nested beyond the limits", () => {
    let deep: unknown = {}
    for (let i = 0; i < 100; i++) deep = { a: deep }
    expect(problem({ model: "c", max_tokens: 1, messages: [{ role: "user", content: "x" }], tools: [{ name: "f", input_schema: deep }] })).toMatch(
      /nested deeper than 64/
    )
    let deeper: unknown = {}
    for (let i = 0; i < 20_000; i++) deeper = { a: deeper }
    expect(problem({
      model: "c",
      max_tokens: 1,
      messages: [{ role: "assistant", content: [{ type: "tool_use", id: "t", name: "f", input: deeper }] }]
    })).toMatch(/cannot be serialized|nested deeper/)
  })

  it("never throws: any body is a canonical request or an InvalidRequest", () => {
    const block = fc.oneof(
      fc.record({ type: fc.constant("text"), text: fc.string() }),
      fc.record({ type: fc.constant("image"), source: fc.oneof(fc.record({ type: fc.constant("url"), url: fc.string() }), fc.anything()) }),
      fc.record({ type: fc.constant("tool_use"), id: fc.string(), name: fc.string(), input: fc.jsonValue() }),
      fc.record({ type: fc.constant("tool_result"), tool_use_id: fc.string(), content: fc.oneof(fc.string(), fc.anything()) }),
      fc.record({ type: fc.string(), text: fc.anything() }),
      fc.anything()
    )
    const body = fc.record(
      {
        model: fc.oneof(fc.string(), fc.anything()),
        max_tokens: fc.oneof(fc.integer(), fc.anything()),
        messages: fc.oneof(
          fc.array(fc.record({ role: fc.constantFrom("user", "assistant", "system"), content: fc.oneof(fc.string(), fc.array(block)) })),
          fc.anything()
        ),
        system: fc.oneof(fc.string(), fc.array(block)),
        tools: fc.array(fc.record({ name: fc.string(), input_schema: fc.oneof(fc.object(), fc.anything()), type: fc.option(fc.string()) })),
        tool_choice: fc.oneof(fc.record({ type: fc.constantFrom("auto", "any", "tool", "none", "x"), name: fc.string() }), fc.anything()),
        temperature: fc.double(),
        stream: fc.anything()
      },
      { requiredKeys: [] }
    )
    fc.assert(
      fc.property(fc.oneof(body, fc.anything()), (input) => {
        const result = MessagesApi.decodeRequest(input)
        if (Either.isRight(result)) expect(Schema.is(ChatCompletion.ChatRequest)(result.right)).toBe(true)
        else expect(result.left).toBeInstanceOf(MessagesApi.InvalidRequest)
      }),
      { numRuns: 400 }
    )
  })
})

describe("MessagesApi.encodeMessage", () => {
  it("gives back a real message object from the completion the adapter decoded", () => {
    const original = json("message.json")
    const completion = Wire.decodeMessage("anthropic", original, 1, (s) => s) as ChatCompletion.ChatCompletion
    const { usage, ...rest } = original
    expect(MessagesApi.encodeMessage(completion)).toEqual({ ...rest, usage: { input_tokens: usage.input_tokens, output_tokens: usage.output_tokens } })
  })

  it("gives back tool use, with cached prompt tokens counted as input", () => {
    const original = json("message-tool-use.json")
    const message = MessagesApi.encodeMessage(Wire.decodeMessage("anthropic", original, 1, (s) => s) as ChatCompletion.ChatCompletion)
    expect(message.content).toEqual(original.content)
    expect(message.stop_reason).toBe("tool_use")
    expect(message.usage).toEqual({ input_tokens: 482, output_tokens: 71 })
  })

  it("gives a Messages id (msg_…): an OpenAI-style upstream's unique part, an Anthropic one's unchanged", () => {
    const idOf = (id: string) =>
      MessagesApi.encodeMessage({ id, object: "chat.completion", created: 1, model: "m", choices: [{ index: 0, message: { role: "assistant", content: "x" }, finish_reason: "stop" }] }).id
    expect(idOf("chatcmpl-abc123")).toBe("msg_abc123")
    expect(idOf("msg_01XFDUDYJgAACzvnptvVoYEL")).toBe("msg_01XFDUDYJgAACzvnptvVoYEL")
  })

  it("maps every finish reason, and a refusal's text", () => {
    const completion = (finish: string | null, message: Record<string, unknown> = { content: "x" }): ChatCompletion.ChatCompletion => ({
      id: "c",
      object: "chat.completion",
      created: 1,
      model: "m",
      choices: [{ index: 0, message: { role: "assistant", content: null, ...message }, finish_reason: finish }]
    })
    expect(["stop", "length", "tool_calls", "content_filter", "eos"].map((f) => MessagesApi.encodeMessage(completion(f)).stop_reason)).toEqual([
      "end_turn",
      "max_tokens",
      "tool_use",
      "refusal",
      "end_turn"
    ])
    expect(MessagesApi.encodeMessage(completion("content_filter", { content: null, refusal: "I can't." })).content).toEqual([{ type: "text", text: "I can't." }])
    expect(MessagesApi.encodeMessage(completion("tool_calls", {
      content: null,
      tool_calls: [{ id: "t", type: "function", function: { name: "f", arguments: "[1]" } }]
    })).content).toEqual([{ type: "tool_use", id: "t", name: "f", input: {} }])
  })
})

describe("MessagesApi.fromApiError", () => {
  it("answers in Anthropic's shape with Anthropic's types", () => {
    const of = (status: number, type = "x") => MessagesApi.fromApiError(ClientApi.apiError({ status, message: "m", type, code: null })).body.error.type
    expect([400, 401, 403, 404, 413, 415, 429, 500, 502, 503, 504, 529].map((s) => of(s))).toEqual([
      "invalid_request_error",
      "authentication_error",
      "permission_error",
      "not_found_error",
      "request_too_large",
      "invalid_request_error",
      "rate_limit_error",
      "api_error",
      "api_error",
      "overloaded_error",
      "api_error",
      "overloaded_error"
    ])
    expect(of(503, "circuit_open")).toBe("overloaded_error")
    expect(MessagesApi.fromApiError(ClientApi.keyBusy(2), "req_1")).toEqual({
      status: 429,
      body: { type: "error", error: { type: "rate_limit_error", message: ClientApi.keyBusy(2).message }, request_id: "req_1" }
    })
  })
})

describe("MessagesApi.makeStreamEncoder", () => {
  it.effect("re-encodes a real text stream: the adapter reads back the same chunks", () =>
    Effect.gen(function*() {
      const chunks = yield* chunksOf(fixture("stream.sse"))
      const encoder = MessagesApi.makeStreamEncoder()
      const sse = encoder.onChunks(chunks) + encoder.end()
      const types = events(sse).map((e) => e.event)
      expect(types.filter((t) => t !== "ping")).toEqual(
        events(fixture("stream.sse").toString()).map((e) => e.event).filter((t) => t !== "ping")
      )
      expect(yield* chunksOf(sse)).toEqual(chunks)
    }))

  it.effect("re-encodes a real tool-use stream: blocks 0, 1, 2 with ids, names and input_json_delta", () =>
    Effect.gen(function*() {
      const chunks = yield* chunksOf(fixture("stream-tool-use.sse"))
      const encoder = MessagesApi.makeStreamEncoder()
      const sse = encoder.onChunks(chunks) + encoder.end()
      const starts = events(sse).filter((e) => e.event === "content_block_start").map((e) => [e.data.index, e.data.content_block])
      expect(starts).toEqual([
        [0, { type: "text", text: "" }],
        [1, { type: "tool_use", id: "toolu_01T1x1fJ34qAmk2tNTrN7Up6", name: "get_weather", input: {} }],
        [2, { type: "tool_use", id: "toolu_02Xk2q", name: "get_time", input: {} }]
      ])
      const json1 = events(sse).filter((e) => e.data.delta?.type === "input_json_delta" && e.data.index === 1).map((e) => e.data.delta.partial_json).join("")
      expect(JSON.parse(json1)).toEqual({ location: "Paris" })
      // Anthropic opens a tool_use block with an empty input_json_delta; the encoder sends none.
      const empty = (c: ChatCompletion.ChatCompletionChunk) => c.choices[0]?.delta.tool_calls?.[0]?.function?.arguments === "" && c.choices[0]?.delta.tool_calls?.[0]?.id === undefined
      expect(yield* chunksOf(sse)).toEqual(chunks.filter((c) => !empty(c)))
    }))

  it("text then a tool call: the text block is stopped before the tool_use block starts", () => {
    const encoder = MessagesApi.makeStreamEncoder()
    const sse = encoder.onChunks([
      delta({ role: "assistant", content: "" }),
      delta({ content: "Checking." }),
      delta({ tool_calls: [{ index: 0, id: "call_1", type: "function", function: { name: "f", arguments: "" } }] }),
      delta({ tool_calls: [{ index: 0, function: { arguments: "{\"a\":" } }] }),
      delta({ tool_calls: [{ index: 0, function: { arguments: "1}" } }] }),
      delta({}, "tool_calls"),
      usage(5, 7)
    ]) + encoder.end()
    expect(events(sse).map((e) => [e.event, e.data.index ?? null, e.data.delta?.type ?? e.data.content_block?.type ?? null])).toEqual([
      ["message_start", null, null],
      ["content_block_start", 0, "text"],
      ["content_block_delta", 0, "text_delta"],
      ["content_block_stop", 0, null],
      ["content_block_start", 1, "tool_use"],
      ["content_block_delta", 1, "input_json_delta"],
      ["content_block_delta", 1, "input_json_delta"],
      ["content_block_stop", 1, null],
      ["message_delta", null, null],
      ["message_stop", null, null]
    ])
    expect(events(sse).find((e) => e.event === "message_delta")!.data).toEqual({
      type: "message_delta",
      delta: { stop_reason: "tool_use", stop_sequence: null },
      usage: { input_tokens: 5, output_tokens: 7 }
    })
  })

  it("a stream stitched from two attempts is one message: one start, one block, usage summed, one stop", () => {
    const encoder = MessagesApi.makeStreamEncoder()
    const seam = { ...heartbeat, breakwater: { seam: 1 } } as ChatCompletion.ChatCompletionChunk
    const first = encoder.onChunks([delta({ role: "assistant", content: "" }), delta({ content: "Hello " }), usage(10, 2)])
    const second = encoder.onChunks([seam, delta({ role: "assistant", content: "" }), delta({ content: "world" }), delta({}, "stop"), usage(12, 3)])
    const sse = first + second + encoder.end()
    const all = events(sse)
    expect(all.filter((e) => e.event === "message_start")).toHaveLength(1)
    expect(all.filter((e) => e.event === "message_stop")).toHaveLength(1)
    expect(all.filter((e) => e.event === "content_block_start").map((e) => e.data.index)).toEqual([0])
    expect(all.filter((e) => e.data.delta?.type === "text_delta").map((e) => e.data.delta.text).join("")).toBe("Hello world")
    expect(all.find((e) => e.event === "message_delta")!.data.usage).toEqual({ input_tokens: 22, output_tokens: 5 })
    expect(second).toContain(": breakwater resumed")
    expect(encoder.end()).toBe("")
  })

  it("message_start's id is a Messages id: an OpenAI-style upstream's unique part after msg_, an Anthropic one's unchanged", () => {
    const idOf = (id: string) => events(MessagesApi.makeStreamEncoder().onChunks([{ ...delta({ content: "a" }), id }]))[0]!.data.message.id
    expect(idOf("chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT")).toBe("msg_B9MBs8CjcvOU2jLn4n570S5qMJKcT")
    expect(idOf("msg_01XFDUDYJgAACzvnptvVoYEL")).toBe("msg_01XFDUDYJgAACzvnptvVoYEL")
    expect(idOf("gen-42")).toBe("msg_gen-42")
    expect(idOf("")).toBe("msg_breakwater")
  })

  it("heartbeats are pings once the message started, nothing before", () => {
    const encoder = MessagesApi.makeStreamEncoder()
    expect(encoder.onChunks([heartbeat])).toBe("")
    const sse = encoder.onChunks([delta({ role: "assistant", content: "" }), heartbeat, delta({ content: "a" }), heartbeat])
    expect(events(sse).map((e) => e.event)).toEqual(["message_start", "ping", "content_block_start", "content_block_delta", "ping"])
  })

  it("an empty stream is still one well-formed message; a failure is one error event", () => {
    const empty = MessagesApi.makeStreamEncoder({ model: "claude", inputTokens: 3 })
    expect(events(empty.end())).toEqual([
      {
        event: "message_start",
        data: {
          type: "message_start",
          message: { id: "msg_breakwater", type: "message", role: "assistant", content: [], model: "claude", stop_reason: null, stop_sequence: null, usage: { input_tokens: 3, output_tokens: 0 } }
        }
      },
      { event: "message_delta", data: { type: "message_delta", delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: 0 } } },
      { event: "message_stop", data: { type: "message_stop" } }
    ])
    const failing = MessagesApi.makeStreamEncoder()
    failing.onChunks([delta({ content: "a" })])
    expect(events(failing.fail(ClientApi.apiError({ status: 503, message: "down", type: "overloaded_error", code: null })))).toEqual([
      { event: "error", data: { type: "error", error: { type: "overloaded_error", message: "down" } } }
    ])
    expect(failing.ended()).toBe(true)
    expect(failing.end()).toBe("")
  })
})
