import { type ChatCompletion, type LanguageModel, ModelError, RequestContext } from "@breakwater/core"
import { StreamResume } from "@breakwater/stream-resume"
import { FakeLanguageModel } from "@breakwater/testing"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Exit, Fiber, Stream, TestClock, TestContext } from "effect"
import fc from "fast-check"

type Chunk_ = ChatCompletion.ChatCompletionChunk

const request: ChatCompletion.ChatRequest = { model: "m", messages: [{ role: "user", content: "tell me" }], stream: true }

const collect = (stream: Stream.Stream<Chunk_, ModelError.ModelError>) =>
  Effect.gen(function*() {
    const ctx = RequestContext.make({ requestId: "t" })
    const fiber = yield* Effect.fork(Effect.exit(Effect.provideService(Stream.runCollect(stream), RequestContext.RequestContext, ctx)))
    yield* TestClock.adjust("10 minutes")
    const exit = yield* Fiber.join(fiber)
    const chunks = Exit.isSuccess(exit) ? Chunk.toArray(exit.value) : []
    return { exit, chunks, ctx }
  })

const textOf = (chunks: ReadonlyArray<Chunk_>) => chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")

/** The envelope guarantees: one id/created/model, one role delta, exactly one finish. */
const expectOneEnvelope = (chunks: ReadonlyArray<Chunk_>) => {
  const data = chunks.filter((c) => !StreamResume.isSeamMarker(c))
  expect(new Set(data.map((c) => c.id)).size).toBe(1)
  expect(new Set(data.map((c) => c.created)).size).toBe(1)
  expect(data.filter((c) => c.choices[0]?.delta.role !== undefined)).toHaveLength(1)
  expect(data.filter((c) => c.choices[0]?.finish_reason != null)).toHaveLength(1)
}

/** A model whose attempts are scripted as lists of text pieces, each optionally ending in a failure. */
const scripted = (attempts: Array<{ readonly pieces: ReadonlyArray<string>; readonly fail?: ModelError.ModelError; readonly id?: string }>) => {
  const calls: Array<LanguageModel.CallOptions | undefined> = []
  const model: LanguageModel.Service = {
    generate: () => Effect.die("not used"),
    stream: (_request, options) =>
      Stream.suspend(() => {
        calls.push(options)
        const attempt = attempts.shift()!
        const id = attempt.id ?? `up-${calls.length}`
        const chunk = (delta: object, finish: string | null = null): Chunk_ =>
          ({ id, object: "chat.completion.chunk", created: calls.length, model: "m", choices: [{ index: 0, delta, finish_reason: finish }] }) as Chunk_
        const body = Stream.fromIterable([chunk({ role: "assistant", content: "" }), ...attempt.pieces.map((p) => chunk({ content: p }))])
        return attempt.fail !== undefined
          ? Stream.concat(body, Stream.fail(attempt.fail))
          : Stream.concat(body, Stream.make(chunk({}, "stop")))
      })
  }
  return { model, calls }
}
const cut = (n = 1) => new ModelError.StreamInterrupted({ message: "reset", reason: "reset", receivedChunks: n })

describe("StreamResume: continue mode", () => {
  it.effect("a cut at every chunk index yields the uninterrupted text, one envelope", () =>
    Effect.gen(function*() {
      const expected = FakeLanguageModel.make().textFor(request)
      for (let k = 1; k < 12; k++) {
        const fake = FakeLanguageModel.make([{ failAfterChunks: k }])
        const model = yield* StreamResume.withPolicy(fake.model)
        const { chunks, ctx } = yield* collect(model.stream(request))
        expect(textOf(chunks)).toBe(expected)
        expectOneEnvelope(chunks)
        expect(chunks.filter(StreamResume.isSeamMarker)).toHaveLength(1)
        expect((chunks.find((c) => c.choices[0]?.finish_reason != null) as any)?.breakwater).toEqual({ resumed: 1 })
        expect(ctx.trace.resumes).toBe(1)
        expect(fake.calls[1]?.options?.continuation?.partial).toBe(textOf(chunks.slice(0, k + 1)))
      }
    }))

  it.effect("a failure before any content is passed through untouched (retry's job)", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make([{ failAfterChunks: 0 }])
      const model = yield* StreamResume.withPolicy(fake.model)
      const { exit } = yield* collect(model.stream(request))
      expect(Exit.isFailure(exit)).toBe(true)
      expect(fake.calls).toHaveLength(1)
    }))

  it.effect("an undisturbed stream passes with its usage, unmarked", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make()
      const model = yield* StreamResume.withPolicy(fake.model)
      const { chunks } = yield* collect(model.stream(request))
      expect(textOf(chunks)).toBe(fake.textFor(request))
      expectOneEnvelope(chunks)
      expect(chunks.filter(StreamResume.isSeamMarker)).toHaveLength(0)
      expect(chunks.at(-1)?.usage?.completion_tokens).toBe(12)
    }))

  it.effect("usage is summed over attempts: broken attempts estimated (~4 characters a token), re-sent prefixes counted as input", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make([{ failAfterChunks: 5 }, { failAfterChunks: 3 }])
      // (holdBack 1: the second attempt's text is delivered before it breaks too.)
      const model = yield* StreamResume.withPolicy(fake.model, { holdBack: 1 })
      const { chunks } = yield* collect(model.stream(request))
      const full = fake.textFor(request)
      expect(textOf(chunks)).toBe(full)
      const words = FakeLanguageModel.wordsFor("m\u0000user:tell me", 12)
      const first = words.slice(0, 5).join("")
      const second = words.slice(5, 8).join("")
      const est = (chars: number) => Math.ceil(chars / 4)
      // The broken attempts report nothing: estimated from characters (prompt: the request's
      // text, plus the re-sent partial for the continuation). The last reports 1 prompt and 4 completion tokens.
      const prompt = est(7) + est(7 + first.length) + 1
      const completion = est(first.length) + est(second.length) + 4
      const usage = chunks.at(-1)?.usage
      expect(usage).toEqual({ prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion })
      expect((chunks.at(-1) as any).breakwater).toEqual({ resumed: 2 })
      expect(chunks.filter(StreamResume.isSeamMarker)).toHaveLength(2)
    }))

  it.effect("a continuation that repeats an overlap has it dropped at the seam", () =>
    Effect.gen(function*() {
      const { model } = scripted([
        { pieces: ["The quick brown ", "fox jum"], fail: cut(2) },
        { pieces: ["brown fox jumps ", "over the lazy dog."] }
      ])
      const wrapped = yield* StreamResume.withPolicy(model)
      const { chunks } = yield* collect(wrapped.stream(request))
      expect(textOf(chunks)).toBe("The quick brown fox jumps over the lazy dog.")
      expectOneEnvelope(chunks)
      expect(new Set(chunks.map((c) => c.id))).toEqual(new Set(["up-1"]))
    }))

  it.effect("a short coincidental repeat (below minOverlap) is kept", () =>
    Effect.gen(function*() {
      const { model } = scripted([
        { pieces: ["ab ab "], fail: cut() },
        { pieces: ["ab done"] }
      ])
      const wrapped = yield* StreamResume.withPolicy(model, { minOverlap: 4 })
      const { chunks } = yield* collect(wrapped.stream(request))
      expect(textOf(chunks)).toBe("ab ab ab done")
    }))

  it.effect("a continuation that restarts the whole answer is verified and trimmed", () =>
    Effect.gen(function*() {
      const { model } = scripted([
        { pieces: ["Once upon a time ", "there was"], fail: cut(2) },
        { pieces: ["Once upon a time there was ", "a gateway."] }
      ])
      const wrapped = yield* StreamResume.withPolicy(model)
      const { chunks } = yield* collect(wrapped.stream(request))
      expect(textOf(chunks)).toBe("Once upon a time there was a gateway.")
    }))

  it.effect("a continuation that restarts and diverges is not glued on: the next strategy is tried", () =>
    Effect.gen(function*() {
      const { model, calls } = scripted([
        { pieces: ["Once upon a time ", "there was"], fail: cut(2) },
        { pieces: ["Once upon a time, long ago, ", "a king ruled."] },
        { pieces: [" a gateway."] }
      ])
      const wrapped = yield* StreamResume.withPolicy(model)
      const { chunks } = yield* collect(wrapped.stream(request))
      expect(textOf(chunks)).toBe("Once upon a time there was a gateway.")
      expect(calls.map((c) => c?.continuation?.strategy)).toEqual([undefined, undefined, "user-instruction"])
    }))

  it.effect("when every strategy restarts, the stream ends with an error, not a glued answer", () =>
    Effect.gen(function*() {
      const restart = { pieces: ["Once upon a time, long ago, ", "a king ruled."] }
      const { model } = scripted([{ pieces: ["Once upon a time ", "there was"], fail: cut(2) }, restart, restart, restart])
      const wrapped = yield* StreamResume.withPolicy(model)
      const { exit } = yield* collect(wrapped.stream(request))
      expect(Exit.isFailure(exit)).toBe(true)
    }))

  it.effect("an upstream that rejects the prefill: the next strategy is used", () =>
    Effect.gen(function*() {
      const { model, calls } = scripted([
        { pieces: ["Hello ", "wor"], fail: cut(2) },
        { pieces: [], fail: new ModelError.BadRequest({ message: "prefill not supported" }) },
        { pieces: ["ld!"] }
      ])
      const wrapped = yield* StreamResume.withPolicy(model)
      const { chunks } = yield* collect(wrapped.stream(request))
      expect(textOf(chunks)).toBe("Hello world!")
      expect(calls).toHaveLength(3)
    }))

  it.effect("maxResumes bounds the seams; then the error ends the stream", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make([{ failAfterChunks: 2 }, { failAfterChunks: 2 }, { failAfterChunks: 2 }, {}])
      const model = yield* StreamResume.withPolicy(fake.model, { maxResumes: 2 })
      const { exit } = yield* collect(model.stream(request))
      expect(Exit.isFailure(exit)).toBe(true)
      expect(fake.calls).toHaveLength(3)
    }))

  it.effect("the deadline bounds resumes", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make([{ failAfterChunks: 2, delay: "10 seconds" }, {}])
      const model = yield* StreamResume.withPolicy(fake.model)
      const stream = RequestContext.locallyStream(model.stream(request), { deadline: 5_000 })
      const { exit } = yield* collect(stream)
      expect(Exit.isFailure(exit)).toBe(true)
      expect(fake.calls).toHaveLength(1)
    }))

  it.effect("max_tokens is reduced by what was delivered", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make([{ failAfterChunks: 4 }])
      const model = yield* StreamResume.withPolicy(fake.model)
      yield* collect(model.stream({ ...request, max_tokens: 100 }))
      const second = fake.calls[1]?.request as { max_tokens?: number }
      expect(second.max_tokens).toBeLessThan(100)
      expect(second.max_tokens).toBeGreaterThan(80)
    }))

  it.effect("requests with logprobs or n > 1 are never continued", () =>
    Effect.gen(function*() {
      for (const extra of [{ logprobs: true }, { n: 2 }]) {
        const fake = FakeLanguageModel.make([{ failAfterChunks: 3 }])
        const model = yield* StreamResume.withPolicy(fake.model)
        const { exit } = yield* collect(model.stream({ ...request, ...extra } as ChatCompletion.ChatRequest))
        expect(Exit.isFailure(exit)).toBe(true)
        expect(fake.calls).toHaveLength(1)
      }
    }))
})

describe("StreamResume: tool calls", () => {
  it.effect("a cut inside a tool call is invisible: one whole call, arguments parse", () =>
    Effect.gen(function*() {
      for (const k of [1, 2, 3, 4]) {
        const fake = FakeLanguageModel.make([{ toolCall: true, failAfterChunks: k }, { toolCall: true }])
        const model = yield* StreamResume.withPolicy(fake.model)
        // Text first, then the call: give the cut something delivered to resume from.
        const { chunks, exit } = yield* collect(Stream.concat(model.stream(request), Stream.empty))
        // Nothing but the role reached the client (the call was buffered): started over, invisibly.
        expect(Exit.isSuccess(exit)).toBe(true)
        expect(fake.calls[1]?.options?.continuation).toBeUndefined()
        expectOneEnvelope(chunks)
        const calls = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? [])
        expect(calls).toHaveLength(1)
        expect(JSON.parse(calls[0]!.function!.arguments!)).toEqual(JSON.parse(FakeLanguageModel.toolArguments))
      }
    }))

  it.effect("text then a tool call cut mid-arguments: the text stays, the call is regenerated whole", () =>
    Effect.gen(function*() {
      const chunk = (id: string, delta: object, finish: string | null = null): Chunk_ =>
        ({ id, object: "chat.completion.chunk", created: 1, model: "m", choices: [{ index: 0, delta, finish_reason: finish }] }) as Chunk_
      let attempt = 0
      const model: LanguageModel.Service = {
        generate: () => Effect.die("unused"),
        stream: () =>
          Stream.suspend(() => {
            attempt++
            if (attempt === 1) {
              return Stream.concat(
                Stream.make(chunk("a", { role: "assistant", content: "Let me look that up. " }), chunk("a", { tool_calls: [{ index: 0, id: "c1", type: "function", function: { name: "lookup", arguments: "{\"q\":" } }] })),
                Stream.fail(cut(2))
              )
            }
            return Stream.make(
              chunk("b", { tool_calls: [{ index: 0, id: "c2", type: "function", function: { name: "lookup", arguments: "{\"q\":" } }] }),
              chunk("b", { tool_calls: [{ index: 0, function: { arguments: "\"tide\"}" } }] }),
              chunk("b", {}, "tool_calls")
            )
          })
      }
      const wrapped = yield* StreamResume.withPolicy(model)
      const { chunks } = yield* collect(wrapped.stream(request))
      expect(textOf(chunks)).toBe("Let me look that up. ")
      const calls = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? [])
      expect(calls).toHaveLength(1)
      expect(JSON.parse(calls[0]!.function!.arguments!)).toEqual({ q: "tide" })
      expect(chunks.find((c) => c.choices[0]?.finish_reason != null)?.choices[0]?.finish_reason).toBe("tool_calls")
    }))

  it.effect("pass-through tool streaming: a break after a tool-call delta ends with the error", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make([{ toolCall: true, failAfterChunks: 3 }])
      const model = yield* StreamResume.withPolicy(fake.model, { toolStreaming: "pass-through" })
      const { exit } = yield* collect(model.stream(request))
      expect(Exit.isFailure(exit)).toBe(true)
      expect(fake.calls).toHaveLength(1)
    }))
})

describe("StreamResume: modes", () => {
  it.effect("terminate: ends at once with the error, no continuation", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make([{ failAfterChunks: 3 }])
      const model = yield* StreamResume.withPolicy(fake.model, { mode: "terminate" })
      const { exit } = yield* collect(model.stream(request))
      expect(Exit.isFailure(exit)).toBe(true)
      expect(fake.calls).toHaveLength(1)
    }))

  it.effect("replay-before-commit: a failure inside the window replays from scratch, invisibly", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make([{ failAfterChunks: 3 }])
      const model = yield* StreamResume.withPolicy(fake.model, { mode: "replay-before-commit", replayWindow: 1000 })
      const { chunks } = yield* collect(model.stream(request))
      expect(textOf(chunks)).toBe(fake.textFor(request))
      expectOneEnvelope(chunks)
      expect(fake.calls[1]?.options?.continuation).toBeUndefined()
    }))

  it.effect("replay-before-commit: after the window, a failure terminates", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make([{ failAfterChunks: 8 }])
      const model = yield* StreamResume.withPolicy(fake.model, { mode: "replay-before-commit", replayWindow: 10 })
      const { exit } = yield* collect(model.stream(request))
      expect(Exit.isFailure(exit)).toBe(true)
      expect(fake.calls).toHaveLength(1)
    }))
})

/**
 * An answer of `count` distinct words (accented, CJK, emoji among them) in which no run of 8 or
 * more characters repeats: a continuation that truly repeats the delivered text's end is then
 * an overlap, never a coincidence (see "Limits" in the README for text that repeats itself).
 */
const distinctText = (count: number): string => {
  const vocab = ["tide", "café", "naïve", "日本語", "🌊", "résumé", "gateway", "—", "stream", "once"]
  return Array.from({ length: count }, (_, i) => `${i === 0 ? "" : " "}${vocab[i % vocab.length]}${i}`).join("")
}

describe("StreamResume (property-based)", () => {
  it("for any cut points, the client text equals the uninterrupted text, in one envelope", async () => {
    await fc.assert(fc.asyncProperty(
      fc.integer({ min: 2, max: 40 }),
      fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 3 }),
      fc.integer({ min: 1, max: 64 }),
      async (words, cuts, holdBack) => {
        const text = distinctText(words)
        const fake = FakeLanguageModel.make([...cuts.map((n) => ({ text, failAfterChunks: n })), { text }])
        const program = Effect.gen(function*() {
          const model = yield* StreamResume.withPolicy(fake.model, { maxResumes: 5, holdBack })
          return yield* collect(model.stream(request))
        })
        const { chunks, exit } = await Effect.runPromise(Effect.provide(program, TestContext.TestContext))
        expect(Exit.isSuccess(exit)).toBe(true)
        expect(textOf(chunks)).toBe(text)
        for (const c of chunks) expect(JSON.parse(JSON.stringify(c))).toEqual(c)
        expectOneEnvelope(chunks)
      }
    ), { numRuns: 150 })
  })
})
