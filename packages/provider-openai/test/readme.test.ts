import { LanguageModel } from "@breakwater/core"
import { OpenAiProvider } from "@breakwater/provider-openai"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Upstream from "./support/upstream.js"

// The README's example, with the base URL pointed at a local upstream.
describe("README example", () => {
  it.scopedLive("a model call in an existing Effect app", () =>
    Effect.gen(function*() {
      const server = yield* Upstream.start("/v1", Upstream.json(200, Upstream.openAiCompletion("Hello! How can I help?")))
      const OpenAi = OpenAiProvider.layer({ baseUrl: server.baseUrl, apiKey: Redacted.make(process.env.OPENAI_API_KEY ?? "sk-readme-000000") })
      const ask = LanguageModel.generate({ model: "gpt-4o-mini", messages: [{ role: "user", content: "Hello" }] })
      const reply = yield* Effect.promise(() => Effect.runPromise(Effect.provide(ask, OpenAi)))
      expect(reply.choices[0]?.message.content).toBe("Hello! How can I help?")
    }))
})
