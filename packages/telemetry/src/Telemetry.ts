/**
 * OpenTelemetry GenAI traces for a gateway: one SERVER span per client request (continuing the
 * caller's W3C `traceparent`), one CLIENT span per upstream attempt under it (its context goes
 * upstream as a `traceparent` header), and every policy decision — retry, fallback, breaker,
 * timeout, hedge, resume, journal replay — as an event on the request span.
 *
 * A host makes one `Telemetry` at start-up, calls `request` per client request and puts what it
 * returns in the request context (`RequestContext.make({ observer })`); with tracing off
 * `request` returns `undefined` and the layers see no observer at all.
 *
 * @since 0.4.0
 */
import type { ChatCompletion } from "@breakwater/core"
import { W3CTraceContextPropagator } from "@opentelemetry/core"
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http"
import { resourceFromAttributes } from "@opentelemetry/resources"
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  type SpanProcessor,
  TraceIdRatioBasedSampler
} from "@opentelemetry/sdk-trace-base"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as spans from "./internal/spans.js"
import * as TelemetryOptions from "./TelemetryOptions.js"

/**
 * The span of one client request. It is the request's `RequestObserver`: put it in the request
 * context, and `end` it once the response is over.
 *
 * @since 0.4.0
 * @category models
 */
export type RequestSpan = spans.RequestSpan

/**
 * What a host knows of a client request when it starts.
 *
 * @since 0.4.0
 * @category models
 */
export interface RequestInfo {
  /** The request id (`breakwater.request_id`). */
  readonly requestId: string
  /** The incoming headers: a W3C `traceparent` (and `tracestate`) continues the caller's trace. */
  readonly headers?: Readonly<Record<string, string | ReadonlyArray<string> | undefined>> | undefined
  /** The decoded request: the requested model and parameters (its messages only with `captureContent`). */
  readonly request?: ChatCompletion.ChatRequest | undefined
  /** `gen_ai.operation.name` (default `"chat"`). */
  readonly operation?: string | undefined
}

/**
 * A gateway's tracing.
 *
 * @since 0.4.0
 * @category models
 */
export interface Telemetry {
  /** The settings in force. */
  readonly settings: TelemetryOptions.Resolved
  /** Starts the span of a client request, or `undefined` when tracing is off. */
  readonly request: (info: RequestInfo) => RequestSpan | undefined
  /** Exports the spans still buffered. */
  readonly flush: () => Promise<void>
  /** Flushes and stops exporting (at shutdown). */
  readonly shutdown: () => Promise<void>
}

/**
 * What `make` may be given besides the settings.
 *
 * @since 0.4.0
 * @category models
 */
export interface MakeOptions {
  /**
   * The gateway config's upstreams, for `gen_ai.provider.name` (`openai`, `anthropic`, …) of
   * each attempt.
   */
  readonly upstreams?: Readonly<Record<string, { readonly provider: string }>> | undefined
  /**
   * Where spans go. By default one batching processor with the OTLP/HTTP exporter, configured by
   * the standard variables (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
   * `OTEL_EXPORTER_OTLP_HEADERS`, …). Tests pass a `SimpleSpanProcessor` over an
   * `InMemorySpanExporter`.
   */
  readonly spanProcessors?: ReadonlyArray<SpanProcessor> | undefined
  /** The environment the `OTEL_*` variables are read from (default `process.env`). */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined
}

const off = (settings: TelemetryOptions.Resolved): Telemetry => ({
  settings,
  request: () => undefined,
  flush: () => Promise.resolve(),
  shutdown: () => Promise.resolve()
})

/**
 * Makes a gateway's tracing from its `telemetry` settings (and the `OTEL_*` variables). Off — the
 * default — it builds no SDK and `request` returns `undefined`. It registers nothing globally:
 * the spans go to its own tracer provider.
 *
 * @since 0.4.0
 * @category constructors
 */
export const make = (options?: TelemetryOptions.TelemetryOptionsInput | undefined, more: MakeOptions = {}): Telemetry => {
  const settings = TelemetryOptions.resolve(options, more.env)
  if (!settings.enabled) return off(settings)
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ "service.name": settings.serviceName }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(settings.samplingRatio) }),
    spanProcessors: more.spanProcessors === undefined ? [new BatchSpanProcessor(new OTLPTraceExporter())] : [...more.spanProcessors]
  })
  const upstreams = more.upstreams ?? {}
  const tracing: spans.Tracing = {
    tracer: provider.getTracer("@breakwater/telemetry"),
    propagator: new W3CTraceContextPropagator(),
    captureContent: settings.captureContent,
    providerOf: (upstream) => upstreams[upstream]?.provider
  }
  return {
    settings,
    request: (info) =>
      new spans.RequestSpan(tracing, {
        requestId: info.requestId,
        operation: info.operation ?? "chat",
        request: info.request,
        headers: info.headers
      }),
    flush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown()
  }
}

/**
 * `make` as a scoped effect: the tracing is shut down (its spans flushed) when the scope closes.
 *
 * @since 0.4.0
 * @category constructors
 */
export const scoped = (
  options?: TelemetryOptions.TelemetryOptionsInput | undefined,
  more?: MakeOptions
): Effect.Effect<Telemetry, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => make(options, more)),
    (telemetry) => Effect.promise(() => telemetry.shutdown().catch(() => undefined))
  )

