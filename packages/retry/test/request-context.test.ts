import { type ChatCompletion, type LanguageModel, ModelError, RequestContext } from "@breakwater/core"
import { Retry } from "@breakwater/retry"
import { FakeLanguageModel } from "@breakwater/testing"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as TestClock from "effect/TestClock"

const request: ChatCompletion.ChatRequest = { model: "gpt-test", messages: [{ role: "user", content: "hello" }] }
const unavailable = () => new ModelError.UpstreamUnavailable({ message: "503", status: 503 })

describe("a policy used without a host", () => {
  it.effect("gives each call a trace of its own: two concurrent calls do not see each other's entries", () =>
    Effect.gen(function*() {
      // Both calls' first attempts fail, so each call retries once.
      const fake = FakeLanguageModel.make([{ fail: unavailable() }, { fail: unavailable() }])
      const seen: Array<RequestContext.RequestTrace> = []
      const observed: LanguageModel.Service = {
        ...fake.model,
        generate: (r, o) => Effect.zipRight(Effect.map(RequestContext.current, (ctx) => seen.push(ctx.trace)), fake.model.generate(r, o))
      }
      const model = yield* Retry.withPolicy(observed, { maxRetries: 2, baseDelay: "10 millis", jitter: "none", budget: false })
      const calls = yield* Effect.fork(Effect.all([model.generate(request), model.generate(request)], { concurrency: 2 }))
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(calls)

      expect(seen).toHaveLength(4)
      const traces = [...new Set(seen)]
      expect(traces).toHaveLength(2)
      expect(traces.map((trace) => trace.retries)).toEqual([1, 1])
      // A later call starts from an empty trace.
      expect((yield* RequestContext.current).trace.retries).toBe(0)
    }))
})
