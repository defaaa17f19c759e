import { LanguageModel } from "@breakwater/core"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"

describe("LanguageModel.isService", () => {
  it("holds for a model and not for options or other values", () => {
    const model = LanguageModel.make({ generate: () => Effect.die("unused"), stream: () => Stream.die("unused") })
    expect(LanguageModel.isService(model)).toBe(true)
    expect(LanguageModel.isService({ maxRetries: 2 })).toBe(false)
    expect(LanguageModel.isService({ generate: () => 1 })).toBe(false)
    expect(LanguageModel.isService(undefined)).toBe(false)
    expect(LanguageModel.isService(null)).toBe(false)
  })
})
