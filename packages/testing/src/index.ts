/**
 * `@breakwater/testing`: the fault-injecting mock upstream and the fake `LanguageModel` that
 * every Breakwater test, example and benchmark uses.
 *
 * @since 0.1.0
 */

/**
 * An in-process fake `LanguageModel` driven by `TestClock`.
 *
 * @since 0.1.0
 */
export * as FakeLanguageModel from "./FakeLanguageModel.js"

/**
 * A fault-injecting mock upstream over real HTTP (OpenAI and Anthropic wire formats).
 *
 * @since 0.1.0
 */
export * as MockUpstream from "./MockUpstream.js"

/**
 * A response body written as fast as the client takes it (backpressure and size-cap tests).
 *
 * @since 0.2.0
 */
export * as Flood from "./Flood.js"
