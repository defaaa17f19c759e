import { ChatCompletion, SseCodec } from "@breakwater/core"
import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import { readFileSync } from "node:fs"

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), "utf8")
const roundTrip = <A, I>(schema: Schema.Schema<A, I>, input: unknown) => {
  const decoded = Schema.decodeUnknownSync(schema, { onExcessProperty: "preserve" })(input)
  return Schema.encodeSync(schema)(decoded)
}

describe("ChatCompletion schemas", () => {
  it("round-trip a real non-streaming completion, unknown fields included", () => {
    const wire = JSON.parse(fixture("openai-chat-completion.json"))
    expect(roundTrip(ChatCompletion.ChatCompletion, wire)).toEqual(wire)
  })

  it("round-trip every chunk of a real stream (usage chunk, tool-call deltas)", () => {
    for (const file of ["openai-stream.sse", "openai-stream-tool-calls.sse"]) {
      const events = SseCodec.decodeAll(fixture(file)).filter((m) => m._tag === "Event")
      expect(events.at(-1)).toMatchObject({ data: "[DONE]" })
      for (const event of events.slice(0, -1)) {
        const wire = JSON.parse(event.data)
        expect(roundTrip(ChatCompletion.ChatCompletionChunk, wire)).toEqual(wire)
      }
    }
  })

  it("reassembles tool-call arguments from deltas into valid JSON", () => {
    const chunks = SseCodec.decodeAll(fixture("openai-stream-tool-calls.sse"))
      .flatMap((m) => (m._tag === "Event" && m.data !== "[DONE]" ? [JSON.parse(m.data) as ChatCompletion.ChatCompletionChunk] : []))
    const args = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []).map((d) => d.function?.arguments ?? "").join("")
    expect(JSON.parse(args)).toEqual({ location: "Paris" })
    expect(chunks.filter(ChatCompletion.hasContent)).toHaveLength(3)
  })

  it("decode a request with images, tools, tool results and provider fields, keeping unknown fields", () => {
    const wire = JSON.parse(fixture("openai-request.json"))
    const decoded = ChatCompletion.decodeChatRequest(wire)
    expect(Either.isRight(decoded)).toBe(true)
    const request = Either.getOrThrow(decoded)
    expect(request["reasoning_effort"]).toBe("low")
    expect(request["metadata"]).toEqual({ team: "search" })
    expect(Schema.encodeSync(ChatCompletion.ChatRequest)(request)).toEqual(wire)
  })

  it.each([
    [{ messages: [{ role: "user", content: "hi" }] }, /model/],
    [{ model: "m", messages: [] }, /messages/],
    [{ model: "m", messages: [{ role: "usr", content: "hi" }] }, /messages\.0/],
    [{ model: "m", messages: [{ role: "user", content: "hi" }], temperature: 7 }, /temperature/],
    [{ model: "m", messages: [{ role: "user", content: "hi" }], max_tokens: -1 }, /max_tokens/],
    [{ model: "m", messages: [{ role: "tool", content: "x" }] }, /tool_call_id/],
    ["not an object", /Expected/]
  ])("reject an invalid request with a message naming the problem (%#)", (input, pattern) => {
    const decoded = ChatCompletion.decodeChatRequest(input)
    expect(Either.isLeft(decoded)).toBe(true)
    if (Either.isLeft(decoded)) expect(decoded.left).toMatch(pattern)
  })

  it("sums usage, treating a missing side as zero", () => {
    expect(ChatCompletion.addUsage({ prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 }, undefined))
      .toEqual({ prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 })
    expect(ChatCompletion.addUsage({ prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 }, { prompt_tokens: 10, completion_tokens: 1, total_tokens: 11 }))
      .toEqual({ prompt_tokens: 13, completion_tokens: 5, total_tokens: 18 })
  })

  it("tells heartbeats and role-only deltas from content", () => {
    const beat = ChatCompletion.heartbeat("id", "m", 1)
    expect(ChatCompletion.isHeartbeat(beat)).toBe(true)
    expect(ChatCompletion.hasContent(beat)).toBe(false)
    const role: ChatCompletion.ChatCompletionChunk = { ...beat, choices: [{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }] }
    expect(ChatCompletion.hasContent(role)).toBe(false)
    expect(ChatCompletion.isHeartbeat(role)).toBe(false)
  })
})
