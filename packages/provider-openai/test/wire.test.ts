import { ChatCompletion, LanguageModel, ModelError, RequestContext } from "@breakwater/core"
import { OpenAiProvider } from "@breakwater/provider-openai"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import { readFileSync } from "node:fs"
import * as Upstream from "./support/upstream.js"

// Real HTTP against a scripted upstream on a loopback port. Nothing sleeps: each step waits for
// an I/O event (a request reached the upstream, a chunk reached the consumer).

const request: ChatCompletion.ChatRequest = { model: "gpt-4o-mini", messages: [{ role: "user", content: "Tell me a story" }] }
const errors = JSON.parse(readFileSync(new URL("./fixtures/errors.json", import.meta.url), "utf8")) as Record<
  string,
  { status: number; headers: Record<string, string>; body: unknown }
>

const text = (chunks: Iterable<ChatCompletion.ChatCompletionChunk>) => [...chunks].map((c) => c.choices[0]?.delta.content ?? "").join("")

const withContext = <A, E, R>(self: Effect.Effect<A, E, R>) => {
  const context = RequestContext.make({ requestId: "req-1" })
  return Effect.map(Effect.provideService(self, RequestContext.RequestContext, context), (a) => [a, context.trace] as const)
}

describe("OpenAI adapter over real HTTP", () => {
  it.scopedLive("generate: sends the request with the key and extra headers, returns the completion, fills the trace", () =>
    Effect.gen(function*() {
      const server = yield* Upstream.start("/v1", Upstream.json(200, Upstream.openAiCompletion("Once upon a time.", "gpt-4o-mini-2024-07-18")))
      const model = yield* OpenAiProvider.make({
        baseUrl: server.baseUrl,
        apiKey: Redacted.make("sk-test-1234567890"),
        headers: { "OpenAI-Organization": "org-1" }
      })
      const [completion, trace] = yield* withContext(model.generate({ ...request, stream_options: { include_usage: true } }))
      expect(completion.choices[0]!.message.content).toBe("Once upon a time.")
      expect(trace).toMatchObject({ attempts: 1, upstream: "openai", model: "gpt-4o-mini-2024-07-18" })
      const seen = server.requests[0]!
      expect(seen.url).toBe("/v1/chat/completions")
      expect(seen.headers.authorization).toBe("Bearer sk-test-1234567890")
      expect(seen.headers["openai-organization"]).toBe("org-1")
      expect(seen.body).toEqual({ ...request, stream: false })
    }))

  it.scopedLive("stream: asks for usage, passes every chunk on (usage included), fills the trace", () =>
    Effect.gen(function*() {
      const server = yield* Upstream.start("/v1", Upstream.sse(Upstream.openAiFrames("Once upon a time there was a gateway.", { model: "gpt-4o-mini-2024-07-18" })))
      const model = yield* OpenAiProvider.make({ baseUrl: server.baseUrl })
      const [chunks, trace] = yield* withContext(Stream.runCollect(model.stream(request)))
      expect(text(chunks)).toBe("Once upon a time there was a gateway.")
      expect(Chunk.unsafeLast(chunks).usage).toEqual({ prompt_tokens: 5, completion_tokens: 8, total_tokens: 13 })
      expect(trace).toMatchObject({ attempts: 1, upstream: "openai", model: "gpt-4o-mini-2024-07-18" })
      expect(server.requests[0]!.body).toMatchObject({ stream: true, stream_options: { include_usage: true } })
      expect(server.requests[0]!.headers.authorization).toBeUndefined()
      expect(server.requests[0]!.headers.accept).toBe("text/event-stream")
    }))

  it.scopedLive("tool calls, streamed and not, come back as the upstream sent them", () =>
    Effect.gen(function*() {
      const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), "utf8")
      const server = yield* Upstream.start(
        "/v1",
        Upstream.json(200, JSON.parse(fixture("chat-completion-tool-calls.json"))),
        Upstream.sse(fixture("stream-tool-calls.sse").split(/(?<=\n\n)/))
      )
      const model = yield* OpenAiProvider.make({ baseUrl: server.baseUrl })
      const completion = yield* model.generate(request)
      expect(completion.choices[0]!.message.tool_calls![0]!.function).toEqual({ name: "get_weather", arguments: "{\"location\":\"Paris\"}" })
      const chunks = Chunk.toArray(yield* Stream.runCollect(model.stream(request)))
      const args = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []).filter((d) => d.index === 1).map((d) => d.function?.arguments).join("")
      expect(args).toBe("{\"tz\":\"CET\"}")
    }))

  it.scopedLive("Azure: api-key header and the api-version query on the deployment's URL", () =>
    Effect.gen(function*() {
      const server = yield* Upstream.start("/openai/deployments/gpt4o", Upstream.json(200, Upstream.openAiCompletion("ok")))
      const model = yield* OpenAiProvider.make({ baseUrl: server.baseUrl, apiKey: Redacted.make("azure-key-123456"), azure: { apiVersion: "2024-10-21" } })
      yield* model.generate(request)
      const seen = server.requests[0]!
      expect(seen.url).toBe("/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21")
      expect(seen.headers["api-key"]).toBe("azure-key-123456")
      expect(seen.headers.authorization).toBeUndefined()
    }))

  it.scopedLive("a continuation is sent as a user instruction by default, and as a vLLM prefill when configured", () =>
    Effect.gen(function*() {
      const server = yield* Upstream.start("/v1", Upstream.sse(Upstream.openAiFrames("there was a gateway.")))
      const openai = yield* OpenAiProvider.make({ baseUrl: server.baseUrl })
      yield* Stream.runDrain(openai.stream(request, { continuation: { partial: "Once upon a time " } }))
      expect(server.requests[0]!.body.messages).toEqual([
        ...request.messages,
        { role: "assistant", content: "Once upon a time " },
        { role: "user", content: expect.stringContaining("Continue exactly where it stopped") }
      ])
      const vllm = yield* OpenAiProvider.make({ baseUrl: server.baseUrl, continuation: "assistant-prefill", continueFinalMessage: true })
      yield* Stream.runDrain(vllm.stream(request, { continuation: { partial: "Once upon a time " } }))
      expect(server.requests[1]!.body).toMatchObject({
        messages: [...request.messages, { role: "assistant", content: "Once upon a time" }],
        continue_final_message: true,
        add_generation_prompt: false
      })
    }))

  it.scopedLive("the pool keeps its connections alive across sequential calls, streamed and not", () =>
    Effect.gen(function*() {
      const server = yield* Upstream.start(
        "/v1",
        Upstream.dynamic((r) => (r.body.stream ? Upstream.sse(Upstream.openAiFrames("a b c")) : Upstream.json(200, Upstream.openAiCompletion("x"))))
      )
      const model = yield* OpenAiProvider.make({ baseUrl: server.baseUrl })
      for (let i = 0; i < 10; i++) {
        yield* Stream.runDrain(model.stream(request))
        yield* model.generate(request)
      }
      expect(server.requests.length).toBe(20)
      // The next call may start while the previous body's final HTTP chunk is in flight: two at most.
      expect(server.connections()).toBeLessThanOrEqual(2)
    }))

  it.scopedLive("a stream that ends at [DONE] before its final HTTP chunk arrives does not lose its connection", () =>
    Effect.gen(function*() {
      const server = yield* Upstream.start("/v1", Upstream.sse(Upstream.openAiFrames("a b c"), "end-late"))
      const model = yield* OpenAiProvider.make({ baseUrl: server.baseUrl })
      for (let i = 0; i < 8; i++) yield* Stream.runDrain(model.stream(request))
      expect(server.requests.every((r) => r.body.stream)).toBe(true)
      // No exchange was aborted: each body was drained to its end and its socket kept.
      expect(yield* Effect.promise(() => Promise.all(server.requests.map((r) => r.closed)))).toEqual(Array(8).fill(false))
    }))
})

const errorCases: ReadonlyArray<readonly [string, Upstream.Behavior, string, number?]> = [
  ["429 rate limit (retry-after seconds)", Upstream.json(429, errors.rate_limited!.body, errors.rate_limited!.headers), "RateLimited", 2000],
  ["429 with retry-after-ms", Upstream.json(429, errors.rate_limited!.body, { "retry-after-ms": "1500", "retry-after": "9" }), "RateLimited", 1500],
  ["429 with x-ratelimit-reset-* only", Upstream.json(429, errors.rate_limited!.body, { "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1s", "x-ratelimit-reset-tokens": "6m0s" }), "RateLimited", 1000],
  ["429 insufficient_quota", Upstream.json(429, errors.quota!.body), "QuotaExhausted"],
  ["400 context_length_exceeded", Upstream.json(400, errors.context_length!.body), "ContextTooLong"],
  ["400 content_filter", Upstream.json(400, errors.content_filter!.body), "ContentRefused"],
  ["400 invalid request", Upstream.json(400, errors.bad_request!.body), "BadRequest"],
  ["400 from vLLM", Upstream.json(400, errors.vllm_bad_request!.body), "BadRequest"],
  ["413", Upstream.json(413, { error: { message: "too large" } }), "BadRequest"],
  ["401 invalid key", Upstream.json(401, errors.invalid_key!.body), "UpstreamAuth"],
  ["403", Upstream.json(403, { error: { message: "forbidden", type: "permission_error" } }), "UpstreamAuth"],
  ["404 model not found", Upstream.json(404, errors.model_not_found!.body), "ModelNotFound"],
  ["500 server error", Upstream.json(500, errors.server_error!.body), "UpstreamUnavailable"],
  ["503 with retry-after", Upstream.json(503, { error: { message: "down" } }, { "retry-after": "3" }), "UpstreamUnavailable", 3000],
  ["502 HTML page from a proxy", (res) => {
    res.writeHead(502, { "content-type": "text/html" })
    res.end("<html><body>Bad Gateway</body></html>")
  }, "UpstreamUnavailable"],
  ["529 overloaded", Upstream.json(529, { error: { message: "overloaded" } }, { "retry-after": "1" }), "Overloaded", 1000]
]

describe("OpenAI adapter: every error class over real HTTP", () => {
  for (const [name, behavior, tag, retryAfter] of errorCases) {
    it.scopedLive(`${name} → ${tag}`, () =>
      Effect.gen(function*() {
        const server = yield* Upstream.start("/v1", behavior)
        const model = yield* OpenAiProvider.make({ baseUrl: server.baseUrl })
        for (const call of [model.generate(request), Stream.runDrain(model.stream(request))]) {
          const [error, trace] = yield* withContext(Effect.flip(call))
          expect(error._tag).toBe(tag)
          expect(error.upstream).toBe("openai")
          expect(trace.attempts).toBe(1)
          expect(trace.upstream).toBeUndefined()
          const delay = ModelError.retryAfterOf(error)
          expect(delay === undefined ? undefined : Duration.toMillis(delay)).toBe(retryAfter)
        }
      }))
  }

  it.scopedLive("429 with an HTTP-date retry-after → RateLimited with the delay to that date", () =>
    Effect.gen(function*() {
      const when = new Date(Date.now() + 30_000).toUTCString()
      const server = yield* Upstream.start("/v1", Upstream.json(429, errors.rate_limited!.body, { "retry-after": when }))
      const model = yield* OpenAiProvider.make({ baseUrl: server.baseUrl })
      const error = yield* Effect.flip(model.generate(request))
      expect(error._tag).toBe("RateLimited")
      const ms = Duration.toMillis(ModelError.retryAfterOf(error)!)
      expect(ms).toBeGreaterThan(25_000)
      expect(ms).toBeLessThanOrEqual(30_000)
    }))

  it.scopedLive("connection refused → ConnectionFailed; no headers in time → Timeout(headers)", () =>
    Effect.gen(function*() {
      const closed = yield* Effect.scoped(Upstream.start("/v1", Upstream.silent))
      const refused = yield* OpenAiProvider.make({ baseUrl: closed.baseUrl })
      expect((yield* Effect.flip(refused.generate(request)))._tag).toBe("ConnectionFailed")

      const server = yield* Upstream.start("/v1", Upstream.silent)
      const slow = yield* OpenAiProvider.make({ baseUrl: server.baseUrl, headersTimeout: 150 })
      const error = yield* Effect.flip(Stream.runDrain(slow.stream(request)))
      expect(error).toMatchObject({ _tag: "Timeout", phase: "headers" })
      expect(yield* Effect.promise(() => server.requests[0]!.closed)).toBe(true)
    }))

  it.scopedLive("a stream cut mid-way → StreamInterrupted(reset) with the chunks received", () =>
    Effect.gen(function*() {
      const server = yield* Upstream.start("/v1", Upstream.sse(Upstream.openAiFrames("one two three four").slice(0, 3), "cut"))
      const model = yield* OpenAiProvider.make({ baseUrl: server.baseUrl })
      const got: Array<ChatCompletion.ChatCompletionChunk> = []
      const error = yield* Effect.flip(Stream.runForEach(model.stream(request), (c) => Effect.sync(() => got.push(c))))
      expect(error).toMatchObject({ _tag: "StreamInterrupted", reason: "reset", receivedChunks: 3 })
      expect(text(got)).toBe("one two ")
    }))

  it.scopedLive("a stream that ends without [DONE] → StreamInterrupted(no-terminator)", () =>
    Effect.gen(function*() {
      const server = yield* Upstream.start("/v1", Upstream.sse(Upstream.openAiFrames("one two", { done: false })))
      const model = yield* OpenAiProvider.make({ baseUrl: server.baseUrl })
      const error = yield* Effect.flip(Stream.runDrain(model.stream(request)))
      expect(error).toMatchObject({ _tag: "StreamInterrupted", reason: "no-terminator", receivedChunks: 5 })
    }))

  it.scopedLive("an error event mid-stream → StreamInterrupted(error-event) with the classified cause", () =>
    Effect.gen(function*() {
      const frames = [
        ...Upstream.openAiFrames("one two").slice(0, 2),
        `data: ${JSON.stringify({ error: { message: "Rate limit reached", type: "requests", code: "rate_limit_exceeded" } })}\n\n`
      ]
      const server = yield* Upstream.start("/v1", Upstream.sse(frames, "stall"))
      const model = yield* OpenAiProvider.make({ baseUrl: server.baseUrl })
      const error = (yield* Effect.flip(Stream.runDrain(model.stream(request)))) as ModelError.StreamInterrupted
      expect(error).toMatchObject({ _tag: "StreamInterrupted", reason: "error-event", receivedChunks: 2 })
      expect((error.cause as ModelError.ModelError)._tag).toBe("RateLimited")
      // The adapter stopped reading at the error: the stalled upstream sees its client go away.
      expect(yield* Effect.promise(() => server.requests[0]!.closed)).toBe(true)
    }))

  it.scopedLive("a malformed frame → StreamInterrupted(malformed)", () =>
    Effect.gen(function*() {
      const server = yield* Upstream.start("/v1", Upstream.sse([Upstream.openAiFrames("x")[0]!, "data: {\"choices\": [\n\n"]))
      const model = yield* OpenAiProvider.make({ baseUrl: server.baseUrl })
      expect(yield* Effect.flip(Stream.runDrain(model.stream(request)))).toMatchObject({ reason: "malformed", receivedChunks: 1 })
    }))

  it.scopedLive("keep-alive comments arrive as heartbeat chunks", () =>
    Effect.gen(function*() {
      const frames = Upstream.openAiFrames("one two")
      const server = yield* Upstream.start("/v1", Upstream.sse([frames[0]!, ": keep-alive\n\n", ...frames.slice(1)]))
      const model = yield* OpenAiProvider.make({ baseUrl: server.baseUrl })
      const chunks = Chunk.toArray(yield* Stream.runCollect(model.stream(request)))
      expect(chunks.map(ChatCompletion.isHeartbeat).indexOf(true)).toBe(1)
      expect(chunks[1]!.model).toBe("gpt-mock")
    }))
})

describe("OpenAI adapter: cancellation closes the upstream socket", () => {
  it.scopedLive("a stalled stream: interrupting the consumer aborts the upstream request", () =>
    Effect.gen(function*() {
      const server = yield* Upstream.start("/v1", Upstream.sse(Upstream.openAiFrames("one two three").slice(0, 2), "stall"))
      const model = yield* OpenAiProvider.make({ baseUrl: server.baseUrl })
      const two = yield* Deferred.make<void>()
      let n = 0
      const fiber = yield* Effect.fork(Stream.runForEach(model.stream(request), () => (++n === 2 ? Deferred.succeed(two, undefined) : Effect.void)))
      yield* Deferred.await(two)
      const record = server.requests[0]!
      yield* Fiber.interrupt(fiber)
      expect(yield* Effect.promise(() => record.closed)).toBe(true)
    }))

  it.scopedLive("a generate waiting for headers: interrupting it aborts the upstream request", () =>
    Effect.gen(function*() {
      const server = yield* Upstream.start("/v1", Upstream.silent)
      const model = yield* OpenAiProvider.make({ baseUrl: server.baseUrl })
      const fiber = yield* Effect.fork(model.generate(request))
      const record = yield* Effect.promise(() => server.received())
      yield* Fiber.interrupt(fiber)
      expect(yield* Effect.promise(() => record.closed)).toBe(true)
    }))

  it.scopedLive("the layer closes its pool with its scope", () =>
    Effect.gen(function*() {
      const server = yield* Upstream.start("/v1", Upstream.sse(Upstream.openAiFrames("a b").slice(0, 2), "stall"))
      const scoped = Effect.gen(function*() {
        const chunk = yield* Deferred.make<void>()
        yield* Effect.forkScoped(Stream.runForEach(LanguageModel.LanguageModel.pipe(Effect.map((m) => m.stream(request)), Stream.unwrap), () => Deferred.succeed(chunk, undefined)))
        yield* Deferred.await(chunk)
      })
      yield* Effect.scoped(Effect.provide(scoped, OpenAiProvider.layer({ baseUrl: server.baseUrl })))
      expect(yield* Effect.promise(() => server.requests[0]!.closed)).toBe(true)
    }))
})

// A layer is usable from Effect's Config too.
describe("OpenAI adapter: configuration", () => {
  it.scopedLive("layerConfig reads OPENAI_API_KEY as a Redacted and sends it", () =>
    Effect.gen(function*() {
      const server = yield* Upstream.start("/v1", Upstream.json(200, Upstream.openAiCompletion("ok")))
      const env = Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["OPENAI_API_KEY", "sk-from-env-123456"]])))
      yield* Effect.provide(LanguageModel.generate(request), OpenAiProvider.layerConfig({ baseUrl: server.baseUrl }).pipe(Layer.provide(env)))
      expect(server.requests[0]!.headers.authorization).toBe("Bearer sk-from-env-123456")
    }))

  it("invalid options are a defect naming the problem", async () => {
    const exit = await Effect.runPromiseExit(Effect.scoped(OpenAiProvider.make({ baseUrl: "", connections: -1 } as never)))
    expect(exit._tag).toBe("Failure")
    expect(String((exit as { cause: unknown }).cause)).toMatch(/baseUrl|connections/)
  })
})
