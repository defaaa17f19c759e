/**
 * `@breakwater/host-http`: the Node HTTP host for a Breakwater gateway.
 *
 * @since 0.1.0
 */

/**
 * Serve a gateway over HTTP.
 *
 * @since 0.1.0
 */
export * as HttpHost from "./HttpHost.js"

/**
 * Effect metrics as Prometheus text.
 *
 * @since 0.1.0
 */
export * as PrometheusMetrics from "./PrometheusMetrics.js"
