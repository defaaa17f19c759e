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
import type { Continuation } from "@breakwater/core"
import { LanguageModel } from "@breakwater/core"
import * as AiLanguageModel from "@effect/ai/LanguageModel"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as internal from "./internal/upstream.js"

/**
 * `name`: the upstream's name in errors and logs. `continuation`: how a broken stream is
 * continued when the continuation does not say (`"user-instruction"`, which any chat model
 * follows; `"assistant-prefill"` for providers that continue a trailing assistant message, such
 * as Anthropic).
 *
 * @since 0.3.0
 * @category models
 */
export interface Options {
  readonly name: string
  readonly continuation?: Continuation.Strategy | undefined
}

/**
 * A Breakwater model over an @effect/ai `LanguageModel.Service`.
 *
 * @since 0.3.0
 * @category constructors
 */
export const make: (model: AiLanguageModel.Service, options: Options) => LanguageModel.Service = internal.make

/**
 * The Breakwater `LanguageModel` over the @effect/ai `LanguageModel` in the context: put
 * Breakwater's policy layers above it, or pass the model to a gateway as an upstream's adapter
 * (`GatewayBuilder.make(config, { adapters: { name: model } })`).
 *
 * @since 0.3.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<LanguageModel.LanguageModel, never, AiLanguageModel.LanguageModel> =>
  Layer.effect(LanguageModel.LanguageModel, Effect.map(AiLanguageModel.LanguageModel, (model) => make(model, options)))
