/**
 * `@breakwater/gateway`: the config schema, the default reliability baseline, and the function
 * that builds a gateway (the full layer stack) from a config.
 *
 * @since 0.1.0
 */

/**
 * Every default, in one place.
 *
 * @since 0.1.0
 */
export * as Baseline from "./Baseline.js"

/**
 * The client-facing API semantics hosts share: auth, validation, error shape.
 *
 * @since 0.1.0
 */
export * as ClientApi from "./ClientApi.js"

/**
 * The commit-gated SSE writer hosts share.
 *
 * @since 0.1.0
 */
export * as ClientStream from "./ClientStream.js"

/**
 * The request pipeline every host runs: auth, request decoding, the model call under the
 * request's context and deadline, failures as client answers, the request log.
 *
 * @since 0.2.0
 */
export * as RequestPipeline from "./RequestPipeline.js"

/**
 * Client reconnects: journaled streams, `Last-Event-ID`, `Idempotency-Key` and the streams API.
 *
 * @since 0.3.0
 */
export * as StreamReconnect from "./StreamReconnect.js"

/**
 * Anthropic's Messages API over the canonical model: request decoding, message and event-stream
 * encoding, errors in Anthropic's shape.
 *
 * @since 0.2.0
 */
export * as MessagesApi from "./MessagesApi.js"

/**
 * Durations in config files.
 *
 * @since 0.1.0
 */
export * as ConfigDuration from "./ConfigDuration.js"

/**
 * Loading and validating a config.
 *
 * @since 0.1.0
 */
export * as ConfigLoader from "./ConfigLoader.js"

/**
 * A built gateway, as hosts consume it.
 *
 * @since 0.1.0
 */
export * as Gateway from "./Gateway.js"

/**
 * Building a gateway (the full layer stack) from a config.
 *
 * @since 0.1.0
 */
export * as GatewayBuilder from "./GatewayBuilder.js"

/**
 * The provider registry: adapter constructors by provider kind.
 *
 * @since 0.2.0
 */
export * as Providers from "./Providers.js"

/**
 * Shared state (Redis) plugged in, loaded only when the config asks for it.
 *
 * @since 0.2.0
 */
export * as SharedState from "./SharedState.js"

/**
 * The runtime and JSON logging hosts share.
 *
 * @since 0.1.0
 */
export * as HostRuntime from "./HostRuntime.js"

/**
 * The configuration schema.
 *
 * @since 0.1.0
 */
export * as GatewayConfig from "./GatewayConfig.js"

/**
 * Request tracing plugged in: `@breakwater/telemetry`, loaded only when the config traces.
 *
 * @since 0.4.0
 */
export * as Tracing from "./Tracing.js"

/**
 * The status board: live counters, latency percentiles, breaker transitions and recent requests
 * with their attempt trail, for a status page.
 *
 * @since 0.4.0
 */
export * as StatusBoard from "./StatusBoard.js"
