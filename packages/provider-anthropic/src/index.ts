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

/**
 * The Messages API vocabulary both directions share (stop reasons, image sources, error types).
 *
 * @since 0.2.0
 */
export * as AnthropicWire from "./AnthropicWire.js"
