/**
 * The Messages API request (Anthropic's `POST /v1/messages` body) as Schema, and its
 * translation into the canonical request. The inverse of `@breakwater/provider-anthropic`'s
 * request encoding, so that a Messages request served by an Anthropic upstream reaches it as the
 * client wrote it (what the canonical model cannot carry is listed in the gateway's README).
 */
import { ChatCompletion } from "@breakwater/core"
import { AnthropicWire } from "@breakwater/provider-anthropic"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"

const Extra = Schema.Record({ key: Schema.String, value: Schema.Unknown })

const NonNegativeInt = Schema.Int.pipe(Schema.nonNegative())

/** @internal */
export const TextBlock = Schema.Struct({ type: Schema.Literal("text"), text: Schema.String }, Extra)

/** @internal */
export const ImageBlock = Schema.Struct(
  {
    type: Schema.Literal("image"),
    source: Schema.Union(
      Schema.Struct({ type: Schema.Literal("base64"), media_type: Schema.String, data: Schema.String }, Extra),
      Schema.Struct({ type: Schema.Literal("url"), url: Schema.String }, Extra)
    )
  },
  Extra
)

/** @internal */
export const ToolUseBlock = Schema.Struct(
  { type: Schema.Literal("tool_use"), id: Schema.String, name: Schema.String, input: Schema.Unknown },
  Extra
)

/** @internal */
export const ToolResultBlock = Schema.Struct(
  {
    type: Schema.Literal("tool_result"),
    tool_use_id: Schema.String,
    content: Schema.optional(Schema.Union(Schema.String, Schema.Array(Schema.Union(TextBlock, ImageBlock)))),
    is_error: Schema.optional(Schema.Boolean)
  },
  Extra
)

const known = new Set(["text", "image", "tool_use", "tool_result"])

/** A block the canonical model has no field for (`document`, `thinking`, …): passed on as a part. */
const OtherBlock = Schema.Struct(
  {
    type: Schema.String.pipe(
      Schema.filter((t) => !known.has(t), { message: () => "a text, image, tool_use or tool_result block is malformed" })
    )
  },
  Extra
)

/** @internal */
export const ContentBlock = Schema.Union(TextBlock, ImageBlock, ToolUseBlock, ToolResultBlock, OtherBlock)

type Block = typeof ContentBlock.Type

/** @internal */
export const MessageParam = Schema.Struct(
  {
    role: Schema.Literal("user", "assistant"),
    content: Schema.Union(Schema.String, Schema.Array(ContentBlock))
  },
  Extra
)

/** @internal */
export const ToolParam = Schema.Struct(
  {
    type: Schema.optional(Schema.Literal("custom").annotations({
      message: () => "only custom tools (with an input_schema) can be served: Anthropic's server tools cannot be routed to other upstreams"
    })),
    name: Schema.String,
    description: Schema.optional(Schema.String),
    input_schema: Extra
  },
  Extra
)

/** @internal */
export const ToolChoiceParam = Schema.Union(
  Schema.Struct({ type: Schema.Literal("auto", "any"), disable_parallel_tool_use: Schema.optional(Schema.Boolean) }),
  Schema.Struct({ type: Schema.Literal("tool"), name: Schema.String, disable_parallel_tool_use: Schema.optional(Schema.Boolean) }),
  Schema.Struct({ type: Schema.Literal("none") })
)

/** @internal */
export const MessagesRequest = Schema.Struct(
  {
    model: Schema.String.pipe(Schema.minLength(1, { message: () => "model must not be empty" })),
    max_tokens: Schema.Int.pipe(Schema.positive({ message: () => "max_tokens must be a positive integer" })),
    messages: Schema.Array(MessageParam).pipe(
      Schema.minItems(1, { message: () => "messages must be a non-empty array of {role, content} messages" })
    ),
    system: Schema.optional(Schema.Union(Schema.String, Schema.Array(TextBlock))),
    tools: Schema.optional(Schema.Array(ToolParam)),
    tool_choice: Schema.optional(ToolChoiceParam),
    temperature: Schema.optional(Schema.Number.pipe(Schema.between(0, 1))),
    top_p: Schema.optional(Schema.Number.pipe(Schema.between(0, 1))),
    top_k: Schema.optional(NonNegativeInt),
    stop_sequences: Schema.optional(Schema.Array(Schema.String)),
    metadata: Schema.optional(Schema.Struct({ user_id: Schema.optional(Schema.NullOr(Schema.String)) }, Extra)),
    stream: Schema.optional(Schema.Boolean)
  },
  Extra
)

/** @internal */
export type MessagesRequest = typeof MessagesRequest.Type

/** A request the canonical model cannot express; the message is for the client. */
class Untranslatable {
  constructor(readonly message: string) {}
}

type Part = typeof ChatCompletion.ContentPart.Type
type Message = ChatCompletion.Message

const textPart = (text: string): Part => ({ type: "text", text })

const imagePart = (block: typeof ImageBlock.Type): Part => ({
  type: "image_url",
  image_url: { url: AnthropicWire.imageUrlOf(block.source as { type: string }) }
})

// Extended-thinking blocks of earlier turns: not carried (see `assistantMessage`).
const thinking = new Set(["thinking", "redacted_thinking"])

/** A user turn: tool results first (each a `tool` message), then the rest as one user message. */
const userMessages = (content: string | ReadonlyArray<Block>, out: Array<Message>): void => {
  if (typeof content === "string") {
    out.push({ role: "user", content })
    return
  }
  const parts: Array<Part> = []
  for (const block of content) {
    switch (block.type) {
      case "text":
        parts.push(textPart((block as typeof TextBlock.Type).text))
        break
      case "image":
        parts.push(imagePart(block as typeof ImageBlock.Type))
        break
      case "tool_result": {
        const result = block as typeof ToolResultBlock.Type
        const texts: Array<typeof ChatCompletion.TextPart.Type> = []
        if (Array.isArray(result.content)) {
          for (const item of result.content) {
            // The canonical tool message holds text only: its images go in the user message after it.
            if (item.type === "text") texts.push({ type: "text", text: item.text })
            else parts.push(imagePart(item))
          }
        }
        out.push({
          role: "tool",
          tool_call_id: result.tool_use_id,
          // No text at all is an empty string: not every upstream takes an empty list of parts.
          content: typeof result.content === "string" ? result.content : texts.length > 0 ? texts : ""
        })
        break
      }
      case "tool_use":
        throw new Untranslatable("a user message cannot hold a tool_use block")
      default:
        if (thinking.has(block.type)) break
        parts.push(block as Part)
    }
  }
  if (parts.length > 0) out.push({ role: "user", content: parts })
}

const assistantMessage = (content: string | ReadonlyArray<Block>): Message => {
  if (typeof content === "string") return { role: "assistant", content }
  const parts: Array<Part> = []
  const calls: Array<typeof ChatCompletion.ToolCall.Type> = []
  let onlyText = true
  for (const block of content) {
    if (block.type === "tool_use") {
      const use = block as typeof ToolUseBlock.Type
      calls.push({ id: use.id, type: "function", function: { name: use.name, arguments: JSON.stringify(use.input ?? {}) } })
    } else if (block.type === "text") {
      parts.push(textPart((block as typeof TextBlock.Type).text))
    } else if (block.type === "tool_result") {
      throw new Untranslatable("an assistant message cannot hold a tool_result block")
    } else if (thinking.has(block.type)) {
      // Extended thinking is not carried (the request's `thinking` is dropped): an earlier
      // turn's thinking goes nowhere, and an OpenAI upstream would refuse the block.
      continue
    } else {
      onlyText = false
      parts.push(block.type === "image" ? imagePart(block as typeof ImageBlock.Type) : block as Part)
    }
  }
  // Text alone is a string, the form every upstream takes for an assistant turn.
  const text = onlyText ? parts.map((p) => (p as { text: string }).text).join("") : undefined
  const body = text !== undefined ? (text.length > 0 || calls.length === 0 ? text : null) : parts
  return calls.length > 0 ? { role: "assistant", content: body, tool_calls: calls } : { role: "assistant", content: body }
}

const toolChoice = (choice: typeof ToolChoiceParam.Type): Pick<ChatCompletion.ChatRequest, "tool_choice" | "parallel_tool_calls"> => {
  const parallel = "disable_parallel_tool_use" in choice && choice.disable_parallel_tool_use === true
    ? { parallel_tool_calls: false }
    : {}
  switch (choice.type) {
    case "none":
      return { tool_choice: "none" }
    case "auto":
      return { tool_choice: "auto", ...parallel }
    case "any":
      return { tool_choice: "required", ...parallel }
    case "tool":
      return { tool_choice: { type: "function", function: { name: choice.name } }, ...parallel }
  }
}

/**
 * The canonical request of a decoded Messages request (not yet validated as one). Throws
 * `Untranslatable` when a turn holds a block its role cannot hold.
 *
 * @internal
 */
export const toChatRequest = (request: MessagesRequest): Record<string, unknown> => {
  const messages: Array<Message> = []
  if (request.system !== undefined) {
    const system = typeof request.system === "string" ? request.system : request.system.map((b) => b.text).join("")
    if (system.length > 0) messages.push({ role: "system", content: system })
  }
  for (const message of request.messages) {
    if (message.role === "user") userMessages(message.content, messages)
    else messages.push(assistantMessage(message.content))
  }
  const out: Record<string, unknown> = { model: request.model, messages, max_tokens: request.max_tokens }
  if (request.temperature !== undefined) out.temperature = request.temperature
  if (request.top_p !== undefined) out.top_p = request.top_p
  if (request.top_k !== undefined) out.top_k = request.top_k
  if (request.stop_sequences !== undefined && request.stop_sequences.length > 0) out.stop = request.stop_sequences
  if (request.metadata?.user_id != null) out.user = request.metadata.user_id
  if (request.tools !== undefined && request.tools.length > 0) {
    out.tools = request.tools.map((tool) => ({
      type: "function",
      function: tool.description === undefined
        ? { name: tool.name, parameters: tool.input_schema }
        : { name: tool.name, description: tool.description, parameters: tool.input_schema }
    }))
  }
  if (request.tool_choice !== undefined) Object.assign(out, toolChoice(request.tool_choice))
  if (request.stream === true) {
    out.stream = true
    // The Messages stream ends with usage (`message_delta`): ask every upstream for it.
    out.stream_options = { include_usage: true }
  }
  return out
}

const decodeMessagesEither = Schema.decodeUnknownEither(MessagesRequest, { errors: "all", onExcessProperty: "ignore" })

/**
 * Decodes a parsed Messages body into the canonical request; a failure is one message for the
 * client (every problem by path, as `ChatCompletion.describeParseError` writes them). Only the
 * JSON serialization of a tool input recurses into the body before the canonical decoder checks
 * its depth, and a failure there is caught.
 *
 * @internal
 */
export const decode = (input: unknown, limits: ChatCompletion.RequestLimits): Either.Either<ChatCompletion.ChatRequest, string> => {
  const decoded = decodeMessagesEither(input)
  if (Either.isLeft(decoded)) return Either.left(ChatCompletion.describeParseError(decoded.left))
  let canonical: Record<string, unknown>
  try {
    canonical = toChatRequest(decoded.right)
  } catch (error) {
    // Anything else is a tool input too deep to serialize (a stack overflow).
    return Either.left(error instanceof Untranslatable ? error.message : "a tool_use input cannot be serialized")
  }
  // The canonical rules and limits (tool names, ranges, depth) hold for this API as for the other.
  return ChatCompletion.decodeChatRequest(canonical, limits)
}
