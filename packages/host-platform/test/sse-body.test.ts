/** The streamed body's buffer: backpressure towards the producer, and its end. */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Stream } from "effect"
import * as SseBody from "../src/internal/sseBody.js"

describe("SseBody", () => {
  it.effect("asks the producer to pause past its high-water mark, and resumes it once the buffer is taken", () =>
    Effect.gen(function*() {
      let cancelled = 0
      let resumed = 0
      const body = SseBody.make(() => cancelled++)
      expect(body.write("data: small\n\n")).toBe(true)
      const big = "x".repeat(80_000)
      expect(body.write(big)).toBe(false)
      body.whenFull(() => resumed++)
      expect(resumed).toBe(0)
      body.end("data: [DONE]\n\n")
      const parts = yield* Stream.runCollect(body.stream)
      const text = Chunk.toReadonlyArray(parts).map((p) => new TextDecoder().decode(p)).join("")
      expect(text).toBe("data: small\n\n" + big + "data: [DONE]\n\n")
      expect(resumed).toBe(1)
      expect(cancelled).toBe(1)
    }))

  it.effect("resumes at once a producer that paused after its buffer was already taken", () =>
    Effect.sync(() => {
      let resumed = 0
      const body = SseBody.make(() => {})
      body.whenFull(() => resumed++)
      expect(resumed).toBe(1)
    }))

  it.effect("once its reader is gone, resumes a paused producer and drops what it writes (a detached generation runs on)", () =>
    Effect.gen(function*() {
      const paused = SseBody.make(() => {})
      let resumed = 0
      expect(paused.write("x".repeat(80_000))).toBe(false)
      paused.whenFull(() => resumed++)
      expect(resumed).toBe(0)
      paused.abandon()
      expect(resumed).toBe(1)
      expect(paused.write("y".repeat(80_000))).toBe(true)

      let cancelled = 0
      const body = SseBody.make(() => cancelled++)
      body.write("data: first\n\n")
      // The reader takes one part, then goes away: the body is abandoned and `cancel` runs.
      yield* Stream.runDrain(Stream.take(body.stream, 1))
      expect(cancelled).toBe(1)
      expect(body.write("z".repeat(80_000))).toBe(true)
    }))
})
