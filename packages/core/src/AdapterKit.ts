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
import type * as LanguageModel from "./LanguageModel.js"
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
 * A `Scrub` that replaces every occurrence of the key(s) — as is, URL-encoded or base64 — and
 * anything shaped like a provider key (`sk-…`) with `[redacted]`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const scrubber: (
  secret: Redacted.Redacted<string> | ReadonlyArray<Redacted.Redacted<string>> | undefined
) => Scrub = internal.scrubber

/**
 * Replaces every secret of `secrets` at least `minLength` (8) long — as is, URL-encoded, or
 * base64 at any alignment, standard or URL-safe — and anything shaped like a provider key
 * (`sk-…`, `sk-ant-…`, a masked key) with `[redacted]`: what hosts apply to everything that
 * leaves the server.
 *
 * @since 0.2.0
 * @category constructors
 */
export const scrubSecrets: (text: string, secrets: ReadonlyArray<string>, minLength?: number) => string =
  internal.scrubSecrets

/**
 * Reads `{"error":{"message","code","type"}}`, `{"error":"…"}` and `{"message","type"}` error
 * bodies into a message and a provider code (`code`, else `type`, when it is an identifier).
 * Only that message is ever passed on, scrubbed and cut to 512 characters; one that looks like
 * markup or a stack trace is dropped (the caller says `HTTP <status>` instead), and so is any
 * body that is not such JSON.
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
 * Decodes an SSE response into canonical chunks, as an `effect/Stream` (for tests and tools; an
 * adapter's streaming call is `runCall`). The same reader as `runCall`'s: SSE comments become
 * heartbeat chunks; the handler translates events; the stream stops at the handler's `"done"`
 * (the connection is kept) or failure; a body that ends first fails with
 * `StreamInterrupted{reason:"no-terminator"}`, a socket error with `reason:"reset"`. Ending the
 * stream early destroys the body, which closes the upstream socket.
 *
 * @since 0.1.0
 * @category constructors
 */
export const sseChunks: (
  upstream: string,
  response: UpstreamHttp.Response,
  model: string,
  handler: FrameHandler
) => Stream.Stream<ChatCompletion.ChatCompletionChunk, ModelError.ModelError> = internal.sseChunks

/**
 * Encodes a request body for the wire. A `ModelError` the encoder throws (a request that cannot
 * be translated) fails as it is; anything else it throws (a stack overflow on a pathological
 * value, a bug) is the gateway's own failure, `ModelError.LocalFailure`, which no upstream is
 * blamed for.
 *
 * @since 0.2.0
 * @category constructors
 */
export const encodeBody: (upstream: string, encode: () => string) => Effect.Effect<string, ModelError.ModelError> =
  internal.encodeBody

/**
 * One non-streaming upstream call under the adapters' conventions, in the request context of
 * `options` (`RequestContext.of`): `trace.attempts` counted at the start; the JSON body decoded by `decode`; `trace.upstream` and `trace.model` (the
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
  decode: (json: unknown) => Effect.Effect<ChatCompletion.ChatCompletion, ModelError.ModelError>,
  options?: LanguageModel.CallOptions | undefined
) => Effect.Effect<ChatCompletion.ChatCompletion, ModelError.ModelError> = internal.generateCall

/**
 * One streaming upstream call under the adapters' conventions, in push form, in the request
 * context of `options` (`RequestContext.of`): the handler
 * `handler` makes (an effect, so a handler can hold per-stream state or read the clock) made
 * first; `trace.attempts` counted; the sink's `start` called before the request is sent (so a
 * limit above can abort it); once the upstream accepts the stream, `trace.upstream` and
 * `trace.model` (`model`, then the first chunk's) set, and the body decoded from the socket's
 * reads, each read's chunks pushed in one batch, the socket paused while the sink asks.
 *
 * @since 0.2.0
 * @category constructors
 */
export const runCall: (
  http: UpstreamHttp.UpstreamHttp,
  request: UpstreamHttp.Request,
  readError: UpstreamHttp.ErrorBodyReader,
  model: string,
  handler: Effect.Effect<FrameHandler>,
  sink: LanguageModel.ChunkSink,
  options?: LanguageModel.CallOptions | undefined
) => Effect.Effect<void, ModelError.ModelError> = internal.runCall

/**
 * Transport settings shared by the adapters' options, passed to `UpstreamHttp.make`.
 *
 * @since 0.1.0
 * @category models
 */
export interface TransportSettings {
  /** Connections in the pool (default unbounded; see `UpstreamHttp.Options`). */
  readonly connections?: number | undefined
  /** Time to get a connection, pool wait included (default 10 s). */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** Time from sending the request to receiving headers (default 120 s). */
  readonly headersTimeout?: Duration.DurationInput | undefined
  /** Socket-level idle limit between body chunks (default 300 s). */
  readonly bodyTimeout?: Duration.DurationInput | undefined
  /** HTTP/2 to upstreams that offer it (default false). */
  readonly allowH2?: boolean | undefined
  /** Largest non-streaming response read (default 32 MiB). */
  readonly maxResponseBytes?: number | undefined
  /** Largest streamed response read (default 256 MiB). */
  readonly maxStreamBytes?: number | undefined
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
