import { type ChatCompletion, ModelError, RequestContext } from "@breakwater/core"
import { ConfigLoader, GatewayBuilder } from "@breakwater/gateway"
import { FakeLanguageModel } from "@breakwater/testing"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Fiber, Redacted, Stream, TestClock } from "effect"

const config = (extra: Record<string, unknown> = {}) =>
  ConfigLoader.fromObject({
    upstreams: {
      primary: { provider: "openai", baseUrl: "http://127.0.0.1:9/v1", models: ["chat"] },
      secondary: { provider: "anthropic", baseUrl: "http://127.0.0.1:9", models: { chat: "claude-x" } }
    },
    routes: {
      chat: { upstreams: ["primary", "secondary"] },
      "chat-pinned": { upstreams: [{ upstream: "secondary", model: "claude-pinned" }] }
    },
    ...extra
  }, {})

const request = (model: string): ChatCompletion.ChatRequest => ({ model, messages: [{ role: "user", content: "hello" }] })

describe("GatewayBuilder", () => {
  // A failure that says the target cannot serve (here: quota) falls over at once; a transient
  // one is retried on the primary first (issue #18, see routing-order.test.ts).
  it.scoped("falls back to the next upstream, with that upstream's model name", () =>
    Effect.gen(function*() {
      const primary = FakeLanguageModel.make([{ fail: new ModelError.QuotaExhausted({ message: "no credit", status: 429 }) }])
      const secondary = FakeLanguageModel.make()
      const gateway = yield* GatewayBuilder.make(yield* config(), {
        adapters: { primary: primary.model, secondary: secondary.model }
      })
      // The retry budget's floor and backoff run on the TestClock: drive time until the call ends.
      const fiber = yield* Effect.fork(Effect.provideService(gateway.model.generate(request("chat")), RequestContext.RequestContext, RequestContext.make({ requestId: "t-1" })))
      yield* TestClock.adjust("1 minute")
      const response = yield* Fiber.join(fiber)
      expect(response.choices[0]?.message.content).toBe(secondary.textFor({ ...request("chat"), model: "claude-x" }))
      expect(primary.calls.map((c) => c.request.model)).toEqual(["chat"])
      expect(secondary.calls.map((c) => c.request.model)).toEqual(["claude-x"])
    }))

  it.scoped("a route target's model override wins over the upstream's model map", () =>
    Effect.gen(function*() {
      const secondary = FakeLanguageModel.make()
      const gateway = yield* GatewayBuilder.make(yield* config(), { adapters: { primary: FakeLanguageModel.make().model, secondary: secondary.model } })
      const chunks = yield* Stream.runCollect(gateway.model.stream({ ...request("chat-pinned"), stream: true }))
      expect(Chunk.size(chunks)).toBeGreaterThan(2)
      expect(secondary.calls.map((c) => c.request.model)).toEqual(["claude-pinned"])
    }))

  it.scoped("an unknown model fails with ModelNotFound, calling no upstream", () =>
    Effect.gen(function*() {
      const primary = FakeLanguageModel.make()
      const gateway = yield* GatewayBuilder.make(yield* config(), { adapters: { primary: primary.model, secondary: primary.model } })
      const error = yield* Effect.flip(gateway.model.generate(request("nope")))
      expect(error._tag).toBe("ModelNotFound")
      const streamed = yield* Effect.flip(Stream.runDrain(gateway.model.stream(request("nope"))))
      expect(streamed._tag).toBe("ModelNotFound")
      expect(primary.calls).toHaveLength(0)
    }))

  it.scoped("exposes models, keys, server settings from the baseline and config, and health", () =>
    Effect.gen(function*() {
      const gateway = yield* GatewayBuilder.make(
        yield* config({ server: { port: 9999, detachGrace: "5 seconds" }, auth: { keys: [{ name: "team-a", key: "gw-key-123456", models: ["chat"] }] } }),
        { adapters: { primary: FakeLanguageModel.make().model, secondary: FakeLanguageModel.make().model } }
      )
      expect(gateway.models).toEqual(["chat", "chat-pinned"])
      expect(gateway.keys.map((k) => k.name)).toEqual(["team-a"])
      expect(gateway.server.port).toBe(9999)
      expect(gateway.server.detachGraceMs).toBe(5000)
      expect(gateway.server.maxBodyBytes).toBe(4 * 1024 * 1024)
      const health = yield* gateway.health
      expect(health.ready).toBe(true)
      expect(health.upstreams.map((u) => [u.name, u.circuit])).toEqual([["primary", "closed"], ["secondary", "closed"]])
      expect(gateway.secrets).toHaveLength(1)
    }))

  it.scoped("a bad request is not retried nor failed over", () =>
    Effect.gen(function*() {
      const primary = FakeLanguageModel.make([{ fail: new ModelError.BadRequest({ message: "bad" }) }])
      const secondary = FakeLanguageModel.make()
      const gateway = yield* GatewayBuilder.make(yield* config(), { adapters: { primary: primary.model, secondary: secondary.model } })
      const error = yield* Effect.flip(gateway.model.generate(request("chat")))
      expect(error._tag).toBe("BadRequest")
      expect(primary.calls).toHaveLength(1)
      expect(secondary.calls).toHaveLength(0)
    }))

  it.scoped("a failing upstream's breaker opens; the router then skips it and health says so", () =>
    Effect.gen(function*() {
      const down = new ModelError.UpstreamUnavailable({ message: "down", status: 503 })
      const primary = FakeLanguageModel.make(Array.from({ length: 50 }, () => ({ fail: down })))
      const secondary = FakeLanguageModel.make()
      const gateway = yield* GatewayBuilder.make(
        yield* config({ defaults: { breaker: { minimumCalls: 3, openDuration: "1 minute" }, retry: { enabled: false } } }),
        { adapters: { primary: primary.model, secondary: secondary.model } }
      )
      for (let i = 0; i < 3; i++) yield* gateway.model.generate(request("chat"))
      expect(primary.calls).toHaveLength(3)
      const health = yield* gateway.health
      expect(health.upstreams.find((u) => u.name === "primary")?.circuit).toBe("open")
      expect(health.ready).toBe(true) // the secondary still serves every route
      for (let i = 0; i < 5; i++) yield* gateway.model.generate(request("chat"))
      expect(primary.calls).toHaveLength(3)
      expect(secondary.calls).toHaveLength(8)
    }))

  it.scoped("reads the hardening settings: admin key (scrubbed like every secret), cors, per-key concurrency share (issue #17)", () =>
    Effect.gen(function*() {
      const gateway = yield* GatewayBuilder.make(yield* config({
        server: { maxConcurrentPerKey: 8 },
        auth: { keys: [{ name: "a", key: "gw-key-aaaaaaaa", maxConcurrent: 2 }], adminKey: "gw-admin-0123456789abcdef" },
        cors: { origins: ["https://app.example"], maxAge: "1 minute" }
      }))
      expect(gateway.server.maxConcurrentPerKey).toBe(8)
      expect(gateway.keys[0]!.maxConcurrent).toBe(2)
      expect(gateway.cors).toEqual({ origins: ["https://app.example"], maxAgeSeconds: 60 })
      expect(gateway.secrets.map((s) => Redacted.value(s))).toContain("gw-admin-0123456789abcdef")
      const bad = yield* Effect.flip(config({ cors: { origins: ["https://app.example/path"] }, auth: { keys: [], adminKey: "short" } }))
      expect(String(bad)).toMatch(/cors/)
      expect(String(bad)).toMatch(/admin key has at least 16/)
    }))
})

