import { ChatCompletion, type LanguageModel, ModelError, RequestContext } from "@breakwater/core"
import { FakeLanguageModel } from "@breakwater/testing"
import { AttemptTimeout, Deadline } from "@breakwater/timeout"
import { describe, expect, it } from "@effect/vitest"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import { pipe } from "effect/Function"
import * as Metric from "effect/Metric"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"

const request: ChatCompletion.ChatRequest = { model: "gpt-test", messages: [{ role: "user", content: "hello" }] }

const TestClockNow = Effect.clockWith((clock) => clock.currentTimeMillis)

/**
 * Records the deadline each call saw, and whether the call below was cancelled: a `generate`
 * interrupted, or a stream released (its finalizers run; an adapter's closes the socket).
 */
const spy = (model: LanguageModel.Service) => {
  const deadlines: Array<number | undefined> = []
  const cancelledAt: Array<number> = []
  const seen = Effect.map(RequestContext.current, (ctx) => {
    deadlines.push(ctx.deadline)
  })
  const onInterrupt = () => Effect.flatMap(TestClockNow, (now) => Effect.sync(() => void cancelledAt.push(now)))
  const wrapped: LanguageModel.Service = {
    generate: (r, o) => Effect.onInterrupt(Effect.zipRight(seen, model.generate(r, o)), onInterrupt),
    stream: (r, o) => Stream.ensuring(Stream.unwrap(Effect.as(seen, model.stream(r, o))), onInterrupt())
  }
  return { model: wrapped, deadlines, cancelledAt }
}

interface Outcome<A> {
  readonly exit: Exit.Exit<A, ModelError.ModelError>
  readonly at: number
}

/** Forks the effect, advances the TestClock by `advance`, and reports how it ended and when. */
const run = <A>(
  effect: Effect.Effect<A, ModelError.ModelError>,
  advance: Duration.DurationInput = "10 minutes",
  ctx = RequestContext.make({ requestId: "req-t" })
) =>
  Effect.gen(function*() {
    let at = -1
    const fiber = yield* Effect.fork(
      Effect.provideService(effect, RequestContext.RequestContext, ctx).pipe(
        Effect.onExit(() => Effect.map(TestClockNow, (now) => void (at = now)))
      )
    )
    yield* TestClock.adjust(advance)
    const exit = yield* Fiber.await(fiber)
    return { exit, at } as Outcome<A>
  })


const collect = (stream: Stream.Stream<ChatCompletion.ChatCompletionChunk, ModelError.ModelError>, into: Array<ChatCompletion.ChatCompletionChunk>) =>
  Stream.runForEach(stream, (c) => Effect.sync(() => void into.push(c)))

const failure = <A>(outcome: Outcome<A>): ModelError.ModelError => {
  const exit = outcome.exit
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
  if (error === undefined) throw new Error(`expected a plain failure, got ${exit.cause._tag}`)
  return error
}

const timeouts = (phase: ModelError.TimeoutPhase) =>
  Effect.map(Metric.value(Metric.tagged(AttemptTimeout.timeoutsTotal, "phase", phase)), (s) => s.count)

describe("Deadline", () => {
  it.effect("sets the deadline below it to now + total, bounds generate by it and cancels the call", () =>
    Effect.gen(function*() {
      yield* TestClock.adjust("1 second")
      const fake = FakeLanguageModel.make([{ delay: "10 seconds" }])
      const s = spy(fake.model)
      const model = yield* Deadline.withPolicy(s.model, { total: "2 seconds" })
      const before = yield* timeouts("total")
      const outcome = yield* run(model.generate(request))
      const error = failure(outcome)
      expect(error).toBeInstanceOf(ModelError.Timeout)
      expect((error as ModelError.Timeout).phase).toBe("total")
      expect(error.retryable).toBe(false)
      expect(outcome.at).toBe(3000)
      expect(s.deadlines).toEqual([3000])
      expect(s.cancelledAt).toEqual([3000])
      expect((yield* timeouts("total")) - before).toBe(1)
    }))

  it.effect("keeps an earlier outer deadline; the inner layers see the earlier one", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make([{ delay: "10 seconds" }])
      const s = spy(fake.model)
      const model = yield* Deadline.withPolicy(s.model, { total: "1 minute" })
      const outcome = yield* run(model.generate(request), "10 minutes", RequestContext.make({ deadline: 4000 }))
      expect((failure(outcome) as ModelError.Timeout).phase).toBe("total")
      expect(outcome.at).toBe(4000)
      expect(s.deadlines).toEqual([4000])
    }))

  it.effect("a call that finishes in time is untouched", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make([{ delay: "1 second" }])
      const model = yield* Deadline.withPolicy(fake.model, { total: "2 seconds" })
      const outcome = yield* run(model.generate(request))
      expect(Exit.isSuccess(outcome.exit)).toBe(true)
      expect(outcome.at).toBe(1000)
    }))

  it.effect("bounds the whole stream, not the gap between chunks", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make([{ chunkDelay: "1 second", words: 20 }])
      const s = spy(fake.model)
      const model = yield* Deadline.withPolicy(s.model, { total: "5500 millis" })
      const got: Array<ChatCompletion.ChatCompletionChunk> = []
      const outcome = yield* run(collect(model.stream(request), got))
      expect((failure(outcome) as ModelError.Timeout).phase).toBe("total")
      expect(outcome.at).toBe(5500)
      expect(got.length).toBe(1 + 6) // the role chunk, content at 0, 1, …, 5 s
      expect(s.cancelledAt).toEqual([5500])
    }))

  it.effect("a request whose outer deadline already passed fails at once", () =>
    Effect.gen(function*() {
      yield* TestClock.adjust("5 seconds")
      const fake = FakeLanguageModel.make()
      const model = yield* pipe(fake.model, Deadline.withPolicy({ total: "1 minute" }))
      const outcome = yield* run(model.generate(request), "0 millis", RequestContext.make({ deadline: 4000 }))
      expect((failure(outcome) as ModelError.Timeout).phase).toBe("total")
      expect(fake.calls.length).toBe(0)
    }))
})

describe("AttemptTimeout: generate", () => {
  it.effect("headers bounds the whole response and the error is a retryable Timeout(headers)", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make([{ delay: "40 seconds" }])
      const s = spy(fake.model)
      const model = yield* AttemptTimeout.withPolicy(s.model, { headers: "30 seconds" })
      const before = yield* timeouts("headers")
      const outcome = yield* run(model.generate(request))
      const error = failure(outcome)
      expect(error).toBeInstanceOf(ModelError.Timeout)
      expect((error as ModelError.Timeout).phase).toBe("headers")
      expect(error.retryable).toBe(true)
      expect(outcome.at).toBe(30_000)
      expect(s.cancelledAt).toEqual([30_000])
      expect((yield* timeouts("headers")) - before).toBe(1)
    }))

  it.effect("is capped by the deadline left, and then says the deadline fired", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make([{ delay: "40 seconds" }])
      const model = yield* AttemptTimeout.withPolicy(fake.model, { headers: "30 seconds" })
      const outcome = yield* run(model.generate(request), "10 minutes", RequestContext.make({ deadline: 10_000 }))
      expect((failure(outcome) as ModelError.Timeout).phase).toBe("total")
      expect(outcome.at).toBe(10_000)
    }))
})

describe("AttemptTimeout: streams", () => {
  it.effect("headers fires while nothing at all arrived: Timeout(headers)", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make([{ delay: "1 minute" }])
      const model = yield* AttemptTimeout.withPolicy(fake.model, { headers: "10 seconds", firstToken: "20 seconds", idle: "5 seconds" })
      const outcome = yield* run(collect(model.stream(request), []))
      const error = failure(outcome) as ModelError.Timeout
      expect(error._tag).toBe("Timeout")
      expect(error.phase).toBe("headers")
      expect(outcome.at).toBe(10_000)
    }))

  it.effect("first-token fires before any chunk when it is the tighter limit: Timeout(first-token)", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make([{ delay: "1 minute" }])
      const model = yield* AttemptTimeout.withPolicy(fake.model, { headers: "30 seconds", firstToken: "20 seconds" })
      const outcome = yield* run(collect(model.stream(request), []))
      const error = failure(outcome) as ModelError.Timeout
      expect(error._tag).toBe("Timeout")
      expect(error.phase).toBe("first-token")
      expect(outcome.at).toBe(20_000)
    }))

  it.effect("heartbeats keep the stream alive but are not a first token", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make([{ delay: "1 minute", heartbeats: true }])
      const model = yield* AttemptTimeout.withPolicy(fake.model, { headers: "2 seconds", firstToken: "20 seconds", idle: "3 seconds" })
      const before = yield* timeouts("first-token")
      const got: Array<ChatCompletion.ChatCompletionChunk> = []
      const outcome = yield* run(collect(model.stream(request), got))
      const error = failure(outcome)
      // Neither headers (2 s) nor idle (3 s) fired: a heartbeat came every second.
      expect(outcome.at).toBe(20_000)
      expect(error).toBeInstanceOf(ModelError.StreamInterrupted)
      const interrupted = error as ModelError.StreamInterrupted
      expect(interrupted.reason).toBe("idle-timeout")
      expect(interrupted.receivedChunks).toBe(got.length)
      expect(got.length).toBeGreaterThan(0)
      expect(got.every(ChatCompletion.isHeartbeat)).toBe(true)
      expect((interrupted.cause as ModelError.Timeout).phase).toBe("first-token")
      expect((yield* timeouts("first-token")) - before).toBe(1)
    }))

  it.effect("a role-only delta is not a first token either", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make([{ firstChunkDelay: "1 minute" }])
      const model = yield* AttemptTimeout.withPolicy(fake.model, { firstToken: "15 seconds", idle: "30 seconds" })
      const got: Array<ChatCompletion.ChatCompletionChunk> = []
      const outcome = yield* run(collect(model.stream(request), got))
      const error = failure(outcome) as ModelError.StreamInterrupted
      expect(outcome.at).toBe(15_000)
      expect(got.length).toBe(1)
      expect(error.receivedChunks).toBe(1)
      expect((error.cause as ModelError.Timeout).phase).toBe("first-token")
    }))

  it.effect("idle turns a stalled stream into StreamInterrupted(idle-timeout) with what was received, and cancels it", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make([{ stallAfterChunks: 3, chunkDelay: "2 seconds" }])
      const s = spy(fake.model)
      const model = yield* AttemptTimeout.withPolicy(s.model, { idle: "10 seconds" })
      const before = yield* timeouts("idle")
      const got: Array<ChatCompletion.ChatCompletionChunk> = []
      const outcome = yield* run(collect(model.stream(request), got))
      const error = failure(outcome) as ModelError.StreamInterrupted
      expect(error._tag).toBe("StreamInterrupted")
      expect(error.reason).toBe("idle-timeout")
      expect(error.receivedChunks).toBe(4) // the role chunk and three content chunks
      expect(got.length).toBe(4)
      expect((error.cause as ModelError.Timeout).phase).toBe("idle")
      // Last chunk at 4 s (content at 0, 2, 4 s), then 10 s of silence.
      expect(outcome.at).toBe(14_000)
      expect(s.cancelledAt).toEqual([14_000])
      expect((yield* timeouts("idle")) - before).toBe(1)
    }))

  it.effect("idle is measured from the first chunk even when headers is longer (the timer re-arms for it)", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make([{ delay: "1 second", stallAfterChunks: 1 }])
      const model = yield* AttemptTimeout.withPolicy(fake.model, { headers: "30 seconds", firstToken: "30 seconds", idle: "5 seconds" })
      const outcome = yield* run(collect(model.stream(request), []))
      const error = failure(outcome) as ModelError.StreamInterrupted
      expect((error.cause as ModelError.Timeout).phase).toBe("idle")
      expect(outcome.at).toBe(6000)
    }))

  it.effect("a stream whose gaps stay under idle completes, however long it runs in all", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make([{ chunkDelay: "9 seconds", words: 12 }])
      const model = yield* AttemptTimeout.withPolicy(fake.model, { headers: "10 seconds", firstToken: "10 seconds", idle: "10 seconds" })
      const got: Array<ChatCompletion.ChatCompletionChunk> = []
      const outcome = yield* run(collect(model.stream(request), got))
      expect(Exit.isSuccess(outcome.exit)).toBe(true)
      expect(outcome.at).toBe(99_000)
      expect(got.map((c) => c.choices[0]?.delta.content ?? "").join("")).toBe(fake.textFor(request))
    }))

  it.effect("every stream limit is capped by the deadline left: Timeout(total)", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make([{ stallAfterChunks: 2 }])
      const model = yield* AttemptTimeout.withPolicy(fake.model, { idle: "30 seconds" })
      const outcome = yield* run(collect(model.stream(request), []), "10 minutes", RequestContext.make({ deadline: 5000 }))
      const error = failure(outcome) as ModelError.Timeout
      expect(error._tag).toBe("Timeout")
      expect(error.phase).toBe("total")
      expect(outcome.at).toBe(5000)
    }))

  it.effect("the attempt's upstream is named in the error", () =>
    Effect.gen(function*() {
      const fake = FakeLanguageModel.make([{ delay: "1 minute" }])
      const model = yield* AttemptTimeout.withPolicy(fake.model, { headers: "1 second" })
      const ctx = { ...RequestContext.make(), upstream: "openai-east" }
      const outcome = yield* run(collect(model.stream(request), []), "10 minutes", ctx)
      const error = failure(outcome)
      expect(error.upstream).toBe("openai-east")
      expect(error.message).toMatch(/openai-east.*headers/)
    }))
})

describe("AttemptTimeout and a slow consumer (issue #17)", () => {
  const chunk = (i: number): ChatCompletion.ChatCompletionChunk => ({
    id: "c",
    object: "chat.completion.chunk",
    created: 0,
    model: "m",
    choices: [{ index: 0, delta: { content: `t${i} ` }, finish_reason: null }]
  })

  it.effect("the source is held back while the consumer does not read, and that pause is not idleness", () =>
    Effect.gen(function*() {
      let produced = 0
      const source: LanguageModel.Service = {
        generate: () => Effect.die("unused"),
        stream: () =>
          Stream.fromIterable(Array.from({ length: 100 }, (_, i) => chunk(i))).pipe(
            Stream.rechunk(1),
            Stream.tap(() => Effect.sync(() => void produced++))
          )
      }
      const model = yield* AttemptTimeout.withPolicy(source, { headers: "10 seconds", firstToken: "10 seconds", idle: "10 seconds" })
      const ctx = RequestContext.make({ requestId: "req-slow" })
      yield* Effect.scoped(Effect.gen(function*() {
        const pull = yield* Effect.provideService(Stream.toPull(model.stream(request)), RequestContext.RequestContext, ctx)
        const first = yield* Effect.provideService(pull, RequestContext.RequestContext, ctx)
        expect(first.length).toBeGreaterThan(0)
        // The consumer stops reading for ten minutes, sixty idle limits.
        yield* TestClock.adjust("10 minutes")
        // Held back: a bounded read-ahead, not the whole source.
        expect(produced).toBeLessThan(20)
        let total = first.length
        while (true) {
          const next = yield* Effect.either(Effect.provideService(pull, RequestContext.RequestContext, ctx))
          if (next._tag === "Left") {
            // The end of the stream (`None`), not a timeout.
            expect(next.left._tag).toBe("None")
            break
          }
          total += next.right.length
        }
        expect(total).toBe(100)
      }))
    }))
})

describe("time limits on generate for a model that honours the context's signal (no race)", () => {
  /**
   * A model like the adapters: its "I/O" waits until the request context's signal aborts, then
   * fails with the signal's reason, as `AdapterKit.generateCall` does. It records whether it was
   * interrupted (what a race would do) or stopped by the signal.
   */
  const honouring = () => {
    const seen: Array<{ readonly aborted: boolean; readonly reason: unknown }> = []
    let interrupted = 0
    const model: LanguageModel.Service = {
      honoursSignal: true,
      generate: () =>
        Effect.flatMap(RequestContext.current, (ctx) =>
          Effect.onInterrupt(
            Effect.async<ChatCompletion.ChatCompletion, ModelError.ModelError>((resume) => {
              const signal = ctx.signal!
              signal.addEventListener("abort", () => {
                seen.push({ aborted: signal.aborted, reason: signal.reason })
                resume(Effect.fail(signal.reason as ModelError.ModelError))
              }, { once: true })
            }),
            () => Effect.sync(() => void interrupted++)
          )),
      stream: () => Stream.die("unused")
    }
    return { model, seen, interrupted: () => interrupted }
  }

  it.effect("Deadline: the deadline aborts the call's I/O through the signal with a total timeout, at the deadline", () =>
    Effect.gen(function*() {
      const fake = honouring()
      const model = yield* Deadline.withPolicy(fake.model, { total: "5 seconds" })
      expect(model.honoursSignal).toBe(true)
      const outcome = yield* run(model.generate(request))
      const error = failure(outcome) as ModelError.Timeout
      expect(error._tag).toBe("Timeout")
      expect(error.phase).toBe("total")
      expect(outcome.at).toBe(5_000)
      expect(fake.seen).toHaveLength(1)
      expect((fake.seen[0]!.reason as ModelError.Timeout).phase).toBe("total")
      expect(fake.interrupted()).toBe(0)
    }))

  it.effect("AttemptTimeout: the headers limit aborts through the signal with Timeout(headers); under a deadline, the tighter one says why", () =>
    Effect.gen(function*() {
      const fake = honouring()
      const attempt = yield* AttemptTimeout.withPolicy(fake.model, { headers: "2 seconds" })
      const first = yield* run(attempt.generate(request))
      expect((failure(first) as ModelError.Timeout).phase).toBe("headers")
      expect(first.at).toBe(2_000)
      const stacked = yield* Deadline.withPolicy(yield* AttemptTimeout.withPolicy(fake.model, { headers: "20 seconds" }), { total: "3 seconds" })
      const startedAt = yield* TestClockNow
      const second = yield* run(stacked.generate(request))
      expect((failure(second) as ModelError.Timeout).phase).toBe("total")
      expect(second.at - startedAt).toBe(3_000)
      expect(fake.interrupted()).toBe(0)
    }))
})
