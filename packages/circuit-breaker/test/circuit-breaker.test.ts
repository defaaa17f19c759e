import { type ChatCompletion, LanguageModel, ModelError, Policy, RequestContext } from "@breakwater/core"
import { BreakerStore, CircuitBreaker } from "@breakwater/circuit-breaker"
import { FakeLanguageModel } from "@breakwater/testing"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Chunk, Duration, Effect, Exit, Fiber, Layer, Logger, LogLevel, Metric, Stream, TestClock, TestContext } from "effect"
import fc from "fast-check"

const unavailable = () => new ModelError.UpstreamUnavailable({ message: "503", status: 503 })
const fail = Effect.fail(unavailable())
const ok = Effect.succeed("ok")

/** n calls with the given outcome through the breaker of `key`, ignoring their results. */
const calls = (breaker: CircuitBreaker.CircuitBreaker, n: number, effect: Effect.Effect<string, unknown>, key = "up") =>
  Effect.forEach(Array.from({ length: n }), () => Effect.exit(breaker.withBreaker(key)(effect)), { discard: true })

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
      const error = yield* Effect.flip(breaker.withBreaker("up")(Effect.sync(() => (reached = true))))
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
      expect(yield* breaker.withBreaker("up")(ok)).toBe("ok")
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
      const p1 = yield* Effect.fork(breaker.withBreaker("up")(Effect.as(Effect.sleep("1 second"), "ok")))
      const p2 = yield* Effect.fork(breaker.withBreaker("up")(Effect.as(Effect.sleep("2 seconds"), "ok")))
      yield* TestClock.adjust("10 millis")
      let reached = false
      const third = yield* Effect.flip(breaker.withBreaker("up")(Effect.sync(() => (reached = true))))
      expect(third._tag).toBe("CircuitOpen")
      expect(reached).toBe(false)
      yield* TestClock.adjust("1 second")
      expect(yield* Fiber.join(p1)).toBe("ok")
      // One success of two required: still half-open, and the reported probe's slot is not handed out again.
      expect(yield* breaker.state("up")).toBe("half-open")
      expect((yield* Effect.flip(breaker.withBreaker("up")(Effect.sync(() => (reached = true)))))._tag).toBe("CircuitOpen")
      expect(reached).toBe(false)
      yield* TestClock.adjust("1 second")
      expect(yield* Fiber.join(p2)).toBe("ok")
      expect(yield* breaker.state("up")).toBe("closed")
    }))

  it.effect("slow calls count: a slow-call rate over its threshold opens it", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make({ ...small, slowCallDuration: "2 seconds", slowCallRateThreshold: 50 })
      const slow = Effect.as(Effect.sleep("3 seconds"), "ok")
      for (let i = 0; i < 2; i++) {
        const f = yield* Effect.fork(breaker.withBreaker("up")(slow))
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
      const interrupted = yield* Effect.fork(breaker.withBreaker("up")(Effect.never))
      yield* TestClock.adjust("1 second")
      yield* Fiber.interrupt(interrupted)
      expect(yield* breaker.state("up")).toBe("closed")
      yield* calls(breaker, 4, Effect.fail(new ModelError.RateLimited({ message: "429" })))
      expect(yield* breaker.state("up")).toBe("open")
      const custom = yield* CircuitBreaker.make({ ...small, countAs: ["BadRequest"] })
      yield* calls(custom, 4, Effect.fail(new ModelError.BadRequest({ message: "bad" })))
      expect(yield* custom.state("up")).toBe("open")
    }))

  it.effect("a cancelled probe frees its slot without deciding anything", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make(small)
      yield* calls(breaker, 4, fail)
      yield* TestClock.adjust("10 seconds")
      const probe = yield* Effect.fork(breaker.withBreaker("up")(Effect.never))
      yield* TestClock.adjust("1 millis")
      yield* Fiber.interrupt(probe)
      expect(yield* breaker.state("up")).toBe("half-open")
      expect(yield* breaker.withBreaker("up")(ok)).toBe("ok")
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
      const fiber = yield* Effect.fork(Effect.forEach(Array.from({ length: 199 }, (_, i) => i), (i) => Effect.exit(breaker.withBreaker("up")(outcome(i))), { concurrency: "unbounded" }))
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
      const a = yield* Effect.provideService(CircuitBreaker.make(small), BreakerStore.BreakerStore, store)
      const b = yield* Effect.provideService(CircuitBreaker.make(small), BreakerStore.BreakerStore, store)
      yield* calls(a, 4, fail)
      const error = yield* Effect.flip(b.withBreaker("up")(ok))
      expect(error._tag).toBe("CircuitOpen")
    }))
})

describe("CircuitBreaker half-open details (TestClock)", () => {
  it.effect("failure-rate rule: closes when the probes' failure rate stays under the threshold, else re-opens", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make({ ...small, halfOpenProbes: 4, halfOpenRule: "failure-rate" })
      yield* calls(breaker, 4, fail)
      yield* TestClock.adjust("10 seconds")
      yield* calls(breaker, 2, fail)
      yield* calls(breaker, 1, ok)
      expect(yield* breaker.state("up")).toBe("half-open") // 3 of 4 probes reported
      yield* calls(breaker, 1, ok) // 2 of 4 failed: 50%
      expect(yield* breaker.state("up")).toBe("open")
      yield* TestClock.adjust("20 seconds") // the second trip lasts twice as long
      yield* calls(breaker, 1, fail)
      yield* calls(breaker, 3, ok) // 1 of 4: 25%
      expect(yield* breaker.state("up")).toBe("closed")
    }))

  it.effect("a probe that never reports forfeits its slot at probeTimeout and re-opens it", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make({ ...small, probeTimeout: "1 minute" })
      yield* calls(breaker, 4, fail)
      yield* TestClock.adjust("10 seconds")
      const hung = yield* Effect.fork(breaker.withBreaker("up")(Effect.as(Effect.sleep("10 minutes"), "late")))
      yield* TestClock.adjust("59 seconds")
      expect((yield* Effect.flip(breaker.withBreaker("up")(ok)))._tag).toBe("CircuitOpen") // slot taken
      yield* TestClock.adjust("1 second")
      const error = yield* Effect.flip(breaker.withBreaker("up")(ok))
      expect(error._tag).toBe("CircuitOpen")
      expect(yield* breaker.state("up")).toBe("open")
      // Re-opened for the second trip's 20 s; the hung probe's late success changes nothing.
      expect(error.retryAfter).toEqual(Duration.seconds(20))
      yield* TestClock.adjust("10 minutes")
      expect(yield* Fiber.join(hung)).toBe("late")
      expect(yield* breaker.state("up")).toBe("half-open")
    }))

  it.effect("isAvailable is false while open and while every probe slot is taken", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make(small)
      expect(breaker.isAvailable("up")).toBe(true)
      yield* calls(breaker, 4, fail)
      expect(breaker.isAvailable("up")).toBe(false)
      yield* TestClock.adjust("10 seconds")
      expect(breaker.isAvailable("up")).toBe(true)
      const probe = yield* Effect.fork(breaker.withBreaker("up")(Effect.as(Effect.sleep("1 second"), "ok")))
      yield* TestClock.adjust("10 millis")
      expect(breaker.isAvailable("up")).toBe(false)
      expect(breaker.snapshot()).toEqual({ up: "half-open" })
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(probe)
      expect(breaker.isAvailable("up")).toBe(true)
      expect(breaker.snapshot()).toEqual({ up: "closed" })
    }))

  it.effect("a call admitted while closed that ends after the trip does not count as a probe", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make(small)
      const straggler = yield* Effect.fork(breaker.withBreaker("up")(Effect.as(Effect.sleep("15 seconds"), "ok")))
      yield* TestClock.adjust("10 millis")
      yield* calls(breaker, 4, fail)
      yield* TestClock.adjust("10 seconds")
      expect(yield* breaker.state("up")).toBe("half-open")
      yield* TestClock.adjust("5 seconds")
      yield* Fiber.join(straggler)
      expect(yield* breaker.state("up")).toBe("half-open") // its success was not a probe's
      yield* calls(breaker, 1, ok)
      expect(yield* breaker.state("up")).toBe("closed")
    }))

  it.effect("Timeout counts in every phase but total (the caller's budget, not the upstream)", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make(small)
      yield* calls(breaker, 8, Effect.fail(new ModelError.Timeout({ message: "budget", phase: "total" })))
      yield* calls(breaker, 4, Effect.fail(new ModelError.ModelNotFound({ message: "404" })))
      yield* calls(breaker, 4, Effect.fail(new ModelError.ContentRefused({ message: "policy" })))
      expect(yield* breaker.state("up")).toBe("closed")
      yield* calls(breaker, 4, Effect.fail(new ModelError.Timeout({ message: "ttft", phase: "first-token" })))
      expect(yield* breaker.state("up")).toBe("open")
    }))
})

/** A memory store that yields between read and write, so concurrent updates really conflict. */
const yieldingStore = Effect.map(BreakerStore.makeMemory, (inner) => {
  const stats = { conflicts: 0 }
  const store: BreakerStore.BreakerStore = {
    get: (key) => Effect.zipLeft(inner.get(key), Effect.yieldNow()),
    compareAndSet: (key, version, next, ttl) =>
      Effect.tap(inner.compareAndSet(key, version, next, ttl), (r) => Effect.sync(() => r._tag === "Conflict" && stats.conflicts++))
  }
  return { store, stats }
})

describe("CircuitBreaker over a store", () => {
  it.effect("many fibers recording at once through compare-and-set lose no outcome", () =>
    Effect.gen(function*() {
      const { stats, store } = yield* yieldingStore
      const breaker = yield* Effect.provideService(
        CircuitBreaker.make({ window: { kind: "count", size: 500 }, minimumCalls: 500 }),
        BreakerStore.BreakerStore,
        store
      )
      const outcome = (i: number) => Effect.zipRight(Effect.sleep(`${i % 7} millis`), i % 3 === 0 ? fail : ok)
      const fiber = yield* Effect.fork(
        Effect.forEach(Array.from({ length: 300 }, (_, i) => i), (i) => Effect.exit(breaker.withBreaker("up")(outcome(i))), {
          concurrency: "unbounded"
        })
      )
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(fiber)
      const { state } = yield* store.get("up")
      expect(state.outcomes.length).toBe(300)
      expect(state.outcomes.filter((o) => o === 1).length).toBe(100)
      expect(stats.conflicts).toBeGreaterThan(0) // the test did exercise the retry loop
    }))

  it.effect("instances sharing a store: a trip on one stops the other within syncInterval; probes are fleet-wide", () =>
    Effect.gen(function*() {
      const store = yield* BreakerStore.makeMemory
      const shared = (o: CircuitBreaker.BreakerOptionsInput) => Effect.provideService(CircuitBreaker.make(o), BreakerStore.BreakerStore, store)
      const a = yield* shared({ ...small, syncInterval: "2 seconds" })
      const b = yield* shared({ ...small, syncInterval: "2 seconds" })
      let reached = 0
      const counted = Effect.sync(() => ++reached)
      yield* b.withBreaker("up")(counted) // b sees it closed
      yield* calls(a, 4, fail)
      expect(b.isAvailable("up")).toBe(true) // b has not looked since: its view is at most syncInterval old
      yield* TestClock.adjust("2 seconds")
      expect((yield* Effect.flip(b.withBreaker("up")(counted)))._tag).toBe("CircuitOpen") // a stale view reads the store
      expect(reached).toBe(1)
      expect(b.isAvailable("up")).toBe(false)
      // Half-open: one probe (a's) in the whole fleet; b is refused meanwhile.
      yield* TestClock.adjust("8 seconds")
      const probe = yield* Effect.fork(a.withBreaker("up")(Effect.as(Effect.sleep("1 second"), "ok")))
      yield* TestClock.adjust("10 millis")
      expect((yield* Effect.flip(b.withBreaker("up")(counted)))._tag).toBe("CircuitOpen")
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(probe)
      expect(yield* b.state("up")).toBe("closed")
      yield* b.withBreaker("up")(counted)
      expect(reached).toBe(2)
    }))

  it.effect("a failing store: calls go through, and a breaker known to be open keeps refusing", () =>
    Effect.gen(function*() {
      const memory = yield* BreakerStore.makeMemory
      let down = false
      const broken = <A>(e: Effect.Effect<A, BreakerStore.BreakerStoreError>) =>
        Effect.suspend(() => (down ? Effect.fail(new BreakerStore.BreakerStoreError({ message: "connection lost" })) : e))
      const store: BreakerStore.BreakerStore = {
        get: (key) => broken(memory.get(key)),
        compareAndSet: (key, v, next, ttl) => broken(memory.compareAndSet(key, v, next, ttl))
      }
      const breaker = yield* Effect.provideService(CircuitBreaker.make({ ...small, syncInterval: 0 }), BreakerStore.BreakerStore, store)
      down = true
      expect(yield* breaker.withBreaker("up")(ok)).toBe("ok")
      down = false
      yield* calls(breaker, 4, fail)
      down = true
      expect((yield* Effect.flip(breaker.withBreaker("up")(ok)))._tag).toBe("CircuitOpen")
      expect(yield* breaker.state("up")).toBe("open")
      yield* TestClock.adjust("10 seconds")
      expect(yield* breaker.withBreaker("up")(ok)).toBe("ok")
    }))
})

describe("CircuitBreaker layer and observability", () => {
  const request: ChatCompletion.ChatRequest = { model: "m", messages: [{ role: "user", content: "x" }] }

  // Per model by default (issue #18): a breaker guards one model deployment, so the key is the
  // request context's upstream (or the fixed key) plus the request's model.
  it.scoped("the layer keys breakers by the request context's upstream and the model, or by a fixed key", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make()
      const model = yield* Policy.build(
        CircuitBreaker.layer(small).pipe(Layer.provide(Layer.succeed(LanguageModel.LanguageModel, fake.model)))
      )
      const on = (upstream: string, m = "m") => RequestContext.locally(Effect.exit(model.generate({ ...request, model: m })), { upstream })
      fake.script(...Array.from({ length: 4 }, () => ({ fail: unavailable() })))
      for (let i = 0; i < 4; i++) yield* on("a")
      expect(Exit.isSuccess(yield* on("b"))).toBe(true)
      expect(Exit.isSuccess(yield* on("a", "other-model"))).toBe(true)
      const refused = yield* on("a")
      expect(Exit.isFailure(refused) && Cause.squash(refused.cause)).toMatchObject({ _tag: "CircuitOpen", upstream: CircuitBreaker.keyOf("a", "m") })
      expect(fake.calls.length).toBe(6)

      const fixed = yield* Policy.build(
        CircuitBreaker.layer({ ...small, key: "fixed" }).pipe(Layer.provide(Layer.succeed(LanguageModel.LanguageModel, fake.model)))
      )
      fake.script(...Array.from({ length: 4 }, () => ({ fail: unavailable() })))
      for (const upstream of ["x", "y", "z", "w"]) yield* RequestContext.locally(Effect.exit(fixed.generate(request)), { upstream })
      expect((yield* Effect.flip(fixed.generate(request)))._tag).toBe("CircuitOpen")
      expect(Exit.isSuccess(yield* Effect.exit(fixed.generate({ ...request, model: "other-model" })))).toBe(true)

      // Per upstream: every model of the upstream shares one breaker.
      const perUpstream = yield* Policy.build(
        CircuitBreaker.layer({ ...small, scope: "per-upstream" }).pipe(Layer.provide(Layer.succeed(LanguageModel.LanguageModel, fake.model)))
      )
      fake.script(...Array.from({ length: 4 }, () => ({ fail: unavailable() })))
      for (let i = 0; i < 4; i++) yield* RequestContext.locally(Effect.exit(perUpstream.generate({ ...request, model: `m${i}` })), { upstream: "p" })
      const other = yield* RequestContext.locally(Effect.flip(perUpstream.generate({ ...request, model: "other-model" })), { upstream: "p" })
      expect(other).toMatchObject({ _tag: "CircuitOpen", upstream: "p" })

      // Breakers built beforehand stay readable (for a router or a health endpoint).
      const breakers = yield* CircuitBreaker.make(small)
      const shared = yield* Policy.build(
        CircuitBreaker.layerFrom(breakers).pipe(Layer.provide(Layer.succeed(LanguageModel.LanguageModel, fake.model)))
      )
      fake.script(...Array.from({ length: 4 }, () => ({ fail: unavailable() })))
      for (let i = 0; i < 4; i++) yield* RequestContext.locally(Effect.exit(shared.generate(request)), { upstream: "c" })
      expect(breakers.isAvailable(CircuitBreaker.keyOf("c", "m"))).toBe(false)
      expect(breakers.snapshot()).toEqual({ "c@m": "open" })
    }))

  it.effect("a stream counts when it ends; one that fails counts as a failure; a refused one fails at once", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make()
      const breaker = yield* CircuitBreaker.make(small)
      const model = breaker.wrap("up", fake.model)
      const stream = { ...request, stream: true }
      fake.script(...Array.from({ length: 4 }, () => ({ failAfterChunks: 2, fail: unavailable() })))
      for (let i = 0; i < 4; i++) yield* Effect.exit(Stream.runDrain(model.stream(stream)))
      expect(yield* breaker.state("up")).toBe("open")
      expect((yield* Effect.flip(Stream.runDrain(model.stream(stream))))._tag).toBe("CircuitOpen")
      expect(fake.calls.length).toBe(4)
    }))

  it.effect("metrics, a transition event and a log line per transition", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const logger = Logger.make(({ logLevel, message }) => lines.push(`${logLevel.label} ${String(message)}`))
      const breaker = yield* CircuitBreaker.make(small)
      const key = `metrics-${Math.random()}`
      const gauge = (state: string) =>
        Effect.map(Metric.value(Metric.tagged(Metric.tagged(CircuitBreaker.stateGauge, "key", key), "state", state)), (s) => s.value)
      const counter = Metric.tagged(Metric.tagged(Metric.tagged(CircuitBreaker.transitionsTotal, "key", key), "from", "closed"), "to", "open")
      yield* calls(breaker, 1, ok, key)
      expect([yield* gauge("closed"), yield* gauge("open")]).toEqual([1, 0])
      yield* calls(breaker, 3, fail, key).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
      expect([yield* gauge("closed"), yield* gauge("open")]).toEqual([0, 1])
      expect((yield* Metric.value(counter)).count).toBe(1)
      expect(lines).toEqual(["WARN circuit opened"])
    }))
})

describe("CircuitBreaker (property-based, effectful)", () => {
  it("random overlapping calls and time steps never admit more probes than allowed, and every slot comes back", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 3 }),
        fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 5, maxLength: 40 }),
        async (probes, ops) => {
          const exit = await Effect.runPromiseExit(
            Effect.gen(function*() {
              const store = yield* BreakerStore.makeMemory
              const breaker = yield* Effect.provideService(
                CircuitBreaker.make({ window: { kind: "count", size: 4 }, minimumCalls: 2, openDuration: 1_000, halfOpenProbes: probes }),
                BreakerStore.BreakerStore,
                store
              )
              // Probes are counted per half-open generation: a failed probe trips the breaker while
              // another (a hung one) may still run, and the next half-open may admit its own
              // `probes` probes beside that left-over call of an older generation.
              const running = new Map<number, number>()
              let most = 0
              const during = <A, E>(e: Effect.Effect<A, E>) =>
                Effect.gen(function*() {
                  const { generation, phase } = (yield* store.get("u")).state
                  const probing = phase === "half-open"
                  if (probing) {
                    const now = (running.get(generation) ?? 0) + 1
                    running.set(generation, now)
                    most = Math.max(most, now)
                  }
                  return yield* Effect.ensuring(
                    e,
                    Effect.sync(() => probing && running.set(generation, running.get(generation)! - 1))
                  )
                })
              const fibers: Array<Fiber.RuntimeFiber<unknown, unknown>> = []
              for (const op of ops) {
                if (op === 0) fibers.push(yield* Effect.fork(Effect.exit(breaker.withBreaker("u")(during(Effect.zipRight(Effect.sleep(300), fail))))))
                else if (op === 1) fibers.push(yield* Effect.fork(Effect.exit(breaker.withBreaker("u")(during(Effect.as(Effect.sleep(500), "ok"))))))
                else if (op === 2) fibers.push(yield* Effect.fork(Effect.exit(breaker.withBreaker("u")(during(Effect.never)))))
                else yield* TestClock.adjust(op === 3 ? 600 : 1_000)
                const { state } = yield* store.get("u")
                if (state.probes.length > probes) return yield* Effect.dieMessage(`probes ${state.probes.length}`)
              }
              if (most > probes) return yield* Effect.dieMessage(`${most} probes ran at once`)
              yield* TestClock.adjust(10_000)
              yield* Effect.forEach(fibers, Fiber.interrupt, { discard: true })
              const { state } = yield* store.get("u")
              if (state.probes.length !== 0) return yield* Effect.dieMessage(`${state.probes.length} probes left`)
            }).pipe(Effect.provide(TestContext.TestContext), Logger.withMinimumLogLevel(LogLevel.None))
          )
          expect(exit).toEqual(Exit.void)
        }
      ),
      {
        numRuns: 60,
        // Found by earlier runs: a probe fails while a hung probe of the same half-open runs on.
        examples: [[2, [0, 0, 3, 3, 3, 2, 0, 4, 3, 4, 0, 0, 0, 0, 3]], [2, [0, 0, 4, 3, 0, 2, 3, 4, 0, 4, 0, 0, 3]]]
      }
    )
  })
})
