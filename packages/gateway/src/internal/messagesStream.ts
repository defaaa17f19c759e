/**
 * The Messages event stream of one logical canonical stream (stream-resume's stitched one):
 * plain functions per batch, no Effect (ARCHITECTURE.md, "Effect per attempt, plain functions per
 * chunk"). The encoder owns the envelope: one `message_start`, content blocks numbered from 0
 * without gaps whatever attempt their text came from, one `message_delta` with the summed usage
 * and one `message_stop`.
 */
import { ChatCompletion, SseCodec } from "@breakwater/core"
import { AnthropicWire } from "@breakwater/provider-anthropic"
import { StreamResume } from "@breakwater/stream-resume"
import { resumedComment } from "../ClientStream.js"
import type { ApiError } from "../ClientApi.js"
import type { StreamEncoder, StreamOptions } from "../MessagesApi.js"
import { fromApiError, messageId } from "./messagesResponse.js"

/** Encodes one event of the stream (its type and JSON data); a journaled stream numbers it too. */
export type Frame = (type: string, data: string) => string

const plainFrame: Frame = (type, data) => SseCodec.encodeEvent({ event: type, data })

const pingData = JSON.stringify({ type: "ping" })
const messageStopData = JSON.stringify({ type: "message_stop" })

/** The encoder of one stream, chunk by chunk (what `ClientStream`'s writer drives). */
export interface ChunkEncoder {
  /** The events of one chunk (`""` when none). */
  readonly chunk: (chunk: ChatCompletion.ChatCompletionChunk) => string
  /** The open block stopped, one `message_delta`, one `message_stop`. */
  readonly end: () => string
  /** One `error` event in Anthropic's shape. */
  readonly fail: (error: ApiError, requestId?: string) => string
  /** Whether `end` or `fail` was called. */
  readonly ended: () => boolean
}

/** @internal */
export const make = (options: StreamOptions = {}): StreamEncoder => {
  const encoder = makeChunkEncoder(options, plainFrame)
  return {
    onChunks: (chunks) => {
      if (encoder.ended()) return ""
      let out = ""
      for (let i = 0; i < chunks.length; i++) out += encoder.chunk(chunks[i]!)
      return out
    },
    end: encoder.end,
    fail: encoder.fail,
    ended: encoder.ended
  }
}

/** @internal */
export const makeChunkEncoder = (options: StreamOptions, frame: Frame): ChunkEncoder => {
  const event = (type: string, data: unknown): string => frame(type, JSON.stringify(data))
  let started = false
  let done = false
  // The kind of the open content block, and the index of the latest block.
  let open: "text" | "tool" | undefined
  let index = -1
  // Canonical tool-call index → block index, for the fragments of a call.
  const toolBlocks = new Map<number, number>()
  let stopReason: string | null = null
  let usageSeen = false
  let inputTokens = 0
  let outputTokens = 0

  const start = (chunk: ChatCompletion.ChatCompletionChunk | undefined): string => {
    started = true
    const input = chunk?.usage?.prompt_tokens ?? options.inputTokens ?? 0
    return event("message_start", {
      type: "message_start",
      message: {
        // The first chunk's: a resumed stream keeps its first attempt's envelope (stream-resume).
        id: messageId(chunk?.id ?? ""),
        type: "message",
        role: "assistant",
        content: [],
        model: chunk?.model ?? options.model ?? "",
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: input, output_tokens: 0 }
      }
    })
  }

  const close = (): string => {
    if (open === undefined) return ""
    open = undefined
    return event("content_block_stop", { type: "content_block_stop", index })
  }

  const text = (delta: string): string => {
    let out = ""
    if (open !== "text") {
      out += close()
      open = "text"
      index++
      out += event("content_block_start", { type: "content_block_start", index, content_block: { type: "text", text: "" } })
    }
    return out + event("content_block_delta", { type: "content_block_delta", index, delta: { type: "text_delta", text: delta } })
  }

  const tool = (call: ChatCompletion.ToolCallDelta): string => {
    let out = ""
    let block = toolBlocks.get(call.index)
    if (block === undefined) {
      out += close()
      open = "tool"
      block = ++index
      toolBlocks.set(call.index, block)
      out += event("content_block_start", {
        type: "content_block_start",
        index: block,
        content_block: { type: "tool_use", id: call.id ?? `toolu_breakwater_${block}`, name: call.function?.name ?? "", input: {} }
      })
    }
    const args = call.function?.arguments
    if (args !== undefined && args.length > 0) {
      out += event("content_block_delta", { type: "content_block_delta", index: block, delta: { type: "input_json_delta", partial_json: args } })
    }
    return out
  }

  const encode = (chunk: ChatCompletion.ChatCompletionChunk): string => {
    if (ChatCompletion.isHeartbeat(chunk)) {
      if (!started) return ""
      // A seam where stream-resume stitched a continuation: said as a comment, as on the
      // OpenAI-shaped stream; any other heartbeat is Anthropic's own keep-alive.
      return StreamResume.isSeamMarker(chunk) ? resumedComment : frame("ping", pingData)
    }
    let out = started ? "" : start(chunk)
    if (chunk.usage != null) {
      // Each usage chunk is one attempt's own usage (stream-resume sends one, already summed).
      usageSeen = true
      inputTokens += chunk.usage.prompt_tokens
      outputTokens += chunk.usage.completion_tokens
    }
    for (const choice of chunk.choices) {
      // A Messages answer has one choice.
      if (choice.index !== 0) continue
      const delta = choice.delta
      if (delta.content != null && delta.content.length > 0) out += text(delta.content)
      if (delta.refusal != null && delta.refusal.length > 0) out += text(delta.refusal)
      if (delta.tool_calls !== undefined) for (const call of delta.tool_calls) out += tool(call)
      if (choice.finish_reason != null) {
        out += close()
        stopReason = AnthropicWire.stopReasonOf(choice.finish_reason)
      }
    }
    return out
  }

  return {
    chunk: (chunk) => (done ? "" : encode(chunk)),
    end: () => {
      if (done) return ""
      done = true
      let out = started ? "" : start(undefined)
      out += close()
      const usage = usageSeen ? { input_tokens: inputTokens, output_tokens: outputTokens } : { output_tokens: outputTokens }
      out += event("message_delta", { type: "message_delta", delta: { stop_reason: stopReason ?? "end_turn", stop_sequence: null }, usage })
      return out + frame("message_stop", messageStopData)
    },
    fail: (error, requestId) => {
      if (done) return ""
      done = true
      return event("error", fromApiError(error, requestId).body)
    },
    ended: () => done
  }
}
