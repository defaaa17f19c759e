/**
 * `@breakwater/telemetry`: OpenTelemetry GenAI traces for Breakwater.
 *
 * @since 0.4.0
 */

/**
 * A gateway's tracing: request spans, attempt spans, policy decisions as span events.
 *
 * @since 0.4.0
 */
export * as Telemetry from "./Telemetry.js"

/**
 * The `telemetry` settings and how the `OTEL_*` variables fill them in.
 *
 * @since 0.4.0
 */
export * as TelemetryOptions from "./TelemetryOptions.js"
