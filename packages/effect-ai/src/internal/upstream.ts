/**
 * A Breakwater `LanguageModel.Service` over an `@effect/ai` `LanguageModel`: the canonical
 * request becomes one @effect/ai call (its provider layer does the wire format), the answer
 * comes back canonical, and @effect/ai's errors are mapped into Breakwater's taxonomy so the
 * policies above can decide (retry, fail over, resume).
 */
import { ChatCompletion, Continuation, LanguageModel, ModelError, RetryAfter } from "@breakwater/core"
import type * as AiError from "@effect/ai/AiError"
import type * as AiLanguageModel from "@effect/ai/LanguageModel"
import * as Prompt from "@effect/ai/Prompt"
import type * as Response from "@effect/ai/Response"
import * as Tool from "@effect/ai/Tool"
import type * as Toolkit from "@effect/ai/Toolkit"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { randomUUID } from "node:crypto"

export interface Settings {
  readonly name: string
  readonly continuation: Continuation.Strategy
}

// ---------------------------------------------------------------------------------------------
// Errors

const bodyError = (body: string | undefined): { readonly code?: string; readonly message?: string } => {
  if (body === undefined) return {}
  try {
    const parsed = JSON.parse(body) as { error?: { code?: unknown; type?: unknown; message?: unknown } }
    const e = parsed.error
    const code = typeof e?.code === "string" ? e.code : typeof e?.type === "string" ? e.type : undefined
    const message = typeof e?.message === "string" ? e.message : undefined
    return { ...(code !== undefined ? { code } : {}), ...(message !== undefined ? { message: message.slice(0, 512) } : {}) }
  } catch {
    return {}
  }
}

/** An @effect/ai failure in Breakwater's taxonomy. */
export const fromAiError = (upstream: string, error: AiError.AiError, now: number): ModelError.ModelError => {
  const message = `${upstream}: ${error.message.split("\n")[0]}`
  switch (error._tag) {
    case "HttpResponseError": {
      if (error.reason !== "StatusCode") {
        // A 2xx whose body could not be read: the upstream misbehaved, worth another attempt.
        return new ModelError.UpstreamUnavailable({ message, upstream, status: error.response.status, cause: error })
      }
      const headers = error.response.headers
      const { code, message: said } = bodyError(error.body)
      return ModelError.fromHttpFailure({
        status: error.response.status,
        upstream,
        code,
        message: said !== undefined ? `${upstream}: ${said}` : message,
        retryAfter: RetryAfter.fromHeaders((name) => headers[name], now)
      })
    }
    case "HttpRequestError":
      return error.reason === "Transport"
        ? new ModelError.ConnectionFailed({ message, upstream, cause: error })
        : new ModelError.LocalFailure({ message, upstream, cause: error })
    case "MalformedInput":
      return new ModelError.BadRequest({ message, upstream, cause: error })
    case "MalformedOutput":
    case "UnknownError":
      return new ModelError.UpstreamUnavailable({ message, upstream, cause: error })
  }
}

const badRequest = (upstream: string, message: string) => new ModelError.BadRequest({ message: `${upstream}: ${message}`, upstream, status: 400 })

// ---------------------------------------------------------------------------------------------
// Request

const parseJson = (text: string): unknown => {
  try {
    return Tool.unsafeSecureJsonParse(text)
  } catch {
    return text
  }
}

const userParts = (upstream: string, message: Extract<ChatCompletion.Message, { readonly role: "user" }>): Array<Prompt.UserMessagePartEncoded> => {
  if (typeof message.content === "string") return [{ type: "text", text: message.content }]
  return message.content.map((part): Prompt.UserMessagePartEncoded => {
    if (part.type === "text") return { type: "text", text: (part as { text: string }).text }
    if (part.type === "image_url") {
      const url = (part as { image_url: { url: string } }).image_url.url
      const data = /^data:([^;,]+);base64,(.*)$/s.exec(url)
      return data !== null ? { type: "file", mediaType: data[1]!, data: data[2]! } : { type: "file", mediaType: "image/*", data: new URL(url) }
    }
    throw badRequest(upstream, `a '${part.type}' content part cannot be sent to an @effect/ai upstream (text and image_url can)`)
  })
}

/** The canonical messages as an @effect/ai prompt. */
const prompt = (upstream: string, request: ChatCompletion.ChatRequest): Prompt.Prompt => {
  const names = new Map<string, string>()
  const messages: Array<Prompt.MessageEncoded> = []
  for (const message of request.messages) {
    switch (message.role) {
      case "system":
      case "developer":
        messages.push({ role: "system", content: ChatCompletion.messageText(message) })
        break
      case "user":
        messages.push({ role: "user", content: userParts(upstream, message) })
        break
      case "assistant": {
        const content: Array<Prompt.AssistantMessagePartEncoded> = []
        const text = ChatCompletion.messageText(message)
        if (text.length > 0) content.push({ type: "text", text })
        for (const call of message.tool_calls ?? []) {
          names.set(call.id, call.function.name)
          content.push({ type: "tool-call", id: call.id, name: call.function.name, params: parseJson(call.function.arguments) })
        }
        messages.push({ role: "assistant", content })
        break
      }
      case "tool":
        messages.push({
          role: "tool",
          content: [{
            type: "tool-result",
            id: message.tool_call_id,
            name: names.get(message.tool_call_id) ?? "tool",
            result: parseJson(ChatCompletion.messageText(message)),
            isFailure: false,
            providerExecuted: false
          }]
        })
        break
    }
  }
  return Prompt.make(messages)
}

// Tool parameters as the request gives them (JSON Schema): the schema accepts any object, and
// its JSON Schema annotation is what a provider layer sends.
const parametersOf = (jsonSchema: Record<string, unknown> | undefined) =>
  Schema.Struct({}, Schema.Record({ key: Schema.String, value: Schema.Unknown })).annotations({
    jsonSchema: jsonSchema ?? { type: "object", properties: {} }
  })

const notExecuted = () => Effect.dieMessage("an @effect/ai upstream does not execute tools: the client does")

/** The request's tools as a toolkit whose calls are returned, never executed. */
const toolkit = (request: ChatCompletion.ChatRequest): Toolkit.WithHandler<Record<string, Tool.Any>> | undefined => {
  if (request.tools === undefined || request.tools.length === 0) return undefined
  const tools: Record<string, Tool.Any> = {}
  for (const tool of request.tools) {
    const made = Tool.make(tool.function.name, tool.function.description !== undefined ? { description: tool.function.description } : {})
    tools[tool.function.name] = made.setParameters(parametersOf(tool.function.parameters)) as unknown as Tool.Any
  }
  return { tools, handle: notExecuted } as unknown as Toolkit.WithHandler<Record<string, Tool.Any>>
}

const toolChoice = (choice: ChatCompletion.ChatRequest["tool_choice"]): AiLanguageModel.ToolChoice<string> | undefined =>
  choice === undefined ? undefined : typeof choice === "string" ? choice : { tool: choice.function.name }

/** The @effect/ai call options for a canonical request; a `BadRequest` for what @effect/ai cannot express. */
const callOptions = (upstream: string, request: ChatCompletion.ChatRequest): Effect.Effect<AiLanguageModel.GenerateTextOptions<any>, ModelError.ModelError> =>
  Effect.suspend(() => {
    if ((request.n ?? 1) > 1) return Effect.fail(badRequest(upstream, "n > 1 cannot be sent to an @effect/ai upstream"))
    const format = request.response_format?.type
    if (format !== undefined && format !== "text") {
      return Effect.fail(badRequest(upstream, `response_format '${String(format)}' cannot be sent to an @effect/ai upstream`))
    }
    return Effect.try({
      try: () => {
        const tools = toolkit(request)
        const choice = toolChoice(request.tool_choice)
        return {
          prompt: prompt(upstream, request),
          ...(tools !== undefined ? { toolkit: tools, disableToolCallResolution: true } : {}),
          ...(tools !== undefined && choice !== undefined ? { toolChoice: choice } : {})
        }
      },
      catch: (error) => ModelError.isModelError(error) ? error : badRequest(upstream, `the request is not a valid @effect/ai prompt: ${String(error).slice(0, 300)}`)
    })
  })

// ---------------------------------------------------------------------------------------------
// Answers

const finishReasons: Readonly<Partial<Record<Response.FinishReason, string>>> = {
  stop: "stop",
  length: "length",
  "content-filter": "content_filter",
  "tool-calls": "tool_calls"
}

const finishReason = (reason: Response.FinishReason, toolCalls: boolean): string => finishReasons[reason] ?? (toolCalls ? "tool_calls" : "stop")

const usageOf = (usage: Response.Usage): ChatCompletion.Usage => {
  const prompt_tokens = usage.inputTokens ?? 0
  const completion_tokens = usage.outputTokens ?? 0
  return { prompt_tokens, completion_tokens, total_tokens: usage.totalTokens ?? prompt_tokens + completion_tokens }
}

const toolCallOf = (part: Response.ToolCallPart<string, unknown>): ChatCompletion.ChatCompletion["choices"][number]["message"]["tool_calls"] & {} =>
  [{ id: part.id, type: "function", function: { name: part.name, arguments: JSON.stringify(part.params ?? {}) } }]

const completion = (
  request: ChatCompletion.ChatRequest,
  content: ReadonlyArray<Response.AllParts<any>>,
  created: number
): ChatCompletion.ChatCompletion => {
  let text = ""
  const calls: Array<typeof ChatCompletion.ToolCall.Type> = []
  let finish: Response.FinishPart | undefined
  for (const part of content) {
    if (part.type === "text") text += part.text
    else if (part.type === "tool-call" && !part.providerExecuted) calls.push(...toolCallOf(part))
    else if (part.type === "finish") finish = part
  }
  return {
    id: `chatcmpl-${randomUUID()}`,
    object: "chat.completion",
    created,
    model: request.model,
    choices: [{
      index: 0,
      message: { role: "assistant", content: calls.length > 0 && text.length === 0 ? null : text, ...(calls.length > 0 ? { tool_calls: calls } : {}) },
      finish_reason: finishReason(finish?.reason ?? "unknown", calls.length > 0)
    }],
    ...(finish !== undefined ? { usage: usageOf(finish.usage) } : {})
  }
}

/** The stream parts of one call as canonical chunks: plain functions per part. */
const chunker = (request: ChatCompletion.ChatRequest, created: number) => {
  const id = `chatcmpl-${randomUUID()}`
  const includeUsage = request.stream_options?.include_usage === true
  let started = false
  let calls = 0
  let finished = false
  let content = 0
  const chunk = (delta: ChatCompletion.ChatCompletionChunk["choices"][number]["delta"], finish: string | null = null): ChatCompletion.ChatCompletionChunk => ({
    id,
    object: "chat.completion.chunk",
    created,
    model: request.model,
    choices: [{ index: 0, delta, finish_reason: finish }]
  })
  const push = (part: Response.StreamPart<any>): Array<ChatCompletion.ChatCompletionChunk> => {
    const out: Array<ChatCompletion.ChatCompletionChunk> = []
    if (!started) {
      started = true
      out.push(chunk({ role: "assistant", content: "" }))
    }
    switch (part.type) {
      case "text-delta":
        if (part.delta.length > 0) {
          content++
          out.push(chunk({ content: part.delta }))
        }
        break
      case "tool-call":
        if (!part.providerExecuted) {
          content++
          const [call] = toolCallOf(part)
          out.push(chunk({ tool_calls: [{ index: calls++, ...call! }] }))
        }
        break
      case "finish":
        finished = true
        out.push(chunk({}, finishReason(part.reason, calls > 0)))
        if (includeUsage) out.push({ id, object: "chat.completion.chunk", created, model: request.model, choices: [], usage: usageOf(part.usage) })
        break
    }
    return out
  }
  return {
    push,
    get received() {
      return content
    },
    get finished() {
      return finished
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The model

const withContinuation = (request: ChatCompletion.ChatRequest, options: LanguageModel.CallOptions | undefined, preferred: Continuation.Strategy) =>
  options?.continuation === undefined
    ? request
    : Continuation.toRequest(request, options.continuation, options.continuation.strategy ?? preferred)

export const make = (model: AiLanguageModel.Service, settings: Settings): LanguageModel.Service => {
  const name = settings.name
  const preferred = settings.continuation
  const now = Clock.currentTimeMillis

  const generate = (input: ChatCompletion.ChatRequest, callOpts?: LanguageModel.CallOptions) =>
    Effect.gen(function*() {
      const request = withContinuation(input, callOpts, preferred)
      const call = yield* callOptions(name, request)
      const response = yield* model.generateText(call).pipe(
        Effect.catchAll((error) => Effect.flatMap(now, (at) => Effect.fail(fromAiError(name, error as AiError.AiError, at))))
      )
      return completion(request, response.content, Math.floor((yield* now) / 1000))
    })

  const stream = (input: ChatCompletion.ChatRequest, callOpts?: LanguageModel.CallOptions): Stream.Stream<ChatCompletion.ChatCompletionChunk, ModelError.ModelError> =>
    Stream.unwrap(Effect.gen(function*() {
      const request = withContinuation(input, callOpts, preferred)
      const call = yield* callOptions(name, request)
      const chunks = chunker(request, Math.floor((yield* now) / 1000))
      const interrupted = (reason: ModelError.InterruptionReason, message: string, cause?: unknown) =>
        new ModelError.StreamInterrupted({ message: `${name}: ${message}`, upstream: name, reason, receivedChunks: chunks.received, cause })
      return model.streamText(call).pipe(
        Stream.catchAll((error) =>
          Stream.fromEffect(Effect.flatMap(now, (at) => {
            const mapped = fromAiError(name, error as AiError.AiError, at)
            // After content, a failure is a break in the answer: stream-resume continues it.
            return Effect.fail(chunks.received > 0 ? interrupted("reset", mapped.message, mapped) : mapped)
          }))
        ),
        Stream.mapConcatEffect((part) =>
          part.type === "error"
            ? Effect.fail(interrupted("error-event", "the upstream sent an error event", part.error))
            : Effect.succeed(chunks.push(part))
        ),
        Stream.concat(Stream.suspend(() =>
          chunks.finished ? Stream.empty : Stream.fail(interrupted("no-terminator", "the stream ended without a finish"))
        ))
      )
    }))

  return LanguageModel.make({ generate, stream })
}
