/**
 * An `@effect/ai` `LanguageModel` served by a Breakwater stack. An existing
 * `LanguageModel.generateText` / `streamText` program gains the stack's retry, circuit breakers,
 * fallback across providers and stream-resume by providing one layer: each call is translated
 * to one canonical chat request (prompt, tools, tool choice, structured output), the stack below
 * does whatever it takes to answer it, and the answer comes back as @effect/ai response parts.
 *
 * Tools run once, on the final answer: a streamed tool call is handed to @effect/ai (which
 * executes it) only after the stack delivered the whole answer, so no retry, fallback or resume
 * below can make a tool run twice, or run for an answer that then failed.
 *
 * @since 0.3.0
 */
import type { ModelError } from "@breakwater/core"
import { ChatCompletion, LanguageModel } from "@breakwater/core"
import type * as AiError from "@effect/ai/AiError"
import * as AiLanguageModel from "@effect/ai/LanguageModel"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Struct from "effect/Struct"
import * as internal from "./internal/languageModel.js"

/**
 * The layer's settings:
 *
 * - `model` (required): the model name every request carries — a gateway's route name
 *   (`gateway.model` dispatches on it) or the upstream's model for a stack over one adapter.
 * - `request` (none): fields added to every request (`temperature`, `max_tokens`, `seed`, …,
 *   checked as the canonical request checks them; any other field reaches the upstream as it
 *   is). The call's own prompt, tools and output format always win.
 *
 * @since 0.3.0
 * @category schemas
 */
export const Options = Schema.Struct({
  model: Schema.NonEmptyString,
  request: Schema.optionalWith(
    Schema.Struct(
      Struct.pick(
        ChatCompletion.ChatRequest.fields,
        "temperature",
        "top_p",
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "presence_penalty",
        "frequency_penalty",
        "seed",
        "user",
        "parallel_tool_calls"
      ),
      Schema.Record({ key: Schema.String, value: Schema.Unknown })
    ),
    { default: () => ({}) }
  )
})

/**
 * The layer's settings, resolved.
 *
 * @since 0.3.0
 * @category models
 */
export type Options = typeof Options.Type

/**
 * The layer's settings as a user writes them.
 *
 * @since 0.3.0
 * @category models
 */
export type OptionsInput = typeof Options.Encoded

const decode = Schema.decodeUnknown(Options)

/**
 * The @effect/ai `LanguageModel` service over a Breakwater model (a gateway's `model`, or any
 * policy stack over the adapters). Invalid options are a defect, reported with every problem by
 * path.
 *
 * @since 0.3.0
 * @category constructors
 */
export const make = (model: LanguageModel.Service, options: OptionsInput): Effect.Effect<AiLanguageModel.Service> =>
  Effect.flatMap(Effect.orDie(decode(options)), (settings) => internal.make(model, settings))

/**
 * The @effect/ai `LanguageModel` over the Breakwater `LanguageModel` in the context (a policy
 * stack built with layers).
 *
 * @since 0.3.0
 * @category layers
 */
export const layer = (options: OptionsInput): Layer.Layer<AiLanguageModel.LanguageModel, never, LanguageModel.LanguageModel> =>
  Layer.effect(AiLanguageModel.LanguageModel, Effect.flatMap(LanguageModel.LanguageModel, (model) => make(model, options)))

/**
 * The @effect/ai `LanguageModel` over a Breakwater model built by `model` (for example
 * `Effect.map(GatewayBuilder.make(config), (gateway) => gateway.model)`); what the effect
 * acquires (pools, breakers) lives as long as the layer.
 *
 * @since 0.3.0
 * @category layers
 */
export const layerFrom = <E, R>(
  model: Effect.Effect<LanguageModel.Service, E, R>,
  options: OptionsInput
): Layer.Layer<AiLanguageModel.LanguageModel, E, Exclude<R, Scope.Scope>> =>
  Layer.scoped(AiLanguageModel.LanguageModel, Effect.flatMap(model, (m) => make(m, options)))

/**
 * The Breakwater error behind an @effect/ai error from this model. Breakwater's failures reach
 * @effect/ai as its `UnknownError` (its closed error union has no place for "rate limited after
 * every retry" or "circuit open"), with the Breakwater error as `cause`; this reads it back, so a
 * program can decide from the taxonomy (`retryable`, `retryAfter`, `_tag`).
 *
 * @since 0.3.0
 * @category errors
 */
export const modelErrorOf: (error: AiError.AiError) => ModelError.ModelError | undefined =
  internal.modelErrorOf
