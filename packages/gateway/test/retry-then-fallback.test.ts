/**
 * Where retry sits relative to the router (issue #18), on the TestClock: a retry policy per
 * target inside the router (`eachTarget`) retries a transient failure on the same target before
 * the next one is tried, honouring the upstream's delay within the deadline; without it, and with
 * the retry above the router, the router falls over at once (latency first).
 */
import { type ChatCompletion, ModelError, RequestContext } from "@breakwater/core"
import { ConfigLoader, GatewayBuilder } from "@breakwater/gateway"
import { Retry } from "@breakwater/retry"
import { Router } from "@breakwater/router"
import { FakeLanguageModel } from "@breakwater/testing"
import { Deadline } from "@breakwater/timeout"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Duration, Effect, Fiber, Stream, TestClock } from "effect"

const request: ChatCompletion.ChatRequest = { model: "m", messages: [{ role: "user", content: "hello" }] }
const rateLimited = (retryAfter: Duration.DurationInput) =>
  new ModelError.RateLimited({ message: "slow down", status: 429, retryAfter: Duration.decode(retryAfter) })
const unavailable = () => new ModelError.UpstreamUnavailable({ message: "down", status: 503 })

/** The gateway's per-target retry: no jitter (exact waits), no budget, an open breaker not waited for. */
const perTarget = Retry.withPolicy({
  maxRetries: 2,
  baseDelay: "1 second",
  jitter: "none",
  budget: false,
  retryOn: (error) => error._tag !== "CircuitOpen"
})

const routerOf = (primary: FakeLanguageModel.FakeLanguageModel, fallback: FakeLanguageModel.FakeLanguageModel, retryFirst = true) =>
  Router.make({
    upstreams: [{ name: "primary", model: primary.model }, { name: "fallback", model: fallback.model }],
    ...(retryFirst ? { eachTarget: perTarget } : {})
  })

const run = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.fork(Effect.provideService(effect, RequestContext.RequestContext, RequestContext.make({ requestId: "r-1" })))

/** The call is answered by the fallback with no time passing: nothing was waited for, no retry. */
const fellOverAtOnce = <A, E>(
  call: Effect.Effect<A, E>,
  primary: FakeLanguageModel.FakeLanguageModel,
  fallback: FakeLanguageModel.FakeLanguageModel
) =>
  Effect.gen(function*() {
    const fiber = yield* run(call)
    yield* TestClock.adjust("0 millis")
    expect(fiber.unsafePoll()).not.toBeNull()
    yield* Fiber.join(fiber)
    expect(primary.calls).toHaveLength(1)
    expect(fallback.calls.map((c) => c.at)).toEqual([0])
  })

describe("retry before fallback (router eachTarget + retry)", () => {
  it.scoped("a 429 with a delay is retried on the primary after that delay; the fallback is not called", () =>
    Effect.gen(function*() {
      const primary = FakeLanguageModel.make([{ fail: rateLimited("2 seconds") }])
      const fallback = FakeLanguageModel.make()
      const model = yield* routerOf(primary, fallback)
      const fiber = yield* run(model.generate(request))
      yield* TestClock.adjust("1999 millis")
      expect(primary.calls).toHaveLength(1)
      expect(fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 millis")
      const answer = yield* Fiber.join(fiber)
      expect(answer.choices[0]?.message.content).toBe(primary.textFor(request))
      expect(primary.calls.map((c) => c.at)).toEqual([0, 2000])
      expect(fallback.calls).toHaveLength(0)
    }))

  it.scoped("the fallback is tried only once the primary's retries are spent, streaming too", () =>
    Effect.gen(function*() {
      const primary = FakeLanguageModel.make(Array.from({ length: 3 }, () => ({ fail: unavailable() })))
      const fallback = FakeLanguageModel.make()
      const model = yield* routerOf(primary, fallback)
      const fiber = yield* run(model.generate(request))
      yield* TestClock.adjust("2999 millis")
      expect(primary.calls.map((c) => c.at)).toEqual([0, 1000])
      expect(fallback.calls).toHaveLength(0)
      yield* TestClock.adjust("1 millis")
      yield* Fiber.join(fiber)
      // Backoff 1 s then 2 s on the primary, then the fallback at once.
      expect(primary.calls.map((c) => c.at)).toEqual([0, 1000, 3000])
      expect(fallback.calls.map((c) => c.at)).toEqual([3000])

      primary.script(...Array.from({ length: 3 }, () => ({ fail: unavailable() })))
      const streamed = yield* run(Stream.runCollect(model.stream({ ...request, stream: true })))
      yield* TestClock.adjust("2999 millis")
      expect(fallback.calls).toHaveLength(1)
      yield* TestClock.adjust("1 millis")
      const chunks = yield* Fiber.join(streamed)
      expect(Chunk.size(chunks)).toBeGreaterThan(0)
      expect(primary.calls.map((c) => c.at)).toEqual([0, 1000, 3000, 3000, 4000, 6000])
      expect(fallback.calls.map((c) => [c.kind, c.at])).toEqual([["generate", 3000], ["stream", 6000]])
    }))

  it.scoped("a failure that says the target cannot serve falls over at once: circuit open, quota, unknown model", () =>
    Effect.gen(function*() {
      for (const fail of [
        new ModelError.CircuitOpen({ message: "open", upstream: "primary", retryAfter: Duration.seconds(20) }),
        new ModelError.QuotaExhausted({ message: "no credit", status: 429 }),
        new ModelError.ModelNotFound({ message: "no such model", status: 404 })
      ]) {
        const primary = FakeLanguageModel.make([{ fail }])
        const fallback = FakeLanguageModel.make()
        const model = yield* routerOf(primary, fallback)
        yield* fellOverAtOnce(model.generate(request), primary, fallback)
      }
    }))

  it.scoped("a content-policy refusal is returned: neither retried nor routed around", () =>
    Effect.gen(function*() {
      const primary = FakeLanguageModel.make([{ fail: new ModelError.ContentRefused({ message: "refused", status: 400, code: "content_filter" }) }])
      const fallback = FakeLanguageModel.make()
      const model = yield* routerOf(primary, fallback)
      const error = yield* Fiber.join(yield* run(Effect.flip(model.generate(request))))
      expect(error._tag).toBe("ContentRefused")
      expect(primary.calls).toHaveLength(1)
      expect(fallback.calls).toHaveLength(0)
    }))

  it.scoped("the deadline bounds it: a delay that would pass the deadline is not waited for, the fallback serves at once", () =>
    Effect.gen(function*() {
      const primary = FakeLanguageModel.make([{ fail: rateLimited("10 seconds") }])
      const fallback = FakeLanguageModel.make()
      const model = yield* Deadline.withPolicy(yield* routerOf(primary, fallback), { total: "5 seconds" })
      const answer = yield* Fiber.join(yield* run(model.generate(request)))
      expect(answer.choices[0]?.message.content).toBe(fallback.textFor(request))
      expect(primary.calls).toHaveLength(1)
      expect(fallback.calls.map((c) => c.at)).toEqual([0])

      // Within the deadline the same delay is waited for on the primary.
      primary.script({ fail: rateLimited("3 seconds") })
      const fiber = yield* run(model.generate(request))
      yield* TestClock.adjust("3 seconds")
      yield* Fiber.join(fiber)
      expect(primary.calls.map((c) => c.at)).toEqual([0, 0, 3000])
      expect(fallback.calls).toHaveLength(1)
    }))

  it.scoped("latency first (retry above the router): the fallback serves at once, then the chain is retried", () =>
    Effect.gen(function*() {
      const primary = FakeLanguageModel.make([{ fail: rateLimited("2 seconds") }])
      const fallback = FakeLanguageModel.make()
      const model = yield* Retry.withPolicy(yield* routerOf(primary, fallback, false), { baseDelay: "1 second", jitter: "none", budget: false })
      yield* Fiber.join(yield* run(model.generate(request)))
      expect(primary.calls).toHaveLength(1)
      expect(fallback.calls.map((c) => c.at)).toEqual([0])
    }))
})

describe("the gateway's routes: retry then fallback by default (GatewayBuilder, TestClock)", () => {
  const build = (route: Record<string, unknown> = {}) =>
    Effect.gen(function*() {
      const primary = FakeLanguageModel.make()
      const fallback = FakeLanguageModel.make()
      const config = yield* ConfigLoader.fromObject({
        upstreams: {
          primary: { provider: "openai", baseUrl: "http://127.0.0.1:9/v1", models: ["chat"] },
          fallback: { provider: "openai", baseUrl: "http://127.0.0.1:9/v1", models: ["chat"] }
        },
        routes: { chat: { upstreams: ["primary", "fallback"], retry: { maxRetryAfter: "30 seconds" }, ...route } }
      }, {})
      const gateway = yield* GatewayBuilder.make(config, { adapters: { primary: primary.model, fallback: fallback.model } })
      return { gateway, primary, fallback }
    })
  const chatRequest: ChatCompletion.ChatRequest = { model: "chat", messages: [{ role: "user", content: "hello" }] }

  it.scoped("a provider delay within the cap is waited for on the primary", () =>
    Effect.gen(function*() {
      const { fallback, gateway, primary } = yield* build()
      primary.script({ fail: rateLimited("20 seconds") })
      const fiber = yield* run(gateway.model.generate(chatRequest))
      yield* TestClock.adjust("20 seconds")
      yield* Fiber.join(fiber)
      expect(primary.calls.map((c) => c.at)).toEqual([0, 20_000])
      expect(fallback.calls).toHaveLength(0)
    }))

  it.scoped("a provider delay beyond the cap is not waited for: the fallback serves at once", () =>
    Effect.gen(function*() {
      const { fallback, gateway, primary } = yield* build()
      primary.script({ fail: rateLimited("60 seconds") })
      yield* fellOverAtOnce(gateway.model.generate(chatRequest), primary, fallback)
    }))

  it.scoped("failover: immediate goes to the fallback at once", () =>
    Effect.gen(function*() {
      const { fallback, gateway, primary } = yield* build({ failover: "immediate" })
      primary.script({ fail: rateLimited("2 seconds") })
      yield* Fiber.join(yield* run(gateway.model.generate(chatRequest)))
      expect(primary.calls).toHaveLength(1)
      expect(fallback.calls.map((c) => c.at)).toEqual([0])
    }))
})
