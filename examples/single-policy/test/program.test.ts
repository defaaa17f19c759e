import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, TestClock } from "effect"
import { program } from "../src/program.js"

describe("examples/single-policy", () => {
  it.effect("the retry policy turns a 503 then a success into one answer", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.fork(program)
      yield* TestClock.adjust("1 second")
      const result = yield* Fiber.join(fiber)
      expect(result.text.length).toBeGreaterThan(0)
      expect(result.upstreamCalls).toBe(2)
      expect(result.retries).toBe(1)
    }))
})
