/**
 * Use 2 of Breakwater: one policy package in an existing Effect app. Here `@breakwater/retry`
 * wraps a model whose first call fails with a 503 (a scripted fake standing in for your
 * provider adapter); the app sees one successful answer and the trace says what happened.
 */
import { ModelError, RequestContext } from "@breakwater/core"
import { Retry } from "@breakwater/retry"
import { FakeLanguageModel } from "@breakwater/testing"
import * as Effect from "effect/Effect"

export const program = Effect.gen(function*() {
  const upstream = FakeLanguageModel.make([
    { fail: new ModelError.UpstreamUnavailable({ message: "upstream returned 503", status: 503 }) }
  ])
  const model = yield* Retry.withPolicy(upstream.model, { maxRetries: 2, baseDelay: "10 millis" })
  // A host makes one context per logical request; the policies record what they did in its trace.
  const context = RequestContext.make({ requestId: "example-1" })
  const response = yield* Effect.provideService(
    model.generate({ model: "demo", messages: [{ role: "user", content: "Say something steady." }] }),
    RequestContext.RequestContext,
    context
  )
  return {
    text: response.choices[0]?.message.content ?? "",
    upstreamCalls: upstream.calls.length,
    retries: context.trace.retries
  }
})
