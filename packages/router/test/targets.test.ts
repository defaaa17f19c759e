/** Targets are (upstream, model) pairs (issue #18): one upstream, several models. */
import { type ChatCompletion, ModelError, RequestContext } from "@breakwater/core"
import { Router } from "@breakwater/router"
import { FakeLanguageModel } from "@breakwater/testing"
import { describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"

const request: ChatCompletion.ChatRequest = { model: "chat", messages: [{ role: "user", content: "x" }] }
const inContext = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.provideService(effect, RequestContext.RequestContext, RequestContext.make({ requestId: "r" }))

describe("Router: targets", () => {
  it.scoped("one upstream listed with two models falls back from one model to the other", () =>
    Effect.gen(function*() {
      const openai = FakeLanguageModel.make([{ fail: new ModelError.ModelNotFound({ message: "no such model", status: 404 }) }])
      const asked: Array<string> = []
      const model = yield* Router.make({
        upstreams: [
          { name: "openai", model: openai.model, models: { chat: "gpt-4o" }, isAvailable: (name, m) => (asked.push(`${name}@${m}`), true) },
          { name: "openai", model: openai.model, models: { chat: "gpt-4o-mini" }, isAvailable: (name, m) => (asked.push(`${name}@${m}`), true) }
        ]
      })
      yield* inContext(model.generate(request))
      expect(openai.calls.map((c) => c.request.model)).toEqual(["gpt-4o", "gpt-4o-mini"])
      expect(new Set(asked)).toEqual(new Set(["openai@gpt-4o", "openai@gpt-4o-mini"]))
    }))

  it.effect("one upstream listed twice for the same model is refused when the router is built", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make()
      for (
        const upstreams of [
          [{ name: "a", model: fake.model }, { name: "a", model: fake.model }],
          [{ name: "a", model: fake.model, models: { chat: "x" } }, { name: "a", model: fake.model, models: { chat: "x" } }],
          [{ name: "a", model: fake.model }, { name: "a", model: fake.model, models: { chat: "chat" } }]
        ]
      ) {
        const exit = yield* Effect.exit(Effect.scoped(Router.make({ upstreams })))
        expect(Exit.isFailure(exit) && Cause.pretty(exit.cause)).toContain(`upstream "a" is listed twice`)
      }
    }))

  it.scoped("fallbackOn [\"failover\", \"ContentRefused\"] adds content refusals to the taxonomy's set", () =>
    Effect.gen(function*() {
      const refused = () => new ModelError.ContentRefused({ message: "refused", status: 400, code: "content_filter" })
      const down = () => new ModelError.UpstreamUnavailable({ message: "down", status: 503 })
      const primary = FakeLanguageModel.make([{ fail: refused() }, { fail: down() }, { fail: refused() }])
      const fallback = FakeLanguageModel.make()
      const upstreams = [{ name: "primary", model: primary.model }, { name: "fallback", model: fallback.model }]
      const around = yield* Router.make({ upstreams, fallbackOn: ["failover", "ContentRefused"] })
      yield* inContext(around.generate(request))
      yield* inContext(around.generate(request))
      expect(fallback.calls).toHaveLength(2)
      const byDefault = yield* Router.make({ upstreams })
      expect((yield* Effect.flip(inContext(byDefault.generate(request))))._tag).toBe("ContentRefused")
      expect(fallback.calls).toHaveLength(2)
    }))

  it.scoped("the gateway's own failure (LocalFailure) never falls over, whatever fallbackOn lists", () =>
    Effect.gen(function*() {
      const local = () => ModelError.localFailure("primary", new Error("encoder overflow"))
      const primary = FakeLanguageModel.make([{ fail: local() }, { fail: local() }])
      const fallback = FakeLanguageModel.make()
      const upstreams = [{ name: "primary", model: primary.model }, { name: "fallback", model: fallback.model }]
      const listed = yield* Router.make({ upstreams, fallbackOn: ["failover", "LocalFailure"] })
      expect((yield* Effect.flip(inContext(listed.generate(request))))._tag).toBe("LocalFailure")
      const predicate = yield* Router.make({ upstreams, fallbackOn: () => true })
      expect((yield* Effect.flip(inContext(predicate.generate(request))))._tag).toBe("LocalFailure")
      expect(fallback.calls).toHaveLength(0)
    }))
})
