import { BreakerStore } from "@breakwater/circuit-breaker"
import { type ChatCompletion, type LanguageModel, ModelError } from "@breakwater/core"
import { Retry, RetryBudget } from "@breakwater/retry"
import { RedisStore, RedisStores } from "@breakwater/store-redis"
import { StreamJournal } from "@breakwater/stream-resume"
import { FakeLanguageModel } from "@breakwater/testing"
import { describe, expect, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { afterAll, beforeAll } from "vitest"
import { hasRedis, RedisServer } from "./redisServer.js"

const request: ChatCompletion.ChatRequest = { model: "m", messages: [{ role: "user", content: "hi" }] }

describe.skipIf(!hasRedis)("RedisStores: the stores as a gateway instance uses them", () => {
  let server: RedisServer
  beforeAll(async () => {
    server = await RedisServer.start()
  })
  afterAll(async () => {
    await server?.kill()
  })

  it.scoped("one layer provides the connection and the three stores", () =>
    Effect.gen(function*() {
      const ctx = yield* Layer.build(RedisStores.layer({ url: server.url, prefix: "bw-stores-1:", journal: { maxEventsPerStream: 5 } }))
      expect(Context.getOption(ctx, RedisStore.RedisStore)._tag).toBe("Some")
      expect(Context.getOption(ctx, RetryBudget.RetryBudgetStore)._tag).toBe("Some")
      expect(Context.getOption(ctx, BreakerStore.BreakerStore)._tag).toBe("Some")
      const journal = Context.get(ctx, StreamJournal.StreamJournal)
      yield* journal.open("s", { owner: "" })
      for (let seq = 1; seq <= 7; seq++) yield* journal.append("s", seq, `data: ${seq}\n\n`)
      expect(yield* journal.state("s")).toMatchObject({ firstSeq: 3, lastSeq: 7 })
      expect(yield* Effect.provide(RedisStore.health, ctx)).toMatchObject({ status: "up", prefix: "bw-stores-1:" })
    }))

  it.scoped("the retry policy of two instances draws on one fleet-wide budget during a total upstream outage", () =>
    Effect.gen(function*() {
      const outage = new ModelError.UpstreamUnavailable({ message: "503", status: 503 })
      const instance = (layer: Layer.Layer<RetryBudget.RetryBudgetStore>) =>
        Effect.gen(function*() {
          const fake = FakeLanguageModel.make(Array.from({ length: 200 }, () => ({ fail: outage })))
          const ctx = yield* Layer.build(layer)
          const model = yield* Effect.provide(
            Retry.withPolicy(fake.model, { maxRetries: 3, baseDelay: 0, jitter: "none", budget: { ratio: 0.1, minRetriesPerSecond: 4 } }),
            ctx
          )
          return { fake, model }
        })
      const requestsEach = (instances: ReadonlyArray<{ readonly model: LanguageModel.Service }>) =>
        Effect.forEach(
          instances.flatMap((i) => Array.from({ length: 10 }, () => Effect.exit(i.model.generate(request)))),
          (e) => e,
          { concurrency: "unbounded" }
        )
      const shared = RedisStores.layer({ url: server.url, prefix: "bw-stores-2:" })
      const a = yield* instance(shared)
      const b = yield* instance(shared)
      yield* requestsEach([a, b])
      // 20 requests; the floor (4 per second) is the fleet's, and 10% of 20 is below it: 4 retries in all.
      expect(a.fake.calls.length + b.fake.calls.length).toBe(24)

      const apartA = yield* instance(RetryBudget.layerMemory)
      const apartB = yield* instance(RetryBudget.layerMemory)
      yield* requestsEach([apartA, apartB])
      expect(apartA.fake.calls.length + apartB.fake.calls.length).toBe(28)
    }))
})
