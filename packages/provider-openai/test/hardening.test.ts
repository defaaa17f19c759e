/**
 * Issue #17 (hardening) at the transport, over real HTTP against a scripted upstream: redirects
 * are errors and never followed; the gateway's own encoding failure is a `LocalFailure`; upstream
 * error text reaches the error only as the provider's message, scrubbed; a consumer that stops
 * reading holds the upstream back (backpressure); responses are capped in size; the pool does
 * not cap concurrency by default, and a capped pool's wait is bounded and measured.
 */
import { type ChatCompletion, ModelError, RequestContext, UpstreamHttp } from "@breakwater/core"
import { OpenAiProvider } from "@breakwater/provider-openai"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import { Flood } from "@breakwater/testing"
import * as Upstream from "./support/upstream.js"

const request: ChatCompletion.ChatRequest = { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }
const inContext = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.provideService(self, RequestContext.RequestContext, RequestContext.make({ requestId: "req-1" }))
const failureOf = <A, R>(self: Effect.Effect<A, ModelError.ModelError, R>) => Effect.flip(inContext(self))
const firstFrame = Upstream.openAiFrames("hello")[0]!


/**
 * Waits (in event-loop turns, not time) until the upstream finished writing, or its writes have
 * been refused for 200 turns in a row while it waits for `drain`: the reader is not reading.
 */
const settle = (progress: Flood.Progress) =>
  Effect.promise(async () => {
    let still = 0
    let last = -1
    while (!progress.finished && still < 200) {
      await new Promise((resolve) => setImmediate(resolve))
      still = progress.blocked && progress.written === last ? still + 1 : 0
      last = progress.written
    }
  })

describe("redirects", () => {
  it.scopedLive("a 307 carrying a completion is an upstream error, streamed or not, and its Location is never fetched", () =>
    Effect.gen(function*() {
      const elsewhere = yield* Upstream.start("/v1", Upstream.json(200, Upstream.openAiCompletion("stolen")))
      const server = yield* Upstream.start("/v1", (res) => {
        res.writeHead(307, { location: `${elsewhere.baseUrl}/chat/completions`, "content-type": "application/json" })
        res.end(JSON.stringify(Upstream.openAiCompletion("not a success")))
      })
      const model = yield* OpenAiProvider.make({ baseUrl: server.baseUrl, apiKey: Redacted.make("sk-redirect-canary-123") })
      const generated = yield* failureOf(model.generate(request))
      const streamed = yield* failureOf(Stream.runDrain(model.stream(request)))
      for (const error of [generated, streamed]) {
        expect(error).toMatchObject({ _tag: "UpstreamUnavailable", status: 307, code: "upstream_redirect" })
        expect(error.message).toMatch(/does not follow redirects/)
      }
      expect(server.requests).toHaveLength(2)
      expect(elsewhere.requests).toHaveLength(0)
    }))
})

describe("local failures", () => {
  it.scopedLive("a request nested 5,000 levels deep fails as the gateway's LocalFailure without calling the upstream", () =>
    Effect.gen(function*() {
      const server = yield* Upstream.start("/v1", Upstream.json(200, Upstream.openAiCompletion("ok")))
      const model = yield* OpenAiProvider.make({ baseUrl: server.baseUrl })
      let deep: unknown = 1
      for (let i = 0; i < 5_000; i++) deep = [deep]
      const bad = { ...request, extra: deep } as ChatCompletion.ChatRequest
      for (const error of [yield* failureOf(model.generate(bad)), yield* failureOf(Stream.runDrain(model.stream(bad)))]) {
        expect(error).toMatchObject({ _tag: "LocalFailure", retryable: false, failover: false, httpStatus: 500 })
        expect(ModelError.countsAgainstUpstream(error)).toBe(false)
      }
      expect(server.requests).toHaveLength(0)
    }))
})

describe("upstream error text", () => {
  const KEY = "sk-canary-Qw3rTy9UiOp4AsDf"
  const cases: ReadonlyArray<[string, string, string | RegExp]> = [
    ["an HTML error page", "<html><body><h1>400</h1>nginx at lb-3.internal.corp</body></html>", "openai: HTTP 400"],
    ["JSON with stack text", JSON.stringify({ error: { message: "KeyError: 'x'\n  at handler (/srv/api/internal.js:10:3)" } }), "openai: HTTP 400"],
    ["JSON that is not an error object", JSON.stringify({ detail: "db-7.internal.corp timed out" }), "openai: HTTP 400"],
    [
      "the key base64-encoded in the message",
      JSON.stringify({ error: { message: `bad auth header ${Buffer.from(`Bearer ${KEY}`).toString("base64")}`, type: "invalid_request_error" } }),
      /^openai: bad auth header .*\[redacted\]/
    ],
    [
      "the key URL-encoded in the message",
      JSON.stringify({ error: { message: `see /keys?k=${encodeURIComponent(KEY)}`, type: "invalid_request_error" } }),
      "openai: see /keys?k=[redacted]"
    ]
  ]
  it.scopedLive.each(cases)("a 400 with %s reaches the error only as a scrubbed provider message", ([, body, expected]) =>
    Effect.gen(function*() {
      const server = yield* Upstream.start("/v1", (res) => {
        res.writeHead(400, { "content-type": body.startsWith("<") ? "text/html" : "application/json" })
        res.end(body)
      })
      const model = yield* OpenAiProvider.make({ baseUrl: server.baseUrl, apiKey: Redacted.make(KEY) })
      const error = yield* failureOf(model.generate(request))
      expect(error._tag).toBe("BadRequest")
      if (typeof expected === "string") expect(error.message).toBe(expected)
      else expect(error.message).toMatch(expected)
      expect(error.message).not.toMatch(/internal|srv|Qw3rTy/)
    }))
})

describe("bounded buffering", () => {
  it.scopedLive("a consumer that stops reading a 64 MiB stream holds the upstream back: it cannot write it all", () =>
    Effect.gen(function*() {
      const progress = { written: 0, blocked: false, finished: false }
      const total = 64 * 1024 * 1024
      const frame = `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", created: 1, model: "m", choices: [{ index: 0, delta: { content: "x".repeat(16_000) }, finish_reason: null }] })}\n\n`
      const server = yield* Upstream.start("/v1", (res) => {
        res.writeHead(200, { "content-type": "text/event-stream" })
        Flood.write(res, frame, total, progress)
      })
      const model = yield* OpenAiProvider.make({ baseUrl: server.baseUrl })
      const pull = yield* inContext(Stream.toPull(model.stream(request)))
      yield* inContext(pull)
      // The consumer took one batch and reads no more.
      yield* settle(progress)
      expect(progress.finished).toBe(false)
      expect(progress.blocked).toBe(true)
      // What left the upstream is bounded by socket buffers and one body buffer, not by the answer.
      expect(progress.written).toBeLessThan(16 * 1024 * 1024)
    }))

  it.scopedLive("a non-streaming answer over maxResponseBytes fails with ResponseTooLarge and is not read to its end", () =>
    Effect.gen(function*() {
      const progress = { written: 0, blocked: false, finished: false }
      const server = yield* Upstream.start("/v1", (res) => {
        res.writeHead(200, { "content-type": "application/json" })
        Flood.write(res, `{"pad":"${"x".repeat(65_000)}",`, 256 * 1024 * 1024, progress)
      }, Upstream.json(200, Upstream.openAiCompletion("x".repeat(2 * 1024 * 1024))))
      const model = yield* OpenAiProvider.make({ baseUrl: server.baseUrl, maxResponseBytes: 1024 * 1024 })
      const error = yield* failureOf(model.generate(request))
      expect(error).toMatchObject({ _tag: "ResponseTooLarge", limit: 1024 * 1024, retryable: false, failover: true })
      const record = server.requests[0]!
      expect(yield* Effect.promise(() => record.closed)).toBe(true)
      expect(progress.finished).toBe(false)
      // A declared length over the limit fails before reading anything.
      expect(yield* failureOf(model.generate(request))).toMatchObject({ _tag: "ResponseTooLarge" })
    }))

  it.scopedLive("a stream over maxStreamBytes fails with ResponseTooLarge and closes the upstream connection", () =>
    Effect.gen(function*() {
      const progress = { written: 0, blocked: false, finished: false }
      const server = yield* Upstream.start("/v1", (res) => {
        res.writeHead(200, { "content-type": "text/event-stream" })
        Flood.write(res, firstFrame, 256 * 1024 * 1024, progress)
      })
      const model = yield* OpenAiProvider.make({ baseUrl: server.baseUrl, maxStreamBytes: 1024 * 1024 })
      const error = yield* failureOf(Stream.runDrain(model.stream(request)))
      expect(error).toMatchObject({ _tag: "ResponseTooLarge", limit: 1024 * 1024 })
      expect(yield* Effect.promise(() => server.requests[0]!.closed)).toBe(true)
      expect(progress.finished).toBe(false)
    }))
})

describe("the connection pool", () => {
  const held: Upstream.Behavior = (res) => {
    res.writeHead(200, { "content-type": "text/event-stream" })
    res.write(firstFrame)
  }

  it.scopedLive("by default, 200 held streams through one upstream all flow (the old pool capped them at 128)", () =>
    Effect.gen(function*() {
      const server = yield* Upstream.start("/v1", held)
      const model = yield* OpenAiProvider.make({ baseUrl: server.baseUrl })
      const firsts = yield* Effect.forEach(
        Array.from({ length: 200 }, (_, i) => i),
        () => Effect.flatMap(inContext(Stream.toPull(model.stream(request))), (pull) => inContext(pull)),
        { concurrency: "unbounded" }
      )
      expect(firsts.every((chunk) => chunk.length > 0 && chunk.pipe((c) => [...c][0]!.choices.length === 1))).toBe(true)
      expect(server.requests).toHaveLength(200)
    }), 60_000)

  it.scopedLive("a capped pool's wait is bounded by the connect timeout with a clear error, and measured", () =>
    Effect.gen(function*() {
      const server = yield* Upstream.start("/v1", held)
      const model = yield* OpenAiProvider.make({ name: "capped", baseUrl: server.baseUrl, connections: 1, connectTimeout: "300 millis" })
      const pull = yield* inContext(Stream.toPull(model.stream(request)))
      yield* inContext(pull)
      const error = yield* failureOf(Stream.runDrain(model.stream(request)))
      expect(error).toMatchObject({ _tag: "Timeout", phase: "connect", code: "pool_wait_timeout" })
      expect(error.message).toMatch(/capped: no connection to the upstream within 300 ms \(all 1 pool connections busy\)/)
      expect(server.requests).toHaveLength(1)
      const waits = yield* Metric.value(Metric.tagged(UpstreamHttp.poolWait, "upstream", "capped"))
      expect(waits.count).toBeGreaterThanOrEqual(1)
    }))
})
