/**
 * A small client helper that reads a chat completion stream from a Breakwater host and survives
 * a broken connection: on a network error, or a stream that ends without its terminal event
 * (`[DONE]` or an error event), it reconnects with the same request, its `Idempotency-Key` and
 * `Last-Event-ID`, and the host sends exactly the events that were missed, then the live rest.
 * The caller sees each chunk once, in order. Neither official SDK reconnects by itself.
 *
 * Dependency-free (`fetch`, `TextDecoder`, `ReadableStream`): it runs in Node 18+ and browsers,
 * and its API has no Effect in it.
 *
 * ```ts
 * for await (const chunk of ResumeClient.stream({ url: "http://localhost:8787/v1/chat/completions", body, headers })) {
 *   process.stdout.write(chunk.choices[0]?.delta.content ?? "")
 * }
 * ```
 *
 * @since 0.1.0
 */
import * as internal from "./internal/client.js"

/**
 * The shape of a chat completion chunk, as far as the helper is concerned (the OpenAI shape).
 *
 * @since 0.1.0
 * @category models
 */
export interface ChatChunk {
  readonly id: string
  readonly object: string
  readonly created: number
  readonly model: string
  readonly choices: ReadonlyArray<{
    readonly index: number
    readonly delta: { readonly role?: string; readonly content?: string | null; readonly tool_calls?: ReadonlyArray<unknown> }
    readonly finish_reason: string | null
  }>
  readonly usage?: { readonly prompt_tokens: number; readonly completion_tokens: number; readonly total_tokens: number } | null
}

/**
 * What `onReconnect` is told before each reconnect.
 *
 * @since 0.1.0
 * @category models
 */
export interface ReconnectInfo {
  /** 1 for the first reconnect after progress, 2 if that one delivered nothing, … */
  readonly attempt: number
  /** The id of the last event received (sent as `Last-Event-ID`). */
  readonly lastEventId: string | undefined
  readonly delayMs: number
  readonly error: unknown
}

/**
 * Options, with their defaults.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The chat completions URL, e.g. `http://localhost:8787/v1/chat/completions`. */
  readonly url: string
  /** The request body (`stream: true` is set for you). */
  readonly body: Record<string, unknown>
  /** Extra headers, e.g. `authorization`. */
  readonly headers?: Record<string, string> | undefined
  /** Names the stream on the server for reconnects (default: a random UUID per call). */
  readonly idempotencyKey?: string | undefined
  /** Connections in a row that may break without delivering anything before giving up (default 5). */
  readonly maxAttempts?: number | undefined
  /** First reconnect delay, in ms (default 250; the server's `retry:` hint replaces it); doubles per fruitless attempt. */
  readonly initialDelayMs?: number | undefined
  /** Longest reconnect delay, in ms (default 5000). */
  readonly maxDelayMs?: number | undefined
  /** The `fetch` to use (default `globalThis.fetch`). */
  readonly fetch?: typeof globalThis.fetch | undefined
  /** Aborts the request and any reconnect wait. */
  readonly signal?: AbortSignal | undefined
  /** Called before each reconnect. */
  readonly onReconnect?: ((info: ReconnectInfo) => void) | undefined
}

/**
 * Why the helper stopped: an HTTP error (`status`), the gateway's error event (`status` 200,
 * `body` the event), a stream that could no longer be resumed (204), or reconnects exhausted
 * (`status` undefined, `body` the last connection error).
 *
 * @since 0.1.0
 * @category errors
 */
export class ResumeError extends Error {
  constructor(message: string, readonly status: number | undefined, readonly body: unknown) {
    super(message)
    this.name = "ResumeError"
  }
}

/**
 * Streams a chat completion, reconnecting with `Last-Event-ID` when the connection breaks;
 * yields each chunk (the parsed `data` of each event) once, and returns after `[DONE]`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const stream: <T = ChatChunk>(options: Options) => AsyncGenerator<T, void, undefined> = internal.stream
