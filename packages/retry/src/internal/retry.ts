import { type ChatCompletion, LanguageModel, ModelError, RequestContext, StreamCommit, TaggedMetric } from "@breakwater/core"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Random from "effect/Random"
import type { RetryOptions } from "../Retry.js"
import type { RetryBudget } from "../RetryBudget.js"

export const retriesTotal = Metric.counter("breakwater_retries_total", {
  description: "Retries made by the retry policy, by the reason (error tag) of the failed attempt",
  incremental: true
})

export const budgetExhaustedTotal = Metric.counter("breakwater_retry_budget_exhausted_total", {
  description: "Retries the retry budget refused, by the reason (error tag) of the failed attempt",
  incremental: true
})

const retriesFor = TaggedMetric.byValue(retriesTotal, "reason")
const refusalsFor = TaggedMetric.byValue(budgetExhaustedTotal, "reason")

type Ctx = RequestContext.RequestContextShape

/** The backoff before retry number `retry` (1-based), before jitter. */
export const backoffMillis = (options: RetryOptions, retry: number): number =>
  Math.min(Duration.toMillis(options.maxDelay), Duration.toMillis(options.baseDelay) * 2 ** (retry - 1))

export const wrap = (model: LanguageModel.Service, options: RetryOptions, budget: RetryBudget | undefined): LanguageModel.Service => {
  const maxRetries = options.maxRetries
  const maxRetryAfter = Duration.toMillis(options.maxRetryAfter)
  const fullJitter = options.jitter === "full"
  const retryOn = options.retryOn

  /**
   * Decides what follows a failed attempt: succeeds with the wait (ms) before the next attempt,
   * or fails with the error itself when it must not be retried.
   */
  const decide = (error: ModelError.ModelError, attempt: number, ctx: Ctx): Effect.Effect<number, ModelError.ModelError> =>
    Effect.gen(function*() {
      // Read from this failure only: a delay from an earlier attempt is stale.
      const retryAfter = ModelError.retryAfterOf(error)
      const retryAfterMillis = retryAfter === undefined ? undefined : Duration.toMillis(retryAfter)
      ctx.trace.retryAfterMillis = retryAfterMillis
      if (!error.retryable || attempt > maxRetries || (retryOn !== undefined && !retryOn(error))) return yield* Effect.fail(error)
      let wait = backoffMillis(options, attempt)
      if (fullJitter) wait = Math.floor(wait * (yield* Random.next))
      if (retryAfterMillis !== undefined) wait = Math.max(wait, Math.min(retryAfterMillis, maxRetryAfter))
      const annotations = { request_id: ctx.requestId, attempt: attempt + 1, reason: error._tag, delay_ms: wait }
      if (ctx.deadline !== undefined && (yield* Clock.currentTimeMillis) + wait >= ctx.deadline) {
        ctx.observer?.event({ _tag: "RetryRefused", attempt, reason: error._tag, why: "deadline" })
        yield* Effect.annotateLogs(Effect.logDebug("not retrying: the wait would pass the deadline"), annotations)
        return yield* Effect.fail(error)
      }
      if (budget !== undefined && !(yield* budget.tryRetry)) {
        refusalsFor(error._tag)(1)
        ctx.observer?.event({ _tag: "RetryRefused", attempt, reason: error._tag, why: "budget" })
        yield* Effect.annotateLogs(Effect.logWarning("not retrying: the retry budget is spent"), annotations)
        return yield* Effect.fail(error)
      }
      ctx.trace.retries++
      retriesFor(error._tag)(1)
      ctx.observer?.event({ _tag: "Retry", attempt, reason: error._tag, waitMillis: wait })
      yield* Effect.annotateLogs(Effect.logInfo("retrying"), annotations)
      return wait
    })

  const pause = (wait: number): Effect.Effect<void> => (wait > 0 ? Effect.sleep(Duration.millis(wait)) : Effect.void)

  // The context below says which attempt this is: the caller's own when it already says so (the
  // first attempt, usually), else a copy with the number.
  const withAttempt = <A, E>(
    ctx: Ctx,
    n: number,
    callOptions: LanguageModel.CallOptions | undefined,
    call: (options: LanguageModel.CallOptions) => Effect.Effect<A, E>
  ): Effect.Effect<A, E> => RequestContext.handDown(model.takesContext, ctx.attempt === n ? ctx : { ...ctx, attempt: n }, callOptions, call)

  const start = <A>(callOptions: LanguageModel.CallOptions | undefined, f: (ctx: Ctx) => Effect.Effect<A, ModelError.ModelError>) =>
    budget === undefined
      ? RequestContext.of(callOptions, f)
      : RequestContext.of(callOptions, (ctx) => Effect.zipRight(budget.recordRequest, f(ctx)))

  const generate = (request: ChatCompletion.ChatRequest, callOptions?: LanguageModel.CallOptions) =>
    start(callOptions, (ctx) => {
      const attempt = (n: number): Effect.Effect<ChatCompletion.ChatCompletion, ModelError.ModelError> =>
        Effect.catchAll(
          withAttempt(ctx, n, callOptions, (o) => model.generate(request, o)),
          (error) => Effect.flatMap(decide(error, n, ctx), (wait) => Effect.zipRight(pause(wait), attempt(n + 1)))
        )
      return attempt(1)
    })

  const below = LanguageModel.runOf(model)

  const run: LanguageModel.Run = (request, callOptions, sink) =>
    start(callOptions, (ctx) => {
      // Once the stream committed (`StreamCommit`), a repeat would show the consumer something
      // twice: the failure is then stream-resume's, and passes through untouched. Heartbeats and
      // a role-only preamble commit nothing, so a stream that only pinged stays retryable.
      // Batches are scanned only until the stream commits; after that, one check per batch.
      let committed = false
      const marked: LanguageModel.ChunkSink = {
        start: sink.start,
        push: (chunks) => {
          if (!committed) committed = StreamCommit.firstCommit(chunks) >= 0
          return sink.push(chunks)
        }
      }
      const attempt = (n: number): Effect.Effect<void, ModelError.ModelError> =>
        Effect.catchAll(
          withAttempt(ctx, n, callOptions, (o) => below(request, o, marked)),
          (error) => committed ? Effect.fail(error) : Effect.flatMap(decide(error, n, ctx), (wait) => Effect.zipRight(pause(wait), attempt(n + 1)))
        )
      return attempt(1)
    })

  return { generate, stream: LanguageModel.streamFromRun(run), run, honoursSignal: model.honoursSignal, takesContext: true }
}
