import { LanguageModel, ModelError } from "@breakwater/core"
import { Router } from "@breakwater/router"
import { FakeLanguageModel } from "@breakwater/testing"
import { expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

// The README's example, with two FakeLanguageModels as the app's models; the primary is down.
it.effect("README: Router.layer over two of an app's own models", () =>
  Effect.gen(function*() {
    const primary = FakeLanguageModel.make([{ fail: new ModelError.ConnectionFailed({ message: "refused" }) }])
    const secondary = FakeLanguageModel.make()
    const Primary: Layer.Layer<LanguageModel.LanguageModel> = Layer.succeed(LanguageModel.LanguageModel, primary.model)
    const Secondary: Layer.Layer<LanguageModel.LanguageModel> = Layer.succeed(LanguageModel.LanguageModel, secondary.model)

    const Routed = Router.layer({
      strategy: "fallback",
      upstreams: [
        { name: "primary", model: Primary, models: { fast: "gpt-4o-mini" } },
        { name: "secondary", model: Secondary, models: { fast: "llama-3.1-8b-instant" }, maxConcurrent: 32 }
      ]
    })

    const ask = LanguageModel.generate({ model: "fast", messages: [{ role: "user", content: "Hello" }] })
    const reply = yield* Effect.provide(ask, Routed)

    expect(primary.calls.map((c) => c.request.model)).toEqual(["gpt-4o-mini"])
    expect(secondary.calls.map((c) => c.request.model)).toEqual(["llama-3.1-8b-instant"])
    expect(reply.choices[0]?.message.content).toBe(secondary.textFor({ model: "llama-3.1-8b-instant", messages: [{ role: "user", content: "Hello" }] }))
  }))
