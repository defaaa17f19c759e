/**
 * The Anthropic Messages wire: `{type:"error",error:{type,message}}` bodies, the `message`
 * object, and named SSE events from `message_start` to `message_stop`.
 */
import type { Answer, Frames, Wire } from "./wire.js"

const errorTypes: Record<number, string> = {
  400: "invalid_request_error",
  401: "authentication_error",
  403: "permission_error",
  404: "not_found_error",
  413: "request_too_large",
  429: "rate_limit_error",
  529: "overloaded_error"
}

const errorJson = (status: number, message: string) => ({ type: "error", error: { type: errorTypes[status] ?? "api_error", message } })

const event = (type: string, data: Record<string, unknown>) => Buffer.from(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`)

const ping = Buffer.from(`event: ping\ndata: {"type": "ping"}\n\n`)

const completion = (a: Answer): Buffer =>
  Buffer.from(JSON.stringify({
    id: a.id, type: "message", role: "assistant", model: a.model,
    content: a.tool !== undefined
      ? [{ type: "tool_use", id: "toolu_mock_1", name: a.tool, input: JSON.parse(a.pieces.join("")) }]
      : [{ type: "text", text: a.text }],
    stop_reason: a.tool !== undefined ? "tool_use" : "end_turn",
    stop_sequence: null,
    usage: { input_tokens: a.promptTokens, output_tokens: a.pieces.length }
  }))

const frames = (a: Answer): Frames => ({
  head: [
    event("message_start", {
      message: {
        id: a.id, type: "message", role: "assistant", content: [], model: a.model, stop_reason: null, stop_sequence: null,
        usage: { input_tokens: a.promptTokens, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 1 }
      }
    }),
    event("content_block_start", {
      index: 0,
      content_block: a.tool === undefined ? { type: "text", text: "" } : { type: "tool_use", id: "toolu_mock_1", name: a.tool, input: {} }
    }),
    ping
  ],
  content: a.pieces.map((p) =>
    event("content_block_delta", { index: 0, delta: a.tool === undefined ? { type: "text_delta", text: p } : { type: "input_json_delta", partial_json: p } })
  ),
  tail: [
    event("content_block_stop", { index: 0 }),
    event("message_delta", { delta: { stop_reason: a.tool === undefined ? "end_turn" : "tool_use", stop_sequence: null }, usage: { output_tokens: a.pieces.length } })
  ],
  terminator: event("message_stop", {})
})

export const wire: Wire = {
  idPrefix: "msg_mock",
  errorBody: (status, message) => Buffer.from(JSON.stringify(errorJson(status, message))),
  completion,
  frames,
  ping,
  malformed: Buffer.from("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\n\n"),
  errorEvent: event("error", errorJson(529, "Overloaded"))
}
