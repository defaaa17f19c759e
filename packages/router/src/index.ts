/**
 * `@breakwater/router`: which upstream serves an attempt — fallback chains, weighted and
 * least-latency / least-in-flight balancing, hedging, per-upstream bulkheads.
 *
 * @since 0.1.0
 */

/**
 * The router over named upstreams.
 *
 * @since 0.1.0
 */
export * as Router from "./Router.js"
