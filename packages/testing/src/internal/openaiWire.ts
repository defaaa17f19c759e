/**
 * The OpenAI Chat Completions wire: `{error:{message,type,param,code}}` bodies, the
 * `chat.completion` object, and `data:` chunk frames ending with `data: [DONE]`.
 */
import { type Answer, dataFrame, defaultMessage, type Frames, type Wire } from "./wire.js"

const errorTypes: Record<number, readonly [type: string, code: string | null]> = {
  400: ["invalid_request_error", null],
  401: ["invalid_request_error", "invalid_api_key"],
  403: ["invalid_request_error", null],
  404: ["invalid_request_error", "model_not_found"],
  413: ["invalid_request_error", null],
  429: ["requests", "rate_limit_exceeded"]
}

const errorJson = (status: number, message: string, code?: string) => {
  const [type, known] = errorTypes[status] ?? ["server_error", null]
  return { error: { message, type, param: null, code: code ?? known } }
}

/** The answer to a path the mock does not serve, in OpenAI's shape. */
export const unknownUrl = (method: string, path: string): string =>
  JSON.stringify(errorJson(404, `Unknown request URL: ${method} ${path}.`, "unknown_url"))

/** `GET /v1/models`. */
export const modelList: string = JSON.stringify({ object: "list", data: [{ id: "mock-model", object: "model", created: 0, owned_by: "mock" }] })

const completion = (a: Answer): Buffer => {
  const completionTokens = a.pieces.length
  return Buffer.from(JSON.stringify({
    id: a.id, object: "chat.completion", created: a.created, model: a.model,
    choices: [{
      index: 0,
      message: a.tool !== undefined
        ? { role: "assistant", content: null, tool_calls: [{ id: "call_mock_1", type: "function", function: { name: a.tool, arguments: a.pieces.join("") } }], refusal: null }
        : { role: "assistant", content: a.text, refusal: null },
      logprobs: null,
      finish_reason: a.tool !== undefined ? "tool_calls" : "stop"
    }],
    usage: { prompt_tokens: a.promptTokens, completion_tokens: completionTokens, total_tokens: a.promptTokens + completionTokens },
    system_fingerprint: "fp_mock"
  }))
}

const frames = (a: Answer): Frames => {
  const { id, created, model, tool, includeUsage } = a
  // With include_usage, OpenAI sends `"usage":null` on every chunk and the totals in a last chunk without choices.
  const frame = (delta: unknown, finish: string | null = null) =>
    dataFrame({
      id, object: "chat.completion.chunk", created, model, system_fingerprint: "fp_mock",
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
      ...(includeUsage ? { usage: null } : {})
    })
  const content = tool === undefined
    ? a.pieces.map((p) => frame({ content: p }))
    : a.pieces.map((p, i) =>
      frame({ tool_calls: [i === 0 ? { index: 0, id: "call_mock_1", type: "function", function: { name: tool, arguments: p } } : { index: 0, function: { arguments: p } }] })
    )
  const tail = [frame({}, tool === undefined ? "stop" : "tool_calls")]
  if (includeUsage) {
    const n = a.pieces.length
    tail.push(dataFrame({
      id, object: "chat.completion.chunk", created, model, system_fingerprint: "fp_mock", choices: [],
      usage: { prompt_tokens: a.promptTokens, completion_tokens: n, total_tokens: a.promptTokens + n }
    }))
  }
  return {
    head: [frame(tool === undefined ? { role: "assistant", content: "", refusal: null } : { role: "assistant", content: null, refusal: null })],
    content,
    tail,
    terminator: Buffer.from("data: [DONE]\n\n")
  }
}

export const wire: Wire = {
  idPrefix: "chatcmpl-mock",
  errorBody: (status, message) => Buffer.from(JSON.stringify(errorJson(status, message))),
  completion,
  frames,
  ping: Buffer.from(": keep-alive\n\n"),
  malformed: Buffer.from("data: {\"id\":\"broken\",\"choices\":[{\"delta\":{\"content\n\n"),
  errorEvent: dataFrame(errorJson(500, defaultMessage(500)))
}
