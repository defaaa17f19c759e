/**
 * Per-attempt time limits, so that a stalled upstream becomes a retryable error instead of a
 * hung request:
 *
 * - `headers`: until the first chunk of any kind (a stream), or the whole response (`generate`);
 * - `firstToken`: until the first chunk with content (`ChatCompletion.hasContent`: a role-only
 *   delta or a heartbeat is not a token);
 * - `idle`: the longest gap between two chunks (heartbeats count as liveness).
 *
 * Each is capped by the deadline left (`RequestContext.deadline`). Before any chunk arrived a
 * limit fails with `Timeout { phase }`; once chunks arrived it fails with
 * `StreamInterrupted { reason: "idle-timeout", receivedChunks, cause: Timeout { phase } }`, so
 * stream-resume can continue from there. Either way the attempt below is interrupted, which
 * aborts its upstream request.
 *
 * @since 0.1.0
 */
import { Durations, LanguageModel, Policy } from "@breakwater/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type * as Metric from "effect/Metric"
import * as Schema from "effect/Schema"
import * as internal from "./internal/attempt.js"
import * as fire from "./internal/fire.js"

/**
 * The attempt limits, with their defaults (the one place they are written). `Duration.infinity`
 * turns a limit off.
 *
 * - `headers` (30 s): to the first chunk of a stream, or to the whole response of `generate`.
 * - `firstToken` (30 s): to the first content chunk of a stream.
 * - `idle` (30 s): the longest gap between two chunks of a stream.
 *
 * @since 0.1.0
 * @category schemas
 */
export const AttemptTimeoutOptions = Schema.Struct({
  headers: Schema.optionalWith(Durations.DurationInput, { default: () => Duration.seconds(30) }),
  firstToken: Schema.optionalWith(Durations.DurationInput, { default: () => Duration.seconds(30) }),
  idle: Schema.optionalWith(Durations.DurationInput, { default: () => Duration.seconds(30) })
})

/**
 * The attempt limits, resolved.
 *
 * @since 0.1.0
 * @category models
 */
export type AttemptTimeoutOptions = typeof AttemptTimeoutOptions.Type

/**
 * The attempt limits as a user writes them.
 *
 * @since 0.1.0
 * @category models
 */
export type AttemptTimeoutOptionsInput = typeof AttemptTimeoutOptions.Encoded

/**
 * Counter of time limits that fired (attempt limits and deadlines), tagged `phase`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const timeoutsTotal: Metric.Metric.Counter<number> = fire.timeoutsTotal

const decode = Schema.decodeUnknown(AttemptTimeoutOptions)

/**
 * Wraps a model with attempt limits. Invalid options are a defect (a programming error).
 *
 * @since 0.1.0
 * @category combinators
 */
export const withPolicy: Policy.Combinator<AttemptTimeoutOptionsInput> = Policy.combinator((model, options: AttemptTimeoutOptionsInput) =>
  Effect.map(Effect.orDie(decode(options)), (settings) => internal.wrap(model, settings))
)

/**
 * The attempt limits as a layer (place it per upstream, right above the adapter).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: AttemptTimeoutOptionsInput = {}
): Layer.Layer<LanguageModel.LanguageModel, never, LanguageModel.LanguageModel> =>
  Policy.layer((model) => withPolicy(model, options))
