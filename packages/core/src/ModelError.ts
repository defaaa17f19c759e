/**
 * The error taxonomy of Breakwater (DESIGN.md, "Errors"): one tagged union that every adapter
 * maps into and every policy decides from. Each error says whether it is worth retrying on the
 * same upstream (`retryable`), whether another upstream may succeed (`failover`), and, where
 * the upstream said so, after how long (`retryAfter`).
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"

interface Common {
  readonly message: string
  /** The upstream that produced the error, when known. */
  readonly upstream?: string | undefined
  /** The upstream's HTTP status, when there was one. */
  readonly status?: number | undefined
  /** The provider's error code (`context_length_exceeded`, `overloaded_error`, …). */
  readonly code?: string | undefined
  readonly cause?: unknown
}

interface WithDelay extends Common {
  /** How long the upstream asked us to wait before trying again. */
  readonly retryAfter?: Duration.Duration | undefined
}

/**
 * The request is invalid (400, 413, 422): never retried, never failed over.
 *
 * @since 0.1.0
 * @category errors
 */
export class BadRequest extends Data.TaggedError("BadRequest")<Common & { readonly param?: string | undefined }> {
  readonly retryable = false
  readonly failover = false
  readonly httpStatus: number = 400
  readonly errorType = "invalid_request_error"
}

/**
 * The prompt does not fit the model's context: not retried on the same model; a route may
 * fail over to a model with a larger context.
 *
 * @since 0.1.0
 * @category errors
 */
export class ContextTooLong extends Data.TaggedError("ContextTooLong")<Common> {
  readonly retryable = false
  readonly failover = true
  readonly httpStatus: number = 400
  readonly errorType = "invalid_request_error"
}

/**
 * The provider refused the content by policy: not retried; routing around it is a route's
 * explicit choice, so it does not fail over by default.
 *
 * @since 0.1.0
 * @category errors
 */
export class ContentRefused extends Data.TaggedError("ContentRefused")<Common> {
  readonly retryable = false
  readonly failover = false
  readonly httpStatus: number = 400
  readonly errorType = "invalid_request_error"
}

/**
 * The key's quota or spend limit is exhausted (a 429 that waiting will not fix).
 *
 * @since 0.1.0
 * @category errors
 */
export class QuotaExhausted extends Data.TaggedError("QuotaExhausted")<Common> {
  readonly retryable = false
  readonly failover = true
  readonly httpStatus: number = 429
  readonly errorType = "insufficient_quota"
}

/**
 * The upstream rejected the gateway's credentials (401, 403).
 *
 * @since 0.1.0
 * @category errors
 */
export class UpstreamAuth extends Data.TaggedError("UpstreamAuth")<Common> {
  readonly retryable = false
  readonly failover = true
  // The client's own credentials were fine: this is the gateway's fault, not the caller's.
  readonly httpStatus: number = 502
  readonly errorType = "upstream_auth_error"
}

/**
 * The upstream does not know the model (404).
 *
 * @since 0.1.0
 * @category errors
 */
export class ModelNotFound extends Data.TaggedError("ModelNotFound")<Common> {
  readonly retryable = false
  readonly failover = true
  readonly httpStatus: number = 404
  readonly errorType = "not_found_error"
}

/**
 * The upstream is unavailable (408, 409, 500, 502, 503, 504).
 *
 * @since 0.1.0
 * @category errors
 */
export class UpstreamUnavailable extends Data.TaggedError("UpstreamUnavailable")<WithDelay> {
  readonly retryable = true
  readonly failover = true
  readonly httpStatus: number = 503
  readonly errorType = "server_error"
}

/**
 * The upstream rate-limited the request (429); retry not before `retryAfter`.
 *
 * @since 0.1.0
 * @category errors
 */
export class RateLimited extends Data.TaggedError("RateLimited")<WithDelay> {
  readonly retryable = true
  readonly failover = true
  readonly httpStatus: number = 429
  readonly errorType = "rate_limit_error"
}

/**
 * The upstream is overloaded (529, `overloaded_error`).
 *
 * @since 0.1.0
 * @category errors
 */
export class Overloaded extends Data.TaggedError("Overloaded")<WithDelay> {
  readonly retryable = true
  readonly failover = true
  readonly httpStatus: number = 503
  readonly errorType = "overloaded_error"
}

/**
 * The connection failed: refused, reset, DNS, TLS.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConnectionFailed extends Data.TaggedError("ConnectionFailed")<Common> {
  readonly retryable = true
  readonly failover = true
  readonly httpStatus: number = 502
  readonly errorType = "connection_error"
}

/**
 * Which time limit fired.
 *
 * @since 0.1.0
 * @category models
 */
export type TimeoutPhase = "connect" | "headers" | "first-token" | "idle" | "total"

/**
 * A time limit fired. Every phase but `total` (the request's whole budget) is retryable.
 *
 * @since 0.1.0
 * @category errors
 */
export class Timeout extends Data.TaggedError("Timeout")<Common & { readonly phase: TimeoutPhase }> {
  get retryable(): boolean {
    return this.phase !== "total"
  }
  get failover(): boolean {
    return this.phase !== "total"
  }
  readonly httpStatus: number = 504
  readonly errorType = "timeout_error"
}

/**
 * How a stream broke.
 *
 * @since 0.1.0
 * @category models
 */
export type InterruptionReason = "reset" | "no-terminator" | "error-event" | "malformed" | "idle-timeout"

/**
 * A stream broke after it had started: it ended without its terminator, carried an error
 * event, a malformed frame, a reset, or went idle. `receivedChunks` says how much arrived
 * first; `cause` is the underlying error (e.g. the `Overloaded` of an in-band error event).
 * Retry may repeat it only while nothing reached the consumer; otherwise it is stream-resume's.
 *
 * @since 0.1.0
 * @category errors
 */
export class StreamInterrupted extends Data.TaggedError("StreamInterrupted")<
  Common & { readonly reason: InterruptionReason; readonly receivedChunks: number }
> {
  readonly retryable = true
  readonly failover = true
  readonly httpStatus: number = 502
  readonly errorType = "stream_interrupted"
}

/**
 * The upstream's circuit breaker is open: fail over, or retry after `retryAfter`.
 *
 * @since 0.1.0
 * @category errors
 */
export class CircuitOpen extends Data.TaggedError("CircuitOpen")<WithDelay> {
  readonly retryable = true
  readonly failover = true
  readonly httpStatus: number = 503
  readonly errorType = "circuit_open"
}

/**
 * A local concurrency limit (bulkhead) or budget refused the call at once.
 *
 * @since 0.1.0
 * @category errors
 */
export class CapacityExceeded extends Data.TaggedError("CapacityExceeded")<WithDelay> {
  readonly retryable = false
  readonly failover = true
  readonly httpStatus: number = 503
  readonly errorType = "capacity_exceeded"
}

/**
 * The upstream's response is larger than the transport allows (`maxResponseBytes`,
 * `maxStreamBytes`): the gateway stopped reading instead of buffering it. Not retried (the same
 * request would bring the same answer); another upstream may do better.
 *
 * @since 0.2.0
 * @category errors
 */
export class ResponseTooLarge extends Data.TaggedError("ResponseTooLarge")<Common & { readonly limit: number }> {
  readonly retryable = false
  readonly failover = true
  readonly httpStatus: number = 502
  readonly errorType = "upstream_error"
}

/**
 * The gateway itself failed while handling the call (encoding the request, a defect in its own
 * stack): no upstream was at fault. It is never retried, never failed over, and never counts
 * against an upstream's breaker, retry budget or health (`countsAgainstUpstream`); the client
 * gets a 500 without detail.
 *
 * @since 0.2.0
 * @category errors
 */
export class LocalFailure extends Data.TaggedError("LocalFailure")<Common> {
  readonly retryable = false
  readonly failover = false
  readonly httpStatus: number = 500
  readonly errorType = "server_error"
}

/**
 * Any error a `LanguageModel` call can fail with.
 *
 * @since 0.1.0
 * @category errors
 */
export type ModelError =
  | BadRequest
  | ContextTooLong
  | ContentRefused
  | QuotaExhausted
  | UpstreamAuth
  | ModelNotFound
  | UpstreamUnavailable
  | RateLimited
  | Overloaded
  | ConnectionFailed
  | Timeout
  | StreamInterrupted
  | CircuitOpen
  | CapacityExceeded
  | ResponseTooLarge
  | LocalFailure

/**
 * Every tag of the taxonomy, so that policies listing tags (a router's fallback set, a
 * breaker's counted errors) derive them from here instead of copying them.
 *
 * @since 0.1.0
 * @category constants
 */
export const allTags = [
  "BadRequest",
  "ContextTooLong",
  "ContentRefused",
  "QuotaExhausted",
  "UpstreamAuth",
  "ModelNotFound",
  "UpstreamUnavailable",
  "RateLimited",
  "Overloaded",
  "ConnectionFailed",
  "Timeout",
  "StreamInterrupted",
  "CircuitOpen",
  "CapacityExceeded",
  "ResponseTooLarge",
  "LocalFailure"
] as const satisfies ReadonlyArray<ModelError["_tag"]>

const tags = new Set<string>(allTags)

/**
 * Whether a value is one of the taxonomy's errors.
 *
 * @since 0.1.0
 * @category guards
 */
export const isModelError = (u: unknown): u is ModelError =>
  typeof u === "object" && u !== null && "_tag" in u && tags.has((u as { _tag: string })._tag)

/**
 * Whether a failure may be held against an upstream (its breaker, the retry budget, its
 * health): only a taxonomy error that is not the gateway's own (`LocalFailure`). Anything
 * else — a defect, a foreign error — is a local failure and says nothing about the upstream.
 *
 * @since 0.2.0
 * @category guards
 */
export const countsAgainstUpstream = (u: unknown): boolean => isModelError(u) && u._tag !== "LocalFailure"

/**
 * The gateway's own failure, from anything a local step threw (an encoder's stack overflow,
 * say). The cause is kept for logs; the message names no detail of it.
 *
 * @since 0.2.0
 * @category constructors
 */
export const localFailure = (what: string, cause: unknown, upstream?: string): LocalFailure =>
  new LocalFailure({ message: `internal gateway error: ${what}`, upstream, code: "internal_error", cause })

/**
 * The upstream's requested delay, if the error carries one.
 *
 * @since 0.1.0
 * @category utils
 */
export const retryAfterOf = (error: ModelError): Duration.Duration | undefined =>
  "retryAfter" in error ? error.retryAfter : undefined

/**
 * What an adapter knows about a failed HTTP response, to classify it.
 *
 * @since 0.1.0
 * @category models
 */
export interface HttpFailure {
  readonly status: number
  readonly message: string
  readonly upstream?: string | undefined
  /** The provider's error code or type (`context_length_exceeded`, `overloaded_error`, …). */
  readonly code?: string | undefined
  readonly retryAfter?: Duration.Duration | undefined
}

const contextTooLong = /context[_ ]length|context window|prompt is too long|maximum context|too many tokens/i
const refused = /content[_ ]?(policy|filter|management)|safety/i
const quota = /insufficient_quota|spend_limit|billing|quota/i

/**
 * Classifies a failed HTTP response into the taxonomy (the table in DESIGN.md; a 3xx is an
 * `UpstreamUnavailable` with code `upstream_redirect`). Adapters extract
 * the status, the provider's code and message, and the delay headers; this decides the class,
 * so that every adapter maps the same signal to the same error.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromHttpFailure = (failure: HttpFailure): ModelError => {
  const { status, code = "", message } = failure
  const base = { message, upstream: failure.upstream, status, code: failure.code }
  if (code === "overloaded_error" || status === 529) return new Overloaded({ ...base, retryAfter: failure.retryAfter })
  switch (status) {
    case 401:
    case 403:
      return new UpstreamAuth(base)
    case 404:
      return new ModelNotFound(base)
    case 429:
      return quota.test(code) ? new QuotaExhausted(base) : new RateLimited({ ...base, retryAfter: failure.retryAfter })
    case 408:
    case 409:
    case 500:
    case 502:
    case 503:
    case 504:
      return new UpstreamUnavailable({ ...base, retryAfter: failure.retryAfter })
  }
  if (status >= 500) return new UpstreamUnavailable({ ...base, retryAfter: failure.retryAfter })
  // The gateway never follows redirects (a redirect could carry the key to another origin): a
  // 3xx, or any status that is neither a success nor an error, is the upstream misbehaving.
  if (status < 400) return new UpstreamUnavailable({ ...base, code: failure.code ?? "upstream_redirect" })
  if (contextTooLong.test(code) || contextTooLong.test(message)) return new ContextTooLong(base)
  if (refused.test(code)) return new ContentRefused(base)
  return new BadRequest(base)
}
