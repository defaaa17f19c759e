/**
 * Issue #17, host side: attacks an outsider (or a web page the operator visits) can make on the
 * HTTP host, each reproduced on the wire. Findings 3 (keyless mode open to web pages), 5 (journal
 * eviction across tenants, as a client sees it), 8 (operator endpoints and model lists) and 9
 * (per-key concurrency share).
 */
import type { LanguageModel } from "@breakwater/core"
import type { Gateway } from "@breakwater/gateway"
import { HttpHost } from "@breakwater/host-http"
import { StreamJournal } from "@breakwater/stream-resume"
import { FakeLanguageModel } from "@breakwater/testing"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { request as httpRequest } from "node:http"
import OpenAI from "openai"
import * as Host from "./support/host.js"

const health: Gateway.Health = {
  ready: true,
  upstreams: [{ name: "internal-upstream-a", provider: "openai", circuit: "closed" }],
  routes: [{ model: "gpt-test", ready: true }]
}

const gatewayOf = (model: LanguageModel.Service, over: Partial<Gateway.Gateway> = {}, server: Partial<Gateway.ServerSettings> = {}): Gateway.Gateway =>
  Host.gatewayOf(model, { health: Effect.succeed(health), ...over }, server)

const servers = Host.closedAfterEach()

const serve = async (gateway: Gateway.Gateway, options: HttpHost.Options = {}) => {
  const logs: Array<Record<string, unknown>> = []
  const waiters: Array<{ readonly match: (l: Record<string, unknown>) => boolean; readonly done: () => void }> = []
  const running = await HttpHost.start(gateway, {
    log: (line) => {
      logs.push(line)
      for (const w of [...waiters]) {
        if (w.match(line)) {
          waiters.splice(waiters.indexOf(w), 1)
          w.done()
        }
      }
    },
    ...options
  })
  servers.push(running)
  /** Resolves at the first log line (from now) that matches. */
  const logged = (match: (l: Record<string, unknown>) => boolean) => new Promise<void>((done) => waiters.push({ match, done }))
  return { ...running, logs, logged }
}

interface Raw {
  readonly status: number
  readonly headers: Record<string, string | Array<string> | undefined>
  readonly body: string
}

/** A raw HTTP request, with any `Host`, `Origin` and `Content-Type` (fetch would not send some). */
const raw = (url: string, method: string, path: string, headers: Record<string, string>, body?: string) =>
  new Promise<Raw>((resolve, reject) => {
    const u = new URL(url)
    const req = httpRequest({ host: u.hostname, port: u.port, method, path, headers, setHost: !("host" in headers) }, (res) => {
      let text = ""
      res.setEncoding("utf8")
      res.on("data", (part: string) => (text += part))
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: text }))
    })
    req.on("error", reject)
    req.end(body)
  })

const chatBody = JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "spend the operator's credit" }] })
const json = { "content-type": "application/json" }
const codeOf = (r: Raw) => (JSON.parse(r.body) as { error: { code: string } }).error.code

describe("keyless mode is for this machine only (finding 3)", () => {
  it("refuses a Host that is not a loopback name or the listen host (DNS rebinding), for every path", async () => {
    const fake = FakeLanguageModel.make()
    const { url, port } = await serve(gatewayOf(fake.model))
    for (const host of [`evil.example:${port}`, "evil.example", `127.0.0.1.nip.io:${port}`, `localhost.evil.example:${port}`]) {
      const chat = await raw(url, "POST", "/v1/chat/completions", { ...json, host }, chatBody)
      expect(chat.status).toBe(403)
      expect(codeOf(chat)).toBe("host_not_allowed")
      expect((await raw(url, "GET", "/v1/models", { host })).status).toBe(403)
      expect((await raw(url, "GET", "/readyz", { host })).status).toBe(403)
    }
    expect(fake.calls).toHaveLength(0)
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, "LOCALHOST", "127.0.0.1"]) {
      expect((await raw(url, "POST", "/v1/chat/completions", { ...json, host }, chatBody)).status).toBe(200)
    }
    expect(fake.calls).toHaveLength(5)
  })

  it("accepts the configured listen host's name too (it still listens on loopback only)", async () => {
    const fake = FakeLanguageModel.make()
    const byOption = await serve(gatewayOf(fake.model), { host: "gateway.local" })
    expect(byOption.host).toBe("127.0.0.1")
    expect((await raw(byOption.url, "GET", "/healthz", { host: `gateway.local:${byOption.port}` })).status).toBe(200)
    const byConfig = await serve(gatewayOf(fake.model, {}, { host: "devbox.lan" }))
    expect((await raw(byConfig.url, "GET", "/healthz", { host: "DEVBOX.lan:80" })).status).toBe(200)
    expect((await raw(byConfig.url, "GET", "/healthz", { host: "devbox.lan.evil.example" })).status).toBe(403)
  })

  it("refuses a cross-origin browser request (Origin present, no cors section), even a simple one", async () => {
    const fake = FakeLanguageModel.make()
    const { url } = await serve(gatewayOf(fake.model))
    // What a page at evil.example can send without a preflight: a form-like text/plain POST.
    const simple = await raw(url, "POST", "/v1/chat/completions", { "content-type": "text/plain", origin: "https://evil.example" }, chatBody)
    expect(simple.status).toBe(403)
    expect(codeOf(simple)).toBe("origin_not_allowed")
    const asJson = await raw(url, "POST", "/v1/chat/completions", { ...json, origin: "https://evil.example" }, chatBody)
    expect(asJson.status).toBe(403)
    expect(asJson.headers["access-control-allow-origin"]).toBeUndefined()
    expect((await raw(url, "GET", "/v1/models", { origin: "null" })).status).toBe(403)
    expect(fake.calls).toHaveLength(0)
  })

  it("requires application/json on request bodies (415), with or without client keys", async () => {
    const fake = FakeLanguageModel.make()
    const keyless = await serve(gatewayOf(fake.model))
    for (const type of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", undefined]) {
      const r = await raw(keyless.url, "POST", "/v1/chat/completions", type === undefined ? {} : { "content-type": type }, chatBody)
      expect(r.status).toBe(415)
      expect(codeOf(r)).toBe("unsupported_media_type")
    }
    expect((await raw(keyless.url, "POST", "/v1/chat/completions", { "content-type": "Application/JSON; charset=utf-8" }, chatBody)).status).toBe(200)
    const keyed = await serve(gatewayOf(fake.model, { keys: [{ name: "a", key: Redacted.make("gw-key-aaaaaaaa") }] }))
    const r = await raw(keyed.url, "POST", "/v1/chat/completions", { "content-type": "text/plain", authorization: "Bearer gw-key-aaaaaaaa" }, chatBody)
    expect(r.status).toBe(415)
    expect(fake.calls).toHaveLength(1)
  })

  it("lets the origins of the cors section in: preflight answered, answers readable; others still refused", async () => {
    const fake = FakeLanguageModel.make()
    const cors: Gateway.CorsSettings = { origins: ["https://app.example"], maxAgeSeconds: 600 }
    const { url } = await serve(gatewayOf(fake.model, { cors }))
    const preflight = await raw(url, "OPTIONS", "/v1/chat/completions", {
      origin: "https://app.example",
      "access-control-request-method": "POST",
      "access-control-request-headers": "content-type, authorization"
    })
    expect(preflight.status).toBe(204)
    expect(preflight.headers["access-control-allow-origin"]).toBe("https://app.example")
    expect(preflight.headers["access-control-allow-methods"]).toMatch(/POST/)
    expect(preflight.headers["access-control-allow-headers"]).toMatch(/content-type/)
    expect(preflight.headers["access-control-allow-headers"]).toMatch(/authorization/)
    expect(preflight.headers["access-control-max-age"]).toBe("600")
    const post = await raw(url, "POST", "/v1/chat/completions", { ...json, origin: "https://app.example" }, chatBody)
    expect(post.status).toBe(200)
    expect(post.headers["access-control-allow-origin"]).toBe("https://app.example")
    expect(post.headers["access-control-expose-headers"]).toMatch(/x-request-id/)
    expect(post.headers["vary"]).toMatch(/Origin/)
    const other = await raw(url, "OPTIONS", "/v1/chat/completions", { origin: "https://evil.example", "access-control-request-method": "POST" })
    expect(other.status).toBe(403)
    expect(other.headers["access-control-allow-origin"]).toBeUndefined()
    expect((await raw(url, "POST", "/v1/chat/completions", { ...json, origin: "https://evil.example" }, chatBody)).status).toBe(403)
    expect(fake.calls).toHaveLength(1)
  })

  it("keeps the official openai client working (JSON bodies, no Origin), streaming and not", async () => {
    const fake = FakeLanguageModel.make()
    const { url } = await serve(gatewayOf(fake.model))
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "unused", maxRetries: 0 })
    const request = { model: "gpt-test", messages: [{ role: "user" as const, content: "hello" }] }
    const answer = await client.chat.completions.create(request)
    expect(answer.choices[0]!.message.content).toBe(fake.textFor(request as never))
    let text = ""
    for await (const chunk of await client.chat.completions.create({ ...request, stream: true })) text += chunk.choices[0]?.delta.content ?? ""
    expect(text).toBe(fake.textFor(request as never))
    expect((await client.models.list()).data.map((m) => m.id)).toEqual(["gpt-test", "gpt-other"])
  })
})

describe("operator endpoints and model lists with client keys (finding 8)", () => {
  const keys: ReadonlyArray<Gateway.ClientKey> = [
    { name: "narrow", key: Redacted.make("gw-narrow-aaaaaaaa"), models: ["gpt-test"] },
    { name: "wide", key: Redacted.make("gw-wide-bbbbbbbbbb") }
  ]
  const admin = "gw-admin-cccccccccccccccc"
  const bearer = (k: string) => ({ authorization: `Bearer ${k}` })

  it("/metrics needs the admin key; /readyz says only ready or not without it; /healthz stays open", async () => {
    const fake = FakeLanguageModel.make()
    const { url } = await serve(gatewayOf(fake.model, { keys, adminKey: Redacted.make(admin) }))
    for (const headers of [{}, bearer("gw-wide-bbbbbbbbbb"), bearer("wrong-admin-key-xxxxxx")]) {
      const metrics = await raw(url, "GET", "/metrics", headers)
      expect(metrics.status).toBe(401)
      expect(codeOf(metrics)).toBe("admin_key_required")
      expect(metrics.body).not.toMatch(/breakwater_/)
      const ready = await raw(url, "GET", "/readyz", headers)
      expect(ready.status).toBe(200)
      expect(JSON.parse(ready.body)).toEqual({ status: "ready" })
      expect(ready.body).not.toMatch(/internal-upstream-a|gpt-test/)
    }
    const metrics = await raw(url, "GET", "/metrics", bearer(admin))
    expect(metrics.status).toBe(200)
    expect(metrics.body).toMatch(/breakwater_http_requests_total/)
    const ready = await raw(url, "GET", "/readyz", bearer(admin))
    expect(JSON.parse(ready.body)).toMatchObject({ status: "ready", upstreams: [{ name: "internal-upstream-a" }], routes: [{ model: "gpt-test" }] })
    expect((await raw(url, "GET", "/healthz", {})).status).toBe(200)
    // The admin key is not a client key.
    expect((await raw(url, "POST", "/v1/chat/completions", { ...json, ...bearer(admin) }, chatBody)).status).toBe(401)
  })

  it("without an admin key configured, nobody reads /metrics or the /readyz detail (keys configured)", async () => {
    const fake = FakeLanguageModel.make()
    const { url } = await serve(gatewayOf(fake.model, { keys }))
    expect((await raw(url, "GET", "/metrics", bearer("gw-wide-bbbbbbbbbb"))).status).toBe(401)
    expect(JSON.parse((await raw(url, "GET", "/readyz", bearer("gw-wide-bbbbbbbbbb"))).body)).toEqual({ status: "ready" })
  })

  it("not-ready is still told without the admin key (load balancers), with nothing else", async () => {
    const fake = FakeLanguageModel.make()
    const down = { ...health, ready: false, upstreams: [{ name: "internal-upstream-a", provider: "openai", circuit: "open" }] }
    const { url } = await serve(gatewayOf(fake.model, { keys, adminKey: Redacted.make(admin), health: Effect.succeed(down) }))
    const ready = await raw(url, "GET", "/readyz", {})
    expect(ready.status).toBe(503)
    expect(JSON.parse(ready.body)).toEqual({ status: "not_ready" })
  })

  it("/v1/models lists only the models the caller's key may use", async () => {
    const fake = FakeLanguageModel.make()
    const { url } = await serve(gatewayOf(fake.model, { keys }))
    const narrow = new OpenAI({ baseURL: `${url}/v1`, apiKey: "gw-narrow-aaaaaaaa", maxRetries: 0 })
    const wide = new OpenAI({ baseURL: `${url}/v1`, apiKey: "gw-wide-bbbbbbbbbb", maxRetries: 0 })
    expect((await narrow.models.list()).data.map((m) => m.id)).toEqual(["gpt-test"])
    expect((await wide.models.list()).data.map((m) => m.id)).toEqual(["gpt-test", "gpt-other"])
  })
})

describe("per-key concurrency share (finding 9)", () => {
  const keys: ReadonlyArray<Gateway.ClientKey> = [
    { name: "greedy", key: Redacted.make("gw-greedy-aaaaaaaa") },
    { name: "other", key: Redacted.make("gw-other-bbbbbbbbb") },
    { name: "big", key: Redacted.make("gw-big-cccccccccccc"), maxConcurrent: 3 }
  ]

  it("one key cannot fill the gateway: beyond its share it gets 429 with retry-after, others are served; streams count until they end", async () => {
    // Every stream stalls after two chunks, until its client leaves.
    const fake = FakeLanguageModel.make(Array.from({ length: 20 }, () => ({ stallAfterChunks: 2 })))
    const { logged, url } = await serve(gatewayOf(fake.model, { keys }, { maxConcurrentPerKey: 2 }), { journal: false })
    const greedy = new OpenAI({ baseURL: `${url}/v1`, apiKey: "gw-greedy-aaaaaaaa", maxRetries: 0 })
    const request = { model: "gpt-test", messages: [{ role: "user" as const, content: "hold a slot" }], stream: true as const }
    const held = [new AbortController(), new AbortController()]
    const streams = await Promise.all(held.map((c) => greedy.chat.completions.create(request, { signal: c.signal })))
    for (const stream of streams) {
      const it = stream[Symbol.asyncIterator]()
      await it.next()
    }
    const refused = await greedy.chat.completions.create(request).then(() => undefined, (e: unknown) => e)
    expect(refused).toBeInstanceOf(OpenAI.RateLimitError)
    const error = refused as InstanceType<typeof OpenAI.RateLimitError>
    expect(error.status).toBe(429)
    const headers = error.headers as unknown as Headers | Record<string, string> | undefined
    expect(headers instanceof Headers ? headers.get("retry-after") : headers?.["retry-after"]).toBe("1")
    expect(error.code).toBe("key_concurrency_limit")
    expect((await raw(url, "POST", "/v1/chat/completions", { ...json, authorization: "Bearer gw-greedy-aaaaaaaa" }, chatBody)).status).toBe(429)
    // Another key is served meanwhile.
    const other = new OpenAI({ baseURL: `${url}/v1`, apiKey: "gw-other-bbbbbbbbb", maxRetries: 0 })
    expect((await other.chat.completions.create({ ...request, stream: false })).choices[0]!.message.content).not.toBe("")
    // A stream that ends gives its slot back.
    const ended = logged((l) => l["msg"] === "request" && l["key"] === "greedy" && l["status"] === 499)
    held[0]!.abort()
    await ended
    expect((await raw(url, "POST", "/v1/chat/completions", { ...json, authorization: "Bearer gw-greedy-aaaaaaaa" }, chatBody)).status).toBe(200)
    held[1]!.abort()
  })

  it("a key's own maxConcurrent overrides the server's share", async () => {
    const fake = FakeLanguageModel.make(Array.from({ length: 20 }, () => ({ stallAfterChunks: 1 })))
    const { url } = await serve(gatewayOf(fake.model, { keys }, { maxConcurrentPerKey: 1 }), { journal: false })
    const big = new OpenAI({ baseURL: `${url}/v1`, apiKey: "gw-big-cccccccccccc", maxRetries: 0 })
    const request = { model: "gpt-test", messages: [{ role: "user" as const, content: "hold a slot" }], stream: true as const }
    const held = Array.from({ length: 3 }, () => new AbortController())
    for (const c of held) await (await big.chat.completions.create(request, { signal: c.signal }))[Symbol.asyncIterator]().next()
    expect((await raw(url, "POST", "/v1/chat/completions", { ...json, authorization: "Bearer gw-big-cccccccccccc" }, chatBody)).status).toBe(429)
    for (const c of held) c.abort()
  })

  it("a journaled stream's reconnect takes no second slot (a detached generation holds it)", async () => {
    const fake = FakeLanguageModel.make([{ words: 6 }])
    const journal = Effect.runSync(StreamJournal.makeMemory())
    const { url } = await serve(gatewayOf(fake.model, { keys }, { maxConcurrentPerKey: 1, detachGraceMs: 5_000 }), { journal })
    const auth = { ...json, authorization: "Bearer gw-greedy-aaaaaaaa", "idempotency-key": "once" }
    const body = JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "x" }], stream: true })
    const first = await raw(url, "POST", "/v1/chat/completions", auth, body)
    expect(first.status).toBe(200)
    const again = await raw(url, "POST", "/v1/chat/completions", auth, body)
    expect(again.status).toBe(200)
    expect(again.body).toBe(first.body)
    expect(fake.calls).toHaveLength(1)
  })
})

describe("a tenant's streams cannot evict another's (finding 5, on the wire)", () => {
  const keys: ReadonlyArray<Gateway.ClientKey> = [
    { name: "victim", key: Redacted.make("gw-victim-aaaaaaaa") },
    { name: "flood", key: Redacted.make("gw-flood-bbbbbbbbb") }
  ]
  const body = JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "x" }], stream: true })

  it("a flood of one key's tiny streams leaves another key's finished, unread stream replayable; an evicted one answers 410, never 204", async () => {
    const fake = FakeLanguageModel.make()
    const journal = Effect.runSync(StreamJournal.makeMemory({ maxStreams: 20, maxStreamsPerOwner: 10 }))
    const { url } = await serve(gatewayOf(fake.model, { keys }), { journal })
    const victim = await raw(url, "POST", "/v1/chat/completions", { ...json, authorization: "Bearer gw-victim-aaaaaaaa", "idempotency-key": "v1" }, body)
    const victimId = victim.headers["x-breakwater-stream-id"] as string
    for (let i = 0; i < 60; i++) {
      expect((await raw(url, "POST", "/v1/chat/completions", { ...json, authorization: "Bearer gw-flood-bbbbbbbbb" }, body)).status).toBe(200)
    }
    const replay = await raw(url, "GET", `/v1/streams/${victimId}`, { authorization: "Bearer gw-victim-aaaaaaaa" })
    expect(replay.status).toBe(200)
    expect(replay.body.split("\n\n").filter((f) => /^id: /m.test(f)).join("\n\n")).toBe(victim.body.split("\n\n").filter((f) => /^id: /m.test(f)).join("\n\n"))
    // The flood's own oldest streams were evicted: their reconnect (and their Idempotency-Key
    // retry) says 410 Gone, never 204 "finished, nothing follows", and nothing is generated again.
    const flooded = await raw(url, "POST", "/v1/chat/completions", { ...json, authorization: "Bearer gw-flood-bbbbbbbbb", "idempotency-key": "f1" }, body)
    const floodedId = flooded.headers["x-breakwater-stream-id"] as string
    for (let i = 0; i < 20; i++) await raw(url, "POST", "/v1/chat/completions", { ...json, authorization: "Bearer gw-flood-bbbbbbbbb" }, body)
    const gone = await raw(url, "GET", `/v1/streams/${floodedId}`, { authorization: "Bearer gw-flood-bbbbbbbbb", "last-event-id": `${floodedId}:1` })
    expect(gone.status).toBe(410)
    expect(codeOf(gone)).toBe("stream_expired")
    const calls = fake.calls.length
    const retry = await raw(url, "POST", "/v1/chat/completions", { ...json, authorization: "Bearer gw-flood-bbbbbbbbb", "idempotency-key": "f1" }, body)
    expect(retry.status).toBe(410)
    expect(fake.calls).toHaveLength(calls)
  })
})
