/**
 * The `telemetry` settings, with their defaults (the one place they are written), and how the
 * standard `OTEL_*` environment variables fill in what the settings leave out. They live in core,
 * not in `@breakwater/telemetry`, so that the gateway's config reads them (and decides whether to
 * load the OpenTelemetry SDK at all) without importing it.
 *
 * @since 0.4.0
 */
import * as Schema from "effect/Schema"

/**
 * Tracing settings. Off by default.
 *
 * - `enabled`: trace requests at all; when not set, `OTEL_TRACES_EXPORTER=otlp` turns tracing on,
 *   else it is off.
 * - `captureContent` (false): record prompts and completions (`gen_ai.input.messages`,
 *   `gen_ai.output.messages`). They may hold personal data: leave it off unless the collector may
 *   keep them.
 * - `serviceName`: the `service.name` resource attribute; `OTEL_SERVICE_NAME` when not set,
 *   else `"breakwater"`.
 * - `samplingRatio`: the share of new traces recorded (a request that brings a `traceparent`
 *   follows its caller's decision); `OTEL_TRACES_SAMPLER_ARG` when not set, else 1.
 *
 * @since 0.4.0
 * @category schemas
 */
export const TelemetryOptions = Schema.Struct({
  enabled: Schema.optional(Schema.Boolean),
  captureContent: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  serviceName: Schema.optional(Schema.NonEmptyString),
  samplingRatio: Schema.optional(Schema.Number.pipe(Schema.between(0, 1)))
})

/**
 * Tracing settings (decoded).
 *
 * @since 0.4.0
 * @category models
 */
export type TelemetryOptions = typeof TelemetryOptions.Type

/**
 * Tracing settings as written in a config file or passed in code.
 *
 * @since 0.4.0
 * @category models
 */
export type TelemetryOptionsInput = typeof TelemetryOptions.Encoded

/**
 * The settings with nothing left open: the options, then the environment, then the defaults.
 *
 * @since 0.4.0
 * @category models
 */
export interface Resolved {
  readonly enabled: boolean
  readonly captureContent: boolean
  readonly serviceName: string
  readonly samplingRatio: number
}

const defaultServiceName = "breakwater"

const exporterOf = (env: Readonly<Record<string, string | undefined>>): string | undefined => env.OTEL_TRACES_EXPORTER?.trim().toLowerCase()

const ratioFromEnv = (env: Readonly<Record<string, string | undefined>>): number | undefined => {
  const sampler = env.OTEL_TRACES_SAMPLER
  if (sampler === "always_off" || sampler === "parentbased_always_off") return 0
  if (sampler === "always_on" || sampler === "parentbased_always_on") return 1
  const arg = env.OTEL_TRACES_SAMPLER_ARG
  if (arg === undefined || arg.trim() === "") return undefined
  const ratio = Number(arg)
  return Number.isFinite(ratio) && ratio >= 0 && ratio <= 1 ? ratio : undefined
}

/**
 * Resolves the settings: what the options say, else the `OTEL_*` variables, else the defaults.
 * `OTEL_TRACES_EXPORTER=otlp` turns tracing on when the options do not say; `OTEL_SDK_DISABLED=true`
 * or `OTEL_TRACES_EXPORTER=none` turns it off whatever they say.
 *
 * @since 0.4.0
 * @category constructors
 */
export const resolve = (
  options: TelemetryOptionsInput | undefined,
  env: Readonly<Record<string, string | undefined>> = process.env
): Resolved => {
  const o = Schema.decodeUnknownSync(TelemetryOptions)(options ?? {})
  return {
    enabled: (o.enabled ?? exporterOf(env) === "otlp") && env.OTEL_SDK_DISABLED?.trim().toLowerCase() !== "true" &&
      exporterOf(env) !== "none",
    captureContent: o.captureContent,
    serviceName: o.serviceName ?? (env.OTEL_SERVICE_NAME || defaultServiceName),
    samplingRatio: o.samplingRatio ?? ratioFromEnv(env) ?? 1
  }
}
