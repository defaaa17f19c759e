import { AdapterKit, type ChatCompletion, Continuation, LanguageModel, ModelError, type UpstreamHttp } from "@breakwater/core"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type * as Redacted from "effect/Redacted"
import * as Wire from "./wire.js"

/** @internal */
export interface Settings {
  readonly name: string
  readonly apiKey?: Redacted.Redacted<string> | undefined
  readonly version: string
  readonly headers: Readonly<Record<string, string>>
  readonly maxTokens: number
  readonly continuation: Continuation.Strategy
}

/** @internal */
export const makeService = (settings: Settings, http: UpstreamHttp.UpstreamHttp): LanguageModel.Service => {
  const name = settings.name
  const scrub = AdapterKit.scrubber(settings.apiKey)
  const readError = AdapterKit.errorReader(scrub)
  const auth: Record<string, Redacted.Redacted<string>> = settings.apiKey === undefined ? {} : { "x-api-key": settings.apiKey }
  // Built once: per request only the body changes.
  const jsonHeaders = {
    ...settings.headers,
    "content-type": "application/json",
    accept: "application/json",
    "anthropic-version": settings.version,
    ...auth
  }
  const sseHeaders = { ...jsonHeaders, accept: "text/event-stream" }

  const encode = (request: ChatCompletion.ChatRequest, options: LanguageModel.CallOptions | undefined, stream: boolean) =>
    AdapterKit.encodeBody(name, () => {
      const continuation = options?.continuation
      const prepared = continuation === undefined
        ? request
        : Continuation.toRequest(request, continuation, continuation.strategy ?? settings.continuation)
      return JSON.stringify(Wire.encodeRequest(prepared, settings.maxTokens, stream))
    })

  const decode = (json: unknown) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const decoded = Wire.decodeMessage(name, json, Math.floor(now / 1000), scrub)
      return ModelError.isModelError(decoded) ? Effect.fail(decoded) : Effect.succeed(decoded)
    })

  const generate = (request: ChatCompletion.ChatRequest, options?: LanguageModel.CallOptions) =>
    Effect.flatMap(encode(request, options, false), (body) =>
      AdapterKit.generateCall(http, { path: "/v1/messages", headers: jsonHeaders, body }, readError, request.model, decode))

  const run: LanguageModel.Run = (request, options, sink) =>
    Effect.flatMap(encode(request, options, true), (body) =>
      AdapterKit.runCall(
        http,
        { path: "/v1/messages", headers: sseHeaders, body },
        readError,
        request.model,
        Effect.map(Clock.currentTimeMillis, (now) => Wire.frameHandler(name, request.model, Math.floor(now / 1000), scrub)),
        sink
      ))

  return { generate, stream: LanguageModel.streamFromRun(run), run, honoursSignal: true }
}
