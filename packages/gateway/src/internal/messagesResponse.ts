/**
 * The Messages API answer: the message object of a canonical completion, and the error shape.
 */
import type { ChatCompletion } from "@breakwater/core"
import { AnthropicWire } from "@breakwater/provider-anthropic"
import type { ApiError } from "../ClientApi.js"
import type { ErrorResponse } from "../MessagesApi.js"

/** @internal */
export type ContentBlock =
  | { readonly type: "text"; readonly text: string }
  | { readonly type: "tool_use"; readonly id: string; readonly name: string; readonly input: unknown }

/** @internal */
export interface MessageUsage {
  readonly input_tokens: number
  readonly output_tokens: number
}

/** @internal */
export interface Message {
  readonly id: string
  readonly type: "message"
  readonly role: "assistant"
  readonly content: ReadonlyArray<ContentBlock>
  readonly model: string
  readonly stop_reason: string | null
  readonly stop_sequence: string | null
  readonly usage: MessageUsage
}

/**
 * A tool call's arguments as the `input` object of a `tool_use` block. Arguments that are not a
 * JSON object (an upstream's malformed call) go as `{}`: clients parse `input` as an object.
 *
 * @internal
 */
export const toolInput = (args: string): unknown => {
  if (args.trim().length === 0) return {}
  try {
    const input: unknown = JSON.parse(args)
    return input !== null && typeof input === "object" && !Array.isArray(input) ? input : {}
  } catch {
    return {}
  }
}

/** @internal */
export const usageOf = (usage: ChatCompletion.Usage | null | undefined): MessageUsage => ({
  input_tokens: usage?.prompt_tokens ?? 0,
  output_tokens: usage?.completion_tokens ?? 0
})

// A chat completion's id as OpenAI-compatible upstreams give it: its unique part is kept.
const chatIdPrefix = "chatcmpl-"

/**
 * A completion's id as a Messages id (`msg_…`, as Anthropic clients expect): an Anthropic
 * upstream's own id unchanged, another's unique part after `msg_` (`chatcmpl-abc` → `msg_abc`),
 * so one answer keeps one id, the same in the client's logs as in the upstream's.
 *
 * @internal
 */
export const messageId = (id: string): string => {
  if (id.startsWith("msg_")) return id
  const unique = id.startsWith(chatIdPrefix) ? id.slice(chatIdPrefix.length) : id
  return unique.length === 0 ? "msg_breakwater" : `msg_${unique}`
}

/** @internal */
export const encodeMessage = (completion: ChatCompletion.ChatCompletion): Message => {
  const choice = completion.choices[0]
  const content: Array<ContentBlock> = []
  const text = (choice?.message.content ?? "") + (choice?.message.refusal ?? "")
  if (text.length > 0) content.push({ type: "text", text })
  for (const call of choice?.message.tool_calls ?? []) {
    content.push({ type: "tool_use", id: call.id, name: call.function.name, input: toolInput(call.function.arguments) })
  }
  return {
    id: messageId(completion.id),
    type: "message",
    role: "assistant",
    content,
    model: completion.model,
    stop_reason: AnthropicWire.stopReasonOf(choice?.finish_reason ?? "stop"),
    // The canonical model does not say which stop sequence matched.
    stop_sequence: null,
    usage: usageOf(completion.usage)
  }
}

// The gateway's own refusals for lack of capacity are Anthropic's "overloaded", whatever status.
const overloadTypes = new Set(["overloaded_error", "capacity_exceeded", "circuit_open"])

/** @internal */
export const fromApiError = (error: ApiError, requestId?: string): ErrorResponse => {
  const type = overloadTypes.has(error.type) ? "overloaded_error" : AnthropicWire.errorTypeOf(error.status)
  const body = { type: "error" as const, error: { type, message: error.message } }
  return { status: error.status, body: requestId === undefined ? body : { ...body, request_id: requestId } }
}
