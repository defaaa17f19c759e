/**
 * Anthropic's Messages API (`POST /v1/messages`) as a client-facing API, over the canonical
 * model: the request decoded with Schema into a canonical `ChatRequest` (so any route serves
 * it, an Anthropic upstream or an OpenAI one), the answer encoded as a Messages message object
 * or event stream, and errors in Anthropic's shape. Transport-independent: a host parses the
 * body, runs the gateway's model, and writes what these functions return.
 *
 * The stream encoder is plain synchronous code per batch of chunks, like `ClientStream`'s: it
 * owns the Messages envelope of one logical stream (stream-resume's stitched one), so an attempt
 * boundary never shows on the wire.
 *
 * @since 0.2.0
 */
import { ChatCompletion, SseCodec } from "@breakwater/core"
import type { AnthropicWire } from "@breakwater/provider-anthropic"
import * as Data from "effect/Data"
import * as Either from "effect/Either"
import type { ApiError } from "./ClientApi.js"
import type { Encoding } from "./ClientStream.js"
import * as request from "./internal/messagesRequest.js"
import * as response from "./internal/messagesResponse.js"
import * as stream from "./internal/messagesStream.js"

/**
 * The Messages request body as Schema: `model`, `max_tokens`, `messages` (string content or
 * `text` / `image` / `tool_use` / `tool_result` blocks; other block types pass on as parts),
 * `system` (a string or text blocks), `tools` (custom tools), `tool_choice`, `temperature`,
 * `top_p`, `top_k`, `stop_sequences`, `metadata.user_id`, `stream`. Unknown fields are dropped.
 *
 * @since 0.2.0
 * @category schemas
 */
export const MessagesRequest = request.MessagesRequest

/**
 * A decoded Messages request body.
 *
 * @since 0.2.0
 * @category models
 */
export type MessagesRequest = request.MessagesRequest

/**
 * A Messages body that cannot be served: every problem by path in one message for the client.
 *
 * @since 0.2.0
 * @category errors
 */
export class InvalidRequest extends Data.TaggedError("InvalidRequest")<{ readonly message: string }> {}

/**
 * Decodes a parsed Messages body into the canonical request: `system` becomes a system
 * message; a user turn's `tool_result` blocks become `tool` messages (their images go into the
 * user message after them) followed by a user message with the turn's other blocks; an assistant
 * turn's `tool_use` blocks become `tool_calls` (`input` as JSON `arguments`); a final assistant
 * turn stays last (a prefill, for upstreams that take one); `stop_sequences` → `stop`,
 * `metadata.user_id` → `user`, `tool_choice` auto / any / tool / none → auto / required /
 * named / none (`disable_parallel_tool_use` → `parallel_tool_calls: false`), `top_k` kept as an
 * extra field; a streaming request asks for usage (`stream_options.include_usage`). The
 * canonical rules and limits then apply (`ChatCompletion.decodeChatRequest` with `limits`).
 * Never throws.
 *
 * @since 0.2.0
 * @category decoding
 */
export const decodeRequest = (
  input: unknown,
  limits: ChatCompletion.RequestLimits = ChatCompletion.defaultRequestLimits
): Either.Either<ChatCompletion.ChatRequest, InvalidRequest> =>
  Either.mapLeft(request.decode(input, limits), (message) => new InvalidRequest({ message: `invalid request: ${message}` }))

/**
 * `decodeRequest` of a JSON text (a request body).
 *
 * @since 0.2.0
 * @category decoding
 */
export const parseRequest = (
  body: string,
  limits: ChatCompletion.RequestLimits = ChatCompletion.defaultRequestLimits
): Either.Either<ChatCompletion.ChatRequest, InvalidRequest> => {
  let parsed: unknown
  try {
    parsed = JSON.parse(body)
  } catch (error) {
    return Either.left(new InvalidRequest({ message: `request body is not valid JSON: ${(error as Error).message}` }))
  }
  return decodeRequest(parsed, limits)
}

/**
 * A content block of a Messages answer.
 *
 * @since 0.2.0
 * @category models
 */
export type ContentBlock = response.ContentBlock

/**
 * A Messages message object (the non-streaming answer).
 *
 * @since 0.2.0
 * @category models
 */
export type Message = response.Message

/**
 * A canonical completion as a Messages message object: its id as a Messages id (`msg_…`: an
 * Anthropic upstream's unchanged, `chatcmpl-abc` → `msg_abc`), its text as a `text` block (a refusal's
 * text too), its tool calls as `tool_use` blocks (`arguments` parsed; not a JSON object → `{}`),
 * `stop_reason` from `finish_reason` (`AnthropicWire.stopReasonOf`), `stop_sequence` null (the
 * canonical model does not carry it), `usage` input / output tokens from prompt / completion
 * tokens (cached prompt tokens included).
 *
 * @since 0.2.0
 * @category encoding
 */
export const encodeMessage: (completion: ChatCompletion.ChatCompletion) => Message = response.encodeMessage

/**
 * Encodes one logical canonical stream as Messages server-sent events, batch by batch.
 *
 * @since 0.2.0
 * @category models
 */
export interface StreamEncoder {
  /**
   * The events of a batch of chunks (`""` when none): `message_start` before the first chunk
   * that is not a heartbeat (its id as a Messages id, as `encodeMessage` gives it; its usage's
   * prompt tokens as `input_tokens`, else the option's);
   * text as `text_delta` in a `text` block, tool-call fragments as `input_json_delta` in a
   * `tool_use` block started with the call's id and name; a block is stopped when another kind
   * begins or the finish arrives; blocks are numbered from 0 without gaps. Usage chunks are
   * summed (each is one attempt's own). A heartbeat is a `ping` once the message started; a
   * stream-resume seam is a comment.
   */
  readonly onChunks: (chunks: ReadonlyArray<ChatCompletion.ChatCompletionChunk>) => string
  /**
   * The end of a complete stream: the open block stopped, one `message_delta` (`stop_reason`
   * from the finish, `end_turn` without one; usage: the summed output tokens, and input tokens
   * when a usage chunk came), one `message_stop`. `""` once the stream ended.
   */
  readonly end: () => string
  /** The end of a failed stream: one `error` event in Anthropic's shape (`fromApiError`). */
  readonly fail: (error: ApiError, requestId?: string) => string
  /** Whether `end` or `fail` was called. */
  readonly ended: () => boolean
}

/**
 * Options of a stream encoder: the `model` and `input_tokens` of `message_start` when the
 * stream ends before any chunk says them.
 *
 * @since 0.2.0
 * @category models
 */
export interface StreamOptions {
  readonly model?: string | undefined
  readonly inputTokens?: number | undefined
}

/**
 * Creates the encoder of one Messages stream.
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeStreamEncoder: (options?: StreamOptions) => StreamEncoder = stream.make

/**
 * An error response in Anthropic's shape: the status and `{"type":"error","error":{type,message}}`
 * (with `request_id` when given).
 *
 * @since 0.2.0
 * @category models
 */
export interface ErrorResponse {
  readonly status: number
  readonly body: {
    readonly type: "error"
    readonly error: { readonly type: AnthropicWire.ErrorType; readonly message: string }
    readonly request_id?: string
  }
}

/**
 * A client-facing error (`ClientApi.ApiError`) in Anthropic's shape, with the same status: the
 * type from the status (`AnthropicWire.errorTypeOf`: 400 `invalid_request_error`, 401
 * `authentication_error`, 403 `permission_error`, 404 `not_found_error`, 413
 * `request_too_large`, 429 `rate_limit_error`, 503 / 529 `overloaded_error`, other 5xx
 * `api_error`), and `overloaded_error` for the gateway's own capacity refusals (an open
 * circuit, a full bulkhead) whatever their status. The headers are `ClientApi.errorHeaders`'.
 *
 * @since 0.2.0
 * @category errors
 */
export const fromApiError: (error: ApiError, requestId?: string) => ErrorResponse = response.fromApiError

/**
 * The JSON body of an error response in Anthropic's shape (`fromApiError`'s body).
 *
 * @since 0.3.0
 * @category encoding
 */
export const errorBody = (error: ApiError, requestId: string): string => JSON.stringify(response.fromApiError(error, requestId).body)

/**
 * The Messages event encoding for `ClientStream.make`'s writer: the commit gate, backpressure,
 * write coalescing and event ids (journaled streams, one per event) are the writer's; the
 * envelope is `makeStreamEncoder`'s.
 *
 * @since 0.3.0
 * @category constructors
 */
export const streamEncoding = (options: StreamOptions = {}): Encoding => (frame) => stream.makeChunkEncoder(options, frame)

/**
 * The `error` event that ends a stream whose headers are gone (a replay cut by the journal).
 *
 * @since 0.3.0
 * @category encoding
 */
export const errorEvent = (error: ApiError, requestId: string): string =>
  SseCodec.encodeEvent({ event: "error", data: errorBody(error, requestId) })
