/**
 * The vocabulary of Anthropic's Messages API that is needed in both directions: by this
 * adapter (canonical → Messages, and the answer back) and by a gateway that serves the Messages
 * API to clients (Messages → canonical, and the answer back). One table each, so that the two
 * directions cannot drift apart.
 *
 * @since 0.2.0
 */
import * as internal from "./internal/wire.js"

/**
 * Anthropic's `stop_reason` as a canonical `finish_reason`: `end_turn`, `stop_sequence` and
 * `pause_turn` → `stop`; `max_tokens` and `model_context_window_exceeded` → `length`;
 * `tool_use` → `tool_calls`; `refusal` → `content_filter`; an unknown one as it is.
 *
 * @since 0.2.0
 * @category conversions
 */
export const finishReasonOf: (stopReason: unknown) => string | null = internal.finishReason

/**
 * A canonical `finish_reason` as Anthropic's `stop_reason` (the inverse of `finishReasonOf`):
 * `stop` → `end_turn`, `length` → `max_tokens`, `tool_calls` and `function_call` → `tool_use`,
 * `content_filter` → `refusal`; one Anthropic does not know → `end_turn`; none → `null`.
 *
 * @since 0.2.0
 * @category conversions
 */
export const stopReasonOf: (finishReason: string | null | undefined) => string | null = internal.stopReason

/**
 * An image block's `source` as the URL of a canonical `image_url` part: base64 data as a
 * `data:` URL, a `url` source as its URL (the adapter turns them back the same way).
 *
 * @since 0.2.0
 * @category conversions
 */
export const imageUrlOf: (
  source: { readonly type: string; readonly media_type?: string; readonly data?: string; readonly url?: string }
) => string = internal.imageUrl

/**
 * Anthropic's error types (`{"type":"error","error":{"type",…}}`).
 *
 * @since 0.2.0
 * @category models
 */
export type ErrorType = internal.ErrorType

/**
 * The Anthropic error type of an HTTP status, as Anthropic answers with it: 400–499 by status
 * (`invalid_request_error` for the rest of 4xx), 503 and 529 → `overloaded_error`, other
 * statuses → `api_error`.
 *
 * @since 0.2.0
 * @category conversions
 */
export const errorTypeOf: (status: number) => ErrorType = internal.errorType
