/**
 * `@breakwater/provider-anthropic`: the Anthropic Messages API adapter.
 *
 * @since 0.1.0
 */

/**
 * The Anthropic Messages API adapter.
 *
 * @since 0.1.0
 */
export * as AnthropicProvider from "./AnthropicProvider.js"
