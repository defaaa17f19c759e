/**
 * The pieces every provider adapter shares: reading provider error bodies (with the provider key
 * scrubbed from anything the upstream echoes back), classifying an in-band error object, the
 * driver that turns an SSE response into canonical chunks with the stream-interruption semantics
 * of the taxonomy, one upstream call under the trace conventions, and the transport settings
 * every adapter's options carry. Every `@breakwater/provider-*` package builds on it.
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Redacted from "effect/Redacted"
import type * as Stream from "effect/Stream"
import type * as ChatCompletion from "./ChatCompletion.js"
import * as internal from "./internal/adapterKit.js"
import type * as ModelError from "./ModelError.js"
import type * as SseCodec from "./SseCodec.js"
import type * as UpstreamHttp from "./UpstreamHttp.js"

/**
 * Removes a secret from text an upstream produced (an error message may echo the key back).
 *
 * @since 0.1.0
 * @category models
 */
export type Scrub = (text: string) => string

/**
 * A `Scrub` that replaces every occurrence of the key with `[redacted]` (the identity without a key).
 *
 * @since 0.1.0
 * @category constructors
 */
export const scrubber: (secret: Redacted.Redacted<string> | undefined) => Scrub = internal.scrubber

/**
 * Reads `{"error":{"message","code","type"}}`, `{"error":"…"}` and `{"message","type"}` error
 * bodies into a message (scrubbed) and a provider code (`code`, else `type`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const errorReader: (scrub: Scrub) => UpstreamHttp.ErrorBodyReader = internal.errorReader

/**
 * Classifies an error object that arrived in-band (an SSE error event, or an error inside a
 * 200 body): its status comes from `status`, a numeric `code`, or its type
 * (`overloaded_error` → 529, `rate_limit_error` → 429, `invalid_request_error` → 400, …; 500
 * when unknown), then `ModelError.fromHttpFailure` decides.
 *
 * @since 0.1.0
 * @category errors
 */
export const fromErrorObject: (upstream: string, error: unknown, scrub: Scrub) => ModelError.ModelError =
  internal.fromErrorObject

/**
 * What a frame handler decided: go on (`undefined`), the stream is complete (`"done"`), or it
 * failed with an error (normally a `StreamInterrupted` made with `FrameContext.interrupted`).
 *
 * @since 0.1.0
 * @category models
 */
export type FrameOutcome = internal.FrameOutcome

/**
 * What a frame handler can do: emit canonical chunks (counted as received), emit a heartbeat,
 * and build a `StreamInterrupted` that carries the count received so far.
 *
 * @since 0.1.0
 * @category models
 */
export interface FrameContext extends internal.FrameContext {}

/**
 * Translates one SSE event of a provider's stream.
 *
 * @since 0.1.0
 * @category models
 */
export type FrameHandler = (event: SseCodec.SseEvent, context: FrameContext) => FrameOutcome

/**
 * Decodes an SSE response into canonical chunks with one channel over the body (no fiber or
 * effect per chunk). SSE comments become heartbeat chunks; the handler translates events; the
 * stream stops at the handler's `"done"` or failure; a body that ends first fails with
 * `StreamInterrupted{reason:"no-terminator"}`, a socket error with `reason:"reset"`. Ending the
 * stream early (interruption included) destroys the body, which closes the upstream socket.
 * Reaching the handler's `"done"` marks the response complete (`UpstreamHttp.markComplete`), so
 * its connection is kept. `model` names heartbeats sent before the first chunk; `onFirst` sees
 * the first chunk emitted.
 *
 * @since 0.1.0
 * @category constructors
 */
export const sseChunks: (
  upstream: string,
  response: UpstreamHttp.Response,
  model: string,
  handler: FrameHandler,
  onFirst?: (chunk: ChatCompletion.ChatCompletionChunk) => void
) => Stream.Stream<ChatCompletion.ChatCompletionChunk, ModelError.ModelError> = internal.sseChunks

/**
 * One non-streaming upstream call under the adapters' conventions: `trace.attempts` counted at
 * the start; the JSON body decoded by `decode`; `trace.upstream` and `trace.model` (the
 * completion's, else `model`) set on success.
 *
 * @since 0.1.0
 * @category constructors
 */
export const generateCall: (
  http: UpstreamHttp.UpstreamHttp,
  request: UpstreamHttp.Request,
  readError: UpstreamHttp.ErrorBodyReader,
  model: string,
  decode: (json: unknown) => Effect.Effect<ChatCompletion.ChatCompletion, ModelError.ModelError>
) => Effect.Effect<ChatCompletion.ChatCompletion, ModelError.ModelError> = internal.generateCall

/**
 * One streaming upstream call under the adapters' conventions: `trace.attempts` counted at the
 * start; once the upstream accepts the stream, `trace.upstream` and `trace.model` (`model`, then
 * the first chunk's) set, and the body decoded with `sseChunks` and the handler `handler` makes
 * (an effect, so a handler can hold per-stream state or read the clock).
 *
 * @since 0.1.0
 * @category constructors
 */
export const streamCall: (
  http: UpstreamHttp.UpstreamHttp,
  request: UpstreamHttp.Request,
  readError: UpstreamHttp.ErrorBodyReader,
  model: string,
  handler: Effect.Effect<FrameHandler>
) => Stream.Stream<ChatCompletion.ChatCompletionChunk, ModelError.ModelError> = internal.streamCall

/**
 * Transport settings shared by the adapters' options, passed to `UpstreamHttp.make`.
 *
 * @since 0.1.0
 * @category models
 */
export interface TransportSettings {
  /** Keep-alive connections in the pool (default 128). */
  readonly connections?: number | undefined
  /** Time to establish a connection (default 10 s). */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** Time from sending the request to receiving headers (default 120 s). */
  readonly headersTimeout?: Duration.DurationInput | undefined
  /** Socket-level idle limit between body chunks (default 300 s). */
  readonly bodyTimeout?: Duration.DurationInput | undefined
}

/**
 * The Schema fields of `TransportSettings`, to spread into an adapter's options Schema.
 *
 * @since 0.1.0
 * @category schemas
 */
export const transportFields = internal.transportFields

/**
 * The `UpstreamHttp.Options` of an upstream from its name, base URL and transport settings.
 *
 * @since 0.1.0
 * @category constructors
 */
export const transportOptions: (name: string, baseUrl: string, settings: TransportSettings) => UpstreamHttp.Options =
  internal.transportOptions
