/**
 * `@breakwater/core`: the canonical chat model, the `LanguageModel` service, the error taxonomy,
 * the per-request context, the SSE codec, the policy contract and the shared upstream transport.
 *
 * @since 0.1.0
 */

/**
 * The canonical chat model (OpenAI Chat Completions shape) as `effect/Schema`.
 *
 * @since 0.1.0
 */
export * as ChatCompletion from "./ChatCompletion.js"

/**
 * Continuation requests for resuming a broken stream.
 *
 * @since 0.1.0
 */
export * as Continuation from "./Continuation.js"

/**
 * A registry of in-flight objects that does not keep finished ones alive through young-generation
 * garbage collections (as a churned `Set` or `Map` does).
 *
 * @since 0.5.0
 */
export * as InFlightSet from "./InFlightSet.js"

/**
 * The `LanguageModel` service.
 *
 * @since 0.1.0
 */
export * as LanguageModel from "./LanguageModel.js"

/**
 * The error taxonomy.
 *
 * @since 0.1.0
 */
export * as ModelError from "./ModelError.js"

/**
 * The policy contract: `LanguageModel -> LanguageModel` as a layer.
 *
 * @since 0.1.0
 */
export * as Policy from "./Policy.js"

/**
 * The per-request context.
 *
 * @since 0.1.0
 */
export * as RequestContext from "./RequestContext.js"

/**
 * What a request's observer (tracing) is told: upstream attempts and policy decisions.
 *
 * @since 0.4.0
 */
export * as RequestObserver from "./RequestObserver.js"

/**
 * Provider-given delays from response headers.
 *
 * @since 0.1.0
 */
export * as RetryAfter from "./RetryAfter.js"

/**
 * Server-sent events encoding and decoding.
 *
 * @since 0.1.0
 */
export * as SseCodec from "./SseCodec.js"

/**
 * The pooled upstream HTTP transport adapters share.
 *
 * @since 0.1.0
 */
export * as UpstreamHttp from "./UpstreamHttp.js"

/**
 * Durations in options: one schema for every package.
 *
 * @since 0.1.0
 */
export * as Durations from "./Durations.js"

/**
 * A cheap time limit on an effect (one fiber, one timer).
 *
 * @since 0.1.0
 */
export * as TimeLimit from "./TimeLimit.js"

/**
 * What every provider adapter shares: error bodies, key scrubbing, the SSE-to-chunks driver,
 * one upstream call under the trace conventions, transport settings.
 *
 * @since 0.1.0
 */
export * as AdapterKit from "./AdapterKit.js"

/**
 * A sliding-window budget for extra requests (retries, hedges): a ratio of the requests with a floor per second.
 *
 * @since 0.1.0
 */
export * as RequestBudget from "./RequestBudget.js"

/**
 * Stream combinators (`unwrap`, `acquireUseRelease`, `provideService`) without a cost per chunk.
 *
 * @since 0.1.0
 */
export * as LeanStream from "./LeanStream.js"

/**
 * Per-call Effect combinators with fewer run-loop steps (`onExit` with a plain release).
 *
 * @since 0.5.0
 */
export * as LeanEffect from "./LeanEffect.js"

/**
 * Plain timers for the stream path's time limits, with a `TestClock` seam.
 *
 * @since 0.2.0
 */
export * as Timer from "./Timer.js"

/**
 * When a stream is committed (a chunk with content or a finish reason went downstream):
 * the one rule retry, the router, stream-resume and the hosts follow.
 *
 * @since 0.2.0
 */
export * as StreamCommit from "./StreamCommit.js"

/**
 * Tagged metric series, resolved once and updated with a plain call.
 *
 * @since 0.2.0
 */
export * as TaggedMetric from "./TaggedMetric.js"

/**
 * The `telemetry` settings (tracing off by default) and how the `OTEL_*` variables fill them in.
 *
 * @since 0.4.0
 */
export * as TelemetryOptions from "./TelemetryOptions.js"

/**
 * The V8 settings a gateway process runs best with (allocation-site pretenuring off), applied by
 * the process that owns the runtime.
 *
 * @since 0.5.0
 */
export * as V8Flags from "./V8Flags.js"

/**
 * The JSON text an upstream sent for a parsed chunk or completion, so that one sent on unchanged
 * is not encoded again.
 *
 * @since 0.5.0
 */
export * as WireText from "./WireText.js"

/**
 * A `JSON.parse` for stream events that learns the shapes it parses (one parser per upstream):
 * an event of a known shape that differs only in some strings and numbers is not parsed again.
 *
 * @since 0.7.0
 */
export * as JsonTemplate from "./JsonTemplate.js"
