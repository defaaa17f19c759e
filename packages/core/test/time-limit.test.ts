import { TimeLimit } from "@breakwater/core"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as TestClock from "effect/TestClock"

// `race` arms its timer through `Timer.current`, so under TestClock these drive the same code
// the live clock runs (a child fiber, a timer, an observer), not a TestClock-only fallback.
describe("TimeLimit.race under TestClock", () => {
  it.effect("an effect that outlives the limit is interrupted at the limit and the timeout's effect runs", () =>
    Effect.gen(function*() {
      let interrupted = false
      const slow = Effect.onInterrupt(Effect.never, () => Effect.sync(() => void (interrupted = true)))
      const fiber = yield* Effect.fork(Effect.either(TimeLimit.race(slow, 1_000, () => Effect.fail("timed out" as const))))
      yield* TestClock.adjust("999 millis")
      expect(fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 millis")
      const outcome = yield* Fiber.join(fiber)
      expect(outcome._tag === "Left" && outcome.left).toBe("timed out")
      expect(interrupted).toBe(true)
    }))

  it.effect("an effect that finishes first wins, and the limit never fires later", () =>
    Effect.gen(function*() {
      let fired = 0
      const fiber = yield* Effect.fork(TimeLimit.race(Effect.as(Effect.sleep("500 millis"), "done"), 1_000, () =>
        Effect.suspend(() => {
          fired++
          return Effect.fail("timed out" as const)
        })))
      yield* TestClock.adjust("500 millis")
      expect(yield* Fiber.join(fiber)).toBe("done")
      yield* TestClock.adjust("10 seconds")
      expect(fired).toBe(0)
    }))

  it.effect("interrupting the limited effect interrupts its child and cancels the timer", () =>
    Effect.gen(function*() {
      let interrupted = false
      let fired = 0
      const slow = Effect.onInterrupt(Effect.never, () => Effect.sync(() => void (interrupted = true)))
      const fiber = yield* Effect.fork(TimeLimit.race(slow, 1_000, () => Effect.sync(() => fired++).pipe(Effect.zipRight(Effect.fail("x")))))
      yield* TestClock.adjust("100 millis")
      yield* Fiber.interrupt(fiber)
      expect(interrupted).toBe(true)
      yield* TestClock.adjust("10 seconds")
      expect(fired).toBe(0)
    }))
})
