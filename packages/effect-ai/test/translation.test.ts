/**
 * What the layer sends and what @effect/ai gets back, over `FakeLanguageModel` (no sockets): a
 * whole conversation (system, user parts, an assistant tool call and its result) in the
 * canonical shape, tool choice, structured output, the layer's request fields, and a failure
 * the stack gave up on, read back from @effect/ai's error.
 */
import { ModelError } from "@breakwater/core"
import { BreakwaterLanguageModel } from "@breakwater/effect-ai"
import { FakeLanguageModel } from "@breakwater/testing"
import { LanguageModel, Prompt, Tool, Toolkit } from "@effect/ai"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Chunk, Effect, Exit, Schema, Stream } from "effect"

const Forecast = Tool.make("get_forecast", {
  description: "The weather forecast",
  parameters: { city: Schema.String },
  success: Schema.String
})
const Clock = Tool.make("get_time", { parameters: { zone: Schema.String }, success: Schema.String })
const Tools = Toolkit.make(Forecast, Clock)
// FakeLanguageModel calls the first tool offered, with these arguments.
const Lookup = Tool.make("lookup", { parameters: { query: Schema.String, limit: Schema.Number }, success: Schema.String })
const LookupTools = Toolkit.make(Lookup)
const LookupLive = LookupTools.toLayer({ lookup: () => Effect.succeed("found") })
const ToolsLive = Tools.toLayer({ get_forecast: () => Effect.succeed("sunny"), get_time: () => Effect.succeed("noon") })

const over = (fake: FakeLanguageModel.FakeLanguageModel, request: BreakwaterLanguageModel.OptionsInput["request"] = {}) =>
  Effect.provide(BreakwaterLanguageModel.layerFrom(Effect.succeed(fake.model), { model: "chat", request }))

describe("BreakwaterLanguageModel translation", () => {
  it.effect("a conversation becomes canonical messages; the layer's request fields yield to the call's", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make()
      const prompt = Prompt.make([
        { role: "system", content: "Be brief." },
        {
          role: "user",
          content: [
            { type: "text", text: "What is in this picture, and the weather?" },
            { type: "file", mediaType: "image/png", data: new Uint8Array([1, 2, 3]) },
            { type: "file", mediaType: "application/pdf", fileName: "a.pdf", data: new URL("https://example.com/a.pdf") }
          ]
        },
        { role: "assistant", content: [{ type: "text", text: "Let me look." }, { type: "tool-call", id: "c1", name: "get_forecast", params: { city: "Oslo" } }] },
        { role: "tool", content: [{ type: "tool-result", id: "c1", name: "get_forecast", result: "rain", isFailure: false, providerExecuted: false }] }
      ])
      const response = yield* LanguageModel.generateText({ prompt }).pipe(over(fake, { temperature: 0.2, max_tokens: 50, model: "ignored" }))
      expect(fake.calls).toHaveLength(1)
      const sent = fake.calls[0]!.request
      expect(sent.model).toBe("chat")
      expect(sent.temperature).toBe(0.2)
      expect(sent.max_tokens).toBe(50)
      expect(sent.tools).toBeUndefined()
      expect(sent.messages).toEqual([
        { role: "system", content: "Be brief." },
        {
          role: "user",
          content: [
            { type: "text", text: "What is in this picture, and the weather?" },
            { type: "image_url", image_url: { url: "data:image/png;base64,AQID" } },
            { type: "file", file: { filename: "a.pdf", file_data: "https://example.com/a.pdf" } }
          ]
        },
        { role: "assistant", content: "Let me look.", tool_calls: [{ id: "c1", type: "function", function: { name: "get_forecast", arguments: "{\"city\":\"Oslo\"}" } }] },
        { role: "tool", tool_call_id: "c1", content: "\"rain\"" }
      ])
      expect(response.text).toBe(fake.textFor(sent))
      expect(response.usage.inputTokens).toBeGreaterThan(0)
    }))

  it.effect("tool choice: oneOf narrows the tools sent, { tool } names one", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make()
      yield* LanguageModel.generateText({ prompt: "time?", toolkit: Tools, toolChoice: { oneOf: ["get_time"], mode: "required" } }).pipe(
        over(fake),
        Effect.provide(ToolsLive)
      )
      yield* LanguageModel.generateText({ prompt: "weather?", toolkit: Tools, toolChoice: { tool: "get_forecast" } }).pipe(
        over(fake),
        Effect.provide(ToolsLive)
      )
      const [narrowed, named] = fake.calls.map((c) => c.request)
      expect(narrowed?.tools?.map((t) => t.function.name)).toEqual(["get_time"])
      expect(narrowed?.tool_choice).toBe("required")
      expect(named?.tools?.map((t) => [t.function.name, t.function.description])).toEqual([["get_forecast", "The weather forecast"], ["get_time", undefined]])
      expect(named?.tool_choice).toEqual({ type: "function", function: { name: "get_forecast" } })
    }))

  it.effect("generateObject sends a strict json_schema response format", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make([{ text: "{\"name\":\"Ada\"}" }])
      const Person = Schema.Struct({ name: Schema.String })
      const response = yield* LanguageModel.generateObject({ prompt: "a person", schema: Person, objectName: "person" }).pipe(over(fake))
      expect(response.value).toEqual({ name: "Ada" })
      expect(fake.calls[0]!.request.response_format).toMatchObject({
        type: "json_schema",
        json_schema: { name: "person", strict: true, schema: { type: "object", required: ["name"] } }
      })
    }))

  it.effect("a streamed tool call's pieces are announced as they come; the call itself comes once, before the finish", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make([{ toolCall: true }])
      const parts = Chunk.toArray(yield* Stream.runCollect(LanguageModel.streamText({ prompt: "look it up", toolkit: LookupTools, disableToolCallResolution: true })).pipe(
        over(fake),
        Effect.provide(LookupLive)
      ))
      const types = parts.map((p) => p.type)
      expect(types.filter((t) => t === "tool-params-delta").length).toBeGreaterThan(1)
      expect(types.slice(-3)).toEqual(["tool-params-end", "tool-call", "finish"])
      expect(fake.calls[0]!.request.stream_options).toEqual({ include_usage: true })
    }))

  it.effect("a failure the stack gave up on is @effect/ai's UnknownError, the Breakwater error its cause", () =>
    Effect.gen(function*() {
      const refused = new ModelError.ContentRefused({ message: "refused", status: 400, code: "content_filter" })
      const fake = FakeLanguageModel.make([{ fail: refused }, { fail: refused }])
      const error = yield* Effect.flip(LanguageModel.generateText({ prompt: "hi" }).pipe(over(fake)))
      expect(error._tag).toBe("UnknownError")
      const cause = BreakwaterLanguageModel.modelErrorOf(error)
      expect([cause?._tag, cause?.message, cause?.retryable, cause?.code]).toEqual(["ContentRefused", "refused", false, "content_filter"])
      const streamed = yield* Effect.flip(Stream.runDrain(LanguageModel.streamText({ prompt: "hi" })).pipe(over(fake)))
      expect(BreakwaterLanguageModel.modelErrorOf(streamed)?._tag).toBe("ContentRefused")
    }))

  it.effect("invalid options are a defect naming the field", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make()
      const empty = yield* Effect.exit(BreakwaterLanguageModel.make(fake.model, { model: "" }))
      expect(Exit.isFailure(empty) && Cause.isDie(empty.cause)).toBe(true)
      const hot = yield* Effect.exit(BreakwaterLanguageModel.make(fake.model, { model: "chat", request: { temperature: 5 } }))
      expect(Exit.isFailure(hot) && Cause.pretty(hot.cause)).toContain("temperature")
    }))
})
