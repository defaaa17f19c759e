/**
 * `@breakwater/provider-openai`: the OpenAI Chat Completions adapter (OpenAI and every
 * OpenAI-compatible server).
 *
 * @since 0.1.0
 */

/**
 * The OpenAI Chat Completions adapter.
 *
 * @since 0.1.0
 */
export * as OpenAiProvider from "./OpenAiProvider.js"
