import { ChatCompletion, LanguageModel, Policy, RequestContext } from "@breakwater/core"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Layer, Option, pipe, Stream, TestClock } from "effect"

const request: ChatCompletion.ChatRequest = { model: "m", messages: [{ role: "user", content: "hi" }] }

/**
 * A model answering every call with one fixed completion, counting its calls (core's tests
 * cannot use `@breakwater/testing`'s fake: that package depends on core).
 */
const fixed = () => {
  const calls: Array<ChatCompletion.ChatRequest> = []
  const completion: ChatCompletion.ChatCompletion = {
    id: "c-1",
    object: "chat.completion",
    created: 0,
    model: "m",
    choices: [{ index: 0, message: { role: "assistant", content: "steady" }, finish_reason: "stop" }]
  }
  const model = LanguageModel.make({
    generate: (req) => Effect.sync(() => (calls.push(req), completion)),
    stream: () => Stream.empty
  })
  return { model, calls, completion }
}

const tagging = (tag: string, log: Array<string>) =>
  Policy.layer((inner) =>
    Effect.succeed<LanguageModel.Service>({
      generate: (req, options) => {
        log.push(tag)
        return inner.generate(req, options)
      },
      stream: inner.stream
    })
  )

describe("Policy", () => {
  it.effect("stacks layers outermost first with Layer.provide, wrapping once at build", () =>
    Effect.gen(function*() {
      const log: Array<string> = []
      const fake = fixed()
      const stack = tagging("outer", log).pipe(
        Layer.provide(tagging("inner", log)),
        Layer.provide(Layer.succeed(LanguageModel.LanguageModel, fake.model))
      )
      yield* LanguageModel.generate(request).pipe(Effect.provide(stack))
      expect(log).toEqual(["outer", "inner"])
      expect(fake.calls).toHaveLength(1)
    }))

  it.effect("combinator: withPolicy(model, options) and pipe(model, withPolicy(options)); options left out are {}", () =>
    Effect.gen(function*() {
      const seen: Array<unknown> = []
      const withPolicy = Policy.combinator((model, options: { readonly tag?: string }) => {
        seen.push(options)
        return Effect.succeed(model)
      })
      const fake = fixed()
      // A model written with `run` only is a model too.
      const runOnly = { generate: fake.model.generate, run: LanguageModel.runOf(fake.model) } as unknown as LanguageModel.Service
      expect(yield* withPolicy(fake.model, { tag: "first" })).toBe(fake.model)
      expect(yield* pipe(fake.model, withPolicy({ tag: "last" }))).toBe(fake.model)
      expect(yield* withPolicy(runOnly)).toBe(runOnly)
      expect(yield* pipe(runOnly, withPolicy())).toBe(runOnly)
      expect(seen).toEqual([{ tag: "first" }, { tag: "last" }, {}, {}])
    }))

  it.scoped("builds a model from a stack (for routers holding several)", () =>
    Effect.gen(function*() {
      const fake = fixed()
      const model = yield* Policy.build(Layer.succeed(LanguageModel.LanguageModel, fake.model))
      const completion = yield* model.generate(request)
      expect(completion).toBe(fake.completion)
      expect(fake.calls).toEqual([request])
    }))
})

describe("RequestContext", () => {
  it.effect("has a default without deadline, and shows the budget left under TestClock", () =>
    Effect.gen(function*() {
      expect(yield* RequestContext.remaining).toEqual(Option.none())
      const ctx = RequestContext.make({ requestId: "r1", deadline: 5_000 })
      const left = yield* RequestContext.remaining.pipe(Effect.provideService(RequestContext.RequestContext, ctx))
      expect(left).toEqual(Option.some(Duration.millis(5_000)))
      yield* TestClock.adjust("7 seconds")
      const none = yield* RequestContext.remaining.pipe(Effect.provideService(RequestContext.RequestContext, ctx))
      expect(none).toEqual(Option.some(Duration.zero))
    }))

  it.effect("patches fields locally while sharing the trace", () =>
    Effect.gen(function*() {
      const ctx = RequestContext.make({ requestId: "r2" })
      const seen = yield* RequestContext.locally(
        Effect.map(RequestContext.current, (c) => {
          c.trace.retries++
          return [c.attempt, c.upstream, c.requestId] as const
        }),
        { attempt: 2, upstream: "b" }
      ).pipe(Effect.provideService(RequestContext.RequestContext, ctx))
      expect(seen).toEqual([2, "b", "r2"])
      expect(ctx.trace.retries).toBe(1)
      expect(ctx.attempt).toBe(1)
    }))

  it.effect("without a provided context, gives each call a fresh one and keeps the shared default frozen", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Effect.all([RequestContext.current, RequestContext.current], { concurrency: 2 })
      a.trace.retries++
      a.trace.failed.push("primary")
      expect(a).not.toBe(b)
      expect(a.requestId).not.toBe(b.requestId)
      expect(b.trace).toEqual(RequestContext.makeTrace())
      // `locally` without a context starts one for the call too.
      const inner = yield* RequestContext.locally(RequestContext.current, { attempt: 2 })
      expect(inner.trace).toEqual(RequestContext.makeTrace())
      // The tag's own default is what every context-less call shares: it cannot be written to.
      const shared = yield* RequestContext.RequestContext
      expect(Object.isFrozen(shared) && Object.isFrozen(shared.trace) && Object.isFrozen(shared.trace.failed)).toBe(true)
      expect(() => shared.trace.retries++).toThrow(TypeError)
    }))
})
