/**
 * An `@effect/ai` `LanguageModel` over a Breakwater `LanguageModel.Service`: each call becomes
 * one canonical request to the stack, which does its retries, fallbacks and resumes below;
 * @effect/ai sees one answer.
 */
import { ModelError, RequestContext } from "@breakwater/core"
import type { ChatCompletion, LanguageModel } from "@breakwater/core"
import * as AiError from "@effect/ai/AiError"
import * as AiLanguageModel from "@effect/ai/LanguageModel"
import type * as Response from "@effect/ai/Response"
import { addGenAIAnnotations } from "@effect/ai/Telemetry"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type { Span } from "effect/Tracer"
import { chatRequest } from "./request.js"
import { fromCompletion, streamTranslator } from "./response.js"

export interface Settings {
  readonly model: string
  readonly request: Readonly<Record<string, unknown>>
}

const MODULE = "BreakwaterLanguageModel"

/** A Breakwater failure as @effect/ai's `UnknownError`, the Breakwater error kept as its `cause`. */
export const toAiError = (method: string) => (error: ModelError.ModelError): AiError.AiError =>
  new AiError.UnknownError({ module: MODULE, method, description: `${error._tag}: ${error.message}`, cause: error })

/** The Breakwater error behind an @effect/ai error raised by this model, if it is one. */
export const modelErrorOf = (error: AiError.AiError): ModelError.ModelError | undefined =>
  error._tag === "UnknownError" && error.module === MODULE && ModelError.isModelError(error.cause) ? error.cause : undefined

const annotate = (span: Span, request: ChatCompletion.ChatRequest): void =>
  addGenAIAnnotations(span, {
    system: "breakwater",
    operation: { name: "chat" },
    request: {
      model: request.model,
      temperature: request.temperature ?? undefined,
      topP: request.top_p ?? undefined,
      maxTokens: request.max_completion_tokens ?? request.max_tokens ?? undefined
    }
  })

// One request context per @effect/ai call (a fresh one unless the caller provided its own), so
// the stack's per-request state (attempts, trace, deadline) is this call's.
const withContext = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
  Effect.flatMap(RequestContext.current, (ctx) => Effect.provideService(effect, RequestContext.RequestContext, ctx))

export const make = (model: LanguageModel.Service, options: Settings): Effect.Effect<AiLanguageModel.Service> =>
  AiLanguageModel.make({
    generateText: (provider) =>
      Effect.gen(function*() {
        const request = yield* chatRequest(options.model, options.request, provider)
        annotate(provider.span, request)
        const completion = yield* withContext(Effect.mapError(model.generate(request), toAiError("generateText")))
        return yield* fromCompletion(completion)
      }),
    streamText: (provider) =>
      Stream.unwrap(Effect.gen(function*() {
        const request = yield* chatRequest(options.model, options.request, provider)
        annotate(provider.span, request)
        const ctx = yield* RequestContext.current
        const translator = streamTranslator()
        const chunks = model.stream({ ...request, stream: true, stream_options: { ...request.stream_options, include_usage: true } })
        return Stream.provideService(chunks, RequestContext.RequestContext, ctx).pipe(
          Stream.mapError(toAiError("streamText")),
          Stream.mapConcat(translator.push),
          Stream.concat(Stream.flatMap(
            Stream.fromEffect(Effect.suspend(translator.end)),
            (parts): Stream.Stream<Response.StreamPartEncoded> => Stream.fromIterable(parts)
          ))
        )
      }))
  })
