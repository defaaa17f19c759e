/**
 * How a broken stream is continued: the request that asks an upstream to go on from the text
 * already delivered. Stream-resume asks for a continuation through `CallOptions`; the adapter that
 * actually serves the attempt renders it in the form its provider supports.
 *
 * @since 0.1.0
 */
import type { ChatRequest, Message } from "./ChatCompletion.js"
import type { ModelError } from "./ModelError.js"

/**
 * - `assistant-prefill`: the delivered text goes last as an assistant message and the provider
 *   continues it (Anthropic; vLLM-style servers). Right-trimmed, since providers reject or
 *   mishandle trailing whitespace in a prefill.
 * - `user-instruction`: the delivered text goes as an assistant message followed by a user
 *   message asking to continue exactly from there (works with any chat model, less exactly).
 *
 * @since 0.1.0
 * @category models
 */
export type Strategy = "assistant-prefill" | "user-instruction"

/**
 * A continuation asked of an adapter.
 *
 * @since 0.1.0
 * @category models
 */
export interface Continuation {
  /** The text already delivered to the client. */
  readonly partial: string
  /** Force a strategy; otherwise the adapter uses its preferred one. */
  readonly strategy?: Strategy | undefined
  /** The user-instruction wording; defaults to `defaultInstruction`. */
  readonly instruction?: string | undefined
  /**
   * Filled in by `toRequest` with the strategy the adapter used, so the caller knows whether the
   * continuation is exact (a prefill continues the text itself) or may repeat or rephrase.
   */
  readonly applied?: { strategy?: Strategy | undefined } | undefined
}

/**
 * The default wording of a user-instruction continuation.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultInstruction =
  "Your previous response was interrupted. Continue exactly where it stopped, without repeating any text already written and without any preamble."

/**
 * Renders a continuation as a canonical request with the given strategy. Adapters call this
 * and then translate the result to their wire format as usual.
 *
 * @since 0.1.0
 * @category constructors
 */
export const toRequest = (request: ChatRequest, continuation: Continuation, strategy: Strategy): ChatRequest => {
  if (continuation.applied !== undefined) continuation.applied.strategy = strategy
  const messages: Array<Message> = [...request.messages]
  if (strategy === "assistant-prefill") {
    messages.push({ role: "assistant", content: continuation.partial.trimEnd() })
  } else {
    messages.push({ role: "assistant", content: continuation.partial })
    messages.push({ role: "user", content: continuation.instruction ?? defaultInstruction })
  }
  return { ...request, messages: messages as unknown as ChatRequest["messages"] }
}

// Anthropic (Claude 4.6 on), vLLM without `continue_final_message`, and OpenAI-compatible servers
// say it in these words; the status alone (a 400) says nothing about prefill.
const prefillRefused = /prefill|final assistant|assistant message|end with a user|continue_final_message/i

/**
 * Whether an upstream refused a request because it ends with an assistant message (a prefill):
 * a `BadRequest` whose message says so. The continuation can then be sent again as a
 * `user-instruction`, which every chat model accepts.
 *
 * @since 0.2.0
 * @category guards
 */
export const isPrefillRejection = (error: ModelError): boolean =>
  error._tag === "BadRequest" && prefillRefused.test(error.message)
