/**
 * Providers and shared state are plugged into the builder, not imported by it: adapters come
 * from a registry by provider kind (the built-ins, and any the caller registers), and the shared
 * stores from a connector the builder calls only for a config with a `redis` section.
 */
import { type ChatCompletion, LanguageModel } from "@breakwater/core"
import { BreakerStore } from "@breakwater/circuit-breaker"
import { ConfigLoader, GatewayBuilder, Providers, SharedState } from "@breakwater/gateway"
import { RetryBudget } from "@breakwater/retry"
import { StreamJournal } from "@breakwater/stream-resume"
import { FakeLanguageModel } from "@breakwater/testing"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect } from "effect"

const request = (model: string): ChatCompletion.ChatRequest => ({ model, messages: [{ role: "user", content: "hello" }] })

const config = (upstreams: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  ConfigLoader.fromObject({
    upstreams,
    routes: { chat: { upstreams: Object.keys(upstreams), retry: { enabled: false } } },
    ...extra
  }, {})

describe("providers from a registry", () => {
  it.scoped("an upstream of a registered kind is built by that kind's constructor, with its config and connect timeout", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make()
      const seen: Array<Providers.Upstream> = []
      const gateway = yield* GatewayBuilder.make(
        yield* config({ local: { provider: "in-house", baseUrl: "http://127.0.0.1:9/v1", models: ["chat"], timeouts: { connect: "2 seconds" } } }),
        { providers: { "in-house": (upstream) => Effect.sync(() => (seen.push(upstream), fake.model)) } }
      )
      const response = yield* gateway.model.generate(request("chat"))
      expect(response.choices[0]?.message.content).toBe(fake.textFor(request("chat")))
      expect(seen.map((u) => [u.name, u.config.baseUrl, Duration.toMillis(u.connectTimeout)])).toEqual([["local", "http://127.0.0.1:9/v1", 2_000]])
      expect(Providers.transportOf(seen[0]!)).toMatchObject({ name: "local", baseUrl: "http://127.0.0.1:9/v1" })
      expect((yield* gateway.health).upstreams.map((u) => u.provider)).toEqual(["in-house"])
    }))

  it.scoped("a registered kind replaces a built-in of the same name", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make()
      const gateway = yield* GatewayBuilder.make(
        yield* config({ openai: { provider: "openai", models: ["chat"] } }),
        { providers: { openai: () => Effect.succeed(fake.model) } }
      )
      yield* gateway.model.generate(request("chat"))
      expect(fake.calls).toHaveLength(1)
    }))

  it.scoped("a kind no registry serves is a config error, every one listed by path", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(GatewayBuilder.make(yield* config({
        a: { provider: "openia", models: ["chat"] },
        b: { provider: "anthropic", models: ["chat"] },
        c: { provider: "mistral", models: ["chat"] }
      })))
      expect(error._tag).toBe("ConfigError")
      expect(error.issues).toEqual([
        { path: "upstreams.a.provider", message: expect.stringMatching(/unknown provider "openia" \(known: openai, anthropic;/) },
        { path: "upstreams.c.provider", message: expect.stringMatching(/unknown provider "mistral"/) }
      ])
    }))

  it.scoped("an adapter given by upstream name needs no registry entry", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make()
      const gateway = yield* GatewayBuilder.make(yield* config({ x: { provider: "nobody-knows", models: ["chat"] } }), { adapters: { x: fake.model } })
      yield* gateway.model.generate(request("chat"))
      expect(fake.calls).toHaveLength(1)
    }))
})

describe("shared state plugged in", () => {
  /** A connector over in-memory stores that records what it was asked for. */
  const memoryConnector = () => {
    const calls: Array<string> = []
    const connect: SharedState.Connect = (redis) =>
      Effect.gen(function*() {
        calls.push(redis.prefix ?? "")
        return {
          retryBudget: yield* RetryBudget.makeMemory,
          breakers: yield* BreakerStore.makeMemory,
          journal: yield* StreamJournal.makeMemory(),
          health: Effect.succeed({ status: "up" as const, since: 7, endpoint: "memory:0" })
        }
      })
    return { calls, connect }
  }

  it.scoped("without a `redis` section the connector is never called: no shared state, no journal", () =>
    Effect.gen(function*() {
      const gateway = yield* GatewayBuilder.make(yield* config({ up: { provider: "openai", models: ["chat"] } }), {
        adapters: { up: FakeLanguageModel.make().model },
        // A connector that could not even load: never reached without the section.
        sharedState: () => Effect.die("the connector was called")
      })
      expect(gateway.journal).toBeUndefined()
      expect((yield* gateway.health).sharedState).toBeUndefined()
    }))

  it.scoped("with a `redis` section the gateway uses the connector's stores: budget, breakers, journal, health", () =>
    Effect.gen(function*() {
      const connector = memoryConnector()
      const fake = FakeLanguageModel.make()
      const gateway = yield* GatewayBuilder.make(
        yield* config({ up: { provider: "openai", models: ["chat"] } }, { redis: { url: "redis://127.0.0.1:1", prefix: "t:" } }),
        { adapters: { up: fake.model }, sharedState: connector.connect }
      )
      expect(connector.calls).toEqual(["t:"])
      expect(gateway.journal).toBeDefined()
      expect((yield* gateway.health).sharedState).toEqual({ status: "up", since: 7, endpoint: "memory:0" })
      expect(LanguageModel.isService(gateway.model)).toBe(true)
    }))

  it.scoped("a `redis` section whose store package cannot be loaded is a config error at `redis`, saying what to install", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(GatewayBuilder.make(
        yield* config({ up: { provider: "openai", models: ["chat"] } }, { redis: { url: "redis://127.0.0.1:1" } }),
        { sharedState: SharedState.redis(() => Promise.reject(new Error("Cannot find package '@breakwater/store-redis'"))) }
      ))
      expect(error.issues).toEqual([{ path: "redis", message: expect.stringMatching(/npm install @breakwater\/store-redis/) }])
    }))
})
