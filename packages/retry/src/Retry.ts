/**
 * Retry for LLM calls: exponential backoff with full jitter, decided only from the error
 * taxonomy (`error.retryable`), honouring the upstream's delay (`retryAfter`, re-read from each
 * failure), bounded by the request's deadline and by a retry budget shared across requests.
 * Streams are retried only until they commit (`StreamCommit`).
 *
 * @since 0.1.0
 */
import { Durations, LanguageModel, type ModelError, Policy } from "@breakwater/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as internal from "./internal/retry.js"
import * as RetryBudget from "./RetryBudget.js"

/**
 * The retry policy's settings, with their defaults (the one place they are written).
 *
 * - `maxRetries` (2): retries after the first attempt (3 attempts in all).
 * - `baseDelay` (200 ms) and `maxDelay` (10 s): backoff `min(maxDelay, baseDelay × 2^(n-1))`
 *   before retry `n`.
 * - `jitter` (`"full"`): wait a uniformly random fraction of that backoff (AWS "full jitter");
 *   `"none"` waits the backoff exactly.
 * - `maxRetryAfter` (60 s): the cap on a provider-given delay (`retry-after` and friends). The wait
 *   is `max(backoff, min(retryAfter, maxRetryAfter))`.
 * - `budget`: the retry budget (see `RetryBudget.BudgetOptions`), or `false` for none.
 * - `retryOn` (none): a predicate that narrows what is retried: an error is retried when it is
 *   `retryable` and `retryOn` says so. A retry inside a router (one per target) leaves out
 *   `CircuitOpen`, so an open breaker falls over at once instead of being waited for.
 *
 * @since 0.1.0
 * @category schemas
 */
export const RetryOptions = Schema.Struct({
  maxRetries: Schema.optionalWith(Schema.Int.pipe(Schema.nonNegative()), { default: () => 2 }),
  baseDelay: Schema.optionalWith(Durations.DurationInput, { default: () => Duration.millis(200) }),
  maxDelay: Schema.optionalWith(Durations.DurationInput, { default: () => Duration.seconds(10) }),
  jitter: Schema.optionalWith(Schema.Literal("full", "none"), { default: () => "full" as const }),
  maxRetryAfter: Schema.optionalWith(Durations.DurationInput, { default: () => Duration.seconds(60) }),
  budget: Schema.optionalWith(Schema.Union(Schema.Literal(false), RetryBudget.BudgetOptions), {
    default: () => Schema.decodeSync(RetryBudget.BudgetOptions)({})
  }),
  retryOn: Schema.optional(Schema.declare(
    (u: unknown): u is (error: ModelError.ModelError) => boolean => typeof u === "function",
    { identifier: "RetryPredicate", description: "a function from a ModelError to a boolean" }
  ))
})

/**
 * The retry policy's settings, resolved.
 *
 * @since 0.1.0
 * @category models
 */
export type RetryOptions = typeof RetryOptions.Type

/**
 * The retry policy's settings as a user writes them (every field optional; durations as
 * `Duration`, milliseconds or strings like `"200 millis"`).
 *
 * @since 0.1.0
 * @category models
 */
export type RetryOptionsInput = typeof RetryOptions.Encoded

/**
 * Counter of retries made, tagged `reason` (the failed attempt's error tag).
 *
 * @since 0.1.0
 * @category metrics
 */
export const retriesTotal: Metric.Metric.Counter<number> = internal.retriesTotal

/**
 * Counter of retries the budget refused, tagged `reason`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const budgetExhaustedTotal: Metric.Metric.Counter<number> = internal.budgetExhaustedTotal

const decode = Schema.decodeUnknown(RetryOptions)

/**
 * Wraps a model with the retry policy. The budget lives as long as the returned model: it uses
 * the `RetryBudgetStore` in the context if there is one, and a fresh in-memory store otherwise.
 * Invalid options are a defect (a programming error), reported with every problem by path.
 *
 * @since 0.1.0
 * @category combinators
 */
export const withPolicy: Policy.Combinator<RetryOptionsInput> = Policy.combinator((model, options: RetryOptionsInput) =>
  Effect.gen(function*() {
    const settings = yield* Effect.orDie(decode(options))
    if (settings.budget === false) return internal.wrap(model, settings, undefined)
    const shared = yield* Effect.serviceOption(RetryBudget.RetryBudgetStore)
    const store = Option.isSome(shared) ? shared.value : yield* RetryBudget.makeMemory
    return internal.wrap(model, settings, RetryBudget.make(store, settings.budget))
  })
)

/**
 * The retry policy as a layer: consumes the `LanguageModel` below and provides the wrapped one.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: RetryOptionsInput = {}): Layer.Layer<LanguageModel.LanguageModel, never, LanguageModel.LanguageModel> =>
  Policy.layer((model) => withPolicy(model, options))
