import { AdapterKit as Kit, ChatCompletion, ModelError, SseCodec, type UpstreamHttp } from "@breakwater/core"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as fc from "fast-check"
import { readFileSync } from "node:fs"
import { Readable } from "node:stream"
import * as OpenAi from "../src/internal/openai.js"
import { splitAt } from "./support/probe.js"

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url))
const json = (name: string): unknown => JSON.parse(fixture(name).toString("utf8"))

// A response whose body yields `parts`, then ends (or fails with `error`).
const responseOf = (parts: ReadonlyArray<Uint8Array>, error?: Error): UpstreamHttp.Response => {
  const body = Readable.from((function*() {
    yield* parts
    if (error !== undefined) throw error
  })())
  return { status: 200, header: () => undefined, body: body as unknown as UpstreamHttp.Response["body"] }
}

const decodeWire = (parts: ReadonlyArray<Uint8Array>, error?: Error) =>
  Stream.runCollect(Kit.sseChunks("openai", responseOf(parts, error), "gpt-test", OpenAi.frameHandler("openai", (s) => s))).pipe(
    Effect.map(Chunk.toArray),
    Effect.either
  )

const dataFrames = (wire: Buffer): Array<unknown> =>
  SseCodec.decodeAll(wire).flatMap((m) => (m._tag === "Event" && m.data !== "[DONE]" ? [JSON.parse(m.data)] : []))

const text = (chunks: ReadonlyArray<ChatCompletion.ChatCompletionChunk>) =>
  chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")

const isChunk = Schema.is(ChatCompletion.ChatCompletionChunk)

describe("OpenAI wire fixtures", () => {
  it.effect("a non-streaming completion passes through untouched and is a valid ChatCompletion", () =>
    Effect.gen(function*() {
      for (const name of ["chat-completion.json", "chat-completion-tool-calls.json"]) {
        const body = json(name)
        const completion = yield* OpenAi.decodeCompletion("openai", body, (s) => s)
        expect(completion).toBe(body)
        expect(Schema.is(ChatCompletion.ChatCompletion)(completion)).toBe(true)
      }
    }))

  it.effect("a 200 carrying an error object is classified; anything else is not a completion", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(OpenAi.decodeCompletion("openai", { error: { message: "busy", type: "server_error" } }, (s) => s))
      expect(error._tag).toBe("UpstreamUnavailable")
      const other = yield* Effect.flip(OpenAi.decodeCompletion("openai", { hello: 1 }, (s) => s))
      expect(other._tag).toBe("ConnectionFailed")
    }))

  it.effect("a stream with the usage chunk decodes to exactly its data frames, the comment as a heartbeat", () =>
    Effect.gen(function*() {
      const wire = fixture("stream-usage.sse")
      const result = yield* decodeWire([wire])
      expect(result._tag).toBe("Right")
      const chunks = (result as { right: Array<ChatCompletion.ChatCompletionChunk> }).right
      expect(chunks.filter((c) => !ChatCompletion.isHeartbeat(c))).toEqual(dataFrames(wire))
      expect(chunks.map(ChatCompletion.isHeartbeat)).toEqual([false, false, true, false, false, false, false])
      expect(chunks[2]).toEqual(ChatCompletion.heartbeat("chatcmpl-BqN5", "gpt-4o-mini-2024-07-18", 1751920100))
      expect(text(chunks)).toBe("The capital of France is Paris — très belle.")
      expect(chunks.at(-1)!.usage).toMatchObject({ prompt_tokens: 14, completion_tokens: 9, total_tokens: 23 })
      expect(chunks.every(isChunk)).toBe(true)
    }))

  it("decodes the same chunks however the bytes are split (UTF-8 characters included)", () =>
    fc.assert(fc.asyncProperty(fc.array(fc.nat(), { maxLength: 12 }), async (cuts) => {
      const wire = fixture("stream-usage.sse")
      const parts = splitAt(wire, cuts)
      const result = await Effect.runPromise(decodeWire(parts))
      expect(result._tag).toBe("Right")
      expect(text((result as { right: Array<ChatCompletion.ChatCompletionChunk> }).right)).toBe("The capital of France is Paris — très belle.")
    }), { numRuns: 40 }))

  it.effect("tool-call deltas pass through by index and concatenate to whole calls", () =>
    Effect.gen(function*() {
      const wire = fixture("stream-tool-calls.sse")
      const result = yield* decodeWire([wire])
      const chunks = (result as { right: Array<ChatCompletion.ChatCompletionChunk> }).right
      expect(chunks).toEqual(dataFrames(wire))
      const calls: Array<{ id: string; name: string; arguments: string }> = []
      for (const chunk of chunks) {
        for (const d of chunk.choices[0]?.delta.tool_calls ?? []) {
          const call = (calls[d.index] ??= { id: "", name: "", arguments: "" })
          call.id += d.id ?? ""
          call.name += d.function?.name ?? ""
          call.arguments += d.function?.arguments ?? ""
        }
      }
      expect(calls).toEqual([
        { id: "call_DdmO9pD3xa9XTPNJ32zg2hcA", name: "get_weather", arguments: "{\"location\":\"Paris\"}" },
        { id: "call_Xk2q", name: "get_time", arguments: "{\"tz\":\"CET\"}" }
      ])
      expect(chunks.find((c) => c.choices[0]?.finish_reason != null)!.choices[0]!.finish_reason).toBe("tool_calls")
    }))

  it.effect("an error event mid-stream fails with StreamInterrupted(error-event), the classified cause and the count received", () =>
    Effect.gen(function*() {
      const result = yield* decodeWire([fixture("stream-error-event.sse")])
      const error = (result as { left: ModelError.StreamInterrupted }).left
      expect(error).toBeInstanceOf(ModelError.StreamInterrupted)
      expect(error.reason).toBe("error-event")
      expect(error.receivedChunks).toBe(2)
      expect((error.cause as ModelError.ModelError)._tag).toBe("UpstreamUnavailable")
    }))

  it.effect("a stream that ends without [DONE] fails with no-terminator, after delivering what came", () =>
    Effect.gen(function*() {
      const wire = fixture("stream-usage.sse").toString("utf8")
      const cut = Buffer.from(wire.slice(0, wire.indexOf("data: [DONE]")))
      const got: Array<ChatCompletion.ChatCompletionChunk> = []
      const error = yield* Effect.flip(Stream.runForEach(
        Kit.sseChunks("openai", responseOf([cut]), "gpt-test", OpenAi.frameHandler("openai", (s) => s)),
        (c) => Effect.sync(() => got.push(c))
      ))
      expect(got.length).toBe(7)
      expect(error).toMatchObject({ _tag: "StreamInterrupted", reason: "no-terminator", receivedChunks: 6 })
    }))

  it.effect("a frame that is not JSON, or not a chunk, fails with malformed", () =>
    Effect.gen(function*() {
      const role = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[]}\n\n"
      for (const bad of ["data: {\"id\":\n\n", "data: 42\n\n", "data: {\"id\":\"c\"}\n\n"]) {
        const result = yield* decodeWire([Buffer.from(role + bad + "data: [DONE]\n\n")])
        expect((result as { left: ModelError.StreamInterrupted }).left).toMatchObject({ reason: "malformed", receivedChunks: 1 })
      }
    }))

  it.effect("a socket error mid-body fails with reset and the count received", () =>
    Effect.gen(function*() {
      const wire = fixture("stream-usage.sse").toString("utf8")
      const head = Buffer.from(wire.slice(0, wire.indexOf("data:", 10)))
      const result = yield* decodeWire([head], Object.assign(new Error("other side closed"), { code: "UND_ERR_SOCKET" }))
      expect((result as { left: ModelError.StreamInterrupted }).left).toMatchObject({ reason: "reset", receivedChunks: 1 })
    }))

  it("encodes the request as is, forcing include_usage on streams and dropping stream_options otherwise", () => {
    const request = {
      model: "gpt-4o-mini",
      messages: [{ role: "user" as const, content: "hi" }],
      stream_options: { include_usage: false, extra: 1 },
      provider_field: { x: 1 }
    } as unknown as ChatCompletion.ChatRequest
    expect(JSON.parse(OpenAi.encodeRequest(request, true, false))).toEqual({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "hi" }],
      stream: true,
      stream_options: { include_usage: true, extra: 1 },
      provider_field: { x: 1 }
    })
    expect(JSON.parse(OpenAi.encodeRequest(request, false, false))).toEqual({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "hi" }],
      stream: false,
      provider_field: { x: 1 }
    })
    expect(JSON.parse(OpenAi.encodeRequest(request, true, true))).toMatchObject({ continue_final_message: true, add_generation_prompt: false })
  })

  it("a continuation uses the adapter's strategy unless the caller forces one", () => {
    const request: ChatCompletion.ChatRequest = { model: "m", messages: [{ role: "user", content: "Tell a story" }] }
    const instruction = OpenAi.prepare(request, { continuation: { partial: "Once upon " } }, "user-instruction")
    expect(instruction.prefill).toBe(false)
    expect(instruction.request.messages.slice(1)).toMatchObject([
      { role: "assistant", content: "Once upon " },
      { role: "user" }
    ])
    const prefill = OpenAi.prepare(request, { continuation: { partial: "Once upon ", strategy: "assistant-prefill" } }, "user-instruction")
    expect(prefill.prefill).toBe(true)
    expect(prefill.request.messages.slice(1)).toEqual([{ role: "assistant", content: "Once upon" }])
    expect(OpenAi.prepare(request, undefined, "assistant-prefill").request).toBe(request)
  })
})
