/**
 * The README's example, run: two "instances" of one app, each with its own Redis connection and
 * policy layers, share a breaker.
 */
import { CircuitBreaker } from "@breakwater/circuit-breaker"
import { LanguageModel, ModelError } from "@breakwater/core"
import { RedisStore, RedisStores } from "@breakwater/store-redis"
import { FakeLanguageModel } from "@breakwater/testing"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import { afterAll, beforeAll } from "vitest"
import { hasRedis, RedisServer } from "./redisServer.js"

describe.skipIf(!hasRedis)("README example", () => {
  let server: RedisServer
  beforeAll(async () => {
    server = await RedisServer.start()
  })
  afterAll(async () => {
    await server?.kill()
  })

  it.scoped("a breaker tripped through one instance refuses on the other; both report Redis up", () =>
    Effect.gen(function*() {
      const outage = new ModelError.UpstreamUnavailable({ message: "503", status: 503 })
      const fake = FakeLanguageModel.make(Array.from({ length: 100 }, () => ({ fail: outage })))
      const MyModel = Layer.succeed(LanguageModel.LanguageModel, fake.model)

      // --- the README example ---
      const Shared = RedisStores.layer({ url: server.url, prefix: "myapp:", commandTimeout: "2 seconds" })
      const Model = CircuitBreaker.layer({ key: "openai", minimumCalls: 4 }).pipe(
        Layer.provide(MyModel), //   your adapter; stack Retry.layer(...) etc. on top as usual
        Layer.provideMerge(Shared) // the stores must be in context when the policies are built
      )
      const ask = LanguageModel.generate({ model: "gpt-4o-mini", messages: [{ role: "user", content: "Hi" }] })
      // --- end ---

      const a = yield* Layer.build(Model) // instance A
      const b = yield* Layer.build(Model) // instance B: its own connection, breaker and retry layer
      for (let i = 0; i < 4; i++) yield* Effect.exit(Effect.provide(ask, a))
      const upstreamCalls = fake.calls.length
      const onB = yield* Effect.exit(Effect.provide(ask, b))
      expect(Exit.isFailure(onB) && onB.cause._tag === "Fail" && onB.cause.error._tag).toBe("CircuitOpen")
      expect(fake.calls.length).toBe(upstreamCalls)
      expect(yield* Effect.provide(RedisStore.health, b)).toMatchObject({ status: "up", prefix: "myapp:" })
    }))
})
