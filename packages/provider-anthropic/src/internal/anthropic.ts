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

// How many models' prefill refusals an adapter remembers before it starts over.
const maxRemembered = 256

/** The headers of a JSON call: the configured ones, then the version and the key. */
const jsonHeadersOf = (settings: Settings): Readonly<Record<string, string | Redacted.Redacted<string>>> => ({
  ...settings.headers,
  "content-type": "application/json",
  accept: "application/json",
  "anthropic-version": settings.version,
  ...(settings.apiKey === undefined ? {} : { "x-api-key": settings.apiKey })
})

/** @internal */
export const makeTokenCounter = (settings: Settings, http: UpstreamHttp.UpstreamHttp) => {
  const readError = AdapterKit.errorReader(AdapterKit.scrubber(settings.apiKey))
  const headers = jsonHeadersOf(settings)
  return (body: Readonly<Record<string, unknown>>): Effect.Effect<unknown, ModelError.ModelError> =>
    http.json({ method: "POST", path: "/v1/messages/count_tokens", headers, body: JSON.stringify(body) }, readError)
}

/** @internal */
export const makeService = (settings: Settings, http: UpstreamHttp.UpstreamHttp): LanguageModel.Service => {
  const name = settings.name
  const scrub = AdapterKit.scrubber(settings.apiKey)
  const readError = AdapterKit.errorReader(scrub)
  // Built once: per request only the body changes.
  const jsonHeaders = jsonHeadersOf(settings)
  const sseHeaders = { ...jsonHeaders, accept: "text/event-stream" }

  // The models of this upstream that refused an assistant prefill (Claude from the 4.6
  // generation): their continuations go as a user instruction from then on. Bounded, since
  // model names come from requests.
  const refusesPrefill = new Set<string>()

  const encode = (request: ChatCompletion.ChatRequest, stream: boolean) =>
    AdapterKit.encodeBody(name, () => JSON.stringify(Wire.encodeRequest(request, settings.maxTokens, stream)))

  /**
   * Sends `request` with its continuation (if any) through `call`. A continuation whose strategy
   * is the adapter's to choose goes as a prefill unless the model refused one; when the upstream
   * answers a prefill with its refusal (a 400 before anything was sent), the same call is made
   * again at once as a user instruction, inside the adapter, so the refusal never reaches a
   * policy above (a breaker, retry) as the upstream's failure.
   */
  const withContinuation = <A>(
    request: ChatCompletion.ChatRequest,
    options: LanguageModel.CallOptions | undefined,
    stream: boolean,
    call: (body: string) => Effect.Effect<A, ModelError.ModelError>
  ): Effect.Effect<A, ModelError.ModelError> => {
    const continuation = options?.continuation
    if (continuation === undefined) return Effect.flatMap(encode(request, stream), call)
    const chosen = continuation.strategy === undefined
    const strategy = chosen && refusesPrefill.has(request.model) ? "user-instruction" : continuation.strategy ?? settings.continuation
    const attempt = (s: Continuation.Strategy) => Effect.flatMap(encode(Continuation.toRequest(request, continuation, s), stream), call)
    if (!chosen || strategy !== "assistant-prefill") return attempt(strategy)
    return Effect.catchIf(attempt(strategy), Continuation.isPrefillRejection, () => {
      if (refusesPrefill.size >= maxRemembered) refusesPrefill.clear()
      refusesPrefill.add(request.model)
      return attempt("user-instruction")
    })
  }

  const decode = (json: unknown) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const decoded = Wire.decodeMessage(name, json, Math.floor(now / 1000), scrub)
      return ModelError.isModelError(decoded) ? Effect.fail(decoded) : Effect.succeed(decoded)
    })

  const generate = (request: ChatCompletion.ChatRequest, options?: LanguageModel.CallOptions) =>
    withContinuation(request, options, false, (body) =>
      AdapterKit.generateCall(http, { path: "/v1/messages", headers: jsonHeaders, body }, readError, request.model, decode, options))

  const run: LanguageModel.Run = (request, options, sink) =>
    withContinuation(request, options, true, (body) =>
      AdapterKit.runCall(
        http,
        { path: "/v1/messages", headers: sseHeaders, body },
        readError,
        request.model,
        Effect.map(Clock.currentTimeMillis, (now) => Wire.frameHandler(name, request.model, Math.floor(now / 1000), scrub)),
        sink,
        options
      ))

  return { generate, stream: LanguageModel.streamFromRun(run), run, honoursSignal: true, takesContext: true }
}
