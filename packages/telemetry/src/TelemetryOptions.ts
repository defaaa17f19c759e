/**
 * The `telemetry` settings, with their defaults, and how the standard `OTEL_*` environment
 * variables fill in what the settings leave out: `@breakwater/core`'s `TelemetryOptions`, where
 * the gateway's config reads them without loading the OpenTelemetry SDK.
 *
 * @since 0.4.0
 */
import { TelemetryOptions as Options } from "@breakwater/core"

/**
 * Tracing settings. Off by default (see `@breakwater/core`'s `TelemetryOptions`).
 *
 * @since 0.4.0
 * @category schemas
 */
export const TelemetryOptions = Options.TelemetryOptions

/**
 * Tracing settings (decoded).
 *
 * @since 0.4.0
 * @category models
 */
export type TelemetryOptions = Options.TelemetryOptions

/**
 * Tracing settings as written in a config file or passed in code.
 *
 * @since 0.4.0
 * @category models
 */
export type TelemetryOptionsInput = Options.TelemetryOptionsInput

/**
 * The settings with nothing left open: the options, then the environment, then the defaults.
 *
 * @since 0.4.0
 * @category models
 */
export type Resolved = Options.Resolved

/**
 * Resolves the settings: what the options say, else the `OTEL_*` variables, else the defaults.
 *
 * @since 0.4.0
 * @category constructors
 */
export const resolve = Options.resolve
