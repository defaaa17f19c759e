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
import type { ChatCompletion, ModelError } from "@breakwater/core"
import { LanguageModel } from "@breakwater/core"
import type * as AiError from "@effect/ai/AiError"
import * as AiLanguageModel from "@effect/ai/LanguageModel"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as internal from "./internal/languageModel.js"

/**
 * Request fields a layer adds to every call (the call's own prompt, tools and output format
 * always win). Unknown fields reach the upstream as they are.
 *
 * @since 0.3.0
 * @category models
 */
export type RequestFields = Partial<
  Pick<
    ChatCompletion.ChatRequest,
    | "temperature"
    | "top_p"
    | "max_tokens"
    | "max_completion_tokens"
    | "stop"
    | "presence_penalty"
    | "frequency_penalty"
    | "seed"
    | "user"
    | "parallel_tool_calls"
  >
> & { readonly [key: string]: unknown }

/**
 * What the layer sends: `model` is the model name of every request — a gateway's route name
 * (`gateway.model` dispatches on it) or the upstream's model for a bare adapter stack.
 *
 * @since 0.3.0
 * @category models
 */
export interface Options {
  readonly model: string
  readonly request?: RequestFields | undefined
}

/**
 * The @effect/ai `LanguageModel` service over a Breakwater model (a gateway's `model`, or any
 * policy stack over the adapters).
 *
 * @since 0.3.0
 * @category constructors
 */
export const make: (model: LanguageModel.Service, options: Options) => Effect.Effect<AiLanguageModel.Service> = internal.make

/**
 * The @effect/ai `LanguageModel` over the Breakwater `LanguageModel` in the context (a policy
 * stack built with layers).
 *
 * @since 0.3.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<AiLanguageModel.LanguageModel, never, LanguageModel.LanguageModel> =>
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
  options: Options
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
