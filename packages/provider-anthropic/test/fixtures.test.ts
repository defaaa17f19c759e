import { AdapterKit, ChatCompletion, ModelError, type UpstreamHttp } from "@breakwater/core"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as fc from "fast-check"
import { readFileSync } from "node:fs"
import { Readable } from "node:stream"
import { splitAt } from "../../provider-openai/test/support/probe.js"
import * as Wire from "../src/internal/wire.js"

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url))
const json = (name: string): unknown => JSON.parse(fixture(name).toString("utf8"))

const responseOf = (parts: ReadonlyArray<Uint8Array>): UpstreamHttp.Response => ({
  status: 200,
  header: () => undefined,
  body: Readable.from(parts) as unknown as UpstreamHttp.Response["body"]
})

const decodeWire = (parts: ReadonlyArray<Uint8Array>) =>
  Stream.runCollect(
    AdapterKit.sseChunks("anthropic", responseOf(parts), "claude-test", Wire.frameHandler("anthropic", "claude-test", 1751920100, (s) => s))
  ).pipe(Effect.map(Chunk.toArray), Effect.either)

const right = (result: unknown) => (result as { right: Array<ChatCompletion.ChatCompletionChunk> }).right
const text = (chunks: ReadonlyArray<ChatCompletion.ChatCompletionChunk>) => chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")
const isChunk = Schema.is(ChatCompletion.ChatCompletionChunk)

describe("Anthropic wire fixtures: requests", () => {
  it("encodes a canonical request (system, images, tool calls, tool results, prefill, sampling, tools) exactly", () => {
    const canonical = Schema.decodeUnknownSync(ChatCompletion.ChatRequest)(json("request-canonical.json"))
    expect(Wire.encodeRequest(canonical, 4096, false)).toEqual(json("request-anthropic.json"))
  })

  it("defaults max_tokens, maps tool_choice, and sets stream only when streaming", () => {
    const request: ChatCompletion.ChatRequest = {
      model: "claude",
      messages: [{ role: "user", content: "hi" }],
      tools: [{ type: "function", function: { name: "f" } }]
    }
    expect(Wire.encodeRequest(request, 4096, true)).toEqual({
      model: "claude",
      max_tokens: 4096,
      messages: [{ role: "user", content: [{ type: "text", text: "hi" }] }],
      tools: [{ name: "f", input_schema: { type: "object", properties: {} } }],
      stream: true
    })
    const choice = (tool_choice: ChatCompletion.ChatRequest["tool_choice"]) => Wire.encodeRequest({ ...request, tool_choice }, 1, false).tool_choice
    expect(choice("auto")).toEqual({ type: "auto" })
    expect(choice("none")).toEqual({ type: "none" })
    expect(choice({ type: "function", function: { name: "f" } })).toEqual({ type: "tool", name: "f" })
    expect(Wire.encodeRequest({ ...request, max_completion_tokens: 7, max_tokens: 9 }, 1, false).max_tokens).toBe(7)
  })

  it("drops a prefill that is only whitespace, and refuses tool-call arguments that are not JSON", () => {
    const prefill = Wire.toMessages([{ role: "user", content: "hi" }, { role: "assistant", content: "  \n" }])
    expect(prefill.messages).toEqual([{ role: "user", content: [{ type: "text", text: "hi" }] }])
    expect(() =>
      Wire.toMessages([{ role: "assistant", content: null, tool_calls: [{ id: "t", type: "function", function: { name: "f", arguments: "{oops" } }] }])
    ).toThrow(ModelError.BadRequest)
  })
})

describe("Anthropic wire fixtures: responses", () => {
  it("decodes a text message to the canonical completion", () => {
    const completion = Wire.decodeMessage("anthropic", json("message.json"), 1751920000, (s) => s)
    expect(completion).toEqual({
      id: "msg_01XFDUDYJgAACzvnptvVoYEL",
      object: "chat.completion",
      created: 1751920000,
      model: "claude-sonnet-4-20250514",
      choices: [{ index: 0, message: { role: "assistant", content: "The capital of France is Paris.", refusal: null }, finish_reason: "stop", logprobs: null }],
      usage: { prompt_tokens: 14, completion_tokens: 10, total_tokens: 24 }
    })
    expect(Schema.is(ChatCompletion.ChatCompletion)(completion)).toBe(true)
  })

  it("decodes tool use to tool_calls with JSON arguments, cached prompt tokens counted", () => {
    const completion = Wire.decodeMessage("anthropic", json("message-tool-use.json"), 1, (s) => s) as ChatCompletion.ChatCompletion
    expect(completion.choices[0]).toEqual({
      index: 0,
      message: {
        role: "assistant",
        content: "I'll check the weather in Paris.",
        tool_calls: [{ id: "toolu_01A09q90qw90lq917835lq9", type: "function", function: { name: "get_weather", arguments: "{\"location\":\"Paris\"}" } }],
        refusal: null
      },
      finish_reason: "tool_calls",
      logprobs: null
    })
    expect(completion.usage).toEqual({ prompt_tokens: 482, completion_tokens: 71, total_tokens: 553 })
  })

  it("maps every stop reason", () => {
    expect(["end_turn", "stop_sequence", "max_tokens", "tool_use", "refusal", null].map(Wire.finishReason)).toEqual([
      "stop",
      "stop",
      "length",
      "tool_calls",
      "content_filter",
      null
    ])
  })

  it("classifies an error body that arrives with a 200, and refuses anything else", () => {
    const overloaded = Wire.decodeMessage("anthropic", (json("errors.json") as { overloaded: { body: unknown } }).overloaded.body, 1, (s) => s)
    expect((overloaded as ModelError.ModelError)._tag).toBe("Overloaded")
    expect((Wire.decodeMessage("anthropic", { hello: 1 }, 1, (s) => s) as ModelError.ModelError)._tag).toBe("ConnectionFailed")
  })
})

describe("Anthropic wire fixtures: streams", () => {
  it.effect("a text stream becomes role, content, finish and usage chunks; ping is a heartbeat", () =>
    Effect.gen(function*() {
      const chunks = right(yield* decodeWire([fixture("stream.sse")]))
      expect(chunks.every(isChunk)).toBe(true)
      expect(chunks.map((c) => (ChatCompletion.isHeartbeat(c) ? "hb" : c.usage != null ? "usage" : c.choices[0]!.finish_reason ?? "delta"))).toEqual([
        "delta",
        "hb",
        "delta",
        "delta",
        "delta",
        "stop",
        "usage"
      ])
      expect(chunks[0]!.choices[0]!.delta).toEqual({ role: "assistant", content: "" })
      expect(chunks.every((c) => c.id === "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY" && c.model === "claude-sonnet-4-20250514")).toBe(true)
      expect(text(chunks)).toBe("The capital of France is Paris — très belle.")
      expect(chunks.at(-1)!.usage).toEqual({ prompt_tokens: 14, completion_tokens: 9, total_tokens: 23 })
    }))

  it("decodes the same chunks however the bytes are split", () =>
    fc.assert(fc.asyncProperty(fc.array(fc.nat(), { maxLength: 12 }), async (cuts) => {
      const wire = fixture("stream.sse")
      const parts = splitAt(wire, cuts)
      expect(text(right(await Effect.runPromise(decodeWire(parts))))).toBe("The capital of France is Paris — très belle.")
    }), { numRuns: 40 }))

  it.effect("tool_use blocks become tool-call deltas numbered from 0, arguments in fragments", () =>
    Effect.gen(function*() {
      const chunks = right(yield* decodeWire([fixture("stream-tool-use.sse")]))
      expect(chunks.every(isChunk)).toBe(true)
      const deltas = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? [])
      expect(deltas[0]).toEqual({ index: 0, id: "toolu_01T1x1fJ34qAmk2tNTrN7Up6", type: "function", function: { name: "get_weather", arguments: "" } })
      const args = [0, 1].map((i) => deltas.filter((d) => d.index === i).map((d) => d.function?.arguments ?? "").join(""))
      expect(args).toEqual(["{\"location\":\"Paris\"}", "{\"tz\":\"CET\"}"])
      expect(deltas.filter((d) => d.id !== undefined).map((d) => [d.index, d.function?.name])).toEqual([[0, "get_weather"], [1, "get_time"]])
      expect(text(chunks)).toBe("Let me check.")
      expect(chunks.find((c) => c.choices[0]?.finish_reason != null)!.choices[0]!.finish_reason).toBe("tool_calls")
      expect(chunks.at(-1)!.usage).toEqual({ prompt_tokens: 472, completion_tokens: 89, total_tokens: 561 })
    }))

  it.effect("an error event fails with StreamInterrupted(error-event) caused by Overloaded, with the count received", () =>
    Effect.gen(function*() {
      const result = yield* decodeWire([fixture("stream-error-event.sse")])
      const error = (result as { left: ModelError.StreamInterrupted }).left
      expect(error).toBeInstanceOf(ModelError.StreamInterrupted)
      expect(error.reason).toBe("error-event")
      expect(error.receivedChunks).toBe(2)
      expect(error.cause).toBeInstanceOf(ModelError.Overloaded)
    }))

  it.effect("a stream without message_stop fails with no-terminator", () =>
    Effect.gen(function*() {
      const wire = fixture("stream.sse").toString("utf8")
      const result = yield* decodeWire([Buffer.from(wire.slice(0, wire.indexOf("event: message_stop")))])
      expect((result as { left: ModelError.StreamInterrupted }).left).toMatchObject({ reason: "no-terminator", receivedChunks: 6 })
    }))
})
