import { AdapterKit, ChatCompletion, JsonTemplate, ModelError } from "@breakwater/core"

type Block = Record<string, unknown>

/** @internal */
export interface MessageParam {
  readonly role: "user" | "assistant"
  content: Array<Block>
}

const dataUrl = /^data:([^;,]+);base64,(.*)$/s

const imageBlock = (url: string): Block => {
  const match = dataUrl.exec(url)
  return match === null
    ? { type: "image", source: { type: "url", url } }
    : { type: "image", source: { type: "base64", media_type: match[1], data: match[2] } }
}

type Part = typeof ChatCompletion.ContentPart.Type

const textBlocks = (content: string | ReadonlyArray<Part> | null | undefined): Array<Block> => {
  if (content == null) return []
  if (typeof content === "string") return content.length > 0 ? [{ type: "text", text: content }] : []
  const out: Array<Block> = []
  for (const part of content) {
    if (part.type === "text") {
      const text = (part as typeof ChatCompletion.TextPart.Type).text
      if (text.length > 0) out.push({ type: "text", text })
    } else if (part.type === "image_url") {
      out.push(imageBlock((part as typeof ChatCompletion.ImagePart.Type).image_url.url))
    } else {
      // A part Breakwater does not know (a `document`, say) goes as is: Anthropic may know it.
      out.push(part as Block)
    }
  }
  return out
}

const parseArguments = (name: string, args: string): unknown => {
  if (args.trim().length === 0) return {}
  try {
    return JSON.parse(args)
  } catch {
    throw new ModelError.BadRequest({ message: `the arguments of tool call ${JSON.stringify(name)} are not valid JSON` })
  }
}

/**
 * The canonical messages as Anthropic's `system` and `messages`: system and developer messages
 * join the system prompt; tool results go in a user turn; consecutive turns of one role merge
 * (Anthropic wants them alternating); a final assistant turn is a prefill, right-trimmed.
 * Throws `BadRequest` for tool-call arguments that are not JSON.
 *
 * @internal
 */
export const toMessages = (
  messages: ReadonlyArray<ChatCompletion.Message>
): { readonly system: string | undefined; readonly messages: Array<MessageParam> } => {
  const system: Array<string> = []
  const out: Array<MessageParam> = []
  const push = (role: "user" | "assistant", blocks: Array<Block>) => {
    if (blocks.length === 0) return
    const last = out[out.length - 1]
    if (last !== undefined && last.role === role) last.content.push(...blocks)
    else out.push({ role, content: blocks })
  }
  for (const message of messages) {
    switch (message.role) {
      case "system":
      case "developer": {
        const text = ChatCompletion.messageText(message)
        if (text.length > 0) system.push(text)
        break
      }
      case "user":
        push("user", textBlocks(message.content))
        break
      case "assistant": {
        const blocks = textBlocks(message.content)
        for (const call of message.tool_calls ?? []) {
          blocks.push({ type: "tool_use", id: call.id, name: call.function.name, input: parseArguments(call.function.name, call.function.arguments) })
        }
        push("assistant", blocks)
        break
      }
      case "tool":
        push("user", [{
          type: "tool_result",
          tool_use_id: message.tool_call_id,
          content: typeof message.content === "string" ? message.content : textBlocks(message.content)
        }])
        break
    }
  }
  const last = out[out.length - 1]
  if (last !== undefined && last.role === "assistant") {
    // Anthropic rejects a prefill that ends in whitespace.
    const block = last.content[last.content.length - 1]!
    if (block.type === "text") {
      const text = (block.text as string).trimEnd()
      if (text.length > 0) last.content[last.content.length - 1] = { ...block, text }
      else last.content.pop()
      if (last.content.length === 0) out.pop()
    }
  }
  return { system: system.length > 0 ? system.join("\n\n") : undefined, messages: out }
}

const toolChoice = (request: ChatCompletion.ChatRequest): Block | undefined => {
  const choice = request.tool_choice
  const parallel = request.parallel_tool_calls === false ? { disable_parallel_tool_use: true } : {}
  if (choice === undefined) return request.parallel_tool_calls === false && request.tools !== undefined ? { type: "auto", ...parallel } : undefined
  if (choice === "none") return { type: "none" }
  if (choice === "auto") return { type: "auto", ...parallel }
  if (choice === "required") return { type: "any", ...parallel }
  return { type: "tool", name: choice.function.name, ...parallel }
}

/**
 * The Messages API body of a canonical request. `max_tokens` is required there: the request's
 * `max_completion_tokens` or `max_tokens`, else `maxTokens`. `temperature` is capped at 1
 * (Anthropic's range is 0–1, OpenAI's 0–2). Throws `BadRequest` (see `toMessages`).
 *
 * @internal
 */
export const encodeRequest = (request: ChatCompletion.ChatRequest, maxTokens: number, stream: boolean): Record<string, unknown> => {
  const { messages, system } = toMessages(request.messages)
  const body: Record<string, unknown> = {
    model: request.model,
    max_tokens: request.max_completion_tokens ?? request.max_tokens ?? maxTokens,
    messages
  }
  if (system !== undefined) body.system = system
  if (request.stop != null) body.stop_sequences = typeof request.stop === "string" ? [request.stop] : request.stop
  if (request.temperature != null) body.temperature = Math.min(1, request.temperature)
  if (request.top_p != null) body.top_p = request.top_p
  // Not in the canonical model, but clients of the Messages API send it (an extra field).
  const topK = (request as { readonly top_k?: unknown }).top_k
  if (typeof topK === "number") body.top_k = topK
  if (request.tools !== undefined && request.tools.length > 0) {
    body.tools = request.tools.map((tool) => {
      const out: Block = {
        name: tool.function.name,
        input_schema: tool.function.parameters ?? { type: "object", properties: {} }
      }
      if (tool.function.description !== undefined) out.description = tool.function.description
      return out
    })
  }
  const choice = toolChoice(request)
  if (choice !== undefined) body.tool_choice = choice
  if (request.user !== undefined) body.metadata = { user_id: request.user }
  if (stream) body.stream = true
  return body
}

// Anthropic's stop reasons and the finish reasons they mean; the first row of a finish reason
// is the stop reason it becomes the other way.
const stopReasons: ReadonlyArray<readonly [stop: string, finish: string]> = [
  ["end_turn", "stop"],
  ["stop_sequence", "stop"],
  ["pause_turn", "stop"],
  ["max_tokens", "length"],
  ["model_context_window_exceeded", "length"],
  ["tool_use", "tool_calls"],
  ["tool_use", "function_call"],
  ["refusal", "content_filter"]
]
const finishOfStop = new Map<string, string>()
const stopOfFinish = new Map<string, string>()
for (const [stop, finish] of stopReasons) {
  if (!finishOfStop.has(stop)) finishOfStop.set(stop, finish)
  if (!stopOfFinish.has(finish)) stopOfFinish.set(finish, stop)
}

/**
 * Anthropic's `stop_reason` as an OpenAI `finish_reason` (an unknown one passes as it is).
 *
 * @internal
 */
export const finishReason = (stopReason: unknown): string | null =>
  stopReason == null ? null : finishOfStop.get(String(stopReason)) ?? String(stopReason)

/**
 * An OpenAI `finish_reason` as Anthropic's `stop_reason`; one Anthropic does not know is
 * `end_turn` (a client switches on the value), a missing one `null`.
 *
 * @internal
 */
export const stopReason = (finish: string | null | undefined): string | null =>
  finish == null ? null : stopOfFinish.get(finish) ?? "end_turn"

/**
 * An Anthropic image `source` as the URL of a canonical `image_url` part: a `data:` URL for
 * base64 data, the URL itself otherwise (the inverse of the image blocks `toMessages` writes).
 *
 * @internal
 */
export const imageUrl = (source: { readonly type: string; readonly media_type?: string; readonly data?: string; readonly url?: string }): string =>
  source.type === "base64" ? `data:${source.media_type ?? "application/octet-stream"};base64,${source.data ?? ""}` : source.url ?? ""

const errorTypes: Readonly<Record<number, ErrorType>> = {
  401: "authentication_error",
  403: "permission_error",
  404: "not_found_error",
  413: "request_too_large",
  429: "rate_limit_error",
  503: "overloaded_error",
  529: "overloaded_error"
}

/** @internal */
export type ErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "permission_error"
  | "not_found_error"
  | "request_too_large"
  | "rate_limit_error"
  | "api_error"
  | "overloaded_error"

/**
 * The Anthropic error type of an HTTP status.
 *
 * @internal
 */
export const errorType = (status: number): ErrorType =>
  errorTypes[status] ?? (status >= 400 && status < 500 ? "invalid_request_error" : "api_error")

interface AnthropicUsage {
  readonly input_tokens?: number | null
  readonly output_tokens?: number | null
  readonly cache_creation_input_tokens?: number | null
  readonly cache_read_input_tokens?: number | null
}

// Anthropic counts cached prompt tokens apart; OpenAI's `prompt_tokens` includes them.
const promptTokens = (usage: AnthropicUsage | undefined): number =>
  (usage?.input_tokens ?? 0) + (usage?.cache_creation_input_tokens ?? 0) + (usage?.cache_read_input_tokens ?? 0)

/** @internal */
export const toUsage = (prompt: number, completion: number): ChatCompletion.Usage => ({
  prompt_tokens: prompt,
  completion_tokens: completion,
  total_tokens: prompt + completion
})

interface AnthropicMessage {
  readonly id: string
  readonly type: "message"
  readonly model: string
  readonly content: ReadonlyArray<{ readonly type: string; readonly text?: string; readonly id?: string; readonly name?: string; readonly input?: unknown }>
  readonly stop_reason?: string | null
  readonly usage?: AnthropicUsage
}

/**
 * A Messages API response as a canonical chat completion (`created` in seconds).
 *
 * @internal
 */
export const decodeMessage = (
  upstream: string,
  json: unknown,
  created: number,
  scrub: AdapterKit.Scrub
): ChatCompletion.ChatCompletion | ModelError.ModelError => {
  if (json === null || typeof json !== "object") {
    return new ModelError.ConnectionFailed({ message: `${upstream}: the response is not a message`, upstream })
  }
  const message = json as AnthropicMessage
  if (message.type !== "message" || !Array.isArray(message.content)) {
    const error = (json as { error?: unknown }).error
    return error !== undefined
      ? AdapterKit.fromErrorObject(upstream, error, scrub)
      : new ModelError.ConnectionFailed({ message: `${upstream}: the response is not a message`, upstream })
  }
  let text = ""
  const calls: Array<typeof ChatCompletion.ToolCall.Type> = []
  for (const block of message.content) {
    if (block.type === "text") text += block.text ?? ""
    else if (block.type === "tool_use") {
      calls.push({ id: block.id ?? "", type: "function", function: { name: block.name ?? "", arguments: JSON.stringify(block.input ?? {}) } })
    }
  }
  const completionMessage: ChatCompletion.ChatCompletion["choices"][number]["message"] = calls.length > 0
    ? { role: "assistant", content: text.length > 0 ? text : null, tool_calls: calls, refusal: null }
    : { role: "assistant", content: text, refusal: null }
  return {
    id: message.id,
    object: "chat.completion",
    created,
    model: message.model,
    choices: [{ index: 0, message: completionMessage, finish_reason: finishReason(message.stop_reason), logprobs: null }],
    usage: toUsage(promptTokens(message.usage), message.usage?.output_tokens ?? 0)
  }
}

interface StreamEvent {
  readonly type?: string
  readonly message?: { readonly id?: string; readonly model?: string; readonly usage?: AnthropicUsage }
  readonly index?: number
  readonly content_block?: { readonly type?: string; readonly id?: string; readonly name?: string; readonly text?: string }
  readonly delta?: { readonly type?: string; readonly text?: string; readonly partial_json?: string; readonly stop_reason?: string | null }
  readonly usage?: AnthropicUsage
  readonly error?: unknown
}

// The values that change from one `content_block_delta` to the next (its type and structure
// repeat): the block's index, the text, a tool call's JSON, thinking. One parser for every
// stream: its templates are the event shapes, which hold nothing of a stream's own.
const parseEvent = JsonTemplate.make([["index"], ["delta", "text"], ["delta", "partial_json"], ["delta", "thinking"]])

/**
 * Translates a Messages stream into canonical chunks, one event at a time:
 * `message_start` → the role delta; `content_block_start` of a `tool_use` → the tool call's
 * first delta (id, name), tool calls numbered from 0 in order; `text_delta` → content;
 * `input_json_delta` → an arguments fragment; `message_delta` → the finish chunk, then a usage
 * chunk (no choices) as OpenAI sends with `include_usage`; `message_stop` ends the stream;
 * `ping` (and thinking deltas, which the canonical shape does not carry) → a heartbeat;
 * an `error` event → `StreamInterrupted{reason:"error-event"}` with the classified cause.
 *
 * @internal
 */
export const frameHandler = (
  upstream: string,
  model: string,
  created: number,
  scrub: AdapterKit.Scrub
): AdapterKit.FrameHandler => {
  let id = ""
  let inputTokens = 0
  let nextTool = 0
  const toolIndex = new Map<number, number>()
  const chunk = (
    delta: ChatCompletion.ChatCompletionChunk["choices"][number]["delta"],
    finish: string | null = null
  ): ChatCompletion.ChatCompletionChunk => ({
    id,
    object: "chat.completion.chunk",
    created,
    model,
    choices: [{ index: 0, delta, finish_reason: finish }]
  })
  return (event, context) => {
    let data: StreamEvent
    try {
      data = parseEvent(event.data) as StreamEvent
    } catch (cause) {
      return context.interrupted("malformed", "a stream frame is not JSON", cause)
    }
    if (data === null || typeof data !== "object") return context.interrupted("malformed", "a stream frame is not a JSON object")
    switch (data.type ?? event.event) {
      case "message_start": {
        const message = data.message ?? {}
        id = message.id ?? id
        model = message.model ?? model
        inputTokens = promptTokens(message.usage)
        context.emit(chunk({ role: "assistant", content: "" }))
        return undefined
      }
      case "content_block_start": {
        const block = data.content_block
        if (block?.type === "tool_use") {
          const index = nextTool++
          toolIndex.set(data.index ?? -1, index)
          context.emit(chunk({
            tool_calls: [{ index, id: block.id ?? "", type: "function", function: { name: block.name ?? "", arguments: "" } }]
          }))
        } else if (block?.type === "text" && block.text !== undefined && block.text.length > 0) {
          context.emit(chunk({ content: block.text }))
        }
        return undefined
      }
      case "content_block_delta": {
        const delta = data.delta
        if (delta?.type === "text_delta") {
          context.emit(chunk({ content: delta.text ?? "" }))
        } else if (delta?.type === "input_json_delta") {
          const index = toolIndex.get(data.index ?? -1)
          if (index === undefined) return context.interrupted("malformed", "an input_json_delta outside a tool_use block")
          context.emit(chunk({ tool_calls: [{ index, function: { arguments: delta.partial_json ?? "" } }] }))
        } else {
          context.heartbeat()
        }
        return undefined
      }
      case "message_delta": {
        const usage = data.usage
        const prompt = usage?.input_tokens != null ? promptTokens(usage) : inputTokens
        context.emit(chunk({}, finishReason(data.delta?.stop_reason)))
        context.emit({ id, object: "chat.completion.chunk", created, model, choices: [], usage: toUsage(prompt, usage?.output_tokens ?? 0) })
        return undefined
      }
      case "message_stop":
        return "done"
      case "ping":
        context.heartbeat()
        return undefined
      case "error": {
        const cause = AdapterKit.fromErrorObject(upstream, data.error, scrub)
        return context.interrupted("error-event", `error event in the stream: ${cause.message}`, cause)
      }
      default:
        // content_block_stop, and event types Anthropic may add (its versioning policy allows it).
        return undefined
    }
  }
}
