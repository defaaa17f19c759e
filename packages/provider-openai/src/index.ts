/**
 * `@breakwater/provider-openai`: the OpenAI Chat Completions adapter (OpenAI and every
 * OpenAI-compatible server), and the kit the other adapters share.
 *
 * @since 0.1.0
 */

/**
 * The OpenAI Chat Completions adapter.
 *
 * @since 0.1.0
 */
export * as OpenAiProvider from "./OpenAiProvider.js"

/**
 * Error bodies, key scrubbing and the SSE-to-chunks driver every adapter shares.
 *
 * @since 0.1.0
 */
export * as AdapterKit from "./AdapterKit.js"
