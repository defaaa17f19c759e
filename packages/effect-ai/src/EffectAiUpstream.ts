/**
 * The reverse of `BreakwaterLanguageModel`: an `@effect/ai` provider layer
 * (`@effect/ai-anthropic`, `@effect/ai-openai`, …) as a Breakwater upstream, the bottom of a
 * stack where an adapter would be. The canonical request becomes one @effect/ai call (the
 * provider layer owns the wire format); its failures are mapped into Breakwater's taxonomy (the
 * HTTP status and `retry-after` headers of `HttpResponseError`, a transport failure as
 * `ConnectionFailed`), so retry, breakers and fallback decide as they do over the built-in
 * adapters; a stream that fails after content fails with `StreamInterrupted`, which stream-resume
 * continues (as a user instruction by default, or an assistant prefill).
 *
 * What @effect/ai's call options cannot carry is refused as a `BadRequest` rather than dropped:
 * `n > 1`, a `response_format` other than text, content parts other than text and images.
 * Sampling fields (`temperature`, `max_tokens`, …) are the provider layer's own configuration.
 *
 * @since 0.3.0
 */
import { LanguageModel } from "@breakwater/core"
import * as AiLanguageModel from "@effect/ai/LanguageModel"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as internal from "./internal/upstream.js"

/**
 * The upstream's settings:
 *
 * - `name` (`"effect-ai"`): the upstream's name in errors, logs and metrics.
 * - `continuation` (`"user-instruction"`): how a broken stream is continued when the
 *   continuation does not say: a user instruction, which any chat model follows, or an
 *   `"assistant-prefill"` for providers that continue a trailing assistant message (Anthropic).
 *
 * @since 0.3.0
 * @category schemas
 */
export const UpstreamOptions = Schema.Struct({
  name: Schema.optionalWith(Schema.NonEmptyString, { default: () => "effect-ai" }),
  continuation: Schema.optionalWith(Schema.Literal("user-instruction", "assistant-prefill"), {
    default: () => "user-instruction" as const
  })
})

/**
 * The upstream's settings, resolved.
 *
 * @since 0.3.0
 * @category models
 */
export type UpstreamOptions = typeof UpstreamOptions.Type

/**
 * The upstream's settings as a user writes them (every field optional).
 *
 * @since 0.3.0
 * @category models
 */
export type UpstreamOptionsInput = typeof UpstreamOptions.Encoded

const decode = Schema.decodeUnknown(UpstreamOptions)

/**
 * A Breakwater model over an @effect/ai `LanguageModel.Service`. Invalid options are a defect,
 * reported with every problem by path.
 *
 * @since 0.3.0
 * @category constructors
 */
export const make = (model: AiLanguageModel.Service, options: UpstreamOptionsInput = {}): Effect.Effect<LanguageModel.Service> =>
  Effect.map(Effect.orDie(decode(options)), (settings) => internal.make(model, settings))

/**
 * The Breakwater `LanguageModel` over the @effect/ai `LanguageModel` in the context: put
 * Breakwater's policy layers above it, or pass the model to a gateway as an upstream's adapter
 * (`GatewayBuilder.make(config, { adapters: { claude: yield* EffectAiUpstream.make(provider) } })`).
 *
 * @since 0.3.0
 * @category layers
 */
export const layer = (options: UpstreamOptionsInput = {}): Layer.Layer<LanguageModel.LanguageModel, never, AiLanguageModel.LanguageModel> =>
  Layer.effect(LanguageModel.LanguageModel, Effect.flatMap(AiLanguageModel.LanguageModel, (model) => make(model, options)))
