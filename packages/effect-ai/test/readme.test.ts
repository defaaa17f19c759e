/**
 * The README's example, with the gateway's config pointing at the mock upstream (OpenAI first,
 * Anthropic as the fallback, both served by the mock): the first call meets a 503 (retried), the
 * second a rejected key on OpenAI (the fallback answers, with a tool call the toolkit runs).
 */
import { BreakwaterLanguageModel } from "@breakwater/effect-ai"
import { ConfigLoader, GatewayBuilder } from "@breakwater/gateway"
import { MockUpstream } from "@breakwater/testing"
import { LanguageModel, Tool, Toolkit } from "@effect/ai"
import { expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"

it.live("README: an @effect/ai program over a gateway", () =>
  Effect.gen(function*() {
    const mock = yield* MockUpstream.scoped()
    mock.script(
      { fault: MockUpstream.Fault.Status({ status: 503 }) },
      {},
      { fault: MockUpstream.Fault.Status({ status: 401 }) },
      { toolCall: true }
    )
    const executed: Array<string> = []

    // --- the README's example (the config from an object instead of breakwater.json) ---
    const Forecast = Tool.make("get_forecast", {
      parameters: { city: Schema.String, days: Schema.Number, units: Schema.String, note: Schema.String },
      success: Schema.String
    })
    const Tools = Toolkit.make(Forecast)
    const ToolsLive = Tools.toLayer({
      get_forecast: ({ city, days }) => Effect.sync(() => executed.push(city)).pipe(Effect.as(`sunny in ${city} for ${days} days`))
    })

    const program = Effect.gen(function*() {
      const answer = yield* LanguageModel.generateText({ prompt: "Tell me about the sea" })
      const withTool = yield* LanguageModel.generateText({ prompt: "Weather in Zürich?", toolkit: Tools })
      return { text: answer.text, tool: withTool.toolResults[0]?.result }
    })

    const gatewayModel = Effect.map(
      Effect.flatMap(
        ConfigLoader.fromObject({
          upstreams: {
            openai: { provider: "openai", baseUrl: mock.url, apiKey: "test", models: ["gpt-4o-mini"] },
            anthropic: { provider: "anthropic", baseUrl: mock.origin, apiKey: "test", models: { "gpt-4o-mini": "claude-haiku-4-5" } }
          },
          routes: { "gpt-4o-mini": { upstreams: ["openai", "anthropic"], retry: { baseDelay: "1 millis", maxDelay: "1 millis" } } }
        }, {}),
        (config) => GatewayBuilder.make(config)
      ),
      (gateway) => gateway.model
    )
    const Breakwater = BreakwaterLanguageModel.layerFrom(gatewayModel, { model: "gpt-4o-mini" })

    const result = yield* program.pipe(Effect.provide(Breakwater), Effect.provide(ToolsLive))
    // --- end of the example ---

    expect(result.text).toBe(mock.textFor({ messages: [{ role: "user", content: "Tell me about the sea" }] }))
    expect(executed).toEqual(["Zürich"])
    expect(result.tool).toMatch(/^sunny in Zürich for \d days$/)
    expect(mock.requests.map((r) => r.path)).toEqual(["/v1/chat/completions", "/v1/chat/completions", "/v1/chat/completions", "/v1/messages"])
  }).pipe(Effect.scoped))
