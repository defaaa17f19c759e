/**
 * End to end: the OpenAI adapter over real HTTP to a mock upstream that fails, under a breaker.
 * The breaker's clock is the TestClock (the open duration passes with `TestClock.adjust`); the
 * HTTP traffic is real, and the mock's request log shows what reached the upstream.
 */
import { CircuitBreaker } from "@breakwater/circuit-breaker"
import type { ChatCompletion } from "@breakwater/core"
import { OpenAiProvider } from "@breakwater/provider-openai"
import { MockUpstream } from "@breakwater/testing"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Logger, LogLevel, Stream, TestClock } from "effect"

const { Fault } = MockUpstream

describe("CircuitBreaker end to end", () => {
  it.scoped("503s trip it, further calls never reach the upstream, and it closes after recovery", () =>
    Effect.gen(function*() {
      const mock = yield* MockUpstream.scoped()
      const adapter = yield* OpenAiProvider.make({ name: "mock", baseUrl: mock.url })
      const breaker = yield* CircuitBreaker.make({ window: { kind: "count", size: 10 }, minimumCalls: 5, openDuration: "30 seconds" })
      const model = breaker.wrap("mock", adapter)
      const request: ChatCompletion.ChatRequest = { model: "gpt-mock", messages: [{ role: "user", content: "hi" }] }
      mock.setDefault({ fault: Fault.Status({ status: 503 }) })
      for (let i = 0; i < 3; i++) expect((yield* Effect.flip(model.generate(request)))._tag).toBe("UpstreamUnavailable")
      for (let i = 0; i < 2; i++) {
        expect((yield* Effect.flip(Stream.runDrain(model.stream({ ...request, stream: true }))))._tag).toBe("UpstreamUnavailable")
      }
      expect(mock.requests.length).toBe(5)
      expect(yield* breaker.state("mock")).toBe("open")
      expect(breaker.isAvailable("mock")).toBe(false)
      // Open: calls fail fast and do not reach the upstream, streaming or not.
      for (let i = 0; i < 10; i++) expect((yield* Effect.flip(model.generate(request)))._tag).toBe("CircuitOpen")
      for (let i = 0; i < 10; i++) {
        expect((yield* Effect.flip(Stream.runDrain(model.stream({ ...request, stream: true }))))._tag).toBe("CircuitOpen")
      }
      expect(mock.requests.length).toBe(5)
      // Still failing after the open duration: the one probe reaches it and re-opens the breaker.
      yield* TestClock.adjust("30 seconds")
      expect((yield* Effect.flip(model.generate(request)))._tag).toBe("UpstreamUnavailable")
      expect((yield* Effect.flip(model.generate(request)))._tag).toBe("CircuitOpen")
      expect(mock.requests.length).toBe(6)
      // The upstream recovers; after the (doubled) open duration one probe goes through and closes it.
      mock.setDefault({})
      yield* TestClock.adjust("60 seconds")
      const response = yield* model.generate(request)
      expect(response.choices[0]?.message.content).toBe(mock.textFor(request))
      expect(mock.requests.length).toBe(7)
      expect(yield* breaker.state("mock")).toBe("closed")
      const chunks = yield* Stream.runCollect(model.stream({ ...request, stream: true }))
      expect(Chunk.size(chunks)).toBeGreaterThan(1)
      expect(mock.requests.length).toBe(8)
    }).pipe(Logger.withMinimumLogLevel(LogLevel.None)))
})
