/**
 * Breakwater's canonical answers (a `ChatCompletion`, a stream of `ChatCompletionChunk`s) as
 * `@effect/ai` response parts, in their encoded form (what `LanguageModel.make` decodes).
 */
import { ChatCompletion } from "@breakwater/core"
import * as AiError from "@effect/ai/AiError"
import type * as Response from "@effect/ai/Response"
import * as Tool from "@effect/ai/Tool"
import * as Either from "effect/Either"

const finishReasons: Readonly<Record<string, Response.FinishReason>> = {
  stop: "stop",
  length: "length",
  content_filter: "content-filter",
  tool_calls: "tool-calls",
  function_call: "tool-calls"
}

/** The canonical finish reason as @effect/ai's (a provider's own value is `other`). */
export const finishReason = (reason: string | null | undefined): Response.FinishReason =>
  reason == null ? "unknown" : finishReasons[reason] ?? "other"

const detail = (details: unknown, key: string): number | undefined => {
  const value = typeof details === "object" && details !== null ? (details as Record<string, unknown>)[key] : undefined
  return typeof value === "number" ? value : undefined
}

/** The canonical usage as @effect/ai's (undefined counts where the upstream said nothing). */
export const usage = (usage: ChatCompletion.Usage | null | undefined): typeof Response.Usage.Encoded => {
  const reasoningTokens = detail(usage?.completion_tokens_details, "reasoning_tokens")
  const cachedInputTokens = detail(usage?.prompt_tokens_details, "cached_tokens")
  return {
    inputTokens: usage?.prompt_tokens,
    outputTokens: usage?.completion_tokens,
    totalTokens: usage?.total_tokens,
    ...(reasoningTokens !== undefined ? { reasoningTokens } : {}),
    ...(cachedInputTokens !== undefined ? { cachedInputTokens } : {})
  }
}

const metadata = (id: string, model: string, created: number): Response.ResponseMetadataPartEncoded => ({
  type: "response-metadata",
  id,
  modelId: model,
  timestamp: new Date(created * 1000).toISOString()
})

/** A tool call's JSON arguments, parsed the way @effect/ai's providers do (no prototype pollution). */
const toolCall = (
  id: string,
  name: string,
  args: string,
  method: string
): Either.Either<Response.ToolCallPartEncoded, AiError.MalformedOutput> =>
  Either.map(
    Either.try({
      try: () => Tool.unsafeSecureJsonParse(args.length === 0 ? "{}" : args),
      catch: (cause) =>
        new AiError.MalformedOutput({
          module: "BreakwaterLanguageModel",
          method,
          description: `the arguments of the call to tool '${name}' are not JSON: ${args.slice(0, 200)}`,
          cause
        })
    }),
    (params) => ({ type: "tool-call", id, name, params })
  )

/** A non-streaming answer as response parts. */
export const fromCompletion = (
  completion: ChatCompletion.ChatCompletion
): Either.Either<Array<Response.PartEncoded>, AiError.MalformedOutput> =>
  Either.gen(function*() {
    const parts: Array<Response.PartEncoded> = [metadata(completion.id, completion.model, completion.created)]
    const choice = completion.choices[0]
    const message = choice?.message
    const text = (message?.content ?? "") + (message?.refusal ?? "")
    if (text.length > 0) parts.push({ type: "text", text })
    for (const call of message?.tool_calls ?? []) {
      parts.push(yield* toolCall(call.id, call.function.name, call.function.arguments, "generateText"))
    }
    parts.push({ type: "finish", reason: finishReason(choice?.finish_reason), usage: usage(completion.usage) })
    return parts
  })

interface PendingCall {
  readonly id: string
  readonly name: string
  args: string
}

/**
 * A stream's chunks as stream parts: `push` per chunk, `end` once the stream ended well.
 *
 * Tool calls are announced as they arrive (`tool-params-start` / `-delta`), but the
 * `tool-call` part — the one @effect/ai executes a tool on — is emitted by `end` only, once the
 * stack below has delivered the whole answer. A stream that fails after a call was complete
 * (a break stream-resume will not continue past a released call, a deadline) therefore ends
 * with the error and no tool executed, and a tool never runs for an answer that was not given.
 */
export const streamTranslator = () => {
  let started = false
  let textId: string | undefined
  let ids = 0
  let reason: string | null = null
  let lastUsage: ChatCompletion.Usage | null | undefined
  const calls: Array<PendingCall> = []
  const byIndex = new Map<number, PendingCall>()

  const push = (chunk: ChatCompletion.ChatCompletionChunk): Array<Response.StreamPartEncoded> => {
    const parts: Array<Response.StreamPartEncoded> = []
    if (ChatCompletion.isHeartbeat(chunk)) return parts
    if (!started) {
      started = true
      parts.push(metadata(chunk.id, chunk.model, chunk.created))
    }
    if (chunk.usage != null) lastUsage = chunk.usage
    const choice = chunk.choices[0]
    if (choice === undefined) return parts
    const delta = choice.delta
    const text = (delta.content ?? "") + (delta.refusal ?? "")
    if (text.length > 0) {
      if (textId === undefined) {
        textId = String(ids++)
        parts.push({ type: "text-start", id: textId })
      }
      parts.push({ type: "text-delta", id: textId, delta: text })
    }
    for (const fragment of delta.tool_calls ?? []) {
      let call = byIndex.get(fragment.index)
      if (call === undefined) {
        call = { id: fragment.id ?? `call_${fragment.index}`, name: fragment.function?.name ?? "", args: "" }
        byIndex.set(fragment.index, call)
        calls.push(call)
        parts.push({ type: "tool-params-start", id: call.id, name: call.name })
      }
      const args = fragment.function?.arguments ?? ""
      if (args.length > 0) {
        call.args += args
        parts.push({ type: "tool-params-delta", id: call.id, delta: args })
      }
    }
    if (choice.finish_reason != null) reason = choice.finish_reason
    return parts
  }

  const end = (): Either.Either<Array<Response.StreamPartEncoded>, AiError.MalformedOutput> =>
    Either.gen(function*() {
      const parts: Array<Response.StreamPartEncoded> = []
      if (textId !== undefined) parts.push({ type: "text-end", id: textId })
      for (const call of calls) {
        parts.push({ type: "tool-params-end", id: call.id })
        parts.push(yield* toolCall(call.id, call.name, call.args, "streamText"))
      }
      parts.push({ type: "finish", reason: finishReason(reason), usage: usage(lastUsage) })
      return parts
    })

  return { push, end }
}
