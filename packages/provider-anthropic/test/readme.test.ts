import { LanguageModel } from "@breakwater/core"
import { AnthropicProvider } from "@breakwater/provider-anthropic"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Upstream from "../../provider-openai/test/support/upstream.js"

// The README's example, with the base URL pointed at a local upstream.
describe("README example", () => {
  it.scopedLive("a model call in an existing Effect app", () =>
    Effect.gen(function*() {
      const server = yield* Upstream.start("", Upstream.json(200, Upstream.anthropicMessage("Hello! How can I help?")))
      const Claude = AnthropicProvider.layer({ baseUrl: server.baseUrl, apiKey: Redacted.make(process.env.ANTHROPIC_API_KEY ?? "sk-ant-readme-0000") })
      const ask = LanguageModel.generate({
        model: "claude-sonnet-4-20250514",
        messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Hello" }]
      })
      const reply = yield* Effect.promise(() => Effect.runPromise(Effect.provide(ask, Claude)))
      expect(reply.choices[0]?.message.content).toBe("Hello! How can I help?")
      expect(server.requests[0]!.body.system).toBe("Be brief.")
    }))
})
