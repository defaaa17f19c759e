import { ChatCompletion, type LanguageModel, ModelError, RequestContext, RetryAfter, StreamCommit } from "@breakwater/core"
import { Retry, RetryBudget } from "@breakwater/retry"
import { FakeLanguageModel } from "@breakwater/testing"
import { describe, expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import { pipe } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Metric from "effect/Metric"
import * as Random from "effect/Random"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"

const request: ChatCompletion.ChatRequest = { model: "gpt-test", messages: [{ role: "user", content: "hello" }] }

const unavailable = (retryAfter?: Duration.DurationInput) =>
  new ModelError.UpstreamUnavailable({ message: "503", status: 503, retryAfter: retryAfter === undefined ? undefined : Duration.decode(retryAfter) })
const rateLimited = (retryAfter?: Duration.DurationInput) =>
  new ModelError.RateLimited({ message: "429", status: 429, retryAfter: retryAfter === undefined ? undefined : Duration.decode(retryAfter) })

/** Records the attempt number each call saw in the request context. */
const spy = (model: LanguageModel.Service) => {
  const attempts: Array<number> = []
  const seen = Effect.map(RequestContext.current, (ctx) => {
    attempts.push(ctx.attempt)
  })
  const wrapped: LanguageModel.Service = {
    generate: (r, o) => Effect.zipRight(seen, model.generate(r, o)),
    stream: (r, o) => Stream.unwrap(Effect.as(seen, model.stream(r, o)))
  }
  return { model: wrapped, attempts }
}

const noBudget = { budget: false } as const

/** Runs an effect in a fresh request context, advancing the TestClock far enough for every wait. */
const run = <A, E>(effect: Effect.Effect<A, E>, ctx = RequestContext.make({ requestId: "req-1" }), advance: Duration.DurationInput = "10 minutes") =>
  Effect.gen(function*() {
    const fiber = yield* Effect.fork(Effect.provideService(effect, RequestContext.RequestContext, ctx))
    yield* TestClock.adjust(advance)
    return { exit: yield* Fiber.await(fiber), ctx }
  })

const gaps = (fake: FakeLanguageModel.FakeLanguageModel) => fake.calls.slice(1).map((c, i) => c.at - fake.calls[i]!.at)

const counter = (metric: Metric.Metric.Counter<number>, reason: string) =>
  Effect.map(Metric.value(Metric.tagged(metric, "reason", reason)), (s) => s.count)

describe("Retry: what is retried", () => {
  it.effect("a retryable failure is retried and the caller gets the success; each attempt sees its number", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make([{ fail: unavailable() }, { fail: new ModelError.ConnectionFailed({ message: "reset" }) }])
      const s = spy(fake.model)
      const model = yield* Retry.withPolicy(s.model, noBudget)
      const { exit, ctx } = yield* run(model.generate(request))
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(fake.calls.length).toBe(3)
      expect(s.attempts).toEqual([1, 2, 3])
      expect(ctx.trace.retries).toBe(2)
    }))

  it.effect("a non-retryable error is returned at once, untouched", () =>
    Effect.gen(function*() {
      const error = new ModelError.BadRequest({ message: "bad" })
      const fake = FakeLanguageModel.make([{ fail: error }])
      const model = yield* Retry.withPolicy(fake.model, noBudget)
      const fiber = yield* Effect.fork(model.generate(request))
      // No clock advance: a non-retryable error must not wait.
      const exit = yield* Fiber.await(fiber)
      expect(exit).toEqual(Exit.fail(error))
      expect(fake.calls.length).toBe(1)
    }))

  for (const error of [
    new ModelError.ContextTooLong({ message: "too long" }),
    new ModelError.QuotaExhausted({ message: "quota" }),
    new ModelError.UpstreamAuth({ message: "auth" }),
    new ModelError.Timeout({ message: "total", phase: "total" })
  ]) {
    it.effect(`${error._tag}${"phase" in error ? `(${error.phase})` : ""} is not retried`, () =>
      Effect.gen(function*() {
        const fake = FakeLanguageModel.make([{ fail: error }])
        const model = yield* Retry.withPolicy(fake.model, noBudget)
        const { exit } = yield* run(model.generate(request))
        expect(exit).toEqual(Exit.fail(error))
        expect(fake.calls.length).toBe(1)
      }))
  }

  it.effect("when retries are used up it fails with the last error and records its retry-after for the host", () =>
    Effect.gen(function*() {
      const last = rateLimited("3 seconds")
      const fake = FakeLanguageModel.make([{ fail: unavailable() }, { fail: rateLimited("1 second") }, { fail: last }, {}])
      const model = yield* Retry.withPolicy(fake.model, noBudget)
      const { exit, ctx } = yield* run(model.generate(request))
      expect(exit).toEqual(Exit.fail(last))
      expect(fake.calls.length).toBe(3)
      expect(ctx.trace.retries).toBe(2)
      expect(ctx.trace.retryAfterMillis).toBe(3000)
    }))

  it.effect("counts retries by reason and logs each with the request id, attempt, reason and delay", () =>
    Effect.gen(function*() {
      const logs: Array<{ message: unknown; annotations: Record<string, unknown> }> = []
      const logger = Logger.make(({ annotations, message }) => {
        logs.push({ message, annotations: Object.fromEntries(annotations) })
      })
      const before = yield* counter(Retry.retriesTotal, "Overloaded")
      const fake = FakeLanguageModel.make([{ fail: new ModelError.Overloaded({ message: "529", retryAfter: Duration.millis(700) }) }])
      const model = yield* Retry.withPolicy(fake.model, { ...noBudget, jitter: "none" })
      const { exit } = yield* run(model.generate(request)).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
      expect(Exit.isSuccess(exit)).toBe(true)
      expect((yield* counter(Retry.retriesTotal, "Overloaded")) - before).toBe(1)
      const line = logs.find((l) => String(l.message).includes("retrying"))
      expect(line?.annotations).toEqual({ request_id: "req-1", attempt: 2, reason: "Overloaded", delay_ms: 700 })
    }))
})

describe("Retry: backoff", () => {
  it.effect("without jitter the waits double from the base delay up to the cap", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make(Array.from({ length: 4 }, () => ({ fail: unavailable() })))
      const model = yield* Retry.withPolicy(fake.model, { ...noBudget, maxRetries: 4, baseDelay: 100, maxDelay: "300 millis", jitter: "none" })
      const { exit } = yield* run(model.generate(request))
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(gaps(fake)).toEqual([100, 200, 300, 300])
    }))

  it.effect("full jitter waits a uniform fraction of the backoff", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make(Array.from({ length: 3 }, () => ({ fail: unavailable() })))
      const model = yield* Retry.withPolicy(fake.model, { ...noBudget, maxRetries: 3, baseDelay: 1000 })
      const { exit } = yield* run(model.generate(request)).pipe(Effect.withRandom(Random.fixed([0.5, 0.25, 0.999])))
      expect(Exit.isSuccess(exit)).toBe(true)
      // 0.5 × 1000, 0.25 × 2000, 0.999 × 4000
      expect(gaps(fake)).toEqual([500, 500, 3996])
    }))

  it.effect("full jitter stays within [0, min(maxDelay, base × 2^n)) over many seeds, and varies", () =>
    Effect.gen(function*() {
      const seen = new Set<number>()
      for (let seed = 0; seed < 50; seed++) {
        const fake = FakeLanguageModel.make(Array.from({ length: 3 }, () => ({ fail: unavailable() })))
        const model = yield* Retry.withPolicy(fake.model, { ...noBudget, maxRetries: 3, baseDelay: 200, maxDelay: 500 })
        const { exit } = yield* run(model.generate(request)).pipe(Effect.withRandom(Random.make(seed)))
        expect(Exit.isSuccess(exit)).toBe(true)
        const [a, b, c] = gaps(fake) as [number, number, number]
        expect(a).toBeGreaterThanOrEqual(0)
        expect(a).toBeLessThan(200)
        expect(b).toBeLessThan(400)
        expect(c).toBeLessThan(500)
        seen.add(a)
      }
      expect(seen.size).toBeGreaterThan(25)
    }))
})

describe("Retry: provider-given delays", () => {
  // Each form goes through core's header parsing, as an adapter does, then the retry waits it
  // exactly (jitter off, backoff 10 ms below it). TestClock starts at the epoch, so an HTTP date
  // 3 s after it means "in 3 s".
  const forms: ReadonlyArray<readonly [string, Record<string, string>, number]> = [
    ["retry-after in seconds", { "retry-after": "2" }, 2000],
    ["retry-after as an HTTP date", { "retry-after": "Thu, 01 Jan 1970 00:00:03 GMT" }, 3000],
    ["retry-after-ms", { "retry-after-ms": "1500" }, 1500],
    ["x-ratelimit-reset-requests", { "x-ratelimit-reset-requests": "1s250ms", "x-ratelimit-remaining-requests": "0" }, 1250],
    ["anthropic-ratelimit-requests-reset", { "anthropic-ratelimit-requests-reset": "1970-01-01T00:00:04Z", "anthropic-ratelimit-requests-remaining": "0" }, 4000]
  ]
  for (const [name, headers, expected] of forms) {
    it.effect(`${name} is honoured exactly`, () =>
      Effect.gen(function*() {
        const retryAfter = RetryAfter.fromHeaders((h) => headers[h], 0)
        const error = ModelError.fromHttpFailure({ status: 429, message: "slow down", retryAfter })
        expect(error._tag).toBe("RateLimited")
        const fake = FakeLanguageModel.make([{ fail: error }])
        const model = yield* Retry.withPolicy(fake.model, { ...noBudget, baseDelay: 10, jitter: "none" })
        const { exit } = yield* run(model.generate(request))
        expect(Exit.isSuccess(exit)).toBe(true)
        expect(gaps(fake)).toEqual([expected])
      }))
  }

  it.effect("503 and 529 delays are honoured as well as 429", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make([
        { fail: ModelError.fromHttpFailure({ status: 503, message: "down", retryAfter: Duration.seconds(2) }) },
        { fail: ModelError.fromHttpFailure({ status: 529, message: "overloaded", retryAfter: Duration.seconds(5) }) }
      ])
      const model = yield* Retry.withPolicy(fake.model, { ...noBudget, baseDelay: 10, jitter: "none" })
      const { exit } = yield* run(model.generate(request))
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(gaps(fake)).toEqual([2000, 5000])
    }))

  it.effect("the delay is re-read from each failure, never reused from an earlier one", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make([{ fail: rateLimited("3 seconds") }, { fail: unavailable() }])
      const model = yield* Retry.withPolicy(fake.model, { ...noBudget, baseDelay: 10, jitter: "none" })
      const { exit, ctx } = yield* run(model.generate(request))
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(gaps(fake)).toEqual([3000, 20])
      expect(ctx.trace.retryAfterMillis).toBeUndefined()
    }))

  it.effect("a backoff longer than the provider's delay wins", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make([{ fail: rateLimited("100 millis") }])
      const model = yield* Retry.withPolicy(fake.model, { ...noBudget, baseDelay: 800, jitter: "none" })
      yield* run(model.generate(request))
      expect(gaps(fake)).toEqual([800])
    }))

  it.effect("a provider delay above maxRetryAfter is capped", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make([{ fail: rateLimited("10 minutes") }])
      const model = yield* Retry.withPolicy(fake.model, { ...noBudget, baseDelay: 10, jitter: "none", maxRetryAfter: "5 seconds" })
      const { exit, ctx } = yield* run(model.generate(request), undefined, "1 hour")
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(gaps(fake)).toEqual([5000])
      // The host still tells the client what the upstream asked for.
      expect(ctx.trace.retryAfterMillis).toBe(600_000)
    }))
})

describe("Retry: deadline", () => {
  it.effect("when the wait would pass the deadline it fails now with the error, without sleeping", () =>
    Effect.gen(function*() {
      const error = rateLimited("5 seconds")
      const fake = FakeLanguageModel.make([{ fail: error }])
      const model = yield* Retry.withPolicy(fake.model, noBudget)
      const ctx = RequestContext.make({ requestId: "req-d", deadline: 2000 })
      const fiber = yield* Effect.fork(Effect.provideService(model.generate(request), RequestContext.RequestContext, ctx))
      const exit = yield* Fiber.await(fiber) // no clock advance needed: it must not sleep
      expect(exit).toEqual(Exit.fail(error))
      expect(fake.calls.length).toBe(1)
      expect(ctx.trace.retries).toBe(0)
      expect(ctx.trace.retryAfterMillis).toBe(5000)
    }))

  it.effect("waits that fit before the deadline are taken; the first that does not ends it", () =>
    Effect.gen(function*() {
      const last = unavailable()
      const fake = FakeLanguageModel.make([{ fail: unavailable() }, { fail: unavailable() }, { fail: last }])
      const model = yield* Retry.withPolicy(fake.model, { ...noBudget, maxRetries: 5, baseDelay: 1000, jitter: "none" })
      // Waits would be 1 s, 2 s, 4 s: at t=3 s the third (4 s) would end past t=5 s.
      const { exit, ctx } = yield* run(model.generate(request), RequestContext.make({ deadline: 5000 }))
      expect(exit).toEqual(Exit.fail(last))
      expect(fake.calls.map((c) => c.at)).toEqual([0, 1000, 3000])
      expect(ctx.trace.retries).toBe(2)
    }))
})

describe("Retry: budget", () => {
  it.effect("under a sustained outage retries stop at the budget and errors pass through", () =>
    Effect.gen(function*() {
      const before = yield* counter(Retry.budgetExhaustedTotal, "UpstreamUnavailable")
      const outage = unavailable()
      const fake = FakeLanguageModel.make(Array.from({ length: 1000 }, () => ({ fail: outage })))
      const model = yield* Retry.withPolicy(fake.model, {
        maxRetries: 2,
        baseDelay: 0,
        jitter: "none",
        budget: { ratio: 0.2, minRetriesPerSecond: 0 }
      })
      const exits = []
      for (let i = 0; i < 100; i++) exits.push((yield* run(model.generate(request), undefined, "100 millis")).exit)
      expect(exits.every((e) => Exit.isFailure(e))).toBe(true)
      expect(exits[99]).toEqual(Exit.fail(outage))
      // Without a budget: 300 calls. With it, retries ≤ 20% of requests.
      const retries = fake.calls.length - 100
      expect(retries).toBeGreaterThanOrEqual(19)
      expect(retries).toBeLessThanOrEqual(21)
      // Every request ends on one refusal: its first retry, or its second after a granted first.
      expect((yield* counter(Retry.budgetExhaustedTotal, "UpstreamUnavailable")) - before).toBe(100)
    }))

  it.effect("the floor lets a quiet service retry a few times per second, and refills each second", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make(Array.from({ length: 1000 }, () => ({ fail: unavailable() })))
      const model = yield* Retry.withPolicy(fake.model, {
        maxRetries: 1,
        baseDelay: 0,
        jitter: "none",
        budget: { ratio: 0, minRetriesPerSecond: 3 }
      })
      for (let i = 0; i < 10; i++) yield* run(model.generate(request), undefined, 0)
      expect(fake.calls.length).toBe(13)
      yield* TestClock.adjust("1 second")
      for (let i = 0; i < 10; i++) yield* run(model.generate(request), undefined, 0)
      expect(fake.calls.length).toBe(26)
    }))

  it.effect("a store in the context is used (here one that refuses everything)", () =>
    Effect.gen(function*() {
      const asked: Array<RetryBudget.Acquire> = []
      const store: RetryBudget.RetryBudgetStore = {
        acquire: (input) => Effect.sync(() => (asked.push(input), !input.retry))
      }
      const fake = FakeLanguageModel.make([{ fail: unavailable() }])
      const model = yield* Retry.withPolicy(fake.model, { budget: { key: "route-a" } }).pipe(
        Effect.provideService(RetryBudget.RetryBudgetStore, store)
      )
      const { exit } = yield* run(model.generate(request))
      expect(Exit.isFailure(exit)).toBe(true)
      expect(fake.calls.length).toBe(1)
      expect(asked.map((a) => [a.key, a.requests, a.retry])).toEqual([["route-a", 1, false], ["route-a", 0, true]])
      expect(asked[0]!.limits).toEqual({ ratio: 0.2, minPerSecond: 10, windowMillis: 10_000 })
    }))

  it.effect("the in-memory window slides: requests older than the window no longer buy retries", () =>
    Effect.gen(function*() {
      const store = yield* RetryBudget.makeMemory
      const budget = RetryBudget.make(store, { ratio: 0.5, minRetriesPerSecond: 0, window: Duration.seconds(10), key: "k" })
      for (let i = 0; i < 4; i++) yield* budget.recordRequest
      expect(yield* budget.tryRetry).toBe(true)
      expect(yield* budget.tryRetry).toBe(true)
      expect(yield* budget.tryRetry).toBe(false)
      yield* TestClock.adjust("9 seconds")
      expect(yield* budget.tryRetry).toBe(false)
      yield* budget.recordRequest
      yield* budget.recordRequest
      expect(yield* budget.tryRetry).toBe(true) // 6 requests, 2 retries so far: 2 < 3
      yield* TestClock.adjust("1 second")
      // The first 4 requests and 2 retries left the window: 2 requests, 1 retry.
      expect(yield* budget.tryRetry).toBe(false)
      yield* budget.recordRequest
      yield* budget.recordRequest
      expect(yield* budget.tryRetry).toBe(true)
    }))

  it.effect("several layers can share one budget through RetryBudget.layerMemory", () =>
    Effect.gen(function*() {
      const fakeA = FakeLanguageModel.make(Array.from({ length: 100 }, () => ({ fail: unavailable() })))
      const fakeB = FakeLanguageModel.make(Array.from({ length: 100 }, () => ({ fail: unavailable() })))
      const options = { maxRetries: 1, baseDelay: 0, jitter: "none", budget: { ratio: 0, minRetriesPerSecond: 2 } } as const
      const [a, b] = yield* Effect.all([Retry.withPolicy(fakeA.model, options), Retry.withPolicy(fakeB.model, options)]).pipe(
        Effect.provide(RetryBudget.layerMemory)
      )
      for (let i = 0; i < 3; i++) {
        yield* run(a.generate(request), undefined, 0)
        yield* run(b.generate(request), undefined, 0)
      }
      expect(fakeA.calls.length + fakeB.calls.length).toBe(6 + 2)
    }))
})

describe("Retry: streams", () => {
  const collect = (stream: Stream.Stream<ChatCompletion.ChatCompletionChunk, ModelError.ModelError>) =>
    Effect.gen(function*() {
      const got: Array<ChatCompletion.ChatCompletionChunk> = []
      const exit = yield* Effect.exit(Stream.runForEach(stream, (c) => Effect.sync(() => got.push(c))))
      return { got, exit }
    })
  const textOf = (chunks: ReadonlyArray<ChatCompletion.ChatCompletionChunk>) =>
    chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")
  /** What the consumer got, how the stream ended, and the request context. */
  const streamed = (model: LanguageModel.Service) =>
    Effect.map(run(collect(model.stream(request))), ({ ctx, exit }) => {
      const { exit: inner, got } = (exit as Exit.Success<{ got: Array<ChatCompletion.ChatCompletionChunk>; exit: Exit.Exit<void, ModelError.ModelError> }, never>).value
      return { ctx, got, inner }
    })

  it.effect("a stream that fails before its first chunk is retried, and the consumer sees one whole stream", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make([{ fail: rateLimited("1 second"), delay: "200 millis" }])
      const s = spy(fake.model)
      const model = yield* Retry.withPolicy(s.model, { ...noBudget, jitter: "none" })
      const { exit, ctx } = yield* run(collect(model.stream(request)))
      expect(Exit.isSuccess(exit)).toBe(true)
      const { got } = (exit as Exit.Success<{ got: Array<ChatCompletion.ChatCompletionChunk> }, never>).value
      expect(textOf(got)).toBe(fake.textFor(request))
      expect(got.filter((c) => c.choices[0]?.delta.role === "assistant").length).toBe(1)
      expect(fake.calls.map((c) => c.at)).toEqual([0, 1200])
      expect(s.attempts).toEqual([1, 2])
      expect(ctx.trace.retries).toBe(1)
    }))

  it.effect("once a chunk reached the consumer, a failure passes through untouched and is not retried", () =>
    Effect.gen(function*() {
      const error = new ModelError.StreamInterrupted({ message: "reset", reason: "reset", receivedChunks: 2 })
      const fake = FakeLanguageModel.make([{ failAfterChunks: 2, fail: error }])
      const model = yield* Retry.withPolicy(fake.model, noBudget)
      const { ctx, got, inner } = yield* streamed(model)
      expect(inner).toEqual(Exit.fail(error))
      expect(got.length).toBe(3) // the role chunk and two content chunks
      expect(fake.calls.length).toBe(1)
      expect(ctx.trace.retries).toBe(0)
    }))

  it.effect("heartbeats do not count as reaching the consumer: a stream that only pinged, then failed, is retried", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make([{ fail: unavailable(), delay: "2500 millis", heartbeats: true }])
      const model = yield* Retry.withPolicy(fake.model, { ...noBudget, jitter: "none" })
      const { ctx, got, inner } = yield* streamed(model)
      expect(inner).toEqual(Exit.void)
      expect(fake.calls.length).toBe(2)
      expect(ctx.trace.retries).toBe(1)
      // The failed attempt's two pings reached the consumer, then the whole retried stream.
      expect(got.slice(0, 2).every(ChatCompletion.isHeartbeat)).toBe(true)
      expect(textOf(got)).toBe(fake.textFor(request))
      expect(got.filter((c) => c.choices[0]?.delta.role === "assistant").length).toBe(1)
    }))

  it.effect("a role-only first chunk does not commit the stream (StreamCommit): a stream that broke after it is retried", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make([{ failAfterChunks: 0, fail: unavailable() }])
      const model = yield* Retry.withPolicy(fake.model, { ...noBudget, jitter: "none" })
      const { ctx, got, inner } = yield* streamed(model)
      expect(inner).toEqual(Exit.void)
      expect(fake.calls.length).toBe(2)
      expect(ctx.trace.retries).toBe(1)
      // The failed attempt's role chunk, then the whole retried stream.
      expect(StreamCommit.commits(got[0]!)).toBe(false)
      expect(textOf(got)).toBe(fake.textFor(request))
    }))

  it.effect("heartbeats before content do not hide it: content then a failure is still not retried", () =>
    Effect.gen(function*() {
      const error = new ModelError.StreamInterrupted({ message: "reset", reason: "reset", receivedChunks: 1 })
      const fake = FakeLanguageModel.make([{ firstChunkDelay: "2500 millis", heartbeats: true, failAfterChunks: 1, fail: error }])
      const model = yield* Retry.withPolicy(fake.model, noBudget)
      const { ctx, got, inner } = yield* streamed(model)
      expect(inner).toEqual(Exit.fail(error))
      expect(got.filter(ChatCompletion.isHeartbeat).length).toBe(2)
      expect(got.some(ChatCompletion.hasContent)).toBe(true)
      expect(fake.calls.length).toBe(1)
      expect(ctx.trace.retries).toBe(0)
    }))
})

describe("Retry: as a layer and as a combinator", () => {
  it.effect("Retry.layer wraps the LanguageModel below it; pipe(model, Retry.withPolicy(options)) works too", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make([{ fail: unavailable() }, { fail: unavailable() }])
      const { LanguageModel: Tag } = yield* Effect.promise(() => import("@breakwater/core"))
      const stack = Retry.layer({ maxRetries: 1, budget: false }).pipe(Layer.provide(Layer.succeed(Tag.LanguageModel, fake.model)))
      const { exit } = yield* run(Effect.provide(Tag.generate(request), stack))
      expect(Exit.isFailure(exit)).toBe(true)
      expect(fake.calls.length).toBe(2)
      const piped = yield* pipe(fake.model, Retry.withPolicy({ budget: false }))
      const second = yield* run(piped.generate(request))
      expect(Exit.isSuccess(second.exit)).toBe(true)
    }))

  it("invalid options are reported by path", () => {
    expect(() => Effect.runSync(Retry.withPolicy(FakeLanguageModel.make().model, { maxRetries: -1 }))).toThrow(/maxRetries/)
    expect(() => Effect.runSync(Retry.withPolicy(FakeLanguageModel.make().model, { baseDelay: "soon" }))).toThrow(/baseDelay/)
  })
})
