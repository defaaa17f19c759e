import { type ChatCompletion, ModelError, RequestContext } from "@breakwater/core"
import { AnthropicProvider } from "@breakwater/provider-anthropic"
import { OpenAiProvider } from "@breakwater/provider-openai"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import { readFileSync } from "node:fs"
// The scripted upstream stand-in shared with provider-openai's tests (see its header).
import * as Upstream from "../../provider-openai/test/support/upstream.js"

const request: ChatCompletion.ChatRequest = {
  model: "claude-sonnet-4-20250514",
  messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Tell me a story" }]
}
const errors = JSON.parse(readFileSync(new URL("./fixtures/errors.json", import.meta.url), "utf8")) as Record<
  string,
  { status: number; headers: Record<string, string>; body: unknown }
>
const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), "utf8")
const text = (chunks: Iterable<ChatCompletion.ChatCompletionChunk>) => [...chunks].map((c) => c.choices[0]?.delta.content ?? "").join("")

const withContext = <A, E, R>(self: Effect.Effect<A, E, R>) => {
  const context = RequestContext.make({ requestId: "req-1" })
  return Effect.map(Effect.provideService(self, RequestContext.RequestContext, context), (a) => [a, context.trace] as const)
}

describe("Anthropic adapter over real HTTP", () => {
  it.scopedLive("generate: POST /v1/messages with x-api-key, anthropic-version and max_tokens; canonical completion back", () =>
    Effect.gen(function*() {
      const server = yield* Upstream.start("", Upstream.json(200, JSON.parse(fixture("message.json"))))
      const model = yield* AnthropicProvider.make({ baseUrl: server.baseUrl, apiKey: Redacted.make("sk-ant-test-123456"), headers: { "anthropic-beta": "x" } })
      const [completion, trace] = yield* withContext(model.generate(request))
      expect(completion.choices[0]!.message.content).toBe("The capital of France is Paris.")
      expect(completion.choices[0]!.finish_reason).toBe("stop")
      expect(trace).toMatchObject({ attempts: 1, upstream: "anthropic", model: "claude-sonnet-4-20250514" })
      const seen = server.requests[0]!
      expect(seen.url).toBe("/v1/messages")
      expect(seen.headers["x-api-key"]).toBe("sk-ant-test-123456")
      expect(seen.headers["anthropic-version"]).toBe("2023-06-01")
      expect(seen.headers["anthropic-beta"]).toBe("x")
      expect(seen.headers.authorization).toBeUndefined()
      expect(seen.body).toEqual({
        model: "claude-sonnet-4-20250514",
        max_tokens: 4096,
        system: "Be brief.",
        messages: [{ role: "user", content: [{ type: "text", text: "Tell me a story" }] }]
      })
    }))

  it.scopedLive("stream: text, finish and usage chunks; ping as a heartbeat; the trace filled", () =>
    Effect.gen(function*() {
      const server = yield* Upstream.start("", Upstream.sse(fixture("stream.sse").split(/(?<=\n\n)/)))
      const model = yield* AnthropicProvider.make({ baseUrl: server.baseUrl })
      const [chunks, trace] = yield* withContext(Stream.runCollect(model.stream({ ...request, max_tokens: 50 })))
      expect(text(chunks)).toBe("The capital of France is Paris — très belle.")
      expect(Chunk.unsafeLast(chunks).usage).toEqual({ prompt_tokens: 14, completion_tokens: 9, total_tokens: 23 })
      expect(trace).toMatchObject({ attempts: 1, upstream: "anthropic", model: "claude-sonnet-4-20250514" })
      expect(server.requests[0]!.body).toMatchObject({ stream: true, max_tokens: 50 })
      expect(server.requests[0]!.headers.accept).toBe("text/event-stream")
    }))

  it.scopedLive("tool use, streamed and not", () =>
    Effect.gen(function*() {
      const server = yield* Upstream.start(
        "",
        Upstream.json(200, JSON.parse(fixture("message-tool-use.json"))),
        Upstream.sse(fixture("stream-tool-use.sse").split(/(?<=\n\n)/))
      )
      const model = yield* AnthropicProvider.make({ baseUrl: server.baseUrl })
      const completion = yield* model.generate(request)
      expect(completion.choices[0]!.message.tool_calls).toEqual([
        { id: "toolu_01A09q90qw90lq917835lq9", type: "function", function: { name: "get_weather", arguments: "{\"location\":\"Paris\"}" } }
      ])
      expect(completion.choices[0]!.finish_reason).toBe("tool_calls")
      const chunks = Chunk.toArray(yield* Stream.runCollect(model.stream(request)))
      const deltas = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? [])
      expect(deltas.filter((d) => d.index === 0).map((d) => d.function?.arguments ?? "").join("")).toBe("{\"location\":\"Paris\"}")
    }))

  it.scopedLive("a continuation is an assistant prefill, right-trimmed", () =>
    Effect.gen(function*() {
      const server = yield* Upstream.start("", Upstream.sse(Upstream.anthropicFrames("there was a gateway.")))
      const model = yield* AnthropicProvider.make({ baseUrl: server.baseUrl })
      yield* Stream.runDrain(model.stream(request, { continuation: { partial: "Once upon a time " } }))
      expect(server.requests[0]!.body.messages).toEqual([
        { role: "user", content: [{ type: "text", text: "Tell me a story" }] },
        { role: "assistant", content: [{ type: "text", text: "Once upon a time" }] }
      ])
    }))

  it.scopedLive("tool-call arguments that are not JSON are a BadRequest before any upstream call", () =>
    Effect.gen(function*() {
      const server = yield* Upstream.start("", Upstream.json(200, {}))
      const model = yield* AnthropicProvider.make({ baseUrl: server.baseUrl })
      const bad: ChatCompletion.ChatRequest = {
        ...request,
        messages: [...request.messages, { role: "assistant", content: null, tool_calls: [{ id: "t", type: "function", function: { name: "f", arguments: "{" } }] }]
      }
      const [error, trace] = yield* withContext(Effect.flip(model.generate(bad)))
      expect(error._tag).toBe("BadRequest")
      expect(trace.attempts).toBe(0)
      expect(server.requests.length).toBe(0)
    }))
})

const errorCases: ReadonlyArray<readonly [string, Upstream.Behavior, string, number?]> = [
  ["529 overloaded_error", Upstream.json(529, errors.overloaded!.body), "Overloaded"],
  ["529 with retry-after", Upstream.json(529, errors.overloaded!.body, { "retry-after": "4" }), "Overloaded", 4000],
  ["429 rate_limit_error with retry-after", Upstream.json(429, errors.rate_limited!.body, errors.rate_limited!.headers), "RateLimited", 7000],
  ["429 with retry-after-ms", Upstream.json(429, errors.rate_limited!.body, { "retry-after-ms": "250" }), "RateLimited", 250],
  ["400 prompt is too long", Upstream.json(400, errors.prompt_too_long!.body), "ContextTooLong"],
  ["401 authentication_error", Upstream.json(401, errors.invalid_key!.body), "UpstreamAuth"],
  ["403 permission_error", Upstream.json(403, errors.permission!.body), "UpstreamAuth"],
  ["404 not_found_error", Upstream.json(404, errors.not_found!.body), "ModelNotFound"],
  ["413 request_too_large", Upstream.json(413, errors.too_large!.body), "BadRequest"],
  ["500 api_error", Upstream.json(500, errors.api_error!.body), "UpstreamUnavailable"],
  ["503", Upstream.json(503, errors.api_error!.body), "UpstreamUnavailable"]
]

describe("Anthropic adapter: every error class over real HTTP", () => {
  for (const [name, behavior, tag, retryAfter] of errorCases) {
    it.scopedLive(`${name} → ${tag}`, () =>
      Effect.gen(function*() {
        const server = yield* Upstream.start("", behavior)
        const model = yield* AnthropicProvider.make({ baseUrl: server.baseUrl })
        for (const call of [model.generate(request), Stream.runDrain(model.stream(request))]) {
          const [error, trace] = yield* withContext(Effect.flip(call))
          expect(error._tag).toBe(tag)
          expect(error.upstream).toBe("anthropic")
          expect(trace.attempts).toBe(1)
          const delay = ModelError.retryAfterOf(error)
          expect(delay === undefined ? undefined : Duration.toMillis(delay)).toBe(retryAfter)
        }
      }))
  }

  it.scopedLive("429 with only anthropic-ratelimit-*-reset → RateLimited with the delay to the reset", () =>
    Effect.gen(function*() {
      const reset = new Date(Date.now() + 20_000).toISOString()
      const server = yield* Upstream.start("", Upstream.json(429, errors.rate_limited!.body, {
        "anthropic-ratelimit-tokens-remaining": "0",
        "anthropic-ratelimit-tokens-reset": reset
      }))
      const model = yield* AnthropicProvider.make({ baseUrl: server.baseUrl })
      const error = yield* Effect.flip(model.generate(request))
      expect(error._tag).toBe("RateLimited")
      expect(Duration.toMillis(ModelError.retryAfterOf(error)!)).toBeGreaterThan(15_000)
    }))

  it.scopedLive("an overloaded_error event mid-stream → StreamInterrupted(error-event) caused by Overloaded", () =>
    Effect.gen(function*() {
      const server = yield* Upstream.start("", Upstream.sse(fixture("stream-error-event.sse").split(/(?<=\n\n)/), "stall"))
      const model = yield* AnthropicProvider.make({ baseUrl: server.baseUrl })
      const got: Array<ChatCompletion.ChatCompletionChunk> = []
      const error = (yield* Effect.flip(Stream.runForEach(model.stream(request), (c) => Effect.sync(() => got.push(c))))) as ModelError.StreamInterrupted
      expect(error).toMatchObject({ _tag: "StreamInterrupted", reason: "error-event", receivedChunks: 2 })
      expect(error.cause).toBeInstanceOf(ModelError.Overloaded)
      expect(text(got)).toBe("Once upon")
      expect(yield* Effect.promise(() => server.requests[0]!.closed)).toBe(true)
    }))

  it.scopedLive("a stream cut mid-way → reset; one without message_stop → no-terminator", () =>
    Effect.gen(function*() {
      const server = yield* Upstream.start(
        "",
        Upstream.sse(Upstream.anthropicFrames("one two three").slice(0, 5), "cut"),
        Upstream.sse(Upstream.anthropicFrames("one two three", { stop: false }))
      )
      const model = yield* AnthropicProvider.make({ baseUrl: server.baseUrl })
      expect(yield* Effect.flip(Stream.runDrain(model.stream(request)))).toMatchObject({ reason: "reset", receivedChunks: 3 })
      expect(yield* Effect.flip(Stream.runDrain(model.stream(request)))).toMatchObject({ reason: "no-terminator", receivedChunks: 6 })
    }))

  it.scopedLive("a stalled stream: interrupting the consumer closes the upstream socket", () =>
    Effect.gen(function*() {
      const server = yield* Upstream.start("", Upstream.sse(Upstream.anthropicFrames("one two three").slice(0, 4), "stall"))
      const model = yield* AnthropicProvider.make({ baseUrl: server.baseUrl })
      const first = yield* Deferred.make<void>()
      const fiber = yield* Effect.fork(Stream.runForEach(model.stream(request), (c) =>
        c.choices[0]?.delta.content ? Deferred.succeed(first, undefined) : Effect.void))
      yield* Deferred.await(first)
      yield* Fiber.interrupt(fiber)
      expect(yield* Effect.promise(() => server.requests[0]!.closed)).toBe(true)
    }))
})

describe("cross-provider: one canonical request, either adapter, the same canonical answer", () => {
  const story = "Once upon a time, a gateway kept every stream whole."
  it.scopedLive("streamed and not", () =>
    Effect.gen(function*() {
      const openaiServer = yield* Upstream.start("/v1", Upstream.dynamic((r) =>
        r.body.stream ? Upstream.sse(Upstream.openAiFrames(story)) : Upstream.json(200, Upstream.openAiCompletion(story))))
      const anthropicServer = yield* Upstream.start("", Upstream.dynamic((r) =>
        r.body.stream ? Upstream.sse(Upstream.anthropicFrames(story)) : Upstream.json(200, Upstream.anthropicMessage(story))))
      const models = [
        yield* OpenAiProvider.make({ baseUrl: openaiServer.baseUrl }),
        yield* AnthropicProvider.make({ baseUrl: anthropicServer.baseUrl })
      ]
      for (const model of models) {
        const completion = yield* model.generate(request)
        expect(completion).toMatchObject({ object: "chat.completion", choices: [{ index: 0, message: { role: "assistant", content: story }, finish_reason: "stop" }] })
        const chunks = Chunk.toArray(yield* Stream.runCollect(model.stream(request)))
        expect(text(chunks)).toBe(story)
        expect(chunks[0]!.choices[0]!.delta.role).toBe("assistant")
        expect(chunks.filter((c) => c.choices[0]?.finish_reason != null).map((c) => c.choices[0]!.finish_reason)).toEqual(["stop"])
        expect(chunks.at(-1)!.choices).toEqual([])
        expect(chunks.at(-1)!.usage!.completion_tokens).toBe(10)
      }
    }))
})
