import { ChatCompletion, type LanguageModel, ModelError, RequestContext } from "@breakwater/core"
import { StreamResume } from "@breakwater/stream-resume"
import { FakeLanguageModel } from "@breakwater/testing"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Chunk, Effect, Exit, Fiber, Metric, Stream, TestClock } from "effect"
import { decide, longestOverlap, stopAcrossSeam } from "../src/internal/splice.js"

type Chunk_ = ChatCompletion.ChatCompletionChunk

const request: ChatCompletion.ChatRequest = { model: "m", messages: [{ role: "user", content: "tell me" }], stream: true }
const settings = { holdBack: 64, minOverlap: 8, verifyLimit: 512 }

const collect = (stream: Stream.Stream<Chunk_, ModelError.ModelError>) =>
  Effect.gen(function*() {
    const ctx = RequestContext.make({ requestId: "t" })
    const fiber = yield* Effect.fork(Effect.exit(Effect.provideService(Stream.runCollect(stream), RequestContext.RequestContext, ctx)))
    yield* TestClock.adjust("10 minutes")
    const exit = yield* Fiber.join(fiber)
    return { exit, chunks: Exit.isSuccess(exit) ? Chunk.toArray(exit.value) : [], ctx }
  })

const textOf = (chunks: ReadonlyArray<Chunk_>) => chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")
const cut = (n = 1) => new ModelError.StreamInterrupted({ message: "reset", reason: "reset", receivedChunks: n })

/** Attempts scripted as text pieces, each ending in a failure or a finish (with usage). */
const scripted = (attempts: Array<{ readonly pieces: ReadonlyArray<string>; readonly fail?: ModelError.ModelError; readonly heartbeats?: number }>) => {
  const calls: Array<{ request: ChatCompletion.ChatRequest; options: LanguageModel.CallOptions | undefined }> = []
  const model: LanguageModel.Service = {
    generate: () => Effect.die("not used"),
    stream: (req, options) =>
      Stream.suspend(() => {
        calls.push({ request: req, options })
        const attempt = attempts.shift()!
        const id = `up-${calls.length}`
        const chunk = (delta: object, finish: string | null = null): Chunk_ =>
          ({ id, object: "chat.completion.chunk", created: calls.length, model: `m${calls.length}`, choices: [{ index: 0, delta, finish_reason: finish }] }) as Chunk_
        const beats = Array.from({ length: attempt.heartbeats ?? 0 }, () => ChatCompletion.heartbeat(id, "m", 0))
        const body = Stream.fromIterable([chunk({ role: "assistant", content: "" }), ...beats, ...attempt.pieces.map((p) => chunk({ content: p }))])
        return attempt.fail !== undefined
          ? Stream.concat(body, Stream.fail(attempt.fail))
          : Stream.concat(body, Stream.make(chunk({}, "stop"), { ...chunk({}), choices: [], usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 } }))
      })
  }
  return { model, calls }
}

describe("splice: deciding a seam", () => {
  it("holds until holdBack characters arrived, unless the continuation ended", () => {
    expect(decide("Hello there, ", "wor", false, settings)._tag).toBe("Hold")
    expect(decide("Hello there, ", "world", true, settings)).toEqual({ _tag: "Accept", drop: 0, kind: "boundary" })
  })

  it("drops a credible overlap (at least minOverlap characters), keeps a shorter coincidence", () => {
    expect(decide("The quick brown fox", " brown fox jumps over the lazy dog", true, settings)).toEqual({ _tag: "Accept", drop: 10, kind: "overlap" })
    expect(decide("ab ab ", "ab done", true, settings)).toEqual({ _tag: "Accept", drop: 0, kind: "boundary" })
  })

  it("drops the trailing whitespace a right-trimmed prefill regenerates, even before a short repeated word", () => {
    // Delivered "…keeps and ", prefill "…keeps and", continuation " and naïve…": the answer is "and and".
    expect(decide("the keeps and ", " and naïve 日本語 with once agents streams keeps gateway", true, settings)).toEqual({ _tag: "Accept", drop: 1, kind: "overlap" })
  })

  it("verifies a restart that repeats the whole delivered text, and rejects one that diverges", () => {
    const delivered = "Once upon a time there was"
    expect(decide(delivered, `${delivered} a gateway that kept every stream steady and whole.`, false, settings))
      .toEqual({ _tag: "Accept", drop: delivered.length, kind: "verified" })
    expect(decide(delivered, "Once upon a time, long ago, a king ruled over a quiet land by the sea.", false, settings)._tag).toBe("Reject")
  })

  it("holds a continuation that repeats older text until it passes the delivered end; beyond verifyLimit it rejects", () => {
    const delivered = "a".repeat(10) + "0123456789abcdefghijklmnopqrstuvwxyz"
    const held = "0123456789abcdefghij"
    expect(decide(delivered, held, false, { ...settings, holdBack: 8 })._tag).toBe("Hold")
    expect(decide(delivered, held, false, { ...settings, holdBack: 8, verifyLimit: 16 })._tag).toBe("Reject")
    expect(decide(delivered, held + "klmnopqrstuvwxyz and more", false, { ...settings, holdBack: 8 }))
      .toEqual({ _tag: "Accept", drop: 36, kind: "overlap" })
  })

  it("never cuts between the halves of a surrogate pair", () => {
    // The delivered text ends with a lone high surrogate (a split emoji): the overlap must not take half a pair.
    const delivered = "waves \ud83c"
    expect(longestOverlap(delivered, "\ud83c\udf0a and more")).toBe(0)
    expect(longestOverlap("waves 🌊 and", "🌊 and more")).toBe("🌊 and".length)
  })

  it("finds a stop sequence that spans the seam", () => {
    expect(stopAcrossSeam("the answer is EN", "D of story", ["END"])).toBe(true)
    expect(stopAcrossSeam("the answer is ", "END", ["END"])).toBe(false)
    expect(stopAcrossSeam("the answer", " goes on", ["END"])).toBe(false)
  })
})

describe("StreamResume: the envelope and the marking", () => {
  it.effect("an undisturbed stream's chunks pass as the same objects (one pass, nothing rebuilt)", () =>
    Effect.gen(function*() {
      const { model } = scripted([{ pieces: ["Hello", " world"] }])
      const raw: Array<Chunk_> = []
      const spy: LanguageModel.Service = { generate: model.generate, stream: (r, o) => Stream.tap(model.stream(r, o), (c) => Effect.sync(() => raw.push(c))) }
      const wrapped = yield* StreamResume.withPolicy(spy)
      const { chunks } = yield* collect(wrapped.stream(request))
      expect(chunks).toHaveLength(raw.length)
      chunks.forEach((c, i) => expect(c).toBe(raw[i]))
    }))

  it.effect("a continuation's chunks carry the first attempt's id, created and model; the seam marker is a heartbeat with breakwater.seam", () =>
    Effect.gen(function*() {
      const { model, calls } = scripted([
        { pieces: ["The quick brown ", "fox jum"], fail: cut(2) },
        { pieces: ["ps over the lazy dog, and then it sat down to rest for a while."] }
      ])
      const wrapped = yield* StreamResume.withPolicy(model, { instruction: "go on" })
      const { chunks, ctx } = yield* collect(wrapped.stream(request))
      expect(textOf(chunks)).toBe("The quick brown fox jumps over the lazy dog, and then it sat down to rest for a while.")
      for (const c of chunks) {
        expect(c.id).toBe("up-1")
        expect(c.created).toBe(1)
        expect(c.model).toBe("m1")
        for (const choice of c.choices) expect(choice.index).toBe(0)
      }
      const markers = chunks.filter(StreamResume.isSeamMarker)
      expect(markers).toEqual([{ id: "up-1", object: "chat.completion.chunk", created: 1, model: "m1", choices: [], breakwater: { seam: 1 } }])
      expect(ChatCompletion.isHeartbeat(markers[0]!)).toBe(true)
      expect(chunks.filter((c) => c.choices[0]?.delta.role !== undefined)).toHaveLength(1)
      const finals = chunks.filter((c) => c.choices[0]?.finish_reason != null)
      expect(finals).toHaveLength(1)
      expect((finals[0] as any).breakwater).toEqual({ resumed: 1 })
      expect(ctx.trace.resumes).toBe(1)
      expect(calls[1]!.options?.continuation).toMatchObject({ partial: "The quick brown fox jum", instruction: "go on" })
      expect(StreamResume.isSeamMarker(ChatCompletion.heartbeat("x", "m", 0))).toBe(false)
    }))

  it.effect("heartbeats pass through and are not content: a failure after only heartbeats passes through untouched", () =>
    Effect.gen(function*() {
      const failure = cut(0)
      const { model, calls } = scripted([{ pieces: [], heartbeats: 3, fail: failure }])
      const wrapped = yield* StreamResume.withPolicy(model)
      const { exit } = yield* collect(wrapped.stream(request))
      expect(exit).toEqual(Exit.fail(failure))
      expect(calls).toHaveLength(1)
    }))

  it.effect("the resumes counter is tagged by outcome", () =>
    Effect.gen(function*() {
      const value = (outcome: string) => Effect.map(Metric.value(Metric.tagged(StreamResume.resumesTotal, "outcome", outcome)), (s) => s.count)
      const before = { resumed: yield* value("resumed"), rejected: yield* value("rejected"), gave_up: yield* value("gave_up"), terminated: yield* value("terminated") }
      const { model } = scripted([
        { pieces: ["Once upon a time ", "there was"], fail: cut(2) },
        { pieces: ["Once upon a time, long ago, ", "a king ruled."] },
        { pieces: [" a gateway."] }
      ])
      yield* collect((yield* StreamResume.withPolicy(model)).stream(request))
      const fake = FakeLanguageModel.make([{ failAfterChunks: 3 }])
      yield* collect((yield* StreamResume.withPolicy(fake.model, { mode: "terminate" })).stream(request))
      const fake2 = FakeLanguageModel.make([{ failAfterChunks: 3 }])
      yield* collect((yield* StreamResume.withPolicy(fake2.model, { maxResumes: 0 })).stream(request))
      expect((yield* value("resumed")) - before.resumed).toBe(1)
      expect((yield* value("rejected")) - before.rejected).toBe(1)
      expect((yield* value("terminated")) - before.terminated).toBe(1)
      expect((yield* value("gave_up")) - before.gave_up).toBe(1)
    }))
})

describe("StreamResume: what is not continued", () => {
  it.effect("a strict json_schema response is not continued after content: the break is the error", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make([{ failAfterChunks: 3 }])
      const model = yield* StreamResume.withPolicy(fake.model)
      const strict = { ...request, response_format: { type: "json_schema", json_schema: { name: "x", strict: true, schema: {} } } }
      const { exit } = yield* collect(model.stream(strict))
      expect(Exit.isFailure(exit) && Exit.causeOption(exit)._tag === "Some").toBe(true)
      expect(fake.calls).toHaveLength(1)
      if (Exit.isFailure(exit)) expect(JSON.stringify(exit.cause)).toContain("StreamInterrupted")
    }))

  it.effect("logprobs: a tool call cut before anything was delivered is still restarted (nothing to continue)", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make([{ toolCall: true, failAfterChunks: 2 }, { toolCall: true }])
      const model = yield* StreamResume.withPolicy(fake.model)
      const { exit, chunks } = yield* collect(model.stream({ ...request, logprobs: true }))
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(fake.calls).toHaveLength(2)
      expect(fake.calls[1]!.options?.continuation).toBeUndefined()
      const calls = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? [])
      expect(calls).toHaveLength(1)
      expect(JSON.parse(calls[0]!.function!.arguments!)).toEqual(JSON.parse(FakeLanguageModel.toolArguments))
    }))

  it.effect("n > 1 passes through untouched (every choice, its own indexes)", () =>
    Effect.gen(function*() {
      const two: Chunk_ = { id: "x", object: "chat.completion.chunk", created: 1, model: "m", choices: [{ index: 0, delta: { content: "a" }, finish_reason: null }, { index: 1, delta: { content: "b" }, finish_reason: null }] }
      const model: LanguageModel.Service = { generate: () => Effect.die("unused"), stream: () => Stream.make(two) }
      const { chunks } = yield* collect((yield* StreamResume.withPolicy(model)).stream({ ...request, n: 2 }))
      expect(chunks).toEqual([two])
    }))

  it.effect("a stop sequence that spans the seam ends the answer there with finish_reason stop", () =>
    Effect.gen(function*() {
      const { model, calls } = scripted([
        { pieces: ["The answer is 42. EN"], fail: cut(1) },
        { pieces: ["D and more text that should never reach the client at all."] }
      ])
      const wrapped = yield* StreamResume.withPolicy(model)
      const { chunks, exit } = yield* collect(wrapped.stream({ ...request, stop: ["END"] }))
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(calls).toHaveLength(2)
      expect(textOf(chunks)).toBe("The answer is 42. EN")
      const finals = chunks.filter((c) => c.choices[0]?.finish_reason != null)
      expect(finals.map((c) => c.choices[0]!.finish_reason)).toEqual(["stop"])
      expect(chunks.at(-1)?.usage?.completion_tokens).toBeGreaterThan(0)
    }))

  it.effect("a token budget spent by the delivered text ends with finish_reason length, no continuation", () =>
    Effect.gen(function*() {
      const { model, calls } = scripted([{ pieces: ["0123456789abcdef"], fail: cut(1) }])
      const wrapped = yield* StreamResume.withPolicy(model)
      const { chunks, exit } = yield* collect(wrapped.stream({ ...request, max_completion_tokens: 4 }))
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(calls).toHaveLength(1)
      expect(chunks.filter((c) => c.choices[0]?.finish_reason != null).map((c) => c.choices[0]!.finish_reason)).toEqual(["length"])
    }))

  it.effect("an upstream that rejects prefill leaves only user-instruction, for later seams too", () =>
    Effect.gen(function*() {
      const { model, calls } = scripted([
        { pieces: ["Hello ", "wor"], fail: cut(2) },
        { pieces: [], fail: new ModelError.BadRequest({ message: "This model does not support assistant message prefill." }) },
        { pieces: ["ld, and", " then"], fail: cut(2) },
        { pieces: [" some."] }
      ])
      const wrapped = yield* StreamResume.withPolicy(model, { holdBack: 1 })
      const { chunks } = yield* collect(wrapped.stream(request))
      expect(textOf(chunks)).toBe("Hello world, and then some.")
      expect(calls.map((c) => c.options?.continuation?.strategy)).toEqual([undefined, undefined, "user-instruction", "user-instruction"])
    }))

  it.effect("a continuation's non-retryable failure (context too long) ends the stream with a StreamInterrupted carrying it", () =>
    Effect.gen(function*() {
      const tooLong = new ModelError.ContextTooLong({ message: "too long" })
      const { model } = scripted([{ pieces: ["Hello ", "wor"], fail: cut(2) }, { pieces: [], fail: tooLong }])
      const wrapped = yield* StreamResume.withPolicy(model)
      const { exit } = yield* collect(wrapped.stream(request))
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) {
        const error = Chunk.unsafeHead(Cause.failures(exit.cause))
        expect(error._tag).toBe("StreamInterrupted")
        expect((error as ModelError.StreamInterrupted).cause).toBe(tooLong)
      }
    }))
})

describe("splice: exact (prefill) continuations", () => {
  it("keep a genuinely repeated word at the seam, drop regenerated whitespace and long repeats", () => {
    const settings = { holdBack: 64, minOverlap: 8, verifyLimit: 512 }
    // "…gateway retries " then the prefill's continuation "retries gateway…": the answer says it twice.
    expect(decide("the gateway retries ", "retries gateway steady act agents keeps café streams once more and again", true, settings, true))
      .toEqual({ _tag: "Accept", drop: 0, kind: "boundary" })
    // The same repeat after a user-instruction continuation is taken as the model repeating itself.
    expect(decide("the gateway retries ", "retries gateway steady act agents keeps café streams once more and again", true, settings, false))
      .toEqual({ _tag: "Accept", drop: 8, kind: "overlap" })
    expect(decide("keeps and ", " and naïve with once agents streams keeps gateway the steady naïve", true, settings, true))
      .toEqual({ _tag: "Accept", drop: 1, kind: "overlap" })
    expect(decide("it was the best of times, ", "the best of times, it was the worst of times", true, settings, true))
      .toEqual({ _tag: "Accept", drop: 19, kind: "overlap" })
  })
})
