import { AdapterKit as Kit, type ChatCompletion, Continuation, JsonTemplate, LanguageModel, ModelError, type UpstreamHttp, WireText } from "@breakwater/core"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"

/** @internal */
export interface Settings {
  readonly name: string
  readonly apiKey?: Redacted.Redacted<string> | undefined
  readonly azure?: { readonly apiVersion: string } | undefined
  readonly headers: Readonly<Record<string, string>>
  readonly continuation: Continuation.Strategy
  readonly continueFinalMessage: boolean
}

/**
 * The canonical request with the continuation (if any) applied, in the strategy asked for or
 * the adapter's own.
 *
 * @internal
 */
export const prepare = (
  request: ChatCompletion.ChatRequest,
  options: LanguageModel.CallOptions | undefined,
  preferred: Continuation.Strategy
): { readonly request: ChatCompletion.ChatRequest; readonly prefill: boolean } => {
  const continuation = options?.continuation
  if (continuation === undefined) return { request, prefill: false }
  const strategy = continuation.strategy ?? preferred
  return { request: Continuation.toRequest(request, continuation, strategy), prefill: strategy === "assistant-prefill" }
}

/**
 * The wire body: the canonical request as is (unknown fields included), with `stream` set and,
 * when streaming, `stream_options.include_usage` forced on (usage is summed over attempts).
 *
 * @internal
 */
export const encodeRequest = (
  request: ChatCompletion.ChatRequest,
  stream: boolean,
  vllmPrefill: boolean
): string => {
  const body: Record<string, unknown> = { ...request, stream }
  if (stream) body.stream_options = { ...request.stream_options, include_usage: true }
  // OpenAI rejects `stream_options` on a non-streaming request. (Not `delete` when there is none:
  // it sends the object to V8's slow dictionary mode, and `JSON.stringify` with it.)
  else if (body.stream_options !== undefined) delete body.stream_options
  if (vllmPrefill) {
    body.continue_final_message = true
    body.add_generation_prompt = false
  }
  return JSON.stringify(body)
}

/**
 * A non-streaming body, shape-checked (not Schema-decoded).
 *
 * @internal
 */
export const decodeCompletion = (
  upstream: string,
  json: unknown,
  scrub: Kit.Scrub
): Effect.Effect<ChatCompletion.ChatCompletion, ModelError.ModelError> => {
  if (json !== null && typeof json === "object") {
    if (Array.isArray((json as { choices?: unknown }).choices)) return Effect.succeed(json as ChatCompletion.ChatCompletion)
    const error = (json as { error?: unknown }).error
    if (error !== undefined) return Effect.fail(Kit.fromErrorObject(upstream, error, scrub))
  }
  return Effect.fail(new ModelError.ConnectionFailed({ message: `${upstream}: the response is not a chat completion`, upstream }))
}

/**
 * Translates one SSE event of an OpenAI stream. `data: [DONE]` ends it; an error object becomes
 * `StreamInterrupted{reason:"error-event"}` whose cause is the classified error. Stateless.
 *
 * @internal
 */
export const frameHandler = (upstream: string, scrub: Kit.Scrub): Kit.FrameHandler => {
  // One parser for every stream of the upstream: its templates are the chunk shapes it sends.
  const parse = JsonTemplate.make(chunkValues)
  return (event, context) => frame(upstream, scrub, parse, event.data, context)
}

// The values that change from one chunk to the next, or from one stream to the next (the
// structure and the rest repeat): the stream's id, time and model, the text, the reasoning
// text some servers add, a tool call's arguments, the finish reason, the usage, and OpenAI's
// `obfuscation` padding.
const chunkValues: ReadonlyArray<JsonTemplate.Path> = [
  ["id"],
  ["created"],
  ["model"],
  ["system_fingerprint"],
  ["choices", 0, "delta", "content"],
  ["choices", 0, "delta", "reasoning_content"],
  ["choices", 0, "delta", "reasoning"],
  ["choices", 0, "delta", "tool_calls", 0, "function", "arguments"],
  ["choices", 0, "finish_reason"],
  ["usage", "prompt_tokens"],
  ["usage", "completion_tokens"],
  ["usage", "total_tokens"],
  ["obfuscation"]
]

const frame = (
  upstream: string,
  scrub: Kit.Scrub,
  parse: JsonTemplate.Parser,
  data: string,
  context: Kit.FrameContext
): Kit.FrameOutcome => {
  if (data === "[DONE]") return "done"
  let json: unknown
  try {
    json = parse(data)
  } catch (cause) {
    return context.interrupted("malformed", "a stream frame is not JSON", cause)
  }
  if (json === null || typeof json !== "object") return context.interrupted("malformed", "a stream frame is not a JSON object")
  const error = (json as { error?: unknown }).error
  if (error !== undefined && error !== null) {
    const cause = Kit.fromErrorObject(upstream, error, scrub)
    return context.interrupted("error-event", `error event in the stream: ${cause.message}`, cause)
  }
  if (!Array.isArray((json as { choices?: unknown }).choices)) {
    return context.interrupted("malformed", "a stream frame is not a chat completion chunk")
  }
  // Sent on unchanged (most chunks are), the chunk goes out as the upstream's own text.
  context.emit(WireText.attach(json as ChatCompletion.ChatCompletionChunk, data))
  return undefined
}

/** @internal */
export const makeService = (settings: Settings, http: UpstreamHttp.UpstreamHttp): LanguageModel.Service => {
  const name = settings.name
  const scrub = Kit.scrubber(settings.apiKey)
  const readError = Kit.errorReader(scrub)
  const path = settings.azure === undefined
    ? "/chat/completions"
    : `/chat/completions?api-version=${encodeURIComponent(settings.azure.apiVersion)}`
  const key = settings.apiKey
  const auth: Record<string, Redacted.Redacted<string>> = key === undefined
    ? {}
    : settings.azure !== undefined
    ? { "api-key": key }
    : { authorization: Redacted.make(`Bearer ${Redacted.value(key)}`) }
  // Built once: per request only the body changes.
  const jsonHeaders = { ...settings.headers, "content-type": "application/json", accept: "application/json", ...auth }
  const sseHeaders = { ...jsonHeaders, accept: "text/event-stream" }

  const frames = Effect.succeed(frameHandler(name, scrub))
  const decode = (json: unknown) => decodeCompletion(name, json, scrub)

  const encode = (request: ChatCompletion.ChatRequest, options: LanguageModel.CallOptions | undefined, stream: boolean) =>
    Kit.encodeBody(name, () => {
      const prepared = prepare(request, options, settings.continuation)
      return encodeRequest(prepared.request, stream, prepared.prefill && settings.continueFinalMessage)
    })

  const generate = (request: ChatCompletion.ChatRequest, options?: LanguageModel.CallOptions) =>
    Effect.flatMap(encode(request, options, false), (body) =>
      Kit.generateCall(http, { path, headers: jsonHeaders, body }, readError, request.model, decode, options))

  const run: LanguageModel.Run = (request, options, sink) =>
    Effect.flatMap(encode(request, options, true), (body) =>
      Kit.runCall(http, { path, headers: sseHeaders, body }, readError, request.model, frames, sink, options))

  return { generate, stream: LanguageModel.streamFromRun(run), run, honoursSignal: true, takesContext: true }
}
