/**
 * An @effect/ai program (text, a streamed answer, a tool call) over a Breakwater gateway whose
 * upstreams are the mock: the mock fails (a 503, a stream cut mid-answer, a cut inside a tool
 * call, a dead primary provider) and the program still gets the undisturbed answer, with the
 * tool executed exactly once.
 */
import { BreakwaterLanguageModel } from "@breakwater/effect-ai"
import { ConfigLoader, GatewayBuilder } from "@breakwater/gateway"
import { MockUpstream } from "@breakwater/testing"
import { LanguageModel, Tool, Toolkit } from "@effect/ai"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Schema, Stream } from "effect"

const MODEL = "gpt-4o-mini"
const PROMPT = "Tell me about the sea"
/** The canonical request the mock sees for PROMPT: what its `textFor` answers. */
const canonical = { model: MODEL, messages: [{ role: "user" as const, content: PROMPT }] }

/** A gateway over the mock: OpenAI first, Anthropic (the same mock) as the fallback. */
const gatewayModel = (mock: MockUpstream.MockUpstream, route: Record<string, unknown> = {}) =>
  Effect.gen(function*() {
    const config = yield* ConfigLoader.fromObject({
      upstreams: {
        openai: { provider: "openai", baseUrl: mock.url, apiKey: "test", models: [MODEL] },
        anthropic: { provider: "anthropic", baseUrl: mock.origin, apiKey: "test", models: [MODEL] }
      },
      // Backoff short enough that a live test does not wait on it.
      routes: { [MODEL]: { upstreams: ["openai", "anthropic"], retry: { baseDelay: "1 millis", maxDelay: "1 millis" }, ...route } }
    }, {})
    const gateway = yield* GatewayBuilder.make(config)
    return gateway.model
  })

const provide = (mock: MockUpstream.MockUpstream, route?: Record<string, unknown>) =>
  Effect.provide(BreakwaterLanguageModel.layerFrom(gatewayModel(mock, route), { model: MODEL }))

const Forecast = Tool.make("get_forecast", {
  description: "The weather forecast for a city",
  parameters: { city: Schema.String, days: Schema.Number, units: Schema.String, note: Schema.String },
  success: Schema.String
})
const Tools = Toolkit.make(Forecast)

/** The toolkit with a handler that counts its executions. */
const countingTools = () => {
  const executed: Array<{ readonly city: string; readonly days: number }> = []
  const layer = Tools.toLayer({
    get_forecast: ({ city, days }) =>
      Effect.sync(() => {
        executed.push({ city, days })
        return `sunny in ${city} for ${days} days`
      })
  })
  return { executed, layer }
}

describe("BreakwaterLanguageModel over a gateway", () => {
  it.live("generateText: a 503 is retried below, the program gets the mock's answer", () =>
    Effect.gen(function*() {
      const mock = yield* MockUpstream.scoped()
      mock.script({ fault: MockUpstream.Fault.Status({ status: 503 }) })
      const response = yield* LanguageModel.generateText({ prompt: PROMPT }).pipe(provide(mock))
      expect(response.text).toBe(mock.textFor(canonical))
      expect(response.finishReason).toBe("stop")
      expect(mock.requests.map((r) => r.path)).toEqual(["/v1/chat/completions", "/v1/chat/completions"])
    }).pipe(Effect.scoped))

  it.live("generateText: a provider that refuses the key falls over to the other provider", () =>
    Effect.gen(function*() {
      const mock = yield* MockUpstream.scoped()
      mock.script({ fault: MockUpstream.Fault.Status({ status: 401 }) })
      const response = yield* LanguageModel.generateText({ prompt: PROMPT }).pipe(provide(mock))
      expect(response.text).toBe(mock.textFor(canonical))
      expect(mock.requests.map((r) => r.path)).toEqual(["/v1/chat/completions", "/v1/messages"])
    }).pipe(Effect.scoped))

  it.live("streamText: a stream cut mid-answer is resumed below, the deltas are the whole answer once", () =>
    Effect.gen(function*() {
      const mock = yield* MockUpstream.scoped()
      mock.script({ fault: MockUpstream.Fault.Cut({ afterChunks: 5 }) })
      const parts = Chunk.toArray(yield* Stream.runCollect(LanguageModel.streamText({ prompt: PROMPT })).pipe(provide(mock)))
      const text = parts.flatMap((p) => (p.type === "text-delta" ? [p.delta] : [])).join("")
      expect(text).toBe(mock.textFor(canonical))
      expect(mock.requests).toHaveLength(2) // the cut attempt and its continuation
      expect(parts.map((p) => p.type).filter((t) => t !== "text-delta")).toEqual(["response-metadata", "text-start", "text-end", "finish"])
      const finish = parts.at(-1)
      expect(finish?.type === "finish" && finish.reason).toBe("stop")
      expect(finish?.type === "finish" && finish.usage.outputTokens).toBeGreaterThan(0)
    }).pipe(Effect.scoped))

  it.live("generateText with a toolkit: after a 503 the tool runs once, on the final answer", () =>
    Effect.gen(function*() {
      const mock = yield* MockUpstream.scoped()
      mock.script({ fault: MockUpstream.Fault.Status({ status: 503 }) }, { toolCall: true })
      const tools = countingTools()
      const response = yield* LanguageModel.generateText({ prompt: PROMPT, toolkit: Tools }).pipe(
        provide(mock),
        Effect.provide(tools.layer)
      )
      expect(tools.executed).toHaveLength(1)
      expect(tools.executed[0]?.city).toBe("Zürich")
      expect(response.toolCalls.map((c) => c.name)).toEqual(["get_forecast"])
      expect(response.toolResults.map((r) => r.result)).toEqual([`sunny in Zürich for ${tools.executed[0]?.days} days`])
      expect(response.finishReason).toBe("tool-calls")
      // The tool definition reached the upstream in the canonical shape.
      const sent = mock.requests[1]?.body as { tools?: Array<{ function: { name: string; parameters: { required?: Array<string> } } }> }
      expect(sent.tools?.map((t) => t.function.name)).toEqual(["get_forecast"])
      expect(sent.tools?.[0]?.function.parameters.required).toEqual(["city", "days", "units", "note"])
    }).pipe(Effect.scoped))

  it.live("streamText with a toolkit: a cut inside the tool call is regenerated below, the tool runs once", () =>
    Effect.gen(function*() {
      const mock = yield* MockUpstream.scoped()
      mock.script({ toolCall: true, fault: MockUpstream.Fault.Cut({ afterChunks: 3 }) }, { toolCall: true })
      const tools = countingTools()
      const parts = Chunk.toArray(
        yield* Stream.runCollect(LanguageModel.streamText({ prompt: PROMPT, toolkit: Tools })).pipe(
          provide(mock),
          Effect.provide(tools.layer)
        )
      )
      expect(mock.requests).toHaveLength(2)
      expect(tools.executed).toHaveLength(1)
      const types = parts.map((p) => p.type)
      expect(types.filter((t) => t === "tool-call")).toHaveLength(1)
      expect(types.filter((t) => t === "tool-result")).toHaveLength(1)
      expect(types.indexOf("tool-call")).toBeLessThan(types.indexOf("finish"))
      const call = parts.find((p) => p.type === "tool-call")
      expect(call?.type === "tool-call" && call.params).toMatchObject({ city: "Zürich", units: "metric", note: "🌊 tide" })
    }).pipe(Effect.scoped))

  // With `toolStreaming: "pass-through"` the tool call's pieces reach this layer as they come, and
  // a break after them ends the stream with an error (a call cannot be continued). The call's
  // arguments were complete before the break: a translator that handed @effect/ai the call as soon
  // as its JSON parsed would have run the tool for an answer that then failed.
  it.live("streamText with a toolkit: a break after a complete tool call but before the finish runs no tool", () =>
    Effect.gen(function*() {
      const mock = yield* MockUpstream.scoped()
      // The mock streams its tool call's JSON arguments in pieces of 9 characters; cut right
      // after the last piece, before the finish chunk (the arguments' length does not depend on `days`).
      const pieces = Math.ceil(Array.from(JSON.stringify({ city: "Zürich", days: 1, units: "metric", note: "🌊 tide" })).length / 9)
      mock.script({ toolCall: true, fault: MockUpstream.Fault.Cut({ afterChunks: pieces }) })
      const tools = countingTools()
      const seen: Array<string> = []
      const error = yield* LanguageModel.streamText({ prompt: PROMPT, toolkit: Tools }).pipe(
        Stream.runForEach((part) => Effect.sync(() => seen.push(part.type))),
        Effect.flip,
        provide(mock, { resume: { toolStreaming: "pass-through" } }),
        Effect.provide(tools.layer)
      )
      expect(seen).toContain("tool-params-delta") // the whole call had arrived
      expect(tools.executed).toHaveLength(0)
      expect(seen).not.toContain("tool-call")
      expect(error._tag).toBe("UnknownError")
      expect(BreakwaterLanguageModel.modelErrorOf(error)?._tag).toBe("StreamInterrupted")
      expect(mock.requests).toHaveLength(1)
    }).pipe(Effect.scoped))
})
