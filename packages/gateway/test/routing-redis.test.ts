/**
 * Breakers per model deployment, shared through Redis (issue #18): the store key names the
 * deployment, so a model that trips on one instance is open on the others while the same
 * upstream's other models stay closed everywhere.
 */
import { type ChatCompletion, ModelError, RequestContext } from "@breakwater/core"
import { ConfigLoader, GatewayBuilder, SharedState } from "@breakwater/gateway"
import { FakeLanguageModel } from "@breakwater/testing"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { afterAll, beforeAll } from "vitest"
import { hasRedis, RedisServer } from "../../store-redis/test/redisServer.js"

const request = (model: string): ChatCompletion.ChatRequest => ({ model, messages: [{ role: "user", content: "hello" }] })

describe.skipIf(!hasRedis)("per-model breakers in Redis", () => {
  let server: RedisServer
  beforeAll(async () => {
    server = await RedisServer.start()
  })
  afterAll(async () => {
    await server?.kill()
  })

  it.scopedLive("a model tripped on one instance is open on another; the upstream's other models are not", () =>
    Effect.gen(function*() {
      const config = yield* ConfigLoader.fromObject({
        upstreams: {
          openai: { provider: "openai", baseUrl: "http://127.0.0.1:9/v1", models: ["model-a", "model-b"] },
          backup: { provider: "openai", baseUrl: "http://127.0.0.1:9/v1", models: ["model-a", "model-b"] }
        },
        routes: { "model-a": { upstreams: ["openai", "backup"] }, "model-b": { upstreams: ["openai", "backup"] } },
        defaults: { retry: { enabled: false }, breaker: { minimumCalls: 3, window: { kind: "count", size: 3 }, openDuration: "10 minutes" } },
        redis: { url: server.url, prefix: "bw-routing-18:" }
      }, {})
      const down = new ModelError.UpstreamUnavailable({ message: "down", status: 503 })
      const first = FakeLanguageModel.make(Array.from({ length: 3 }, () => ({ fail: down })))
      const second = FakeLanguageModel.make()
      const backup = FakeLanguageModel.make()
      // The `redis` section served both ways: by default (store-redis loaded at run time, as the
      // config asks), and by an app that names the import itself (what a bundled app does).
      const one = yield* GatewayBuilder.make(config, { adapters: { openai: first.model, backup: backup.model } })
      const two = yield* GatewayBuilder.make(config, {
        adapters: { openai: second.model, backup: backup.model },
        sharedState: SharedState.redis(() => import("@breakwater/store-redis"))
      })
      for (const gateway of [one, two]) {
        expect((yield* gateway.health).sharedState).toMatchObject({ status: "up", endpoint: expect.stringContaining(`127.0.0.1:${server.port}`) })
        expect(gateway.journal).toBeDefined()
      }
      const call = (gateway: typeof one, model: string) =>
        RequestContext.locally(gateway.model.generate(request(model)), {})

      for (let i = 0; i < 3; i++) yield* call(one, "model-a")
      expect(first.calls).toHaveLength(3)

      const health = yield* two.health
      expect(health.upstreams.find((u) => u.name === "openai")?.models).toEqual([
        { model: "model-a", circuit: "open" },
        { model: "model-b", circuit: "closed" }
      ])
      // The second instance passes over model-a on openai and still serves model-b there.
      yield* call(two, "model-a")
      yield* call(two, "model-b")
      expect(second.calls.map((c) => c.request.model)).toEqual(["model-b"])
      expect(backup.calls.map((c) => c.request.model)).toEqual(["model-a", "model-a", "model-a", "model-a"])
    }))
})
