import { type ChatCompletion, type LanguageModel, RequestContext } from "@breakwater/core"
import { OpenAiProvider } from "@breakwater/provider-openai"
import { Router } from "@breakwater/router"
import { MockUpstream } from "@breakwater/testing"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Stream from "effect/Stream"

const request: ChatCompletion.ChatRequest = { model: "fast", messages: [{ role: "user", content: "hello" }] }

const call = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const ctx = RequestContext.make()
    const value = yield* Effect.provideService(effect, RequestContext.RequestContext, ctx).pipe(Logger.withMinimumLogLevel(LogLevel.Warning))
    return { value, ctx }
  })

const text = (chunks: ReadonlyArray<ChatCompletion.ChatCompletionChunk>) => chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")

/** A MockUpstream that answers every request with `text`. */
const upstream = (text: string) =>
  Effect.tap(MockUpstream.scoped(), (mock) => mock.setDefault({ text }))

const route = (primary: MockUpstream.MockUpstream, secondary: MockUpstream.MockUpstream, options: Router.RoutingOptionsInput = {}) =>
  Router.make({
    ...options,
    upstreams: [
      { name: "primary", model: OpenAiProvider.layer({ name: "primary", baseUrl: primary.url }), models: { fast: "primary-model" } },
      { name: "secondary", model: OpenAiProvider.layer({ name: "secondary", baseUrl: secondary.url }), models: { fast: "secondary-model" } }
    ]
  })

const both = (model: LanguageModel.Service) =>
  Effect.gen(function*() {
    const g = yield* call(model.generate(request))
    const s = yield* call(Effect.map(Stream.runCollect(model.stream(request)), Chunk.toReadonlyArray))
    return { generate: g, stream: s }
  })

describe("Router end to end (OpenAI adapter over real HTTP)", () => {
  it.scopedLive("primary down (connection refused): every request is served by the secondary; the primary is tried again once it is back", () =>
    Effect.gen(function*() {
      const primary = yield* upstream("from primary")
      const secondary = yield* upstream("from secondary")
      const model = yield* route(primary, secondary)

      const healthy = yield* both(model)
      expect(healthy.generate.ctx.trace.upstream).toBe("primary")

      yield* Effect.promise(() => primary.stop())
      const servedBefore = primary.requests.length
      for (let i = 0; i < 5; i++) {
        const { generate, stream } = yield* both(model)
        expect(generate.value.choices[0]?.message.content).toBe("from secondary")
        expect(generate.ctx.trace.upstream).toBe("secondary")
        expect(text(stream.value)).toBe("from secondary")
        expect(stream.ctx.trace.upstream).toBe("secondary")
        // The adapter counted both attempts: the refused one and the served one.
        expect(generate.ctx.trace.attempts).toBe(2)
      }
      expect(primary.requests.length).toBe(servedBefore)
      expect(secondary.requests.map((r) => r.body.model)).toEqual(Array(10).fill("secondary-model"))

      yield* Effect.promise(() => primary.restart())
      const back = yield* both(model)
      expect(back.generate.value.choices[0]?.message.content).toBe("from primary")
      expect(back.generate.ctx.trace.upstream).toBe("primary")
      expect(text(back.stream.value)).toBe("from primary")
      expect(primary.requests.at(-1)!.body.model).toBe("primary-model")
    }))

  it.scopedLive("hedging over the wire: the faster upstream wins and the slower one's connection is closed", () =>
    Effect.gen(function*() {
      const primary = yield* upstream("from primary")
      const secondary = yield* upstream("from secondary")
      primary.setDefault({ text: "from primary", headersDelayMs: 5_000 })
      const model = yield* route(primary, secondary, { hedging: { delay: "150 millis", budget: { minHedgesPerSecond: 10 } } })

      const g = yield* call(model.generate(request))
      expect(g.value.choices[0]?.message.content).toBe("from secondary")
      expect(g.ctx.trace.hedged).toBe(true)
      expect(yield* Effect.promise(() => primary.requests[0]!.closed)).toBe(true)

      const s = yield* call(Effect.map(Stream.runCollect(model.stream(request)), Chunk.toReadonlyArray))
      expect(text(s.value)).toBe("from secondary")
      expect(s.ctx.trace.upstream).toBe("secondary")
      expect(yield* Effect.promise(() => primary.requests[1]!.closed)).toBe(true)
      expect(yield* Effect.promise(() => secondary.requests[1]!.closed)).toBe(false)
    }))
})
