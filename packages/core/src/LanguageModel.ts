/**
 * The `LanguageModel` service: one non-streaming and one streaming chat completion. Adapters
 * provide it; every policy consumes the one below it and provides a wrapped one.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Stream from "effect/Stream"
import type { ChatCompletion, ChatCompletionChunk, ChatRequest } from "./ChatCompletion.js"
import type { Continuation } from "./Continuation.js"
import type { ModelError } from "./ModelError.js"

/**
 * Per-call options that travel through the stack beside the request.
 *
 * @since 0.1.0
 * @category models
 */
export interface CallOptions {
  /** Continue a broken generation from the text already delivered (set by stream-resume). */
  readonly continuation?: Continuation | undefined
}

/**
 * A chat model: non-streaming and streaming completion in the canonical shape.
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  readonly generate: (request: ChatRequest, options?: CallOptions) => Effect.Effect<ChatCompletion, ModelError>
  readonly stream: (request: ChatRequest, options?: CallOptions) => Stream.Stream<ChatCompletionChunk, ModelError>
}

/**
 * The `LanguageModel` service tag.
 *
 * @since 0.1.0
 * @category tags
 */
export class LanguageModel extends Context.Tag("@breakwater/core/LanguageModel")<LanguageModel, Service>() {}

/**
 * Builds a `LanguageModel` from its two operations.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (service: Service): Service => service

/**
 * Whether a value is a `LanguageModel` service (it has `generate` and `stream`): how a policy's
 * `dual` combinator tells its data-first call (a model first) from its data-last one.
 *
 * @since 0.1.0
 * @category guards
 */
export const isService = (u: unknown): u is Service =>
  typeof u === "object" && u !== null && typeof (u as Service).generate === "function" &&
  typeof (u as Service).stream === "function"

/**
 * Calls the model in the context (non-streaming).
 *
 * @since 0.1.0
 * @category accessors
 */
export const generate = (request: ChatRequest, options?: CallOptions): Effect.Effect<ChatCompletion, ModelError, LanguageModel> =>
  Effect.flatMap(LanguageModel, (model) => model.generate(request, options))
