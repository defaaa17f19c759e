/**
 * Issue #17, finding 3, as the attack was run: the gateway `npm start` gives a newcomer (no
 * gateway keys, a provider key set, loopback only) in front of a real upstream (the mock), and
 * what a web page the operator visits can make a browser send to it: a "simple" cross-origin POST
 * (`text/plain`, no preflight) to spend the provider credit, and, after rebinding its own DNS name
 * to 127.0.0.1, a same-origin request under its own `Host` to read the answers. Neither may reach
 * the upstream. The official `openai` client, which sends JSON, no `Origin` and a loopback
 * `Host`, keeps working.
 */
import { ConfigLoader, GatewayBuilder } from "@breakwater/gateway"
import { HttpHost } from "@breakwater/host-http"
import { MockUpstream } from "@breakwater/testing"
import { Effect, Exit, Scope } from "effect"
import { request as httpRequest } from "node:http"
import OpenAI from "openai"
import { afterAll, beforeAll, describe, expect, it } from "vitest"

let url = ""
let port = 0
let scope: Scope.CloseableScope
let upstream: MockUpstream.MockUpstream

beforeAll(async () => {
  upstream = await MockUpstream.start({ words: 8 })
  scope = Effect.runSync(Scope.make())
  const config = await Effect.runPromise(ConfigLoader.fromObject({
    upstreams: { openai: { provider: "openai", baseUrl: upstream.url, apiKey: "${OPENAI_API_KEY}", models: ["gpt-4o-mini"] } },
    routes: { "gpt-4o-mini": { upstreams: ["openai"] } }
  }, { OPENAI_API_KEY: "sk-operator-credit-000000000000" }))
  const gateway = await Effect.runPromise(Scope.extend(GatewayBuilder.make(config), scope))
  const running = await Effect.runPromise(Scope.extend(HttpHost.serve(gateway, { port: 0, logLevel: "none" }), scope))
  url = running.url
  port = running.port
})
afterAll(async () => {
  await Effect.runPromise(Scope.close(scope, Exit.void))
  await upstream.close()
})

const send = (headers: Record<string, string>, body: string, method = "POST", path = "/v1/chat/completions") =>
  new Promise<{ status: number; body: string; headers: Record<string, unknown> }>((resolve, reject) => {
    const req = httpRequest({ host: "127.0.0.1", port, method, path, headers, setHost: !("host" in headers) }, (res) => {
      let text = ""
      res.setEncoding("utf8")
      res.on("data", (part: string) => (text += part))
      res.on("end", () => resolve({ status: res.statusCode!, body: text, headers: res.headers }))
    })
    req.on("error", reject)
    req.end(body)
  })

const ask = JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "spend the operator's credit" }], stream: true })

describe("a web page against a keyless gateway (issue #17, finding 3)", () => {
  it("a cross-origin simple POST (text/plain, no preflight) never reaches the upstream", async () => {
    const before = upstream.received
    const csrf = await send({ "content-type": "text/plain;charset=UTF-8", origin: "https://evil.example", host: `127.0.0.1:${port}` }, ask)
    expect(csrf.status).toBe(403)
    expect(csrf.headers["access-control-allow-origin"]).toBeUndefined()
    // Even with no Origin (a browser always sends one on a cross-origin POST), text/plain is refused.
    expect((await send({ "content-type": "text/plain", host: `localhost:${port}` }, ask)).status).toBe(415)
    expect(upstream.received).toBe(before)
  })

  it("a DNS-rebound page (its own Host, same origin to the browser) is refused before anything is read", async () => {
    const before = upstream.received
    const rebound = await send({ "content-type": "application/json", host: `rebind.evil.example:${port}` }, ask)
    expect(rebound.status).toBe(403)
    expect(rebound.body).not.toMatch(/data:/)
    expect((await send({ host: `rebind.evil.example:${port}` }, "", "GET", "/v1/models")).status).toBe(403)
    expect(upstream.received).toBe(before)
  })

  it("the official openai client still works", async () => {
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "unused", maxRetries: 0 })
    let text = ""
    for await (const chunk of await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }], stream: true })) {
      text += chunk.choices[0]?.delta.content ?? ""
    }
    expect(text.split(" ").length).toBe(8)
  })
})
