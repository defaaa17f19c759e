// The README's examples, verbatim apart from the imports being shared.
import type { ChatCompletion } from "@breakwater/core"
import { OpenAiProvider } from "@breakwater/provider-openai"
import { Retry } from "@breakwater/retry"
import { MockUpstream } from "@breakwater/testing"
import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import OpenAI from "openai"

it("README: any client, any test runner", async () => {
  const mock = await MockUpstream.start()
  mock.script({ fault: MockUpstream.Fault.Status({ status: 429 }), headers: { "retry-after-ms": "20" } }) // the next request only
  const client = new OpenAI({ baseURL: mock.url, apiKey: "test", maxRetries: 1 })
  const request = { model: "gpt-4o-mini", messages: [{ role: "user" as const, content: "Hello" }] }
  const reply = await client.chat.completions.create(request)
  expect(reply.choices[0]?.message.content).toBe(mock.textFor(request))
  expect(mock.requests).toHaveLength(2)
  await mock.stop()
})

it.live("README: a policy over the real adapter in an Effect test", () =>
  Effect.gen(function*() {
    const mock = yield* MockUpstream.scoped() // stopped when the scope closes
    mock.script({ fault: MockUpstream.Fault.Status({ status: 503 }) }, { headersDelayMs: 50 }) // then the default: answer normally
    const model = yield* Retry.withPolicy(yield* OpenAiProvider.make({ baseUrl: mock.url }))
    const request: ChatCompletion.ChatRequest = { model: "gpt-4o-mini", messages: [{ role: "user", content: "Hello" }] }
    const reply = yield* model.generate(request)
    expect(reply.choices[0]?.message.content).toBe(mock.textFor(request))
    expect(mock.requests).toHaveLength(2)
  }).pipe(Effect.scoped))
