/**
 * A total time budget for one logical request. It sets `RequestContext.deadline` for every layer
 * below (the earlier of an outer deadline and now + `total`), so retry and resume never plan a
 * wait past it and attempt timeouts are capped by it, and it bounds the whole call — a
 * `generate`, or a stream from its start to its last chunk — failing with
 * `Timeout { phase: "total" }` (not retryable) and cancelling the call below.
 *
 * @since 0.1.0
 */
import { Durations, LanguageModel, Policy } from "@breakwater/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as internal from "./internal/deadline.js"

/**
 * The deadline's settings, with their default (the one place it is written).
 *
 * - `total` (120 s): the budget of one logical request, every retry and resume included.
 *
 * @since 0.1.0
 * @category schemas
 */
export const DeadlineOptions = Schema.Struct({
  total: Schema.optionalWith(Durations.DurationInput, { default: () => Duration.seconds(120) })
})

/**
 * The deadline's settings, resolved.
 *
 * @since 0.1.0
 * @category models
 */
export type DeadlineOptions = typeof DeadlineOptions.Type

/**
 * The deadline's settings as a user writes them.
 *
 * @since 0.1.0
 * @category models
 */
export type DeadlineOptionsInput = typeof DeadlineOptions.Encoded

const decode = Schema.decodeUnknown(DeadlineOptions)

/**
 * Wraps a model with a total deadline. Invalid options are a defect (a programming error).
 *
 * @since 0.1.0
 * @category combinators
 */
export const withPolicy: Policy.Combinator<DeadlineOptionsInput> = Policy.combinator((model, options: DeadlineOptionsInput) =>
  Effect.map(Effect.orDie(decode(options)), (settings) => internal.wrap(model, settings))
)

/**
 * The deadline as a layer: consumes the `LanguageModel` below and provides the bounded one.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: DeadlineOptionsInput = {}): Layer.Layer<LanguageModel.LanguageModel, never, LanguageModel.LanguageModel> =>
  Policy.layer((model) => withPolicy(model, options))
