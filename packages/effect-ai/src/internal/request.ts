/**
 * `@effect/ai`'s provider options (prompt, tools, tool choice, response format) as Breakwater's
 * canonical `ChatRequest`: the OpenAI Chat Completions shape every Breakwater adapter reads.
 */
import type { ChatCompletion } from "@breakwater/core"
import * as AiError from "@effect/ai/AiError"
import type * as AiLanguageModel from "@effect/ai/LanguageModel"
import type * as Prompt from "@effect/ai/Prompt"
import * as Tool from "@effect/ai/Tool"
import * as Either from "effect/Either"
import * as Encoding from "effect/Encoding"

type Message = ChatCompletion.Message
type UserContent = Exclude<Extract<Message, { readonly role: "user" }>["content"], string>[number]
type ChatTool = NonNullable<ChatCompletion.ChatRequest["tools"]>[number]

const malformed = (description: string) =>
  new AiError.MalformedInput({ module: "BreakwaterLanguageModel", method: "prepareRequest", description })

/** A file's data as a URL the Chat Completions shape accepts: an http(s) or data URL. */
const fileUrl = (part: Prompt.FilePart, mediaType: string): string => {
  if (part.data instanceof URL) return part.data.toString()
  if (part.data instanceof Uint8Array) return `data:${mediaType};base64,${Encoding.encodeBase64(part.data)}`
  // A string is a URL or a data URL already, or base64 data (@effect/ai's convention).
  return /^(https?:|data:)/i.test(part.data) ? part.data : `data:${mediaType};base64,${part.data}`
}

const userPart = (part: Prompt.UserMessagePart): UserContent => {
  if (part.type === "text") return { type: "text", text: part.text }
  if (part.mediaType.startsWith("image/")) {
    return { type: "image_url", image_url: { url: fileUrl(part, part.mediaType === "image/*" ? "image/jpeg" : part.mediaType) } }
  }
  // Documents (PDF, …) in the Chat Completions `file` part; an adapter whose provider takes
  // another form translates it, or the provider refuses it as a bad request.
  return { type: "file", file: { filename: part.fileName ?? "file", file_data: fileUrl(part, part.mediaType) } }
}

/** The prompt's messages in the canonical shape. Reasoning parts are not sent back (no adapter reads them). */
export const messages = (prompt: Prompt.Prompt): Either.Either<Array<Message>, AiError.MalformedInput> => {
  const out: Array<Message> = []
  for (const message of prompt.content) {
    switch (message.role) {
      case "system": {
        out.push({ role: "system", content: message.content })
        break
      }
      case "user": {
        const only = message.content.length === 1 ? message.content[0] : undefined
        out.push({ role: "user", content: only?.type === "text" ? only.text : message.content.map(userPart) })
        break
      }
      case "assistant": {
        let text = ""
        const toolCalls: Array<typeof ChatCompletion.ToolCall.Type> = []
        for (const part of message.content) {
          if (part.type === "text") text += part.text
          else if (part.type === "tool-call" && !part.providerExecuted) {
            toolCalls.push({ id: part.id, type: "function", function: { name: part.name, arguments: JSON.stringify(part.params ?? {}) } })
          }
        }
        out.push(toolCalls.length > 0 ? { role: "assistant", content: text.length > 0 ? text : null, tool_calls: toolCalls } : { role: "assistant", content: text })
        break
      }
      case "tool": {
        for (const part of message.content) {
          out.push({ role: "tool", tool_call_id: part.id, content: JSON.stringify(part.result ?? null) })
        }
        break
      }
    }
  }
  if (out.length === 0) return Either.left(malformed("the prompt has no messages"))
  return Either.right(out)
}

/** The request's tools and tool choice; none when the call offers no tools. */
const tools = (options: AiLanguageModel.ProviderOptions): Either.Either<
  { readonly tools?: Array<ChatTool>; readonly tool_choice?: ChatCompletion.ChatRequest["tool_choice"] },
  AiError.MalformedInput
> => {
  if (options.tools.length === 0) return Either.right({})
  if (options.tools.some(Tool.isProviderDefined)) {
    return Either.left(malformed("provider-defined tools need their provider's own @effect/ai layer; a Breakwater stack serves function tools"))
  }
  let list: Array<ChatTool> = options.tools.map((tool) => ({
    type: "function" as const,
    function: {
      name: tool.name,
      ...(tool.description !== undefined ? { description: tool.description } : {}),
      parameters: Tool.getJsonSchemaFromSchemaAst(tool.parametersSchema.ast) as unknown as Record<string, unknown>
    }
  }))
  const choice = options.toolChoice
  if (choice === "none" || choice === "auto" || choice === "required") return Either.right({ tools: list, tool_choice: choice })
  if ("tool" in choice) return Either.right({ tools: list, tool_choice: { type: "function", function: { name: choice.tool } } })
  const allowed = new Set<string>(choice.oneOf)
  list = list.filter((tool) => allowed.has(tool.function.name))
  return Either.right({ tools: list, tool_choice: choice.mode === "required" ? "required" : "auto" })
}

/**
 * The whole request. `fields` (the layer's request defaults: temperature, max_tokens, …) come
 * first, so what the call itself says wins.
 */
export const chatRequest = (
  model: string,
  fields: Readonly<Record<string, unknown>>,
  options: AiLanguageModel.ProviderOptions
): Either.Either<ChatCompletion.ChatRequest, AiError.MalformedInput> =>
  Either.gen(function*() {
    const list = yield* messages(options.prompt)
    const toolFields = yield* tools(options)
    const format = options.responseFormat
    return {
      ...fields,
      model,
      messages: list as [Message, ...Array<Message>],
      ...toolFields,
      ...(format.type === "json"
        ? {
          response_format: {
            type: "json_schema",
            json_schema: {
              name: format.objectName,
              schema: Tool.getJsonSchemaFromSchemaAst(format.schema.ast),
              strict: true
            }
          }
        }
        : {})
    }
  })
