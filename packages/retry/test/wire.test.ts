import { type ChatCompletion, RequestContext } from "@breakwater/core"
import { OpenAiProvider } from "@breakwater/provider-openai"
import { Retry } from "@breakwater/retry"
import { MockUpstream } from "@breakwater/testing"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"

const { Fault } = MockUpstream

const request: ChatCompletion.ChatRequest = { model: "gpt-wire", messages: [{ role: "user", content: "hi" }] }

describe("retry over real HTTP", () => {
  // Real time on purpose: this shows the whole path (status and header parsed by the transport,
  // classified by core, honoured here) on a real socket.
  it.live("a 429 with retry-after: 1, then success: the caller gets the success after one retry, at least 1 s later", () =>
    Effect.gen(function*() {
      const server = yield* MockUpstream.scoped()
      server.script({ fault: Fault.Status({ status: 429 }), headers: { "retry-after": "1" } }, {})
      const model = yield* Retry.withPolicy(yield* OpenAiProvider.make({ name: "wire", baseUrl: server.url }))
      const ctx = RequestContext.make({ requestId: "wire-1" })
      const started = Date.now()
      const completion = yield* Effect.provideService(model.generate(request), RequestContext.RequestContext, ctx)
      const elapsed = Date.now() - started
      expect(completion.choices[0]?.message.content).toBe(server.textFor(request))
      expect(server.requests.length).toBe(2)
      expect(ctx.trace.retries).toBe(1)
      expect(ctx.trace.retryAfterMillis).toBe(1000)
      expect(server.requests[1]!.at - server.requests[0]!.at).toBeGreaterThanOrEqual(1000)
      expect(elapsed).toBeGreaterThanOrEqual(1000)
      expect(elapsed).toBeLessThan(5000)
    }).pipe(Effect.scoped))

  it.live("a 400 is returned at once, after one request", () =>
    Effect.gen(function*() {
      const server = yield* MockUpstream.scoped()
      server.script({ fault: Fault.Status({ status: 400 }) })
      const model = yield* Retry.withPolicy(yield* OpenAiProvider.make({ name: "wire", baseUrl: server.url }))
      const result = yield* Effect.either(model.generate(request))
      expect(result._tag === "Left" && result.left._tag).toBe("BadRequest")
      expect(server.requests.length).toBe(1)
    }).pipe(Effect.scoped))
})
