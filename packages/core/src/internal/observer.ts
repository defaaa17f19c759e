import type * as ChatCompletion from "../ChatCompletion.js"
import type * as LanguageModel from "../LanguageModel.js"
import type * as ModelError from "../ModelError.js"
import type * as RequestObserver from "../RequestObserver.js"
import type * as UpstreamHttp from "../UpstreamHttp.js"
import * as LeanEffect from "../LeanEffect.js"
import * as Cause from "effect/Cause"
import type * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"

/** The upstream request with the observer's headers added (a `traceparent`). */
export const withHeaders = (request: UpstreamHttp.Request, attempt: RequestObserver.AttemptObserver): UpstreamHttp.Request =>
  attempt.headers === undefined ? request : { ...request, headers: { ...request.headers, ...attempt.headers } }

/** Tells the observer how the call ended (once, whatever the exit). */
export const endOnExit = <A extends ChatCompletion.ChatCompletion | void>(
  call: Effect.Effect<A, ModelError.ModelError>,
  attempt: RequestObserver.AttemptObserver
): Effect.Effect<A, ModelError.ModelError> =>
  LeanEffect.onExit(call, (exit) => {
    if (Exit.isSuccess(exit)) return attempt.end({ _tag: "Success", completion: exit.value === undefined ? undefined : exit.value as ChatCompletion.ChatCompletion })
    const failure = Cause.failureOption(exit.cause)
    if (Option.isSome(failure)) return attempt.end({ _tag: "Failure", error: failure.value })
    const defect = Cause.dieOption(exit.cause)
    if (Option.isSome(defect)) return attempt.end({ _tag: "Defect", defect: defect.value })
    return attempt.end({ _tag: "Interrupted" })
  })

/** The sink with the observer shown each batch first. */
export const observedSink = (sink: LanguageModel.ChunkSink, attempt: RequestObserver.AttemptObserver): LanguageModel.ChunkSink => ({
  start: sink.start,
  push: (chunks) => {
    attempt.chunks(chunks)
    return sink.push(chunks)
  }
})
