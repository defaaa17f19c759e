import { type LanguageModel, ModelError } from "@breakwater/core"
import type { Gateway } from "@breakwater/gateway"
import { HttpHost } from "@breakwater/host-http"
import { FakeLanguageModel } from "@breakwater/testing"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Redacted, Stream } from "effect"
import { request as httpRequest } from "node:http"
import { connect } from "node:net"
import * as Host from "./support/host.js"

const canary = "sk-canary-7f3a9c1e5b2d4f6a8c0e"
const gatewayOf = (model: LanguageModel.Service, over: Partial<Gateway.Gateway> = {}): Gateway.Gateway =>
  Host.gatewayOf(model, {
    health: Effect.succeed({ ready: true, upstreams: [{ name: "a", provider: "openai", circuit: "closed" }], routes: [{ model: "gpt-test", ready: true }] }),
    secrets: [Redacted.make(canary)],
    ...over
  })

const servers = Host.closedAfterEach()
const logs: Array<Record<string, unknown>> = []
const serve = async (gateway: Gateway.Gateway) => {
  const running = await HttpHost.start(gateway, { log: (l) => logs.push(l) })
  servers.push(running)
  return running
}
const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body)
  })
const chat = { model: "gpt-test", messages: [{ role: "user", content: "hello" }] }
const dataLines = (text: string) => text.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6))

describe("HttpHost", () => {
  it("serves a non-streaming completion with request id and upstream headers", async () => {
    const fake = FakeLanguageModel.make()
    const { url } = await serve(gatewayOf(fake.model))
    const res = await post(url, chat, { "x-request-id": "req-42" })
    expect(res.status).toBe(200)
    expect(res.headers.get("x-request-id")).toBe("req-42")
    const body = await res.json() as { choices: Array<{ message: { content: string } }> }
    expect(body.choices[0]!.message.content).toBe(fake.textFor(chat as never))
  })

  it("streams SSE frames ending in [DONE], with usage only when asked", async () => {
    const fake = FakeLanguageModel.make()
    const { url } = await serve(gatewayOf(fake.model))
    for (const includeUsage of [false, true]) {
      const res = await post(url, { ...chat, stream: true, stream_options: { include_usage: includeUsage } })
      expect(res.status).toBe(200)
      expect(res.headers.get("content-type")).toMatch(/text\/event-stream/)
      const lines = dataLines(await res.text())
      expect(lines.at(-1)).toBe("[DONE]")
      const chunks = lines.slice(0, -1).map((l) => JSON.parse(l))
      const text = chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")
      expect(text).toBe(fake.textFor(chat as never))
      expect(chunks.some((c) => c.choices.length === 0 && c.usage)).toBe(includeUsage)
    }
  })

  it.each([
    ["bad JSON", "{\"model\":", 400, "invalid_json"],
    ["wrong schema", { model: "gpt-test", messages: [{ role: "usr", content: 1 }] }, 400, "invalid_request"],
    ["unknown model", { ...chat, model: "nope" }, 404, "model_not_found"],
    ["oversize body", { ...chat, messages: [{ role: "user", content: "x".repeat(70 * 1024) }] }, 413, "request_too_large"]
  ])("answers %s with a clear 4xx in the OpenAI error shape", async (_name, body, status, code) => {
    const fake = FakeLanguageModel.make()
    const { url } = await serve(gatewayOf(fake.model))
    const res = await post(url, body as never)
    expect(res.status).toBe(status)
    expect(res.headers.get("x-should-retry")).toBe("false")
    const error = (await res.json() as { error: { message: string; code: string; type: string } }).error
    expect(error.code).toBe(code)
    expect(error.message.length).toBeGreaterThan(10)
    expect(fake.calls).toHaveLength(0)
  })

  it("requires a gateway key when keys are configured, and limits keys to their models", async () => {
    const fake = FakeLanguageModel.make()
    const { url } = await serve(gatewayOf(fake.model, {
      keys: [{ name: "team-a", key: Redacted.make("gw-key-a"), models: ["gpt-other"] }, { name: "admin", key: Redacted.make("gw-key-admin") }]
    }))
    expect((await post(url, chat)).status).toBe(401)
    expect((await post(url, chat, { authorization: "Bearer wrong" })).status).toBe(401)
    expect((await post(url, chat, { authorization: "Bearer gw-key-a" })).status).toBe(403)
    expect((await post(url, { ...chat, model: "gpt-other" }, { authorization: "Bearer gw-key-a" })).status).toBe(200)
    expect((await post(url, chat, { authorization: "Bearer gw-key-admin" })).status).toBe(200)
    expect((await fetch(`${url}/v1/models`)).status).toBe(401)
    expect(fake.calls).toHaveLength(2)
  })

  it("maps a model error to its status with x-should-retry: false and the upstream's retry-after", async () => {
    const fake = FakeLanguageModel.make([{ fail: new ModelError.RateLimited({ message: `limited (key ${canary})`, retryAfter: "7 seconds" as never }) }])
    const { url } = await serve(gatewayOf(fake.model))
    const res = await post(url, chat)
    expect(res.status).toBe(429)
    expect(res.headers.get("x-should-retry")).toBe("false")
    expect(res.headers.get("retry-after")).toBe("7")
    const text = await res.text()
    expect(text).not.toContain(canary)
    expect(JSON.stringify(logs)).not.toContain(canary)
  })

  it("logs a failed call once, with the request's fields, how it was served and its error", async () => {
    const fake = FakeLanguageModel.make([{ fail: new ModelError.Overloaded({ message: "overloaded" }) }])
    const { url } = await serve(gatewayOf(fake.model))
    const res = await post(url, chat)
    expect(res.status).toBe(503)
    const code = (await res.json() as { error: { code: string } }).error.code
    const requestId = res.headers.get("x-request-id")
    const lines = logs.filter((l) => l["msg"] === "request" && l["request_id"] === requestId)
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatchObject({ level: "error", method: "POST", path: "/v1/chat/completions", status: 503, model: chat.model, stream: false, error: code })
    expect(lines[0]).toHaveProperty("attempts")
    expect(lines[0]).toHaveProperty("upstream")
  })

  it("never echoes an upstream auth message (it may quote the provider key)", async () => {
    const fake = FakeLanguageModel.make([{ fail: new ModelError.UpstreamAuth({ message: "Incorrect API key provided: sk-abc12***********xyz9", upstream: "openai" }) }])
    const { url } = await serve(gatewayOf(fake.model))
    const res = await post(url, chat)
    expect(res.status).toBe(502)
    expect(await res.text()).not.toContain("sk-abc12")
  })

  it("answers a stream that fails before any content with an HTTP error, not a 200", async () => {
    const fake = FakeLanguageModel.make([{ fail: new ModelError.Overloaded({ message: "overloaded" }) }])
    const { url } = await serve(gatewayOf(fake.model))
    const res = await post(url, { ...chat, stream: true })
    expect(res.status).toBe(503)
    expect((await res.json() as { error: { type: string } }).error.type).toBe("overloaded_error")
  })

  it("ends a stream that fails after content with an error event and no [DONE]", async () => {
    const fake = FakeLanguageModel.make([{ failAfterChunks: 3 }])
    const { url } = await serve(gatewayOf(fake.model))
    const res = await post(url, { ...chat, stream: true })
    expect(res.status).toBe(200)
    const lines = dataLines(await res.text())
    expect(lines).not.toContain("[DONE]")
    const last = JSON.parse(lines.at(-1)!)
    expect(last.error.type).toBe("stream_interrupted")
    for (const l of lines) expect(() => JSON.parse(l)).not.toThrow()
  })

  it("cancels the upstream work when the client goes away", async () => {
    let release!: () => void
    const released = new Promise<void>((resolve) => { release = resolve })
    const fake = FakeLanguageModel.make([{ stallAfterChunks: 2 }])
    const model: LanguageModel.Service = {
      generate: fake.model.generate,
      stream: (r, o) => Stream.ensuring(fake.model.stream(r, o), Effect.sync(release))
    }
    const { url } = await serve(gatewayOf(model))
    const controller = new AbortController()
    const streaming = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      body: JSON.stringify({ ...chat, stream: true }),
      signal: controller.signal,
      headers: { "content-type": "application/json" }
    })
    await streaming.body!.getReader().read()
    controller.abort()
    await released
    expect(fake.calls).toHaveLength(1)
  })

  it("serves /v1/models, /healthz, /readyz and Prometheus /metrics", async () => {
    const fake = FakeLanguageModel.make()
    const { url } = await serve(gatewayOf(fake.model))
    const models = await (await fetch(`${url}/v1/models`)).json() as { data: Array<{ id: string }> }
    expect(models.data.map((m) => m.id)).toEqual(["gpt-test", "gpt-other"])
    expect((await fetch(`${url}/healthz`)).status).toBe(200)
    const ready = await fetch(`${url}/readyz`)
    expect(ready.status).toBe(200)
    expect((await ready.json() as { upstreams: Array<unknown> }).upstreams).toHaveLength(1)
    await post(url, chat)
    const metrics = await (await fetch(`${url}/metrics`)).text()
    expect(metrics).toMatch(/# TYPE breakwater_http_requests_total counter/)
    expect(metrics).toMatch(/breakwater_http_requests_total\{route="\/v1\/chat\/completions",status="200"\} \d+/)
    expect(metrics).toMatch(/breakwater_http_request_duration_seconds_bucket\{route="\/v1\/chat\/completions",le="\+Inf"\}/)
  })

  it("reports not-ready with 503 when the gateway is not ready", async () => {
    const fake = FakeLanguageModel.make()
    const { url } = await serve(gatewayOf(fake.model, { health: Effect.succeed({ ready: false, upstreams: [], routes: [] }) }))
    expect((await fetch(`${url}/readyz`)).status).toBe(503)
  })

  it("answers an oversized header block with 431 and keeps serving", async () => {
    const fake = FakeLanguageModel.make()
    const { port, url } = await serve(gatewayOf(fake.model))
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest({ port, path: "/healthz", headers: { "x-big": "y".repeat(16 * 1024) } }, (res) => resolve(res.statusCode!))
      req.on("error", reject)
      req.end()
    })
    expect(status).toBe(431)
    expect((await fetch(`${url}/healthz`)).status).toBe(200)
  })

  it("drains a running stream on close before exiting", async () => {
    const fake = FakeLanguageModel.make([{ chunkDelay: "30 millis", words: 6 }])
    const running = await HttpHost.start(gatewayOf(fake.model), { log: () => {} })
    const res = await post(running.url, { ...chat, stream: true })
    const closing = running.close(5_000)
    const lines = dataLines(await res.text())
    await closing
    expect(lines.at(-1)).toBe("[DONE]")
    await expect(fetch(`${running.url}/healthz`)).rejects.toThrow()
    // a raw socket can no longer connect either
    await expect(new Promise((resolve, reject) => connect(running.port, "127.0.0.1").on("connect", resolve).on("error", reject))).rejects.toThrow()
  })
})
