/**
 * Routing semantics through the real stack (issue #18): config → GatewayBuilder → HttpHost over
 * loopback → the OpenAI adapter → MockUpstream. What reached each upstream is read from the
 * mocks' request logs.
 */
import { ConfigLoader, GatewayBuilder } from "@breakwater/gateway"
import { HttpHost } from "@breakwater/host-http"
import { MockUpstream } from "@breakwater/testing"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { readFileSync } from "node:fs"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"

const { Fault } = MockUpstream

const quiet = { log: () => {} }

/** Builds the gateway from a config object and serves it over loopback for the test's scope. */
const serve = (config: unknown) =>
  Effect.gen(function*() {
    const gateway = yield* GatewayBuilder.make(yield* ConfigLoader.fromObject(config, {}))
    return yield* HttpHost.serve(gateway, quiet)
  })

const chat = (url: string, model: string, extra: Record<string, unknown> = {}) =>
  Effect.promise(async () => {
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model, messages: [{ role: "user", content: `hello ${model}` }], ...extra })
    })
    return { status: res.status, headers: res.headers, body: await res.text() }
  })

const get = (url: string, path: string) =>
  Effect.promise(async () => {
    const res = await fetch(`${url}${path}`)
    return { status: res.status, body: await res.text() }
  })

const modelsOf = (mock: MockUpstream.MockUpstream) => mock.requests.map((r) => (r.body as { model: string }).model)

/** Two mock upstreams, `openai` then `backup`, serving route "gpt-4o" with the given route options. */
const primaryAndBackup = (route: Record<string, unknown>) =>
  Effect.gen(function*() {
    const openai = yield* MockUpstream.scoped()
    const backup = yield* MockUpstream.scoped()
    const { url } = yield* serve({
      upstreams: {
        openai: { provider: "openai", baseUrl: openai.url, models: ["gpt-4o"] },
        backup: { provider: "openai", baseUrl: backup.url, models: ["gpt-4o"] }
      },
      routes: { "gpt-4o": { upstreams: ["openai", "backup"], ...route } }
    })
    return { openai, backup, url }
  })

// Small retry delays keep the wall time low; the retry-after test sets its own.
const fastRetry = { baseDelay: "1 millis", maxDelay: "5 millis" }

describe("routing through the HTTP host (issue #18)", () => {
  it.scopedLive("one upstream entry, several models, one model failing: the others' breakers stay closed and the primary serves them", () =>
    Effect.gen(function*() {
      const openai = yield* MockUpstream.scoped()
      const backup = yield* MockUpstream.scoped()
      const models = ["model-a", "model-b", "model-c"]
      const route = { upstreams: ["openai", "backup"] }
      const { url } = yield* serve({
        upstreams: {
          openai: { provider: "openai", baseUrl: openai.url, models },
          backup: { provider: "openai", baseUrl: backup.url, models }
        },
        routes: Object.fromEntries(models.map((m) => [m, route])),
        defaults: { retry: fastRetry, breaker: { minimumCalls: 3, window: { kind: "count", size: 3 }, openDuration: "10 minutes" } }
      })
      // model-a's deployment fails every attempt (the first request's attempt and its 2 retries).
      openai.script({ fault: Fault.Status({ status: 500 }) }, { fault: Fault.Status({ status: 500 }) }, { fault: Fault.Status({ status: 500 }) })
      const first = yield* chat(url, "model-a")
      expect(first.status).toBe(200)
      expect(first.headers.get("x-breakwater-upstream")).toBe("backup")
      expect(modelsOf(openai)).toEqual(["model-a", "model-a", "model-a"])

      // model-a's breaker is open now: the router passes over it without calling it.
      const again = yield* chat(url, "model-a")
      expect(again.headers.get("x-breakwater-upstream")).toBe("backup")
      expect(modelsOf(openai)).toEqual(["model-a", "model-a", "model-a"])

      // The other models of the same upstream entry are still served by the primary.
      for (const model of ["model-b", "model-c", "model-b"]) {
        const res = yield* chat(url, model)
        expect(res.status).toBe(200)
        expect(res.headers.get("x-breakwater-upstream")).toBe("openai")
      }
      expect(modelsOf(openai)).toEqual(["model-a", "model-a", "model-a", "model-b", "model-c", "model-b"])
      expect(modelsOf(backup)).toEqual(["model-a", "model-a"])

      // Readiness and metrics name the deployment.
      const ready = yield* get(url, "/readyz")
      expect(ready.status).toBe(200)
      const health = JSON.parse(ready.body) as { upstreams: Array<{ name: string; circuit: string; models: Array<{ model: string; circuit: string }> }> }
      const entry = health.upstreams.find((u) => u.name === "openai")!
      expect(entry.circuit).toBe("closed")
      expect(entry.models).toEqual([
        { model: "model-a", circuit: "open" },
        { model: "model-b", circuit: "closed" },
        { model: "model-c", circuit: "closed" }
      ])
      const metrics = (yield* get(url, "/metrics")).body
      expect(metrics).toMatch(/breakwater_circuit_state\{[^}]*key="openai@model-a"[^}]*state="open"[^}]*\} 1/)
      expect(metrics).toMatch(/breakwater_circuit_state\{[^}]*key="openai@model-b"[^}]*state="closed"[^}]*\} 1/)
    }))

  it.scopedLive("a 429 with Retry-After: 1 is retried on the primary, which serves; the fallback receives nothing", () =>
    Effect.gen(function*() {
      const { backup, openai, url } = yield* primaryAndBackup({})
      openai.script({ fault: Fault.Status({ status: 429 }), headers: { "retry-after": "1" } })
      const started = Date.now()
      const res = yield* chat(url, "gpt-4o")
      expect(res.status).toBe(200)
      expect(Date.now() - started).toBeGreaterThanOrEqual(1000)
      expect(res.headers.get("x-breakwater-upstream")).toBe("openai")
      expect(res.headers.get("x-breakwater-attempts")).toBe("2")
      expect(openai.requests).toHaveLength(2)
      expect(openai.requests[1]!.at - openai.requests[0]!.at).toBeGreaterThanOrEqual(1000)
      expect(backup.requests).toHaveLength(0)

      // Streaming the same way: the retry happens before anything reached the client.
      openai.script({ fault: Fault.Status({ status: 429 }), headers: { "retry-after": "1" } })
      const streamed = yield* chat(url, "gpt-4o", { stream: true })
      expect(streamed.status).toBe(200)
      expect(streamed.body).toContain("data: [DONE]")
      expect(openai.requests).toHaveLength(4)
      expect(backup.requests).toHaveLength(0)
    }))

  it.scopedLive("a stream that breaks after its role chunk but before any content is retried on the primary", () =>
    Effect.gen(function*() {
      const { backup, openai, url } = yield* primaryAndBackup({ retry: fastRetry })
      openai.script({ fault: Fault.Cut({ afterChunks: 0 }) })
      const res = yield* chat(url, "gpt-4o", { stream: true })
      expect(res.status).toBe(200)
      expect(res.headers.get("x-breakwater-upstream")).toBe("openai")
      const chunks = res.body.split("\n").filter((l) => l.startsWith("data: {")).map((l) => JSON.parse(l.slice(6)) as {
        choices: Array<{ delta: { role?: string; content?: string } }>
      })
      expect(chunks.filter((c) => c.choices[0]?.delta.role !== undefined)).toHaveLength(1)
      expect(chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")).toBe(openai.textFor({ messages: [{ role: "user", content: "hello gpt-4o" }] }))
      expect(openai.requests).toHaveLength(2)
      expect(backup.requests).toHaveLength(0)
    }))

  it.scopedLive("a route falls back to another model of the same upstream, after the primary model's retries", () =>
    Effect.gen(function*() {
      const openai = yield* MockUpstream.scoped()
      const { url } = yield* serve({
        upstreams: { openai: { provider: "openai", baseUrl: openai.url } },
        routes: { chat: { upstreams: [{ upstream: "openai", model: "gpt-4o" }, { upstream: "openai", model: "gpt-4o-mini" }] } },
        defaults: { retry: fastRetry }
      })
      openai.script({ fault: Fault.Status({ status: 503 }) }, { fault: Fault.Status({ status: 503 }) }, { fault: Fault.Status({ status: 503 }) })
      const res = yield* chat(url, "chat")
      expect(res.status).toBe(200)
      expect(modelsOf(openai)).toEqual(["gpt-4o", "gpt-4o", "gpt-4o", "gpt-4o-mini"])

      // A model the upstream does not have (404) says the target cannot serve: no retry, the
      // next model at once.
      openai.reset()
      openai.script({ fault: Fault.Status({ status: 404 }) })
      const streamed = yield* chat(url, "chat", { stream: true })
      expect(streamed.status).toBe(200)
      expect(streamed.body).toContain("data: [DONE]")
      expect(modelsOf(openai)).toEqual(["gpt-4o", "gpt-4o-mini"])
    }))

  it.scopedLive("latency first (failover: immediate): the fallback serves at once, as before", () =>
    Effect.gen(function*() {
      const { backup, openai, url } = yield* primaryAndBackup({ failover: "immediate" })
      openai.script({ fault: Fault.Status({ status: 429 }), headers: { "retry-after": "1" } })
      const res = yield* chat(url, "gpt-4o")
      expect(res.status).toBe(200)
      expect(res.headers.get("x-breakwater-upstream")).toBe("backup")
      expect(openai.requests).toHaveLength(1)
      expect(backup.requests).toHaveLength(1)
    }))

  it.scopedLive("a content-filter 400 is returned, not routed around (unless the route says so), and names no upstream entry", () =>
    Effect.gen(function*() {
      // MockUpstream's error bodies carry no provider error code; a content-filter refusal is
      // recognised by its code, so this one upstream is a minimal loopback server that answers
      // every request with OpenAI's content-filter error.
      const refusals: Array<string> = []
      const filter = createServer((req, res) => {
        req.resume()
        req.on("end", () => {
          refusals.push(req.url ?? "")
          res.writeHead(400, { "content-type": "application/json" })
          res.end(JSON.stringify({
            error: { message: "Your request was rejected as a result of our safety system.", type: "invalid_request_error", param: null, code: "content_filter" }
          }))
        })
      })
      yield* Effect.acquireRelease(
        Effect.promise(() => new Promise<void>((resolve) => filter.listen(0, "127.0.0.1", resolve))),
        () => Effect.promise(() => new Promise<void>((resolve) => filter.close(() => resolve())))
      )
      const filterUrl = `http://127.0.0.1:${(filter.address() as AddressInfo).port}/v1`
      const backup = yield* MockUpstream.scoped()
      const { url } = yield* serve({
        upstreams: {
          "wall-s13": { provider: "openai", baseUrl: filterUrl, models: ["gpt-4o", "gpt-4o-any"] },
          backup: { provider: "openai", baseUrl: backup.url, models: ["gpt-4o", "gpt-4o-any"] }
        },
        routes: {
          "gpt-4o": { upstreams: ["wall-s13", "backup"] },
          "gpt-4o-any": { upstreams: ["wall-s13", "backup"], fallbackOn: ["failover", "ContentRefused"] }
        }
      })
      const res = yield* chat(url, "gpt-4o")
      expect(res.status).toBe(400)
      const error = (JSON.parse(res.body) as { error: { message: string; code: string } }).error
      expect(error.code).toBe("content_filter")
      expect(error.message).toBe("Your request was rejected as a result of our safety system.")
      expect(res.body).not.toContain("wall-s13")
      expect(refusals).toHaveLength(1)
      expect(backup.requests).toHaveLength(0)

      // The route that says so routes around it.
      const routed = yield* chat(url, "gpt-4o-any")
      expect(routed.status).toBe(200)
      expect(refusals).toHaveLength(2)
      expect(backup.requests).toHaveLength(1)
    }))
})

describe("route validation at load (issue #18)", () => {
  const upstreams = { openai: { provider: "openai", baseUrl: "http://127.0.0.1:9/v1", models: { chat: "gpt-4o" } } }
  const issuesOf = (routes: unknown) =>
    Effect.map(Effect.flip(ConfigLoader.fromObject({ upstreams, routes }, {})), (error) => error.issues)

  it.effect("the same (upstream, model) twice is rejected with the path", () =>
    Effect.gen(function*() {
      const issues = yield* issuesOf({
        chat: { upstreams: [{ upstream: "openai", model: "a" }, { upstream: "openai", model: "b" }, { upstream: "openai", model: "a" }] }
      })
      expect(issues).toEqual([{ path: "routes.chat.upstreams.2", message: expect.stringContaining(`upstream "openai" with model "a"`) }])
      // A bare name resolves through the upstream's model map: "openai" here is (openai, gpt-4o).
      const mapped = yield* issuesOf({ chat: { upstreams: ["openai", { upstream: "openai", model: "gpt-4o" }] } })
      expect(mapped.map((i) => i.path)).toEqual(["routes.chat.upstreams.1"])
    }))

  it.effect("unknown upstreams and empty routes are rejected with the path", () =>
    Effect.gen(function*() {
      const issues = yield* issuesOf({ chat: { upstreams: [] }, other: { upstreams: ["openai", "nope"] } })
      expect(issues.map((i) => i.path)).toEqual(["routes.chat.upstreams", "routes.other.upstreams.1"])
      expect(issues[1]!.message).toContain(`unknown upstream "nope"`)
    }))

  it.effect("the README's config example (a same-provider model fallback, both orders) loads", () =>
    Effect.gen(function*() {
      const readme = readFileSync(new URL("../../packages/gateway/README.md", import.meta.url), "utf8")
      const json = /```json\n([\s\S]*?)\n```/.exec(readme)![1]!
      const env = { GATEWAY_KEY_WEB: "gw-web-key-0001", GATEWAY_ADMIN_KEY: "gw-admin-key-000000001", OPENAI_API_KEY: "sk-x", ANTHROPIC_API_KEY: "sk-y" }
      const config = yield* ConfigLoader.fromObject(JSON.parse(json), env)
      expect(config.routes["o3"]!.upstreams).toEqual([{ upstream: "openai", model: "o3" }, { upstream: "openai", model: "o4-mini" }, "anthropic"])
      expect(config.routes["gpt-4o-fast"]!.failover).toBe("immediate")
    }))

  it.scoped("the same upstream with two models builds (no crash at start-up)", () =>
    Effect.gen(function*() {
      const config = yield* ConfigLoader.fromObject({
        upstreams,
        routes: { chat: { upstreams: [{ upstream: "openai", model: "gpt-4o" }, { upstream: "openai", model: "gpt-4o-mini" }] } }
      }, {})
      const gateway = yield* GatewayBuilder.make(config)
      expect(gateway.models).toEqual(["chat"])
    }))
})
