import { LanguageModel, ModelError } from "@breakwater/core"
import { FakeLanguageModel } from "@breakwater/testing"
import { AttemptTimeout, Deadline } from "@breakwater/timeout"
import { expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"

// The README's example, with FakeLanguageModel as "your model", stalling after two words.
it.effect("README: Deadline and AttemptTimeout over an app's own LanguageModel", () =>
  Effect.gen(function*() {
    const fake = FakeLanguageModel.make([{ stallAfterChunks: 2 }])
    const MyModel: Layer.Layer<LanguageModel.LanguageModel> = Layer.succeed(LanguageModel.LanguageModel, fake.model)

    const Bounded = Deadline.layer({ total: "60 seconds" }).pipe(
      Layer.provide(AttemptTimeout.layer({ headers: "10 seconds", firstToken: "20 seconds", idle: "15 seconds" })),
      Layer.provide(MyModel)
    )

    const story = Stream.unwrap(Effect.map(LanguageModel.LanguageModel, (model) =>
      model.stream({ model: "gpt-4o-mini", messages: [{ role: "user", content: "Tell me a story" }] })))

    const fiber = yield* Effect.fork(Effect.either(Stream.runCollect(story).pipe(Effect.provide(Bounded))))
    yield* TestClock.adjust("1 minute")
    const result = yield* fiber
    expect(result._tag).toBe("Left")
    const error = (result as { left: ModelError.ModelError }).left
    expect(error).toBeInstanceOf(ModelError.StreamInterrupted)
    expect((error as ModelError.StreamInterrupted).receivedChunks).toBe(3)
  }))
