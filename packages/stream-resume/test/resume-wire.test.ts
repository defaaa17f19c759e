/**
 * Wire tests: real HTTP to the fault-injecting MockUpstream, through the OpenAI adapter
 * (continuation by user instruction) and the Anthropic adapter (assistant prefill), with
 * per-attempt time limits below stream-resume for the stall case.
 */
import { ChatCompletion, type LanguageModel, ModelError, RequestContext } from "@breakwater/core"
import { AnthropicProvider } from "@breakwater/provider-anthropic"
import { OpenAiProvider } from "@breakwater/provider-openai"
import { StreamResume } from "@breakwater/stream-resume"
import { MockUpstream } from "@breakwater/testing"
import { AttemptTimeout } from "@breakwater/timeout"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Chunk, Effect, Exit, Stream } from "effect"
import fc from "fast-check"
import { longestOverlap } from "../src/internal/splice.js"

const { Fault, ContinuationFault } = MockUpstream

type Chunk_ = ChatCompletion.ChatCompletionChunk
type Provider = "openai" | "anthropic"

const textOf = (chunks: ReadonlyArray<Chunk_>) => chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")

/** The envelope guarantees, over the data chunks (heartbeats are liveness, never data). */
const expectOneEnvelope = (all: ReadonlyArray<Chunk_>) => {
  const chunks = all.filter((c) => !ChatCompletion.isHeartbeat(c))
  expect(new Set(chunks.map((c) => c.id)).size).toBe(1)
  expect(new Set(chunks.map((c) => c.created)).size).toBe(1)
  expect(chunks.filter((c) => c.choices[0]?.delta.role !== undefined)).toHaveLength(1)
  expect(chunks.filter((c) => c.choices[0]?.finish_reason != null)).toHaveLength(1)
  for (const c of chunks) {
    expect(JSON.parse(JSON.stringify(c))).toEqual(c)
    for (const choice of c.choices) expect(choice.index).toBe(0)
  }
}

/**
 * A prompt whose mock answer never repeats 8+ characters across a chunk boundary, so that
 * every cut is unambiguous (an answer that repeats itself at the seam is the documented limit).
 */
const unambiguousRequest = (mock: MockUpstream.MockUpstream): ChatCompletion.ChatRequest => {
  for (let i = 0; ; i++) {
    const request: ChatCompletion.ChatRequest = { model: "mock-model", messages: [{ role: "user", content: `tell me about tides ${i}` }], stream: true }
    const text = mock.textFor(request)
    const pieces = text.match(/\s*\S+\s*/gu)!
    let at = 0
    let ok = true
    for (const piece of pieces) {
      at += piece.length
      if (longestOverlap(text.slice(0, at), text.slice(at)) >= 8) ok = false
    }
    if (ok) return request
  }
}

const setup = (provider: Provider, options: StreamResume.ResumeOptionsInput = {}) =>
  Effect.gen(function*() {
    const mock = yield* MockUpstream.scoped()
    const adapter: LanguageModel.Service = provider === "openai"
      ? yield* OpenAiProvider.make({ name: "mock-openai", baseUrl: mock.url })
      : yield* AnthropicProvider.make({ name: "mock-anthropic", baseUrl: mock.origin })
    const timed = yield* AttemptTimeout.withPolicy(adapter, { idle: "300 millis", firstToken: "5 seconds", headers: "5 seconds" })
    const model = yield* StreamResume.withPolicy(timed, options)
    const request = unambiguousRequest(mock)
    const run = (req: ChatCompletion.ChatRequest = request) =>
      Effect.gen(function*() {
        const ctx = RequestContext.make({ requestId: "wire" })
        const exit = yield* Effect.exit(Effect.provideService(Stream.runCollect(model.stream(req)), RequestContext.RequestContext, ctx))
        return { exit, chunks: Exit.isSuccess(exit) ? Chunk.toArray(exit.value) : [], ctx }
      })
    return { mock, request, run, expected: mock.textFor(request) }
  })

for (const provider of ["openai", "anthropic"] as const) {
  describe(`StreamResume over the wire (${provider})`, () => {
    it.scopedLive("cuts at many chunk indexes, mid-UTF-8 too: the client text equals the uninterrupted text, one envelope", () =>
      Effect.gen(function*() {
        const { mock, run, expected } = yield* setup(provider)
        for (const cutAfterChunks of [1, 3, 4, 11, 23]) {
          for (const splitUtf8 of [false, true]) {
            mock.reset()
            mock.script({ fault: Fault.Cut({ afterChunks: cutAfterChunks }), splitUtf8 }, { splitUtf8 })
            const { chunks, ctx } = yield* run()
            expect(textOf(chunks)).toBe(expected)
            expectOneEnvelope(chunks)
            expect(chunks.filter(StreamResume.isSeamMarker)).toHaveLength(1)
            expect(ctx.trace.resumes).toBe(1)
            expect(mock.requests).toHaveLength(2)
          }
        }
      }))

    it.scopedLive("a continuation that repeats an overlap has it dropped", () =>
      Effect.gen(function*() {
        const { mock, run, expected } = yield* setup(provider)
        // A prefill (Anthropic) continues exactly: only repeats of 16+ characters are taken as the model's.
        for (const overlap of provider === "anthropic" ? [16, 30] : [8, 13, 30]) {
          mock.reset()
          mock.script({ fault: Fault.Cut({ afterChunks: 7 }) }, { continuation: ContinuationFault.Overlap({ chars: overlap }) })
          const { chunks } = yield* run()
          expect(textOf(chunks)).toBe(expected)
          expectOneEnvelope(chunks)
        }
      }))

    it.scopedLive("a continuation that restarts is verified against the delivered text, or rejected for the next strategy", () =>
      Effect.gen(function*() {
        // Cut after 20 words: more delivered than the hold-back, so the restart is held and verified.
        const verified = yield* setup(provider)
        verified.mock.script({ fault: Fault.Cut({ afterChunks: 20 }) }, { continuation: ContinuationFault.Restart() })
        const first = yield* verified.run()
        expect(textOf(first.chunks)).toBe(verified.expected)
        expect(verified.mock.requests).toHaveLength(2)
        // Too long to verify: rejected, and the next strategy (user instruction) continues.
        const rejected = yield* setup(provider, { verifyLimit: 0 })
        rejected.mock.script({ fault: Fault.Cut({ afterChunks: 20 }) }, { continuation: ContinuationFault.Restart() }, {})
        const second = yield* rejected.run()
        expect(textOf(second.chunks)).toBe(rejected.expected)
        expectOneEnvelope(second.chunks)
        expect(rejected.mock.requests).toHaveLength(3)
        const last = rejected.mock.requests[2]!.body.messages as Array<{ role: string }>
        expect(last.at(-1)!.role).toBe("user")
      }))

    it.scopedLive("in-band error event, malformed frame and stall (idle timeout) are all resumed", () =>
      Effect.gen(function*() {
        const { mock, run, expected } = yield* setup(provider)
        for (const behavior of [{ fault: Fault.ErrorEvent({ afterChunks: 5 }) }, { fault: Fault.Malformed({ afterChunks: 5 }) }, { fault: Fault.Stall({ afterChunks: 5 }) }, { fault: Fault.NoTerminator(), words: 24 }]) {
          mock.reset()
          mock.script(behavior)
          const { chunks, exit } = yield* run()
          expect(Exit.isSuccess(exit)).toBe(true)
          expect(textOf(chunks)).toBe(expected)
          expectOneEnvelope(chunks)
        }
      }))

    it.scopedLive("a tool call cut mid-arguments reaches the client as one whole call whose arguments parse", () =>
      Effect.gen(function*() {
        const { mock, run, request } = yield* setup(provider)
        mock.script({ toolCall: true, fault: Fault.Cut({ afterChunks: 3 }) }, { toolCall: true })
        const withTools: ChatCompletion.ChatRequest = {
          ...request,
          tools: [{ type: "function", function: { name: "get_forecast", parameters: { type: "object", properties: {} } } }]
        }
        const { chunks, exit } = yield* run(withTools)
        expect(Exit.isSuccess(exit)).toBe(true)
        const calls = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? [])
        expect(calls).toHaveLength(1)
        expect(JSON.parse(calls[0]!.function!.arguments!)).toMatchObject({ city: "Zürich", note: "🌊 tide" })
        expectOneEnvelope(chunks)
        expect(chunks.find((c) => c.choices[0]?.finish_reason != null)!.choices[0]!.finish_reason).toBe("tool_calls")
      }))

    it.scopedLive("usage is summed over the attempts (the re-sent prefix counted as input)", () =>
      Effect.gen(function*() {
        const { mock, run } = yield* setup(provider)
        mock.script({})
        const plain = (yield* run()).chunks.at(-1)!.usage!
        mock.reset()
        mock.script({ fault: Fault.Cut({ afterChunks: 10 }) })
        const resumed = (yield* run()).chunks.at(-1)!.usage!
        expect(resumed.prompt_tokens).toBeGreaterThan(plain.prompt_tokens * 2)
        expect(resumed.completion_tokens).toBeGreaterThanOrEqual(plain.completion_tokens)
        expect(resumed.total_tokens).toBe(resumed.prompt_tokens + resumed.completion_tokens)
      }))

    it.scopedLive("when resumes run out, the stream fails with StreamInterrupted (the host's error event, no [DONE])", () =>
      Effect.gen(function*() {
        const { mock, run } = yield* setup(provider, { maxResumes: 1 })
        mock.script({ fault: Fault.Cut({ afterChunks: 4 }) }, { fault: Fault.Cut({ afterChunks: 4 }) })
        const { exit } = yield* run()
        expect(Exit.isFailure(exit)).toBe(true)
        if (Exit.isFailure(exit)) expect(Chunk.unsafeHead(Cause.failures(exit.cause))._tag).toBe("StreamInterrupted")
        expect(mock.requests).toHaveLength(2)
      }))
  })
}

describe("StreamResume over the wire: prefill", () => {
  it.scopedLive("an upstream that rejects prefill (Anthropic adapter): the continuation is asked again as a user instruction", () =>
    Effect.gen(function*() {
      const { mock, run, expected } = yield* setup("anthropic")
      mock.script({ fault: Fault.Cut({ afterChunks: 5 }) }, { continuation: ContinuationFault.RejectPrefill() }, { continuation: ContinuationFault.RejectPrefill() })
      const { chunks } = yield* run()
      expect(textOf(chunks)).toBe(expected)
      expectOneEnvelope(chunks)
      expect(mock.requests).toHaveLength(3)
      expect(mock.requests[1]!.behavior.continuation?._tag).toBe("RejectPrefill")
      expect((mock.requests[1]!.body.messages as Array<{ role: string }>).at(-1)!.role).toBe("assistant")
      const roles = (mock.requests[2]!.body.messages as Array<{ role: string }>).map((m) => m.role)
      expect(roles.slice(-2)).toEqual(["assistant", "user"])
    }))

  it.scopedLive("terminate mode over the wire: the cut ends the stream with the break, no continuation", () =>
    Effect.gen(function*() {
      const { mock, run } = yield* setup("openai", { mode: "terminate" })
      mock.script({ fault: Fault.Cut({ afterChunks: 5 }) })
      const { exit } = yield* run()
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) expect(Chunk.unsafeHead(Cause.failures(exit.cause))).toBeInstanceOf(ModelError.StreamInterrupted)
      expect(mock.requests).toHaveLength(1)
    }))
})

describe("StreamResume over the wire (property-based)", () => {
  it.scopedLive("for random cut points, UTF-8 splits and overlaps, the client text equals the uninterrupted text", () =>
    Effect.gen(function*() {
      const { mock, run, expected } = yield* setup("openai")
      yield* Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(
            fc.integer({ min: 1, max: 23 }),
            fc.boolean(),
            fc.oneof(fc.constant(0), fc.integer({ min: 8, max: 30 })),
            fc.option(fc.integer({ min: 1, max: 10 }), { nil: undefined }),
            async (cutAfterChunks, splitUtf8, overlap, secondCut) => {
              mock.reset()
              mock.script(
                { fault: Fault.Cut({ afterChunks: cutAfterChunks }), splitUtf8 },
                {
                  continuation: ContinuationFault.Overlap({ chars: overlap }),
                  splitUtf8,
                  fault: secondCut === undefined ? undefined : Fault.Cut({ afterChunks: secondCut })
                },
                { splitUtf8 }
              )
              const { chunks } = await Effect.runPromise(run())
              expect(textOf(chunks)).toBe(expected)
              expectOneEnvelope(chunks)
            }
          ),
          { numRuns: 40 }
        )
      )
    }), 30_000)
})
