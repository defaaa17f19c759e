import { type ChatCompletion, ModelError } from "@breakwater/core"
import { BreakerStore, CircuitBreaker } from "@breakwater/circuit-breaker"
import { FakeLanguageModel } from "@breakwater/testing"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Exit, Fiber, Stream, TestClock, TestContext } from "effect"
import fc from "fast-check"
import * as machine from "../src/internal/machine.js"

const unavailable = () => new ModelError.UpstreamUnavailable({ message: "503", status: 503 })
const fail = Effect.fail(unavailable())
const ok = Effect.succeed("ok")

/** n calls with the given outcome through the breaker of `key`, ignoring their results. */
const calls = (breaker: CircuitBreaker.CircuitBreaker, n: number, effect: Effect.Effect<string, unknown>, key = "up") =>
  Effect.forEach(Array.from({ length: n }), () => Effect.exit(breaker.guard(key)(effect)), { discard: true })

const small = { window: { kind: "count" as const, size: 10 }, minimumCalls: 4, failureRateThreshold: 50, openDuration: "10 seconds" }

describe("CircuitBreaker transitions (TestClock)", () => {
  it.effect("closed → open at the failure rate, fails fast with CircuitOpen and when it may close", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make(small)
      yield* calls(breaker, 2, ok)
      yield* calls(breaker, 1, fail)
      expect(yield* breaker.state("up")).toBe("closed")
      yield* calls(breaker, 1, fail) // 2 of 4 failed: 50%
      expect(yield* breaker.state("up")).toBe("open")
      let reached = false
      const error = yield* Effect.flip(breaker.guard("up")(Effect.sync(() => (reached = true))))
      expect(reached).toBe(false)
      expect(error._tag).toBe("CircuitOpen")
      expect((error as ModelError.CircuitOpen).retryAfter?.pipe((d) => d.value)).toBeDefined()
      expect(breaker.isAvailable("up")).toBe(false)
    }))

  it.effect("never opens below the minimum number of calls", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make(small)
      yield* calls(breaker, 3, fail)
      expect(yield* breaker.state("up")).toBe("closed")
      yield* calls(breaker, 1, fail)
      expect(yield* breaker.state("up")).toBe("open")
    }))

  it.effect("open → half-open after the open duration; a successful probe closes it", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make(small)
      yield* calls(breaker, 4, fail)
      yield* TestClock.adjust("9 seconds")
      expect(yield* breaker.state("up")).toBe("open")
      yield* TestClock.adjust("1 second")
      expect(yield* breaker.state("up")).toBe("half-open")
      expect(breaker.isAvailable("up")).toBe(true)
      expect(yield* breaker.guard("up")(ok)).toBe("ok")
      expect(yield* breaker.state("up")).toBe("closed")
    }))

  it.effect("a failed probe re-opens it, for longer each consecutive trip, up to the cap", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make({ ...small, openDurationMultiplier: 2, maxOpenDuration: "25 seconds" })
      yield* calls(breaker, 4, fail)
      for (const expected of [10, 20, 25, 25]) {
        // Open for exactly `expected` seconds: still open a moment before, half-open at it.
        yield* TestClock.adjust(`${expected * 1000 - 1} millis`)
        expect(yield* breaker.state("up")).toBe("open")
        yield* TestClock.adjust("1 millis")
        expect(yield* breaker.state("up")).toBe("half-open")
        yield* calls(breaker, 1, fail) // the probe fails
        expect(yield* breaker.state("up")).toBe("open")
      }
      // A success after the next wait closes it, and the growth starts over.
      yield* TestClock.adjust("25 seconds")
      yield* calls(breaker, 1, ok)
      expect(yield* breaker.state("up")).toBe("closed")
      yield* calls(breaker, 4, fail)
      yield* TestClock.adjust("10 seconds")
      expect(yield* breaker.state("up")).toBe("half-open")
    }))

  it.effect("half-open lets through only the allowed probes at once; another call fails fast", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make({ ...small, halfOpenProbes: 2 })
      yield* calls(breaker, 4, fail)
      yield* TestClock.adjust("10 seconds")
      const slow = Effect.as(Effect.sleep("1 second"), "ok")
      const p1 = yield* Effect.fork(breaker.guard("up")(slow))
      const p2 = yield* Effect.fork(breaker.guard("up")(slow))
      yield* TestClock.adjust("10 millis")
      let reached = false
      const third = yield* Effect.flip(breaker.guard("up")(Effect.sync(() => (reached = true))))
      expect(third._tag).toBe("CircuitOpen")
      expect(reached).toBe(false)
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(p1)
      // One success of two required: still half-open.
      yield* Fiber.join(p2)
      expect(yield* breaker.state("up")).toBe("closed")
    }))

  it.effect("slow calls count: a slow-call rate over its threshold opens it", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make({ ...small, slowCallDuration: "2 seconds", slowCallRateThreshold: 50 })
      const slow = Effect.as(Effect.sleep("3 seconds"), "ok")
      for (let i = 0; i < 2; i++) {
        const f = yield* Effect.fork(breaker.guard("up")(slow))
        yield* TestClock.adjust("3 seconds")
        yield* Fiber.join(f)
      }
      yield* calls(breaker, 1, ok)
      expect(yield* breaker.state("up")).toBe("closed")
      yield* calls(breaker, 1, ok) // 2 slow of 4: 50%
      expect(yield* breaker.state("up")).toBe("open")
    }))

  it.effect("a stream is slow when its first content is late, not when it is long", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make()
      const breaker = yield* CircuitBreaker.make({ ...small, slowCallDuration: "2 seconds", slowCallRateThreshold: 50, minimumCalls: 2 })
      const model = breaker.wrap("up", fake.model)
      const request: ChatCompletion.ChatRequest = { model: "m", messages: [{ role: "user", content: "x" }], stream: true }
      // Long streams (1 s between chunks) with a prompt first token: not slow.
      fake.script({ chunkDelay: "1 second", words: 5 }, { chunkDelay: "1 second", words: 5 })
      for (let i = 0; i < 2; i++) {
        const f = yield* Effect.fork(Stream.runCollect(model.stream(request)))
        yield* TestClock.adjust("10 seconds")
        expect(Chunk.size(yield* Fiber.join(f))).toBeGreaterThan(3)
      }
      expect(yield* breaker.state("up")).toBe("closed")
      // Late first tokens: slow.
      fake.script({ firstChunkDelay: "3 seconds" }, { firstChunkDelay: "3 seconds" })
      for (let i = 0; i < 2; i++) {
        const f = yield* Effect.fork(Stream.runDrain(model.stream(request)))
        yield* TestClock.adjust("5 seconds")
        yield* Fiber.join(f)
      }
      expect(yield* breaker.state("up")).toBe("open")
    }))

  it.effect("time-based window: old failures leave the window", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make({ ...small, window: { kind: "time", duration: "10 seconds" } })
      yield* calls(breaker, 3, fail)
      yield* TestClock.adjust("11 seconds")
      yield* calls(breaker, 3, ok)
      yield* calls(breaker, 1, fail) // 1 of 4 in the window
      expect(yield* breaker.state("up")).toBe("closed")
      yield* calls(breaker, 3, fail) // 4 of 7
      expect(yield* breaker.state("up")).toBe("open")
    }))

  it.effect("errors that must not count: bad requests, cancellation; the counted set is configurable", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make(small)
      yield* calls(breaker, 8, Effect.fail(new ModelError.BadRequest({ message: "bad" })))
      yield* calls(breaker, 4, Effect.fail(new ModelError.ContextTooLong({ message: "long" })))
      const interrupted = yield* Effect.fork(breaker.guard("up")(Effect.never))
      yield* TestClock.adjust("1 second")
      yield* Fiber.interrupt(interrupted)
      expect(yield* breaker.state("up")).toBe("closed")
      yield* calls(breaker, 4, Effect.fail(new ModelError.RateLimited({ message: "429" })))
      expect(yield* breaker.state("up")).toBe("open")
      const custom = yield* CircuitBreaker.make({ ...small, countedErrors: ["BadRequest"] })
      yield* calls(custom, 4, Effect.fail(new ModelError.BadRequest({ message: "bad" })))
      expect(yield* custom.state("up")).toBe("open")
    }))

  it.effect("a cancelled probe frees its slot without deciding anything", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make(small)
      yield* calls(breaker, 4, fail)
      yield* TestClock.adjust("10 seconds")
      const probe = yield* Effect.fork(breaker.guard("up")(Effect.never))
      yield* TestClock.adjust("1 millis")
      yield* Fiber.interrupt(probe)
      expect(yield* breaker.state("up")).toBe("half-open")
      expect(yield* breaker.guard("up")(ok)).toBe("ok")
      expect(yield* breaker.state("up")).toBe("closed")
    }))

  it.effect("keys are independent, transitions are published, snapshot lists states", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make(small)
      const seen = yield* Effect.fork(Stream.runCollect(Stream.take(breaker.transitions, 3)))
      yield* TestClock.adjust("1 millis") // lets the subscriber start
      yield* calls(breaker, 4, fail, "a")
      yield* calls(breaker, 4, ok, "b")
      expect(breaker.snapshot()).toEqual({ a: "open", b: "closed" })
      yield* TestClock.adjust("10 seconds")
      yield* calls(breaker, 1, ok, "a")
      const transitions = Chunk.toArray(yield* Fiber.join(seen))
      expect(transitions.map((t) => [t.key, t.from, t.to])).toEqual([["a", "closed", "open"], ["a", "open", "half-open"], ["a", "half-open", "closed"]])
    }))

  it.effect("many fibers at once do not corrupt the window", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make({ window: { kind: "count", size: 200 }, minimumCalls: 200, failureRateThreshold: 50 })
      const outcome = (i: number) => (i % 2 === 0 ? Effect.as(Effect.sleep("1 second"), "ok") : Effect.zipRight(Effect.sleep("1 second"), fail))
      const fiber = yield* Effect.fork(Effect.forEach(Array.from({ length: 199 }, (_, i) => i), (i) => Effect.exit(breaker.guard("up")(outcome(i))), { concurrency: "unbounded" }))
      yield* TestClock.adjust("2 seconds")
      yield* Fiber.join(fiber)
      expect(yield* breaker.state("up")).toBe("closed") // 199 calls: below the minimum
      yield* calls(breaker, 1, ok)
      expect(yield* breaker.state("up")).toBe("closed") // 99 of 200 failed
      yield* calls(breaker, 1, fail)
      expect(yield* breaker.state("up")).toBe("open") // the oldest (a success) slid out: 100 of 200
    }))

  it.effect("a shared store in context is used by every breaker built with it", () =>
    Effect.gen(function*() {
      const store = yield* BreakerStore.makeMemory
      const a = yield* Effect.provideService(CircuitBreaker.make(small), BreakerStore.BreakerStoreTag, store)
      const b = yield* Effect.provideService(CircuitBreaker.make(small), BreakerStore.BreakerStoreTag, store)
      yield* calls(a, 4, fail)
      const error = yield* Effect.flip(b.guard("up")(ok))
      expect(error._tag).toBe("CircuitOpen")
    }))
})

describe("CircuitBreaker state machine (property-based)", () => {
  const config: machine.Config = {
    window: { kind: "count", size: 8 },
    minimumCalls: 5,
    failureRateThreshold: 50,
    slowCallRateThreshold: 100,
    slowCallMillis: 1_000,
    openMillis: 1_000,
    openMultiplier: 2,
    maxOpenMillis: 8_000,
    halfOpenProbes: 2
  }
  const step = fc.oneof(
    fc.record({ kind: fc.constant("call" as const), outcome: fc.constantFrom<machine.Outcome>("success", "failure", "ignored"), slow: fc.boolean(), hold: fc.boolean() }),
    fc.record({ kind: fc.constant("finish" as const) }),
    fc.record({ kind: fc.constant("advance" as const), millis: fc.integer({ min: 0, max: 10_000 }) })
  )

  it("invariants hold over random outcomes and time steps", () => {
    fc.assert(fc.property(fc.array(step, { maxLength: 200 }), (steps) => {
      let state = machine.initial
      let now = 0
      const held: Array<{ permit: machine.Permit; outcome: machine.Outcome; slow: boolean }> = []
      for (const s of steps) {
        if (s.kind === "advance") now += s.millis
        else if (s.kind === "finish") {
          const h = held.shift()
          if (h !== undefined) state = machine.record(state, h.permit, h.outcome, h.slow, now, config)
        } else {
          const wasOpenUntil = state.phase === "open" ? state.openUntil : undefined
          const [permit, next] = machine.acquire(state, now, config)
          // Open always ends after its duration: past openUntil a call is let through as a probe.
          if (wasOpenUntil !== undefined && now >= wasOpenUntil) expect(permit._tag).toBe("Probe")
          if (wasOpenUntil !== undefined && now < wasOpenUntil) expect(permit._tag).toBe("Rejected")
          state = next
          if (s.hold) held.push({ permit, outcome: s.outcome, slow: s.slow })
          else state = machine.record(state, permit, s.outcome, s.slow, now, config)
        }
        // Never more probes than allowed; counts never negative; the window never exceeds its size.
        expect(state.probes).toBeGreaterThanOrEqual(0)
        expect(state.probes).toBeLessThanOrEqual(config.halfOpenProbes)
        expect(state.outcomes.length).toBeLessThanOrEqual(8)
        // Never opened from closed below the minimum calls: a fresh trip leaves an empty window.
        if (state.phase === "open") {
          expect(state.openUntil - state.openedAt).toBeLessThanOrEqual(config.maxOpenMillis)
          expect(state.openUntil - state.openedAt).toBeGreaterThanOrEqual(config.openMillis)
        }
        if (state.phase === "closed") expect(machine.rates(state, now, config).calls).toBeLessThanOrEqual(8)
      }
    }), { numRuns: 300 })
  })

  it("from closed, fewer calls than the minimum never open it, whatever their outcomes", () => {
    fc.assert(fc.property(fc.array(fc.constantFrom<machine.Outcome>("success", "failure"), { maxLength: 4 }), (outcomes) => {
      let state = machine.initial
      for (const outcome of outcomes) {
        const [permit, next] = machine.acquire(state, 0, config)
        state = machine.record(next, permit, outcome, false, 0, config)
      }
      expect(state.phase).toBe("closed")
    }))
  })

  it("the effectful breaker under random sequences never admits more probes than allowed", async () => {
    await fc.assert(fc.asyncProperty(fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 5, maxLength: 40 }), async (ops) => {
      const exit = await Effect.runPromiseExit(Effect.gen(function*() {
        const store = yield* BreakerStore.makeMemory
        const breaker = yield* Effect.provideService(
          CircuitBreaker.make({ window: { kind: "count", size: 4 }, minimumCalls: 2, failureRateThreshold: 50, openDuration: 1_000, halfOpenProbes: 1 }),
          BreakerStore.BreakerStoreTag,
          store
        )
        const fibers: Array<Fiber.RuntimeFiber<unknown, unknown>> = []
        for (const op of ops) {
          if (op === 0) fibers.push(yield* Effect.fork(Effect.exit(breaker.guard("u")(fail))))
          else if (op === 1) fibers.push(yield* Effect.fork(Effect.exit(breaker.guard("u")(Effect.as(Effect.sleep(500), "ok")))))
          else yield* TestClock.adjust(op === 2 ? 600 : 1_000)
          const state = yield* store.get("u")
          if (state.probes > 1 || state.probes < 0) return yield* Effect.dieMessage(`probes ${state.probes}`)
        }
        yield* TestClock.adjust(10_000)
        yield* Effect.forEach(fibers, Fiber.await, { discard: true })
        expect((yield* store.get("u")).probes).toBe(0)
      }).pipe(Effect.provide(TestContext.TestContext)))
      expect(Exit.isSuccess(exit)).toBe(true)
    }), { numRuns: 40 })
  })
})
