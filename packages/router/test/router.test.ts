import { ChatCompletion, LanguageModel, ModelError, RequestContext } from "@breakwater/core"
import { Router } from "@breakwater/router"
import { FakeLanguageModel } from "@breakwater/testing"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"

const request: ChatCompletion.ChatRequest = { model: "gpt-test", messages: [{ role: "user", content: "hello" }] }

/**
 * Wraps a model to record what each call saw (the upstream in the request context, the model
 * name) and whether it was interrupted, and to add a latency that a test can change.
 */
const upstream = (steps: ReadonlyArray<FakeLanguageModel.Step> = []) => {
  const fake = FakeLanguageModel.make(steps)
  const log = { upstreams: [] as Array<string | undefined>, models: [] as Array<string>, at: [] as Array<number>, interrupted: 0, latency: 0 }
  const seen = (r: ChatCompletion.ChatRequest) =>
    Effect.map(Effect.zip(RequestContext.current, Clock.currentTimeMillis), ([ctx, now]) => {
      log.upstreams.push(ctx.upstream)
      log.models.push(r.model)
      log.at.push(now)
    })
  const pause = Effect.suspend(() => (log.latency > 0 ? Effect.sleep(Duration.millis(log.latency)) : Effect.void))
  const model: LanguageModel.Service = {
    generate: (r, o) =>
      seen(r).pipe(
        Effect.zipRight(pause),
        Effect.zipRight(fake.model.generate(r, o)),
        Effect.onInterrupt(() => Effect.sync(() => log.interrupted++))
      ),
    stream: (r, o) =>
      Stream.unwrap(Effect.as(seen(r), Stream.concat(Stream.drain(Stream.fromEffect(pause)), fake.model.stream(r, o)))).pipe(
        Stream.ensuringWith((exit) =>
          Effect.sync(() => {
            if (Exit.isInterrupted(exit)) log.interrupted++
          })
        )
      )
  }
  return { fake, log, model, calls: () => log.upstreams.length }
}

/** Runs an effect in a fresh request context, advancing the TestClock far enough for every wait. */
const run = <A, E>(effect: Effect.Effect<A, E>, advance: Duration.DurationInput = "1 minute") =>
  Effect.gen(function*() {
    const ctx = RequestContext.make({ requestId: "req-1" })
    const fiber = yield* Effect.fork(Effect.provideService(effect, RequestContext.RequestContext, ctx))
    yield* TestClock.adjust(advance)
    return { exit: yield* Fiber.await(fiber), ctx }
  })

/** Lets forked fibers run up to their first wait. */
const settle = Effect.repeatN(Effect.yieldNow(), 4)

const collect = (stream: Stream.Stream<ChatCompletion.ChatCompletionChunk, ModelError.ModelError>) =>
  Effect.map(Stream.runCollect(stream), Chunk.toReadonlyArray)

const textOf = (chunks: ReadonlyArray<ChatCompletion.ChatCompletionChunk>) =>
  chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")

const roles = (chunks: ReadonlyArray<ChatCompletion.ChatCompletionChunk>) =>
  chunks.filter((c) => c.choices[0]?.delta.role === "assistant").length

const count = (metric: Metric.Metric.Counter<number>, tags: Record<string, string>) => {
  let tagged = metric
  for (const [k, v] of Object.entries(tags)) tagged = Metric.tagged(tagged, k, v)
  return Effect.map(Metric.value(tagged), (s) => s.count)
}

const failoverErrors: ReadonlyArray<ModelError.ModelError> = [
  new ModelError.UpstreamUnavailable({ message: "503", status: 503 }),
  new ModelError.RateLimited({ message: "429", status: 429, retryAfter: Duration.seconds(3) }),
  new ModelError.Overloaded({ message: "529", status: 529 }),
  new ModelError.ConnectionFailed({ message: "refused" }),
  new ModelError.Timeout({ message: "slow", phase: "first-token" }),
  new ModelError.StreamInterrupted({ message: "reset", reason: "reset", receivedChunks: 0 }),
  new ModelError.CircuitOpen({ message: "open" }),
  new ModelError.CapacityExceeded({ message: "full" }),
  new ModelError.QuotaExhausted({ message: "spend limit" }),
  new ModelError.UpstreamAuth({ message: "401", status: 401 }),
  new ModelError.ModelNotFound({ message: "404", status: 404 }),
  new ModelError.ContextTooLong({ message: "too long" })
]

describe("Router: fallback", () => {
  it.scoped("the primary serves while it is healthy; each attempt sees its upstream in the request context", () =>
    Effect.gen(function*() {
      const a = upstream()
      const b = upstream()
      const model = yield* Router.make({ upstreams: [{ name: "a", model: a.model }, { name: "b", model: b.model }] })
      for (let i = 0; i < 3; i++) {
        const { exit, ctx } = yield* run(model.generate(request))
        expect(Exit.isSuccess(exit)).toBe(true)
        expect(ctx.trace.upstream).toBe("a")
      }
      expect(a.log.upstreams).toEqual(["a", "a", "a"])
      expect(b.calls()).toBe(0)
    }))

  for (const error of failoverErrors) {
    it.scoped(`falls over on ${error._tag} (generate and stream)`, () =>
      Effect.gen(function*() {
        const a = upstream([{ fail: error }, { fail: error }])
        const b = upstream()
        const model = yield* Router.make({ upstreams: [{ name: "a", model: a.model }, { name: "b", model: b.model }] })
        const before = yield* count(Router.fallbacksTotal, { from: "a", reason: error._tag })

        const g = yield* run(model.generate(request))
        expect(Exit.isSuccess(g.exit)).toBe(true)
        expect(g.ctx.trace.upstream).toBe("b")

        const s = yield* run(collect(model.stream(request)))
        expect(Exit.isSuccess(s.exit)).toBe(true)
        if (Exit.isSuccess(s.exit)) expect(textOf(s.exit.value)).toBe(b.fake.textFor(request))
        expect(s.ctx.trace.upstream).toBe("b")

        expect(a.calls()).toBe(2)
        expect(b.log.upstreams).toEqual(["b", "b"])
        expect((yield* count(Router.fallbacksTotal, { from: "a", reason: error._tag })) - before).toBe(2)
      }))
  }

  it.scoped("never falls over on BadRequest, even when a predicate says so", () =>
    Effect.gen(function*() {
      const bad = new ModelError.BadRequest({ message: "invalid", status: 400 })
      const a = upstream([{ fail: bad }, { fail: bad }])
      const b = upstream()
      const model = yield* Router.make({
        upstreams: [{ name: "a", model: a.model }, { name: "b", model: b.model }],
        fallbackOn: () => true
      })
      const g = yield* run(model.generate(request))
      expect(g.exit).toStrictEqual(Exit.fail(bad))
      const s = yield* run(collect(model.stream(request)))
      expect(s.exit).toStrictEqual(Exit.fail(bad))
      expect(b.calls()).toBe(0)
    }))

  it.scoped("by default does not fall over on ContentRefused or the total timeout; a tag list decides otherwise", () =>
    Effect.gen(function*() {
      const refused = new ModelError.ContentRefused({ message: "policy" })
      const total = new ModelError.Timeout({ message: "budget spent", phase: "total" })
      const a = upstream([{ fail: refused }, { fail: total }, { fail: refused }])
      const b = upstream()
      const upstreams = [{ name: "a", model: a.model }, { name: "b", model: b.model }] as const
      const model = yield* Router.make({ upstreams })
      expect((yield* run(model.generate(request))).exit).toStrictEqual(Exit.fail(refused))
      expect((yield* run(model.generate(request))).exit).toStrictEqual(Exit.fail(total))
      expect(b.calls()).toBe(0)
      const explicit = yield* Router.make({ upstreams, fallbackOn: ["ContentRefused"] })
      const r = yield* run(explicit.generate(request))
      expect(r.ctx.trace.upstream).toBe("b")
    }))

  it.scoped("once content reached the consumer, a stream failure passes through", () =>
    Effect.gen(function*() {
      const a = upstream([{ failAfterChunks: 2 }])
      const b = upstream()
      const model = yield* Router.make({ upstreams: [{ name: "a", model: a.model }, { name: "b", model: b.model }] })
      const { exit } = yield* run(collect(model.stream(request)))
      expect(Exit.isFailure(exit)).toBe(true)
      expect(b.calls()).toBe(0)
    }))

  it.scoped("a stream that broke after its role chunk but before content falls over with one role chunk downstream", () =>
    Effect.gen(function*() {
      const a = upstream([{ failAfterChunks: 0, heartbeats: true, firstChunkDelay: "2 seconds" }])
      const b = upstream()
      const model = yield* Router.make({ upstreams: [{ name: "a", model: a.model }, { name: "b", model: b.model }] })
      const { exit } = yield* run(collect(model.stream(request)))
      expect(Exit.isSuccess(exit)).toBe(true)
      if (Exit.isSuccess(exit)) {
        expect(roles(exit.value)).toBe(1)
        expect(exit.value.filter(ChatCompletion.isHeartbeat).length).toBe(2)
        expect(textOf(exit.value)).toBe(b.fake.textFor(request))
      }
    }))

  it.scoped("a usage chunk does not commit a lane (StreamCommit): a stream that broke after its role and usage falls over", () =>
    Effect.gen(function*() {
      const usage: ChatCompletion.ChatCompletionChunk = {
        id: "u", object: "chat.completion.chunk", created: 0, model: "m", choices: [], usage: { prompt_tokens: 1, completion_tokens: 0, total_tokens: 1 }
      }
      const role: ChatCompletion.ChatCompletionChunk = { ...usage, usage: undefined, choices: [{ index: 0, delta: { role: "assistant" }, finish_reason: null }] }
      const broken: LanguageModel.Service = {
        generate: () => Effect.die("not used"),
        stream: () => Stream.concat(Stream.make(role, usage), Stream.fail(new ModelError.UpstreamUnavailable({ message: "reset" })))
      }
      const b = upstream()
      const model = yield* Router.make({ upstreams: [{ name: "a", model: broken }, { name: "b", model: b.model }] })
      const { exit } = yield* run(collect(model.stream(request)))
      expect(Exit.isSuccess(exit)).toBe(true)
      if (Exit.isSuccess(exit)) {
        expect(exit.value.some((c) => c.id === "u")).toBe(false)
        expect(textOf(exit.value)).toBe(b.fake.textFor(request))
      }
    }))

  it.scoped("when every upstream fails, the last error is returned; maxAttempts bounds the chain", () =>
    Effect.gen(function*() {
      const e = (n: string) => new ModelError.UpstreamUnavailable({ message: n })
      const a = upstream([{ fail: e("a") }, { fail: e("a") }])
      const b = upstream([{ fail: e("b") }, { fail: e("b") }])
      const c = upstream([{ fail: e("c") }])
      const upstreams = [{ name: "a", model: a.model }, { name: "b", model: b.model }, { name: "c", model: c.model }] as const
      const all = yield* Router.make({ upstreams })
      expect((yield* run(all.generate(request))).exit).toStrictEqual(Exit.fail(e("c")))
      const two = yield* Router.make({ upstreams, maxAttempts: 2 })
      expect((yield* run(two.generate(request))).exit).toStrictEqual(Exit.fail(e("b")))
      expect([a.calls(), b.calls(), c.calls()]).toEqual([2, 2, 1])
    }))
})

describe("Router: model map", () => {
  it.scoped("routes by the client's model, renames it per upstream, and answers ModelNotFound when none serves it", () =>
    Effect.gen(function*() {
      const a = upstream([{ fail: new ModelError.Overloaded({ message: "busy" }) }])
      const b = upstream()
      const c = upstream()
      const model = yield* Router.make({
        upstreams: [
          { name: "a", model: a.model, models: { "gpt-test": "a-large" } },
          { name: "b", model: b.model, models: { "other": "b-other" } },
          { name: "c", model: c.model, models: { "gpt-test": "c-large" } }
        ]
      })
      const { ctx } = yield* run(model.generate(request))
      expect(ctx.trace.upstream).toBe("c")
      expect(a.log.models).toEqual(["a-large"])
      expect(c.log.models).toEqual(["c-large"])
      expect(b.calls()).toBe(0)
      const missing = yield* run(model.generate({ ...request, model: "unknown" }))
      expect(Exit.isFailure(missing.exit) && JSON.stringify(missing.exit.cause).includes("ModelNotFound")).toBe(true)
      expect(a.calls() + b.calls() + c.calls()).toBe(2)
    }))

  it.scoped("an upstream given as a layer is built once", () =>
    Effect.gen(function*() {
      const a = upstream()
      let builds = 0
      const stack = Layer.sync(LanguageModel.LanguageModel, () => {
        builds++
        return a.model
      })
      const model = yield* Router.make({ upstreams: [{ name: "a", model: stack }] })
      yield* run(model.generate(request))
      yield* run(model.generate(request))
      expect(builds).toBe(1)
      expect(a.calls()).toBe(2)
    }))
})

describe("Router: open breakers", () => {
  it.scoped("an upstream failing with CircuitOpen is passed over; isAvailable skips one without calling it", () =>
    Effect.gen(function*() {
      const open = new ModelError.CircuitOpen({ message: "open", retryAfter: Duration.seconds(30) })
      const a = upstream([{ fail: open }])
      const b = upstream()
      const viaError = yield* Router.make({ upstreams: [{ name: "a", model: a.model }, { name: "b", model: b.model }] })
      expect((yield* run(viaError.generate(request))).ctx.trace.upstream).toBe("b")
      expect(a.calls()).toBe(1)

      let aOpen = true
      const skippedBefore = yield* count(Router.attemptsTotal, { upstream: "a", outcome: "skipped" })
      const viaHook = yield* Router.make({
        upstreams: [{ name: "a", model: a.model, isAvailable: () => !aOpen }, { name: "b", model: b.model }]
      })
      expect((yield* run(viaHook.generate(request))).ctx.trace.upstream).toBe("b")
      expect((yield* run(collect(viaHook.stream(request)))).ctx.trace.upstream).toBe("b")
      expect(a.calls()).toBe(1)
      expect((yield* count(Router.attemptsTotal, { upstream: "a", outcome: "skipped" })) - skippedBefore).toBe(2)
      aOpen = false
      expect((yield* run(viaHook.generate(request))).ctx.trace.upstream).toBe("a")
    }))

  it.scoped("when every upstream is unavailable, the call fails with CircuitOpen without calling any", () =>
    Effect.gen(function*() {
      const a = upstream()
      const model = yield* Router.make({ upstreams: [{ name: "a", model: a.model, isAvailable: () => false }] })
      const { exit } = yield* run(model.generate(request))
      expect(Exit.isFailure(exit) && JSON.stringify(exit.cause).includes("CircuitOpen")).toBe(true)
      expect(a.calls()).toBe(0)
    }))
})

describe("Router: strategies", () => {
  it.scoped("weighted: the split follows the weights within statistical bounds (fixed seed), and is reproducible", () =>
    Effect.gen(function*() {
      const share = (seed: number) =>
        Effect.gen(function*() {
          const a = upstream()
          const b = upstream()
          const model = yield* Router.make({
            strategy: "weighted",
            seed,
            upstreams: [{ name: "a", model: a.model, weight: 3 }, { name: "b", model: b.model, weight: 1 }]
          })
          for (let i = 0; i < 2000; i++) yield* model.generate(request)
          return a.calls() / 2000
        })
      const first = yield* share(42)
      // Binomial(2000, 0.75): sd ≈ 0.0097; ±0.04 is beyond four sigmas.
      expect(Math.abs(first - 0.75)).toBeLessThan(0.04)
      expect(yield* share(42)).toBe(first)
      expect(Math.abs((yield* share(7)) - 0.75)).toBeLessThan(0.04)
    }))

  it.scoped("weighted: weight 0 is a backup, used only when the others fail", () =>
    Effect.gen(function*() {
      const a = upstream([{ fail: new ModelError.Overloaded({ message: "busy" }) }])
      const backup = upstream()
      const model = yield* Router.make({
        strategy: "weighted",
        seed: 1,
        upstreams: [{ name: "backup", model: backup.model, weight: 0 }, { name: "a", model: a.model }]
      })
      for (let i = 0; i < 20; i++) yield* run(model.generate(request))
      expect(a.calls()).toBe(20)
      expect(backup.calls()).toBe(1)
    }))

  it.scoped("least-latency: traffic moves off a slow upstream and back after it recovers (exploration)", () =>
    Effect.gen(function*() {
      const a = upstream()
      const b = upstream()
      a.log.latency = 100
      b.log.latency = 300
      const model = yield* Router.make({
        strategy: "least-latency",
        seed: 3,
        leastLatency: { alpha: 0.5, explorationRate: 0.1 },
        upstreams: [{ name: "b", model: b.model }, { name: "a", model: a.model }]
      })
      const phase = (n: number) =>
        Effect.gen(function*() {
          const [ca, cb] = [a.calls(), b.calls()]
          for (let i = 0; i < n; i++) yield* run(model.generate(request), "2 seconds")
          return { a: a.calls() - ca, b: b.calls() - cb }
        })
      const healthy = yield* phase(100)
      expect(healthy.a).toBeGreaterThan(80)
      a.log.latency = 1500
      yield* phase(10)
      const slow = yield* phase(100)
      expect(slow.b).toBeGreaterThan(80)
      a.log.latency = 100
      yield* phase(40)
      const recovered = yield* phase(100)
      expect(recovered.a).toBeGreaterThan(80)
    }))

  it.scoped("least-latency ranks streams by time to first content chunk, and a fast-failing upstream does not look fast", () =>
    Effect.gen(function*() {
      const a = upstream(Array.from({ length: 50 }, () => ({ firstChunkDelay: "1 second" })))
      const b = upstream(Array.from({ length: 50 }, () => ({ firstChunkDelay: "100 millis", chunkDelay: "1 second" })))
      const c = upstream(Array.from({ length: 50 }, () => ({ fail: new ModelError.ConnectionFailed({ message: "refused" }) })))
      const model = yield* Router.make({
        strategy: "least-latency",
        leastLatency: { explorationRate: 0 },
        upstreams: [{ name: "c", model: c.model }, { name: "a", model: a.model }, { name: "b", model: b.model }]
      })
      for (let i = 0; i < 10; i++) yield* run(collect(model.stream(request)))
      // Untried upstreams go first: c fails at once (its failure counts as a slow sample) and a
      // serves; then b, untried, serves and wins on time to first content even though its whole
      // stream is the slowest. Without the failure penalty, c would lead every time.
      expect(c.calls()).toBe(1)
      expect(a.calls()).toBe(1)
      expect(b.calls()).toBe(9)
    }))

  it.scoped("least-in-flight: a new attempt goes to the upstream with the fewest in flight", () =>
    Effect.gen(function*() {
      const a = upstream()
      const b = upstream()
      a.log.latency = 10_000
      b.log.latency = 10_000
      const model = yield* Router.make({
        strategy: "least-in-flight",
        seed: 9,
        upstreams: [{ name: "a", model: a.model }, { name: "b", model: b.model }]
      })
      const fibers = []
      for (let i = 0; i < 6; i++) {
        fibers.push(yield* Effect.fork(model.generate(request)))
        yield* settle
      }
      expect([a.calls(), b.calls()]).toEqual([3, 3])
      yield* TestClock.adjust("10 seconds")
      for (const f of fibers) yield* Fiber.join(f)
      // With one upstream busy, every next call goes to the other.
      a.log.latency = 60_000
      b.log.latency = 60_000
      const slow = yield* Effect.fork(model.generate(request))
      yield* settle
      a.log.latency = 0
      b.log.latency = 0
      const busy = a.calls() === 4 ? a : b
      const idle = busy === a ? b : a
      for (let i = 0; i < 3; i++) yield* model.generate(request)
      expect([busy.calls(), idle.calls()]).toEqual([4, 6])
      yield* Fiber.interrupt(slow)
    }))
})

describe("Router: hedging", () => {
  it.scoped("generate: a slow first attempt is hedged; the faster upstream wins and the slower is interrupted", () =>
    Effect.gen(function*() {
      const a = upstream([{ delay: "5 seconds" }])
      const b = upstream([{ delay: "200 millis" }])
      const model = yield* Router.make({
        hedging: { delay: "500 millis" },
        upstreams: [{ name: "a", model: a.model }, { name: "b", model: b.model }]
      })
      const ctx = RequestContext.make({ requestId: "hedge-1" })
      const fiber = yield* Effect.fork(Effect.provideService(model.generate(request), RequestContext.RequestContext, ctx))
      yield* TestClock.adjust("700 millis")
      const exit = yield* Fiber.await(fiber)
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(ctx.trace.upstream).toBe("b")
      expect(ctx.trace.hedged).toBe(true)
      expect(b.log.at[0]).toBe(500)
      expect(a.log.interrupted).toBe(1)
    }))

  it.scoped("stream: the first to produce content wins; the other's stream is interrupted; one role chunk", () =>
    Effect.gen(function*() {
      const a = upstream([{ firstChunkDelay: "5 seconds" }])
      const b = upstream([{ firstChunkDelay: "100 millis" }])
      const model = yield* Router.make({
        hedging: { delay: "1 second" },
        upstreams: [{ name: "ha", model: a.model }, { name: "hb", model: b.model }]
      })
      const cancelled = yield* count(Router.attemptsTotal, { upstream: "ha", outcome: "cancelled" })
      const won = yield* count(Router.hedgesTotal, { outcome: "won" })
      const { exit, ctx } = yield* run(collect(model.stream(request)))
      expect((yield* count(Router.attemptsTotal, { upstream: "ha", outcome: "cancelled" })) - cancelled).toBe(1)
      expect((yield* count(Router.hedgesTotal, { outcome: "won" })) - won).toBe(1)
      expect(Exit.isSuccess(exit)).toBe(true)
      if (Exit.isSuccess(exit)) {
        expect(textOf(exit.value)).toBe(b.fake.textFor(request))
        expect(roles(exit.value)).toBe(1)
      }
      expect(ctx.trace.upstream).toBe("hb")
      expect(ctx.trace.hedged).toBe(true)
      expect(a.log.interrupted).toBe(1)
      expect(b.log.interrupted).toBe(0)
    }))

  it.scoped("stream: when the first attempt produces content before the delay, no hedge starts", () =>
    Effect.gen(function*() {
      const a = upstream([{ firstChunkDelay: "200 millis", chunkDelay: "1 second" }])
      const b = upstream()
      const model = yield* Router.make({
        hedging: { delay: "1 second" },
        upstreams: [{ name: "a", model: a.model }, { name: "b", model: b.model }]
      })
      const { exit, ctx } = yield* run(collect(model.stream(request)))
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(ctx.trace.hedged).toBe(false)
      expect(ctx.trace.upstream).toBe("a")
      expect(b.calls()).toBe(0)
    }))

  it.scoped("the original attempt may still win the race; the hedge is then interrupted", () =>
    Effect.gen(function*() {
      const a = upstream([{ firstChunkDelay: "1200 millis" }])
      const b = upstream([{ firstChunkDelay: "5 seconds" }])
      const model = yield* Router.make({
        hedging: { delay: "1 second" },
        upstreams: [{ name: "a", model: a.model }, { name: "b", model: b.model }]
      })
      const { ctx } = yield* run(collect(model.stream(request)))
      expect(ctx.trace.hedged).toBe(true)
      expect(ctx.trace.upstream).toBe("a")
      expect(b.log.interrupted).toBe(1)
    }))

  it.scoped("a hedge that fails leaves the race to the original attempt", () =>
    Effect.gen(function*() {
      const a = upstream([{ delay: "2 seconds" }])
      const b = upstream([{ fail: new ModelError.UpstreamUnavailable({ message: "503" }) }])
      const model = yield* Router.make({
        hedging: { delay: "500 millis" },
        upstreams: [{ name: "a", model: a.model }, { name: "b", model: b.model }]
      })
      const { exit, ctx } = yield* run(model.generate(request))
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(ctx.trace.upstream).toBe("a")
    }))

  it.scoped("the hedging budget bounds how many requests are hedged", () =>
    Effect.gen(function*() {
      const a = upstream(Array.from({ length: 20 }, () => ({ delay: "5 seconds" })))
      const b = upstream()
      const model = yield* Router.make({
        hedging: { delay: "500 millis", budget: { ratio: 0.1 } },
        upstreams: [{ name: "a", model: a.model }, { name: "b", model: b.model }]
      })
      const refusedBefore = yield* count(Router.hedgesTotal, { outcome: "refused" })
      const ctxs = Array.from({ length: 20 }, (_, i) => RequestContext.make({ requestId: `r${i}` }))
      const fibers = []
      for (const ctx of ctxs) fibers.push(yield* Effect.fork(Effect.provideService(model.generate(request), RequestContext.RequestContext, ctx)))
      yield* TestClock.adjust("10 seconds")
      for (const f of fibers) yield* Fiber.join(f)
      expect(ctxs.filter((c) => c.trace.hedged).length).toBe(2)
      expect(b.calls()).toBe(2)
      expect((yield* count(Router.hedgesTotal, { outcome: "refused" })) - refusedBefore).toBe(18)
    }))

  it.scoped("a percentile delay follows the first upstream's measured latency", () =>
    Effect.gen(function*() {
      const a = upstream()
      const b = upstream()
      a.log.latency = 100
      const model = yield* Router.make({
        hedging: { delay: { percentile: 95 } },
        upstreams: [{ name: "a", model: a.model }, { name: "b", model: b.model }]
      })
      for (let i = 0; i < 19; i++) yield* run(model.generate(request), "1 second")
      a.log.latency = 3000
      // 19 samples: below minSamples (20), no hedge.
      expect((yield* run(model.generate(request), "5 seconds")).ctx.trace.hedged).toBe(false)
      a.log.latency = 100
      const { ctx } = yield* run(Effect.zipRight(Effect.sync(() => (a.log.latency = 3000)), model.generate(request)), "5 seconds")
      expect(ctx.trace.hedged).toBe(true)
      expect(ctx.trace.upstream).toBe("b")
      // p95 over 19 × 100 ms and 1 × 3 s is 100 ms.
      expect(b.log.at[0]! - a.log.at[a.log.at.length - 1]!).toBe(100)
    }))
})

describe("Router: bulkhead", () => {
  it.scoped("rejects beyond maxConcurrent + maxQueue with CapacityExceeded; the queued call runs when a slot frees", () =>
    Effect.gen(function*() {
      const a = upstream()
      a.log.latency = 1000
      const model = yield* Router.make({ upstreams: [{ name: "a", model: a.model, maxConcurrent: 1, maxQueue: 1 }] })
      const first = yield* Effect.fork(model.generate(request))
      const second = yield* Effect.fork(model.generate(request))
      yield* settle
      const third = yield* Effect.exit(model.generate(request))
      expect(Exit.isFailure(third) && JSON.stringify(third.cause).includes("CapacityExceeded")).toBe(true)
      expect(a.calls()).toBe(1)
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(first)
      expect(a.calls()).toBe(2)
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(second)
    }))

  it.scoped("a full upstream makes the router move on (generate and stream); the permit is held for a stream's life", () =>
    Effect.gen(function*() {
      const a = upstream([{ chunkDelay: "1 second" }])
      const b = upstream()
      const model = yield* Router.make({
        upstreams: [{ name: "a", model: a.model, maxConcurrent: 1 }, { name: "b", model: b.model }]
      })
      const ctx = RequestContext.make()
      const long = yield* Effect.fork(Effect.provideService(collect(model.stream(request)), RequestContext.RequestContext, ctx))
      yield* TestClock.adjust("1 second")
      expect(a.calls()).toBe(1)
      expect((yield* run(model.generate(request), "0 millis")).ctx.trace.upstream).toBe("b")
      expect((yield* run(collect(model.stream(request)), "0 millis")).ctx.trace.upstream).toBe("b")
      yield* TestClock.adjust("1 minute")
      yield* Fiber.join(long)
      expect((yield* run(model.generate(request))).ctx.trace.upstream).toBe("a")
    }))
})

describe("Router: options", () => {
  it.effect("invalid options are a defect that names the problem", () =>
    Effect.gen(function*() {
      const a = upstream()
      const exit = yield* Effect.exit(Effect.scoped(Router.make({ upstreams: [{ name: "a", model: a.model, weight: -1 }] })))
      expect(Exit.isFailure(exit) && String(JSON.stringify(exit.cause)).includes("weight")).toBe(true)
      const twice = yield* Effect.exit(Effect.scoped(Router.make({ upstreams: [{ name: "a", model: a.model }, { name: "a", model: a.model }] })))
      expect(Exit.isFailure(twice)).toBe(true)
    }))
})


describe("Router: an upstream that failed this request goes last", () => {
  it.effect("a retried or resumed call starts on another upstream", () =>
    Effect.gen(function*() {
      const a = FakeLanguageModel.make()
      const b = FakeLanguageModel.make()
      const model = yield* Effect.scoped(Router.make({ upstreams: [{ name: "a", model: a.model }, { name: "b", model: b.model }] }))
      const ctx = RequestContext.make({ requestId: "r" })
      // The trace names failed targets (upstream@model): one upstream may serve several models.
      ctx.trace.failed.push("a@m")
      const request: ChatCompletion.ChatRequest = { model: "m", messages: [{ role: "user", content: "x" }] }
      yield* Effect.provideService(model.generate(request), RequestContext.RequestContext, ctx)
      expect(a.calls).toHaveLength(0)
      expect(b.calls).toHaveLength(1)
      // A fresh request still starts on the first upstream.
      yield* Effect.provideService(model.generate(request), RequestContext.RequestContext, RequestContext.make({ requestId: "s" }))
      expect(a.calls).toHaveLength(1)
    }))
})
