/**
 * The reverse direction: `@effect/ai-anthropic`'s provider layer as a Breakwater upstream, under
 * Breakwater's retry and stream-resume, against the mock's Anthropic Messages API. A 529 is
 * retried (the provider's HTTP error mapped to `Overloaded`; 401, 429 with `retry-after` mapped
 * as the built-in adapters map them), a stream cut mid-answer is
 * continued into the mock's whole text, a tool call comes back canonical, and what @effect/ai
 * cannot carry is a `BadRequest`.
 */
import { type ChatCompletion, LanguageModel } from "@breakwater/core"
import { EffectAiUpstream } from "@breakwater/effect-ai"
import { ConfigLoader, GatewayBuilder } from "@breakwater/gateway"
import { Retry } from "@breakwater/retry"
import { StreamResume } from "@breakwater/stream-resume"
import { MockUpstream } from "@breakwater/testing"
import { LanguageModel as AiLanguageModel } from "@effect/ai"
import { AnthropicClient, AnthropicLanguageModel } from "@effect/ai-anthropic"
import { FetchHttpClient } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Duration, Effect, Layer, Redacted, Stream } from "effect"

const PROMPT = "Tell me about the sea"
const request: ChatCompletion.ChatRequest = { model: "claude-haiku-4-5", messages: [{ role: "user", content: PROMPT }] }

/** Breakwater's policies over the @effect/ai Anthropic provider, which calls the mock. */
const stack = (mock: MockUpstream.MockUpstream) =>
  StreamResume.layer({ strategies: ["assistant-prefill"] }).pipe(
    Layer.provide(Retry.layer({ baseDelay: "1 millis", maxDelay: "1 millis", budget: false })),
    Layer.provide(EffectAiUpstream.layer({ name: "anthropic", continuation: "assistant-prefill" })),
    Layer.provide(AnthropicLanguageModel.layer({ model: "claude-haiku-4-5" })),
    Layer.provide(AnthropicClient.layer({ apiUrl: mock.origin, apiKey: Redacted.make("test") })),
    Layer.provide(FetchHttpClient.layer)
  )

/** The upstream alone, no policy above it. */
const bare = (mock: MockUpstream.MockUpstream) =>
  EffectAiUpstream.layer({ name: "anthropic" }).pipe(
    Layer.provide(AnthropicLanguageModel.layer({ model: "claude-haiku-4-5" })),
    Layer.provide(AnthropicClient.layer({ apiUrl: mock.origin, apiKey: Redacted.make("test") })),
    Layer.provide(FetchHttpClient.layer)
  )

const withModel = <A, E>(mock: MockUpstream.MockUpstream, f: (model: LanguageModel.Service) => Effect.Effect<A, E>) =>
  Effect.flatMap(LanguageModel.LanguageModel, f).pipe(Effect.provide(stack(mock)))

describe("EffectAiUpstream: an @effect/ai provider as a Breakwater upstream", () => {
  it.live("a 529 from the provider is Overloaded, retried below the policy; the answer is the mock's", () =>
    Effect.gen(function*() {
      const mock = yield* MockUpstream.scoped()
      mock.script({ fault: MockUpstream.Fault.Status({ status: 529 }) })
      const reply = yield* withModel(mock, (model) => model.generate(request))
      expect(reply.choices[0]?.message.content).toBe(mock.textFor(request))
      expect(reply.choices[0]?.finish_reason).toBe("stop")
      expect(reply.usage?.completion_tokens).toBeGreaterThan(0)
      expect(mock.requests.map((r) => r.path)).toEqual(["/v1/messages", "/v1/messages"])

      mock.script({ fault: MockUpstream.Fault.Status({ status: 401 }) })
      const error = yield* Effect.flip(LanguageModel.generate(request).pipe(Effect.provide(bare(mock))))
      expect([error._tag, error.status, error.upstream]).toEqual(["UpstreamAuth", 401, "anthropic"])
      // The provider's status and headers decide, as over Breakwater's own adapters.
      mock.script(
        { fault: MockUpstream.Fault.Status({ status: 529 }) },
        { fault: MockUpstream.Fault.Status({ status: 429 }), headers: { "retry-after": "7" } }
      )
      const overloaded = yield* Effect.flip(LanguageModel.generate(request).pipe(Effect.provide(bare(mock))))
      expect([overloaded._tag, overloaded.retryable]).toEqual(["Overloaded", true])
      const limited = yield* Effect.flip(LanguageModel.generate(request).pipe(Effect.provide(bare(mock))))
      expect([limited._tag, limited._tag === "RateLimited" && limited.retryAfter && Duration.toSeconds(limited.retryAfter)]).toEqual(["RateLimited", 7])
    }).pipe(Effect.scoped))

  it.live("a stream cut mid-answer is a StreamInterrupted break; stream-resume continues it: the client's text is the mock's, once", () =>
    Effect.gen(function*() {
      const mock = yield* MockUpstream.scoped()
      mock.script({ fault: MockUpstream.Fault.Cut({ afterChunks: 5 }) })
      const broken = yield* Effect.flatMap(LanguageModel.LanguageModel, (model) => Effect.flip(Stream.runDrain(model.stream({ ...request, stream: true })))).pipe(
        Effect.provide(bare(mock))
      )
      expect(broken._tag === "StreamInterrupted" && [broken.reason, broken.receivedChunks]).toEqual(["reset", 5])
      mock.reset()

      mock.script({ fault: MockUpstream.Fault.Cut({ afterChunks: 5 }) })
      const chunks = yield* withModel(mock, (model) => Stream.runCollect(model.stream({ ...request, stream: true })))
      const text = Chunk.toArray(chunks).map((c) => c.choices[0]?.delta.content ?? "").join("")
      expect(text).toBe(mock.textFor(request))
      expect(mock.requests).toHaveLength(2)
      // The continuation went to the provider as an assistant prefill of the delivered text.
      const second = mock.requests[1]?.body as { messages: Array<{ role: string }> }
      expect(second.messages.map((m) => m.role)).toEqual(["user", "assistant"])
      expect(Chunk.toArray(chunks).flatMap((c) => c.choices.map((x) => x.finish_reason)).filter((f) => f !== null)).toEqual(["stop"])
    }).pipe(Effect.scoped))

  it.live("tools go to the provider as JSON Schema; its tool call comes back canonical, not executed", () =>
    Effect.gen(function*() {
      const mock = yield* MockUpstream.scoped()
      mock.script({ toolCall: true }, { toolCall: true })
      const parameters = { type: "object", properties: { city: { type: "string" } }, required: ["city"] }
      const withTools: ChatCompletion.ChatRequest = {
        ...request,
        tools: [{ type: "function", function: { name: "get_forecast", description: "The forecast", parameters } }],
        tool_choice: "auto"
      }
      const reply = yield* withModel(mock, (model) => model.generate(withTools))
      const call = reply.choices[0]?.message.tool_calls?.[0]
      expect(call?.function.name).toBe("get_forecast")
      expect(JSON.parse(call?.function.arguments ?? "{}")).toMatchObject({ city: "Zürich", units: "metric" })
      expect(reply.choices[0]?.finish_reason).toBe("tool_calls")
      const sent = mock.requests[0]?.body as { tools: Array<{ name: string; input_schema: unknown }> }
      expect(sent.tools).toEqual([{ name: "get_forecast", description: "The forecast", input_schema: parameters }])

      const streamed = yield* withModel(mock, (model) => Stream.runCollect(model.stream({ ...withTools, stream: true })))
      const deltas = Chunk.toArray(streamed).flatMap((c) => c.choices[0]?.delta.tool_calls ?? [])
      expect(deltas.map((d) => [d.index, d.function?.name])).toEqual([[0, "get_forecast"]])
    }).pipe(Effect.scoped))

  it.live("what @effect/ai cannot carry is refused as a BadRequest, before any call", () =>
    Effect.gen(function*() {
      const mock = yield* MockUpstream.scoped()
      for (const bad of [
        { ...request, n: 2 },
        { ...request, response_format: { type: "json_object" } },
        { ...request, messages: [{ role: "user" as const, content: [{ type: "input_audio", input_audio: { data: "", format: "wav" } }] }] }
      ] satisfies Array<ChatCompletion.ChatRequest>) {
        const error = yield* withModel(mock, (model) => Effect.flip(model.generate(bad)))
        expect(error._tag).toBe("BadRequest")
      }
      expect(mock.requests).toHaveLength(0)
    }).pipe(Effect.scoped))

  it.live("in a gateway: the @effect/ai provider is an upstream's adapter, behind the gateway's whole baseline", () =>
    Effect.gen(function*() {
      const mock = yield* MockUpstream.scoped()
      mock.script({ fault: MockUpstream.Fault.Status({ status: 503 }) }, { fault: MockUpstream.Fault.Cut({ afterChunks: 4 }) })
      const provider = yield* AiLanguageModel.LanguageModel.pipe(
        Effect.provide(AnthropicLanguageModel.layer({ model: "claude-haiku-4-5" })),
        Effect.provide(AnthropicClient.layer({ apiUrl: mock.origin, apiKey: Redacted.make("test") })),
        Effect.provide(FetchHttpClient.layer)
      )
      const config = yield* ConfigLoader.fromObject({
        upstreams: { claude: { provider: "anthropic", models: { chat: "claude-haiku-4-5" } } },
        routes: { chat: { upstreams: ["claude"], retry: { baseDelay: "1 millis", maxDelay: "1 millis" } } }
      }, {})
      const gateway = yield* GatewayBuilder.make(config, {
        adapters: { claude: yield* EffectAiUpstream.make(provider, { name: "claude", continuation: "assistant-prefill" }) }
      })
      const chunks = yield* Stream.runCollect(gateway.model.stream({ model: "chat", messages: request.messages, stream: true }))
      const text = Chunk.toArray(chunks).map((c) => c.choices[0]?.delta.content ?? "").join("")
      expect(text).toBe(mock.textFor(request))
      // The 503 retried, then the cut stream continued.
      expect(mock.requests).toHaveLength(3)
    }).pipe(Effect.scoped))
})
