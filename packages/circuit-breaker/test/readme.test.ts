/** The README's example, run against MockUpstream instead of api.openai.com. */
import { CircuitBreaker } from "@breakwater/circuit-breaker"
import { OpenAiProvider } from "@breakwater/provider-openai"
import { MockUpstream } from "@breakwater/testing"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"

describe("README example", () => {
  it.scoped("wraps a model and any effect; fails fast when open", () =>
    Effect.gen(function*() {
      const mock = yield* MockUpstream.scoped()
      const openai = yield* OpenAiProvider.make({ baseUrl: mock.url, apiKey: Redacted.make("sk-test") })
      const breakers = yield* CircuitBreaker.make({ minimumCalls: 5, openDuration: "30 seconds" })
      const model = breakers.wrap("openai", openai)
      const answer = yield* model.generate({ model: "gpt-4o-mini", messages: [{ role: "user", content: "Hi" }] })
      expect(answer.choices[0]?.message.content).toBeTruthy()
      expect(breakers.snapshot()).toEqual({ openai: "closed" })
      let searched = 0
      const callSearchApi = Effect.suspend(() => (++searched, Effect.fail({ _tag: "ConnectionFailed" as const })))
      for (let i = 0; i < 5; i++) yield* Effect.exit(breakers.withBreaker("search")(callSearchApi))
      const error = yield* Effect.flip(breakers.withBreaker("search")(callSearchApi))
      expect(error).toMatchObject({ _tag: "CircuitOpen", upstream: "search" })
      expect(searched).toBe(5)
    }))
})
