/**
 * The stream-resume policy around the model below: runs a `Session`'s attempts one after the
 * other, hands each attempt a sink that passes its batches through `Session.process`, stops an
 * attempt the session ends itself, and runs a seam's notes on the request's runtime.
 */
import { LanguageModel, ModelError, RequestContext } from "@breakwater/core"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as Runtime from "effect/Runtime"
import type { Call, Signal } from "./attempt.js"
import type { Settings } from "./recovery.js"
import { Session } from "./session.js"

export { resumesTotal } from "./outcomes.js"
export type { Settings, StrategyChoice } from "./recovery.js"

// What stream-resume aborts an attempt with when it stops it itself (a rejected continuation, an
// answer it finished): the attempt's failure is then the session's signal, never this.
const stopped = new ModelError.StreamInterrupted({ message: "stream-resume stopped the attempt", reason: "reset", receivedChunks: 0 })

/** @internal */
export const wrap = (model: LanguageModel.Service, settings: Settings): LanguageModel.Service => {
  const below = LanguageModel.runOf(model)
  const run: LanguageModel.Run = (request, options, sink) => {
    // Several choices cannot be continued one by one: passed through, restarted only by retry.
    if (request.n != null && request.n > 1) return below(request, options, sink)
    return RequestContext.of(options, (ctx) => Effect.withFiberRuntime<void, ModelError.ModelError>((fiber, status) => {
      const session = new Session(settings, request, options, ctx)
      // Seams are rare: their metrics and logs run on the request's runtime (made only then), off the chunk path.
      const notes = () => {
        const effect = session.effect
        if (effect !== undefined) {
          session.effect = undefined
          const runtime = Runtime.make({ context: fiber.getFiberRef(FiberRef.currentContext), fiberRefs: fiber.getFiberRefs(), runtimeFlags: status.runtimeFlags })
          Runtime.runFork(runtime)(effect)
        }
      }
      let control: LanguageModel.StreamControl | undefined
      const spliced: LanguageModel.ChunkSink = {
        start: (c) => {
          control = c
          sink.start(c)
        },
        push: (chunks) => {
          const attempt = session.attempt
          if (attempt.signal !== undefined) return false
          const out = session.process(attempt, chunks)
          notes()
          const more = out.length === 0 ? true : sink.push(out)
          if (attempt.signal !== undefined) {
            control?.abort(stopped)
            return false
          }
          return more
        }
      }
      const next = (error: ModelError.ModelError | Signal): Effect.Effect<void, ModelError.ModelError> =>
        Effect.flatMap(session.onFailure(error), (n) => {
          if (n._tag === "call") return attempt(n.call)
          if (n.chunks.length > 0) sink.push(n.chunks)
          return Effect.void
        })
      const attempt = (call: Call): Effect.Effect<void, ModelError.ModelError> =>
        Effect.matchEffect(RequestContext.handDown(model.takesContext, ctx, call.options, (o) => below(call.request, o, spliced)), {
          onFailure: (error) => next(session.attempt.signal ?? error),
          onSuccess: () => {
            const out = session.end()
            notes()
            if (out.length > 0) sink.push(out)
            return session.attempt.signal === undefined ? Effect.void : next(session.attempt.signal)
          }
        })
      return attempt(session.first())
    }))
  }
  // `generate` is the model's own, so the context is taken as the model takes it.
  return { generate: model.generate, stream: LanguageModel.streamFromRun(run), run, honoursSignal: model.honoursSignal, takesContext: model.takesContext }
}
