/** The README's example, run against FakeLanguageModel with a cut in the middle. */
import { type ChatCompletion, LanguageModel } from "@breakwater/core"
import { StreamResume } from "@breakwater/stream-resume"
import { FakeLanguageModel } from "@breakwater/testing"
import { expect, it } from "@effect/vitest"
import { Effect, Layer, Stream } from "effect"

it.effect("README: the layer alone in an Effect app turns a cut stream into one answer", () =>
  Effect.gen(function*() {
    const fake = FakeLanguageModel.make([{ failAfterChunks: 4 }])
    const MyModel = Layer.succeed(LanguageModel.LanguageModel, fake.model)
    let text = ""
    let seams = 0
    const request: ChatCompletion.ChatRequest = { model: "gpt-4o-mini", messages: [{ role: "user", content: "Tell me about tides" }] }
    const answer = Effect.flatMap(LanguageModel.LanguageModel, (model) =>
      Stream.runForEach(model.stream(request), (chunk) =>
        StreamResume.isSeamMarker(chunk)
          ? Effect.sync(() => seams++)
          : Effect.sync(() => {
            text += chunk.choices[0]?.delta.content ?? ""
          })))
    const Resilient = StreamResume.layer({ maxResumes: 3 }).pipe(Layer.provide(MyModel))
    yield* Effect.provide(answer, Resilient)
    expect(text).toBe(fake.textFor(request))
    expect(seams).toBe(1)
    expect(fake.calls).toHaveLength(2)
  }))
