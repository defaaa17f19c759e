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
