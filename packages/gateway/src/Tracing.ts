/**
 * Request tracing plugged in, not imported: the gateway holds no OpenTelemetry code. With the
 * config's `telemetry` section (or `OTEL_TRACES_EXPORTER=otlp`) turning tracing on, the builder
 * loads `@breakwater/telemetry` (an optional peer dependency: install it beside the gateway) at
 * build time; off — the default — nothing is loaded, and a host pays one `undefined` check per
 * request. `tracing()` resolves the package from `node_modules` at run time, out of a bundler's
 * sight; a bundled app that traces names the import itself so the bundler includes it:
 *
 * ```ts
 * GatewayBuilder.make(config, { telemetry: Tracing.telemetry(() => import("@breakwater/telemetry")) })
 * ```
 *
 * @since 0.4.0
 */
import type { ChatCompletion, RequestObserver } from "@breakwater/core"
import { TelemetryOptions } from "@breakwater/core"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { ConfigError } from "./ConfigLoader.js"
import type { GatewayConfig } from "./GatewayConfig.js"

/**
 * The span of one client request: its observer (put in the request context), ended once when
 * the response is over — with the error the client was sent (an `ApiError`, or
 * `ClientGone`), or nothing.
 *
 * @since 0.4.0
 * @category models
 */
export interface RequestSpan extends RequestObserver.RequestObserver {
  readonly end: (error?: unknown) => void
}

/**
 * What the gateway uses of a tracer: `@breakwater/telemetry`'s `Telemetry` satisfies it.
 *
 * @since 0.4.0
 * @category models
 */
export interface Tracer {
  /** Starts the span of a client request, or `undefined` when it is not traced. */
  readonly request: (info: {
    readonly requestId: string
    readonly headers?: Readonly<Record<string, string | ReadonlyArray<string> | undefined>> | undefined
    readonly request?: ChatCompletion.ChatRequest | undefined
    /** `gen_ai.operation.name` and the span's name (`"chat"` when not given). */
    readonly operation?: string | undefined
  }) => RequestSpan | undefined
  /** Exports the spans still buffered (a host calls it when it shuts down). */
  readonly flush: () => Promise<void>
  /** Flushes and stops exporting. */
  readonly shutdown: () => Promise<void>
}

/**
 * The operation of a reconnect by `GET /v1/streams/{id}` (its span's name): no model call, the
 * journal's events after `Last-Event-ID` (a `JournalReplay` event on the span).
 *
 * @since 0.7.0
 * @category constants
 */
export const streamReplay = "stream_replay"

/**
 * The answer of a request whose client went away before it ended (what its span ends with).
 *
 * @since 0.4.0
 * @category models
 */
export const ClientGone: { readonly status: 499; readonly code: "client_closed" } = { status: 499, code: "client_closed" }

/**
 * Ends a request's span with its answer as the host logs it: the status, and the error code when
 * it failed (`client_closed`: its client went away).
 *
 * @since 0.4.0
 * @category utils
 */
export const endWith = (span: RequestSpan, status: number, code: unknown): void =>
  span.end(code === undefined ? undefined : code === ClientGone.code ? ClientGone : { status, code })

/**
 * Builds the tracer of a config, or none (tracing off); it lives as long as the scope. Fails with
 * a `ConfigError` (path `telemetry`) when it cannot be provided (the telemetry package is
 * missing).
 *
 * @since 0.4.0
 * @category models
 */
export type Connect = (config: GatewayConfig) => Effect.Effect<Tracer | undefined, ConfigError, Scope.Scope>

/**
 * What the gateway uses of `@breakwater/telemetry` (`import("@breakwater/telemetry")` satisfies
 * it).
 *
 * @since 0.4.0
 * @category models
 */
export interface TelemetryModule {
  readonly Telemetry: {
    readonly make: (
      options: TelemetryOptions.TelemetryOptionsInput | undefined,
      more: { readonly upstreams?: Readonly<Record<string, { readonly provider: string }>> | undefined }
    ) => Tracer
  }
}

// A specifier held in a variable, not a literal import: bundlers follow literal imports, and
// would put the OpenTelemetry SDK in every bundle of the gateway.
const telemetryPackage = "@breakwater/telemetry"
const importAtRunTime = (specifier: string): Promise<TelemetryModule> => import(specifier)

/**
 * Whether a config traces requests: its `telemetry` section, else the `OTEL_*` variables
 * (`TelemetryOptions.resolve`).
 *
 * @since 0.4.0
 * @category utils
 */
export const enabled = (config: GatewayConfig, env: Readonly<Record<string, string | undefined>> = process.env): boolean =>
  TelemetryOptions.resolve(config.telemetry, env).enabled

/**
 * The telemetry connector: when the config traces (`enabled`), `@breakwater/telemetry`'s
 * `Telemetry.make` over its `telemetry` section and upstreams, from the module `load` gives (by
 * default the package resolved at run time), shut down (its spans flushed) when the scope closes;
 * otherwise nothing is loaded.
 *
 * @since 0.4.0
 * @category constructors
 */
export const telemetry = (load: () => Promise<TelemetryModule> = () => importAtRunTime(telemetryPackage)): Connect => (config) => {
  if (!enabled(config)) return Effect.succeed(undefined)
  return Effect.acquireRelease(
    Effect.tryPromise<Tracer, ConfigError>({
      try: () => load().then((module) => module.Telemetry.make(config.telemetry, { upstreams: config.upstreams })),
      catch: (error) =>
        new ConfigError({
          issues: [{
            path: "telemetry",
            message: `tracing needs ${telemetryPackage} (npm install ${telemetryPackage}; in a bundle, pass ` +
              `\`telemetry: Tracing.telemetry(() => import("${telemetryPackage}"))\`): ${(error as Error).message}`
          }]
        })
    }),
    (tracer: Tracer) => Effect.promise(() => tracer.shutdown().catch(() => undefined))
  )
}

/**
 * A tracer made by the caller (a test's, over an in-memory exporter), used whatever the config
 * says; the caller shuts it down.
 *
 * @since 0.4.0
 * @category constructors
 */
export const given = (tracer: Tracer): Connect => () => Effect.succeed(tracer)
