import { LanguageModel, ModelError } from "@breakwater/core"
import { Retry } from "@breakwater/retry"
import { FakeLanguageModel } from "@breakwater/testing"
import { expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { pipe } from "effect/Function"
import * as Layer from "effect/Layer"
import * as TestClock from "effect/TestClock"

// The README's example, with FakeLanguageModel as "your model" failing twice first.
it.effect("README: Retry.layer over an app's own LanguageModel", () =>
  Effect.gen(function*() {
    const fake = FakeLanguageModel.make([
      { fail: new ModelError.RateLimited({ message: "429", retryAfter: undefined }) },
      { fail: new ModelError.UpstreamUnavailable({ message: "503" }) }
    ])
    const MyModel: Layer.Layer<LanguageModel.LanguageModel> = Layer.succeed(LanguageModel.LanguageModel, fake.model)

    const ask = LanguageModel.generate({ model: "gpt-4o-mini", messages: [{ role: "user", content: "Hello" }] })

    const ResilientModel = Retry.layer({ maxRetries: 3, maxRetryAfter: "30 seconds" }).pipe(Layer.provide(MyModel))

    const fiber = yield* Effect.fork(Effect.provide(ask, ResilientModel))
    yield* TestClock.adjust("1 minute")
    const reply = yield* fiber
    expect(reply.choices[0]?.message.content).toBe(fake.textFor({ model: "gpt-4o-mini", messages: [{ role: "user", content: "Hello" }] }))
    expect(fake.calls.length).toBe(3)

    const model = yield* pipe(fake.model, Retry.withPolicy({ maxRetries: 3 }))
    expect(typeof model.stream).toBe("function")
  }))
