import { ChatCompletion, ModelError } from "@breakwater/core"
import { FakeLanguageModel } from "@breakwater/testing"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Either, Fiber, Stream, TestClock } from "effect"

const request: ChatCompletion.ChatRequest = { model: "m", messages: [{ role: "user", content: "hello" }] }
const textOf = (chunks: ReadonlyArray<ChatCompletion.ChatCompletionChunk>) =>
  chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")

describe("FakeLanguageModel", () => {
  it.effect("streams the same deterministic text it generates", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make()
      const completion = yield* fake.model.generate(request)
      const chunks = Chunk.toReadonlyArray(yield* Stream.runCollect(fake.model.stream(request)))
      expect(textOf(chunks)).toBe(completion.choices[0]!.message.content)
      expect(completion.choices[0]!.message.content).toBe(fake.textFor(request))
      expect(chunks[0]!.choices[0]!.delta.role).toBe("assistant")
      expect(chunks.at(-1)!.usage?.completion_tokens).toBe(12)
      expect(fake.calls.map((c) => c.kind)).toEqual(["generate", "stream"])
    }))

  it.effect("continues its text from a continuation's partial, even mid-word", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make()
      const full = fake.textFor(request)
      for (const cut of [1, 5, Math.floor(full.length / 2), full.length - 1]) {
        const partial = full.slice(0, cut)
        const rest = textOf(Chunk.toReadonlyArray(yield* Stream.runCollect(fake.model.stream(request, { continuation: { partial } }))))
        expect(partial + rest).toBe(full)
      }
    }))

  it.effect("fails after N chunks and stalls under TestClock control", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make([{ failAfterChunks: 3 }, { stallAfterChunks: 2, chunkDelay: "1 second" }])
      const failed = yield* Stream.runCollect(fake.model.stream(request)).pipe(Effect.either)
      expect(Either.isLeft(failed) && failed.left._tag).toBe("StreamInterrupted")
      const fiber = yield* Effect.fork(Stream.runCollect(Stream.take(fake.model.stream(request), 3)))
      yield* TestClock.adjust("1 second")
      const got = yield* Fiber.join(fiber)
      expect(Chunk.size(got)).toBe(3)
      const error = new ModelError.RateLimited({ message: "slow down" })
      fake.script({ fail: error, delay: "2 seconds" })
      const late = yield* Effect.fork(Effect.either(fake.model.generate(request)))
      yield* TestClock.adjust("2 seconds")
      expect(yield* Fiber.join(late)).toEqual(Either.left(error))
    }))
})
