import { LeanEffect } from "@breakwater/core"
import { describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"

// How many observers a fiber holds (internal: the one way to see that a finished call left none).
const observersOf = (fiber: Fiber.RuntimeFiber<unknown, unknown>): number =>
  (fiber as unknown as { readonly _observers: ReadonlyArray<unknown> })._observers.length

describe("LeanEffect.onExit", () => {
  it.effect("releases once with the success, and leaves no observer on the fiber", () =>
    Effect.gen(function*() {
      const seen: Array<Exit.Exit<number, string>> = []
      const before = yield* Effect.withFiberRuntime((fiber) => Effect.succeed(observersOf(fiber)))
      for (let i = 0; i < 100; i++) {
        expect(yield* LeanEffect.onExit(Effect.succeed(i), (exit) => seen.push(exit))).toBe(i)
      }
      expect(seen).toEqual(Array.from({ length: 100 }, (_, i) => Exit.succeed(i)))
      // A fiber that makes many calls must not keep one observer per call.
      expect(yield* Effect.withFiberRuntime((fiber) => Effect.succeed(observersOf(fiber)))).toBe(before)
    }))

  it.effect("releases once with the failure (a typed failure and a defect alike), which still propagates", () =>
    Effect.gen(function*() {
      const seen: Array<Exit.Exit<never, string>> = []
      const failed = yield* Effect.exit(LeanEffect.onExit(Effect.fail("boom"), (exit) => seen.push(exit)))
      expect(failed).toEqual(Exit.fail("boom"))
      const died = yield* Effect.exit(LeanEffect.onExit(Effect.die("bug"), (exit) => seen.push(exit)))
      expect(Exit.isFailure(died)).toBe(true)
      expect(seen).toEqual([Exit.fail("boom"), Exit.die("bug")])
    }))

  it.effect("a fiber interrupted during the call releases with the interruption, once, by the time it ended", () =>
    Effect.gen(function*() {
      const seen: Array<Exit.Exit<never, never>> = []
      const started = yield* Deferred.make<void>()
      const fiber = yield* Effect.fork(LeanEffect.onExit(Effect.zipRight(Deferred.succeed(started, undefined), Effect.never), (exit) => seen.push(exit)))
      yield* Deferred.await(started)
      expect(seen).toEqual([])
      yield* Fiber.interrupt(fiber)
      expect(seen).toHaveLength(1)
      expect(Exit.isInterrupted(seen[0]!)).toBe(true)
    }))

  it.effect("a call that ended before its fiber was interrupted is not released again", () =>
    Effect.gen(function*() {
      const seen: Array<Exit.Exit<number, never>> = []
      const fiber = yield* Effect.fork(Effect.zipRight(LeanEffect.onExit(Effect.succeed(1), (exit) => seen.push(exit)), Effect.never))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(fiber)
      expect(seen).toEqual([Exit.succeed(1)])
    }))
})

describe("LeanEffect.onExitOrInterrupt", () => {
  it.effect("runs the release effect on a normal end and the plain function on an interruption, never both", () =>
    Effect.gen(function*() {
      const log: Array<string> = []
      const ok = yield* LeanEffect.onExitOrInterrupt(
        Effect.succeed("a"),
        (exit) => Effect.sync(() => log.push(`released ${Exit.isSuccess(exit) ? exit.value : "failure"}`)),
        () => log.push("interrupted")
      )
      expect(ok).toBe("a")
      const started = yield* Deferred.make<void>()
      const fiber = yield* Effect.fork(LeanEffect.onExitOrInterrupt(
        Effect.zipRight(Deferred.succeed(started, undefined), Effect.never),
        () => Effect.sync(() => log.push("released b")),
        () => log.push("interrupted b")
      ))
      yield* Deferred.await(started)
      yield* Fiber.interrupt(fiber)
      expect(log).toEqual(["released a", "interrupted b"])
    }))
})

describe("LeanEffect.onExitOrInterruptIn", () => {
  it.effect("guards, from the step it is called in, what that step took: released on a normal end, freed on an interruption", () =>
    Effect.gen(function*() {
      let held = 0
      const guarded = <A>(use: Effect.Effect<A>) =>
        Effect.withFiberRuntime<A>((fiber) => {
          held++
          return LeanEffect.onExitOrInterruptIn(fiber, use, () => Effect.sync(() => held--), () => held--)
        })
      expect(yield* guarded(Effect.succeed(1))).toBe(1)
      expect(held).toBe(0)
      const started = yield* Deferred.make<void>()
      const fiber = yield* Effect.fork(guarded(Effect.zipRight(Deferred.succeed(started, undefined), Effect.never)))
      yield* Deferred.await(started)
      expect(held).toBe(1)
      yield* Fiber.interrupt(fiber)
      expect(held).toBe(0)
    }))
})

describe("LeanEffect.onExitCatchAll", () => {
  it.effect("releases once with how the call ended, then hands a typed failure to orElse; leaves no observer", () =>
    Effect.gen(function*() {
      const seen: Array<Exit.Exit<number, string>> = []
      const before = yield* Effect.withFiberRuntime((fiber) => Effect.succeed(observersOf(fiber)))
      const release = (exit: Exit.Exit<number, string>) => void seen.push(exit)
      expect(yield* LeanEffect.onExitCatchAll(Effect.succeed(1), release, () => Effect.succeed(-1))).toBe(1)
      expect(yield* LeanEffect.onExitCatchAll(Effect.fail("boom"), release, (e) => Effect.succeed(e.length))).toBe(4)
      expect(yield* Effect.exit(LeanEffect.onExitCatchAll(Effect.fail("boom"), release, (e) => Effect.fail(`${e}!`)))).toEqual(Exit.fail("boom!"))
      expect(seen).toEqual([Exit.succeed(1), Exit.fail("boom"), Exit.fail("boom")])
      expect(yield* Effect.withFiberRuntime((fiber) => Effect.succeed(observersOf(fiber)))).toBe(before)
    }))

  it.effect("a defect passes on as it is (orElse is not asked), after the release", () =>
    Effect.gen(function*() {
      const seen: Array<Exit.Exit<never, string>> = []
      let asked = false
      const exit = yield* Effect.exit(LeanEffect.onExitCatchAll(Effect.die("bug"), (e) => void seen.push(e), () => {
        asked = true
        return Effect.void
      }))
      expect(exit).toEqual(Exit.die("bug"))
      expect(asked).toBe(false)
      expect(seen).toEqual([Exit.die("bug")])
    }))

  it.effect("a fiber interrupted during the call releases with the interruption, once, and orElse is not asked", () =>
    Effect.gen(function*() {
      const seen: Array<Exit.Exit<never, never>> = []
      let asked = false
      const started = yield* Deferred.make<void>()
      const fiber = yield* Effect.fork(LeanEffect.onExitCatchAll(Effect.zipRight(Deferred.succeed(started, undefined), Effect.never), (exit) => seen.push(exit), () => {
        asked = true
        return Effect.void
      }))
      yield* Deferred.await(started)
      yield* Fiber.interrupt(fiber)
      expect(seen).toHaveLength(1)
      expect(Exit.isInterrupted(seen[0]!)).toBe(true)
      expect(asked).toBe(false)
    }))
})
