/**
 * What the mock does with one request: at most one fault, at most one way of getting a
 * continuation wrong, and the answer's shape and pacing (which combine freely).
 */
import * as Data from "effect/Data"

/**
 * How the upstream fails, at most one per request. The `afterChunks` faults strike after that
 * many content chunks of a stream; on a non-streaming request they do nothing.
 */
export type Fault = Data.TaggedEnum<{
  /** An error response with this status and the provider's error body (`message`, or the provider's usual one). */
  Status: { readonly status: number; readonly message?: string | undefined }
  /** The connection is destroyed once the request is read, before any response. */
  ResetBeforeHeaders: {}
  /** No response at all: the socket stays open until the client gives up or the mock stops. */
  StallBeforeHeaders: {}
  /** The socket is destroyed mid-stream. */
  Cut: { readonly afterChunks: number }
  /** The stream goes silent, connection open. */
  Stall: { readonly afterChunks: number }
  /** A truncated JSON frame, then the end. */
  Malformed: { readonly afterChunks: number }
  /** An in-band error event (Anthropic: `overloaded_error`), then the end. */
  ErrorEvent: { readonly afterChunks: number }
  /** A clean end without the terminator (`data: [DONE]`, `message_stop`). */
  NoTerminator: {}
}>

export const Fault = Data.taggedEnum<Fault>()

/** How a continuation request (one that continues a partial answer of the mock) is mishandled. */
export type ContinuationFault = Data.TaggedEnum<{
  /** The answer repeats the last `chars` delivered characters first. */
  Overlap: { readonly chars: number }
  /** The answer starts over from the beginning. */
  Restart: {}
  /** A 400 `invalid_request_error` for any request ending with an assistant message (prefill). */
  RejectPrefill: {}
}>

export const ContinuationFault = Data.taggedEnum<ContinuationFault>()

export interface Behavior {
  readonly fault?: Fault | undefined
  readonly continuation?: ContinuationFault | undefined
  /** Added to the response, an error or not (`retry-after`, rate-limit headers). */
  readonly headers?: Readonly<Record<string, string>> | undefined
  /** Answer length in words (default: the mock's `words`). */
  readonly words?: number | undefined
  /** The exact answer text instead of the generated one. */
  readonly text?: string | undefined
  /** One tool call whose JSON arguments stream in pieces, instead of text. */
  readonly toolCall?: boolean | undefined
  /** The model name echoed (default: the request's). */
  readonly model?: string | undefined
  /** Wait before the status line. */
  readonly headersDelayMs?: number | undefined
  /** Wait between the head frames and the first content chunk (default: `chunkDelayMs`). */
  readonly firstChunkDelayMs?: number | undefined
  /** Wait between content chunks (default: the mock's `chunkDelayMs`). */
  readonly chunkDelayMs?: number | undefined
  /** Keep-alive comments (OpenAI) or `ping` events (Anthropic) while the stream is open. */
  readonly pingEveryMs?: number | undefined
  /** Every frame in two writes, split inside a multi-byte character. */
  readonly splitUtf8?: boolean | undefined
}
