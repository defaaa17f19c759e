import { CircuitBreaker } from "@breakwater/circuit-breaker"
import { type ChatCompletion, Continuation, type ModelError } from "@breakwater/core"
import { AnthropicProvider } from "@breakwater/provider-anthropic"
import { MockUpstream } from "@breakwater/testing"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Stream from "effect/Stream"

const request: ChatCompletion.ChatRequest = { model: "claude-opus-4-6", messages: [{ role: "user", content: "Tell me about breakwaters" }] }

/** The mock refuses every request that ends with an assistant message, as Claude 4.6 does. */
const setup = Effect.gen(function*() {
  const mock = yield* MockUpstream.scoped()
  mock.setDefault({ continuation: MockUpstream.ContinuationFault.RejectPrefill() })
  const model = yield* AnthropicProvider.make({ baseUrl: mock.origin })
  const full = mock.textFor(request)
  const partial = full.slice(0, Math.floor(full.length / 2))
  const continuation = (strategy?: Continuation.Strategy) => {
    const applied: { strategy?: Continuation.Strategy | undefined } = {}
    return { options: { continuation: { partial, strategy, applied } }, applied }
  }
  const lastRole = (i: number) => {
    const messages = (mock.requests[i]!.body as { messages: Array<{ role: string }> }).messages
    return messages[messages.length - 1]!.role
  }
  return { mock, model, full, partial, continuation, lastRole }
})

describe("continuation without assistant prefill", () => {
  it.scopedLive("a refused prefill is sent again at once as a user instruction, and the model is remembered", () =>
    Effect.gen(function*() {
      const { continuation, full, lastRole, mock, model, partial } = yield* setup
      const first = continuation()
      const reply = yield* model.generate(request, first.options)
      expect(partial + reply.choices[0]!.message.content).toBe(full)
      expect(first.applied.strategy).toBe("user-instruction")
      expect(mock.requests.map((_, i) => lastRole(i))).toEqual(["assistant", "user"])
      expect(mock.requests[0]!.behavior.continuation?._tag).toBe("RejectPrefill")

      // Streaming, same model: no prefill is tried any more.
      const second = continuation()
      const chunks = Chunk.toArray(yield* Stream.runCollect(model.stream(request, second.options)))
      expect(partial + chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")).toBe(full)
      expect(second.applied.strategy).toBe("user-instruction")
      expect(mock.requests).toHaveLength(3)
      expect(lastRole(2)).toBe("user")
    }))

  it.scopedLive("a streaming continuation falls back too", () =>
    Effect.gen(function*() {
      const { continuation, full, lastRole, mock, model, partial } = yield* setup
      const { applied, options } = continuation()
      const chunks = Chunk.toArray(yield* Stream.runCollect(model.stream(request, options)))
      expect(partial + chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")).toBe(full)
      expect(applied.strategy).toBe("user-instruction")
      expect([lastRole(0), lastRole(1)]).toEqual(["assistant", "user"])
    }))

  it.scopedLive("a prefill the caller forced is not replaced: the refusal is the caller's to handle", () =>
    Effect.gen(function*() {
      const { continuation, mock, model } = yield* setup
      const result = yield* Effect.either(model.generate(request, continuation("assistant-prefill").options))
      expect(Either.isLeft(result) && Continuation.isPrefillRejection(result.left)).toBe(true)
      expect(mock.requests).toHaveLength(1)
    }))

  it.scopedLive("the refusal never reaches the breaker: a breaker that counts bad requests stays closed", () =>
    Effect.gen(function*() {
      const { continuation, model } = yield* setup
      // Counting BadRequest (not the default) and tripping on one failure: only what reaches it matters.
      const breaker = yield* CircuitBreaker.make({ countAs: ["BadRequest"], minimumCalls: 1, failureRateThreshold: 1 })
      const guarded = breaker.wrap("anthropic", model)
      yield* guarded.generate(request, continuation().options)
      expect(yield* breaker.state("anthropic")).toBe("closed")
      // The same refusal, when it does leave the adapter (a forced prefill), trips it.
      const forced = yield* Effect.either(guarded.generate(request, continuation("assistant-prefill").options))
      expect(Either.isLeft(forced) && (forced.left as ModelError.ModelError)._tag).toBe("BadRequest")
      expect(yield* breaker.state("anthropic")).toBe("open")
    }))

  it("recognises the refusal by its words, not by the status", () => {
    const bad = (message: string) => ({ _tag: "BadRequest", message }) as ModelError.ModelError
    expect(Continuation.isPrefillRejection(bad("This model does not support assistant message prefill. The conversation must end with a user message."))).toBe(true)
    expect(Continuation.isPrefillRejection(bad("messages: final assistant content cannot end with trailing whitespace"))).toBe(true)
    expect(Continuation.isPrefillRejection(bad("max_tokens: must be positive"))).toBe(false)
    expect(Continuation.isPrefillRejection({ _tag: "UpstreamUnavailable", message: "prefill" } as ModelError.ModelError)).toBe(false)
  })
})
