/**
 * `@breakwater/effect-ai`: Breakwater's policies for `@effect/ai` users.
 *
 * @since 0.3.0
 */

/**
 * An `@effect/ai` `LanguageModel` served by a Breakwater stack.
 *
 * @since 0.3.0
 */
export * as BreakwaterLanguageModel from "./BreakwaterLanguageModel.js"

/**
 * An `@effect/ai` provider layer as a Breakwater upstream.
 *
 * @since 0.3.0
 */
export * as EffectAiUpstream from "./EffectAiUpstream.js"
