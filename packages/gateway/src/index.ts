/**
 * `@breakwater/gateway`: the config schema, the default reliability baseline, and the function
 * that builds a gateway (the full layer stack) from a config.
 *
 * @since 0.1.0
 */

/**
 * A built gateway, as hosts consume it.
 *
 * @since 0.1.0
 */
export * as Gateway from "./Gateway.js"
