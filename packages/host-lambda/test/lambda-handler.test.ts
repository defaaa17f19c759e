import { type LanguageModel, ModelError, RequestContext, type RequestObserver } from "@breakwater/core"
import { type LambdaEvent, LambdaHandler, ResponseStream } from "@breakwater/host-lambda"
import { FakeLanguageModel, MockUpstream } from "@breakwater/testing"
import { ConfigLoader, type Gateway, GatewayBuilder, type Tracing } from "@breakwater/gateway"
import { afterEach, describe, expect, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { readFileSync } from "node:fs"

const { Fault } = MockUpstream

const fixture = (name: string): LambdaEvent.Event => JSON.parse(readFileSync(new URL(`./fixtures/${name}`, import.meta.url), "utf8"))
const context = (remainingMs = 30_000): LambdaEvent.Context => {
  const end = Date.now() + remainingMs
  return { getRemainingTimeInMillis: () => end - Date.now(), awsRequestId: "aws-req-1" }
}
const settings: Gateway.ServerSettings = {
  host: "127.0.0.1", port: 0, maxBodyBytes: 16 * 1024, maxHeaderBytes: 8192, maxConcurrentRequests: 10,
  requestTimeoutMs: 1000, shutdownGraceMs: 1000, streamCommitTimeoutMs: 1000, detachGraceMs: 0
}
const gatewayOf = (model: LanguageModel.Service, over: Partial<Gateway.Gateway> = {}): Gateway.Gateway => ({
  model,
  models: ["gpt-test"],
  keys: [],
  server: settings,
  health: Effect.succeed({ ready: true, upstreams: [], routes: [] }),
  secrets: [Redacted.make("sk-canary-lambda-000000")],
  ...over
})
const quiet = { log: () => {} }
const withBody = (event: LambdaEvent.Event, body: unknown): LambdaEvent.Event => ({ ...event, body: JSON.stringify(body), isBase64Encoded: false })
const dataLines = (text: string) => text.split("\n\n").filter((f) => f.startsWith("data: ")).map((f) => f.slice(6))

afterEach(() => {
  delete (globalThis as { awslambda?: unknown }).awslambda
})

describe("LambdaHandler (buffered)", () => {
  it("serves an HTTP API v2 event", async () => {
    const fake = FakeLanguageModel.make()
    const h = LambdaHandler.make({ gateway: Effect.succeed(gatewayOf(fake.model)), ...quiet })
    const result = await h.buffered(fixture("http-api-v2.json"), context())
    expect(result.statusCode).toBe(200)
    expect(result.headers["content-type"]).toBe("application/json")
    expect(JSON.parse(result.body).choices[0].message.content).toBe(fake.textFor(fake.calls[0]!.request))
  })

  it("serves a REST API v1 event with mixed-case headers, the client's request id and a gateway key", async () => {
    const fake = FakeLanguageModel.make()
    const h = LambdaHandler.make({
      gateway: Effect.succeed(gatewayOf(fake.model, { keys: [{ name: "lambda", key: Redacted.make("gw-key-lambda-1") }] })),
      ...quiet
    })
    const result = await h.buffered(fixture("rest-api-v1.json"), context())
    expect(result.statusCode).toBe(200)
    expect(result.headers["x-request-id"]).toBe("client-req-7")
    const unauthenticated = { ...(fixture("rest-api-v1.json") as LambdaEvent.EventV1), headers: {}, multiValueHeaders: {} }
    expect((await h.buffered(unauthenticated, context())).statusCode).toBe(401)
  })

  it("decodes a base64 function URL body and answers a stream buffered, saying so", async () => {
    const fake = FakeLanguageModel.make()
    const h = LambdaHandler.make({ gateway: Effect.succeed(gatewayOf(fake.model)), ...quiet })
    const result = await h.buffered(fixture("function-url.json"), context())
    expect(result.statusCode).toBe(200)
    expect(result.headers["x-breakwater-streaming"]).toBe("buffered")
    expect(result.headers["content-type"]).toMatch(/text\/event-stream/)
    const lines = dataLines(result.body)
    expect(lines.at(-1)).toBe("[DONE]")
    expect(lines.slice(0, -1).map((l) => JSON.parse(l).choices[0]?.delta.content ?? "").join("")).toBe(fake.textFor(fake.calls[0]!.request))
  })

  it.each([
    ["bad JSON", "{", 400],
    ["wrong schema", { model: "gpt-test", messages: "hi" }, 400],
    ["unknown model", { model: "nope", messages: [{ role: "user", content: "x" }] }, 404],
    ["oversize body", { model: "gpt-test", messages: [{ role: "user", content: "x".repeat(20_000) }] }, 413]
  ])("answers %s with a 4xx in the OpenAI error shape", async (_n, body, status) => {
    const fake = FakeLanguageModel.make()
    const h = LambdaHandler.make({ gateway: Effect.succeed(gatewayOf(fake.model)), ...quiet })
    const event = typeof body === "string" ? { ...fixture("http-api-v2.json"), body } : withBody(fixture("http-api-v2.json"), body)
    const result = await h.buffered(event as LambdaEvent.Event, context())
    expect(result.statusCode).toBe(status)
    expect(result.headers["x-should-retry"]).toBe("false")
    expect(JSON.parse(result.body).error.message.length).toBeGreaterThan(5)
    expect(fake.calls).toHaveLength(0)
  })

  it("routes /v1/models, health, and unknown paths and methods", async () => {
    const fake = FakeLanguageModel.make()
    const h = LambdaHandler.make({ gateway: Effect.succeed(gatewayOf(fake.model)), ...quiet })
    const get = (path: string, method = "GET"): LambdaEvent.Event => ({ version: "2.0", rawPath: path, headers: {}, requestContext: { http: { method } } })
    expect(JSON.parse((await h.buffered(get("/v1/models"), context())).body).data[0].id).toBe("gpt-test")
    expect((await h.buffered(get("/prod/healthz"), context())).statusCode).toBe(200)
    expect((await h.buffered(get("/readyz"), context())).statusCode).toBe(200)
    expect((await h.buffered(get("/nope"), context())).statusCode).toBe(404)
    expect((await h.buffered(get("/v1/chat/completions"), context())).statusCode).toBe(405)
  })

  it("takes JSON bodies only, keeps the /readyz detail for the admin key, and lists a key's own models (issue #17)", async () => {
    const fake = FakeLanguageModel.make()
    const health = { ready: true, upstreams: [{ name: "internal-upstream", provider: "openai", circuit: "closed" }], routes: [{ model: "gpt-test", ready: true }] }
    const gateway = gatewayOf(fake.model, {
      models: ["gpt-test", "gpt-other"],
      keys: [{ name: "narrow", key: Redacted.make("gw-narrow-lambda"), models: ["gpt-test"] }],
      adminKey: Redacted.make("gw-admin-lambda-0123456789"),
      health: Effect.succeed(health)
    })
    const h = LambdaHandler.make({ gateway: Effect.succeed(gateway), ...quiet })
    const base = fixture("http-api-v2.json") as LambdaEvent.EventV2
    const asText = { ...base, headers: { ...base.headers, "content-type": "text/plain", authorization: "Bearer gw-narrow-lambda" } }
    const refused = await h.buffered(asText, context())
    expect(refused.statusCode).toBe(415)
    expect(JSON.parse(refused.body).error.code).toBe("unsupported_media_type")
    expect(fake.calls).toHaveLength(0)
    const get = (path: string, headers: Record<string, string> = {}): LambdaEvent.Event => ({ version: "2.0", rawPath: path, headers, requestContext: { http: { method: "GET" } } })
    expect(JSON.parse((await h.buffered(get("/readyz", { authorization: "Bearer gw-narrow-lambda" }), context())).body)).toEqual({ status: "ready" })
    expect(JSON.parse((await h.buffered(get("/readyz", { authorization: "Bearer gw-admin-lambda-0123456789" }), context())).body)).toMatchObject({ status: "ready", upstreams: [{ name: "internal-upstream" }] })
    const models = await h.buffered(get("/v1/models", { authorization: "Bearer gw-narrow-lambda" }), context())
    expect(JSON.parse(models.body).data.map((m: { id: string }) => m.id)).toEqual(["gpt-test"])
  })

  it("builds the gateway once for many warm invocations", async () => {
    const fake = FakeLanguageModel.make()
    let built = 0
    const h = LambdaHandler.make({ gateway: Effect.sync(() => { built++; return gatewayOf(fake.model) }), ...quiet })
    await Promise.all([h.buffered(fixture("http-api-v2.json"), context()), h.buffered(fixture("http-api-v2.json"), context())])
    for (let i = 0; i < 5; i++) await h.buffered(fixture("http-api-v2.json"), context())
    expect(built).toBe(1)
    expect(h.builds()).toBe(1)
    expect(fake.calls).toHaveLength(7)
  })

  it("caps the request by the invocation's remaining time", async () => {
    const fake = FakeLanguageModel.make([{ delay: "2 seconds" }])
    const h = LambdaHandler.make({ gateway: Effect.succeed(gatewayOf(fake.model)), deadlineMarginMs: 100, ...quiet })
    const result = await h.buffered(fixture("http-api-v2.json"), context(300))
    expect(result.statusCode).toBe(504)
    expect(JSON.parse(result.body).error.code).toBe("timeout_total")
  })
})

describe("LambdaHandler (response streaming)", () => {
  const install = () => {
    const local = ResponseStream.makeLocal()
    ;(globalThis as { awslambda?: unknown }).awslambda = local.awslambda
    return local
  }

  it("streams with the metadata prelude, then SSE frames, then the end", async () => {
    const local = install()
    const fake = FakeLanguageModel.make()
    const h = LambdaHandler.make({ gateway: Effect.succeed(gatewayOf(fake.model)), ...quiet })
    expect(h.handler).toBe(h.streaming)
    const { captured, writable } = local.stream()
    await h.streaming(fixture("function-url.json"), writable, context())
    await captured.ended
    expect(captured.metadata()).toMatchObject({ statusCode: 200, headers: { "content-type": "text/event-stream; charset=utf-8" } })
    const lines = dataLines(captured.body())
    expect(lines.at(-1)).toBe("[DONE]")
    expect(captured.writes.length).toBeGreaterThan(3)
  })

  it("answers a failure before any content with its status, not a 200", async () => {
    const local = install()
    const fake = FakeLanguageModel.make([{ fail: new ModelError.Overloaded({ message: "overloaded" }) }])
    const h = LambdaHandler.make({ gateway: Effect.succeed(gatewayOf(fake.model)), ...quiet })
    const { captured, writable } = local.stream()
    await h.streaming(fixture("function-url.json"), writable, context())
    expect(captured.metadata()?.statusCode).toBe(503)
    expect(JSON.parse(captured.body()).error.type).toBe("overloaded_error")
  })

  it("ends with a well-formed error event when the invocation is about to time out mid-stream", async () => {
    const local = install()
    const fake = FakeLanguageModel.make([{ stallAfterChunks: 3 }])
    const h = LambdaHandler.make({ gateway: Effect.succeed(gatewayOf(fake.model)), deadlineMarginMs: 100, ...quiet })
    const { captured, writable } = local.stream()
    await h.streaming(fixture("function-url.json"), writable, context(400))
    await captured.ended
    expect(captured.metadata()?.statusCode).toBe(200)
    const lines = dataLines(captured.body())
    expect(lines).not.toContain("[DONE]")
    expect(JSON.parse(lines.at(-1)!).error.code).toBe("timeout_total")
    for (const line of lines) expect(() => JSON.parse(line)).not.toThrow()
  })

  it("repairs a mid-stream upstream cut with stream-resume: one complete stream through the real gateway", async () => {
    const local = install()
    const mock = await MockUpstream.start({ words: 30 })
    try {
      const config = await Effect.runPromise(ConfigLoader.fromObject({
        upstreams: { mock: { provider: "openai", baseUrl: mock.url, models: ["gpt-test"] } },
        routes: { "gpt-test": { upstreams: ["mock"] } }
      }, {}))
      const h = LambdaHandler.make({ gateway: GatewayBuilder.make(config), ...quiet })
      mock.script({ fault: Fault.Cut({ afterChunks: 9 }), splitUtf8: true })
      const { captured, writable } = local.stream()
      const event = withBody(fixture("function-url.json"), { model: "gpt-test", messages: [{ role: "user", content: "lambda" }], stream: true })
      await h.streaming(event, writable, context())
      await captured.ended
      expect(captured.metadata()?.statusCode).toBe(200)
      const body = captured.body()
      const lines = dataLines(body)
      expect(lines.at(-1)).toBe("[DONE]")
      expect(lines.filter((l) => l === "[DONE]")).toHaveLength(1)
      const chunks = lines.slice(0, -1).map((l) => JSON.parse(l) as { id: string; choices: Array<{ delta: { content?: string }; finish_reason: string | null }> })
      expect(chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")).toBe(mock.textFor({ messages: [{ role: "user", content: "lambda" }] }))
      expect(new Set(chunks.map((c) => c.id)).size).toBe(1)
      expect(chunks.filter((c) => c.choices[0]?.finish_reason != null)).toHaveLength(1)
      expect(body).toMatch(/^: breakwater resumed/m)
      expect(mock.requests).toHaveLength(2)
    } finally {
      await mock.stop()
    }
  })
})

describe("LambdaHandler (traced)", () => {
  /** A tracer that records what the host tells it. */
  const recorder = () => {
    const requests: Array<{ readonly requestId: string; readonly traceparent: unknown; readonly model: string | undefined }> = []
    const events: Array<RequestObserver.PolicyEvent> = []
    const ended: Array<unknown> = []
    let flushes = 0
    const tracer: Tracing.Tracer = {
      request: (info) => {
        requests.push({ requestId: info.requestId, traceparent: info.headers?.["traceparent"], model: info.request?.model })
        return { attempt: () => undefined, event: (e) => events.push(e), end: (error) => ended.push(error) }
      },
      flush: async () => {
        flushes++
      },
      shutdown: async () => {}
    }
    return { tracer, requests, events, ended, flushes: () => flushes }
  }
  /** The fake model, telling the request's observer a decision as a policy would. */
  const reporting = (model: LanguageModel.Service): LanguageModel.Service => ({
    ...model,
    generate: (request, options) =>
      Effect.flatMap(RequestContext.RequestContext, (ctx) => {
        ctx.observer?.event({ _tag: "Hedge", outcome: "started", delayMillis: 1 })
        return model.generate(request, options)
      })
  })
  const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

  it("puts the request's span in its context, ends it with the answer, and flushes before the invocation returns", async () => {
    const fake = FakeLanguageModel.make([{}, { fail: new ModelError.Overloaded({ message: "overloaded" }) }])
    const t = recorder()
    const h = LambdaHandler.make({ gateway: Effect.succeed(gatewayOf(reporting(fake.model), { telemetry: t.tracer })), ...quiet })
    const base = fixture("http-api-v2.json") as LambdaEvent.EventV2
    const event = { ...base, headers: { ...base.headers, traceparent, "x-request-id": "lambda-traced-1" } }
    expect((await h.buffered(event, context())).statusCode).toBe(200)
    expect(t.requests).toEqual([{ requestId: "lambda-traced-1", traceparent, model: "gpt-test" }])
    expect(t.events).toEqual([{ _tag: "Hedge", outcome: "started", delayMillis: 1 }])
    expect(t.ended).toEqual([undefined])
    expect(t.flushes()).toBe(1)

    const failed = await h.buffered(event, context())
    expect(t.ended).toHaveLength(2)
    expect(t.ended[1]).toMatchObject({ status: failed.statusCode, code: JSON.parse(failed.body).error.code })
    expect(t.flushes()).toBe(2)
    // Not a chat request: no span, still no spans held back.
    await h.buffered({ version: "2.0", rawPath: "/healthz", headers: {}, requestContext: { http: { method: "GET" } } }, context())
    expect(t.requests).toHaveLength(2)
  })

  it("ends a streamed request's span when its stream ends", async () => {
    const fake = FakeLanguageModel.make()
    const t = recorder()
    const h = LambdaHandler.make({ gateway: Effect.succeed(gatewayOf(fake.model, { telemetry: t.tracer })), ...quiet })
    const result = await h.buffered(withBody(fixture("http-api-v2.json"), { model: "gpt-test", messages: [{ role: "user", content: "hi" }], stream: true }), context())
    expect(result.body).toContain("data: [DONE]")
    expect(t.requests).toHaveLength(1)
    expect(t.ended).toEqual([undefined])
    expect(t.flushes()).toBe(1)
  })
})
