import { ChatCompletion, LanguageModel, LeanEffect, type ModelError, RequestContext, TimeLimit, Timer } from "@breakwater/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { AttemptTimeoutOptions } from "../AttemptTimeout.js"
import { fire, timeoutError } from "./fire.js"

const millisOf = (d: Duration.Duration): number => (Duration.isFinite(d) ? Duration.toMillis(d) : Infinity)

export const wrap = (model: LanguageModel.Service, options: AttemptTimeoutOptions): LanguageModel.Service => {
  const headers = millisOf(options.headers)
  const firstToken = millisOf(options.firstToken)
  const idle = millisOf(options.idle)

  const generate = (request: ChatCompletion.ChatRequest, callOptions?: LanguageModel.CallOptions) =>
    RequestContext.of(callOptions, (ctx) =>
      Effect.clockWith((clock): Effect.Effect<ChatCompletion.ChatCompletion, ModelError.ModelError> => {
        const now = clock.unsafeCurrentTimeMillis()
        // Capped by the deadline left; when the deadline is the tighter bound, it is what fired.
        const left = ctx.deadline === undefined ? Infinity : ctx.deadline - now
        const phase: ModelError.TimeoutPhase = left <= headers ? "total" : "headers"
        const limit = Math.min(left, headers)
        const call = (limited: RequestContext.RequestContextShape) =>
          RequestContext.handDown(model.takesContext, limited, callOptions, (o) => model.generate(request, o))
        if (limit === Infinity) return call(ctx)
        if (limit <= 0) return fire(ctx, phase, 0, 0)
        return TimeLimit.limit(model.honoursSignal, call, ctx, limit, () => timeoutError(ctx, phase, limit, 0), () => fire(ctx, phase, limit, 0), clock)
      }))

  const below = LanguageModel.runOf(model)

  // One timer per attempt, not per chunk: it fires at the earliest limit that could pass given
  // what has arrived so far, then re-checks (later chunks only move it later). Per chunk: one
  // clock read, and a scan for content until the first token.
  const run: LanguageModel.Run = (request, callOptions, sink) =>
    RequestContext.of(callOptions, (ctx) => Timer.withTimer((timer, clock) => {
      const start = clock.unsafeCurrentTimeMillis()
      const deadline = ctx.deadline ?? Infinity
      const call = (s: LanguageModel.ChunkSink) => RequestContext.handDown(model.takesContext, ctx, callOptions, (o) => below(request, o, s))
      if (deadline === Infinity && headers === Infinity && firstToken === Infinity && idle === Infinity) return call(sink)
      let received = 0
      let lastAt = start
      let content = false
      // While the consumer is not taking chunks (the producer is paused), the source is held
      // back, not idle: the idle limit starts again when the consumer resumes it.
      let blocked = false
      let control: LanguageModel.StreamControl | undefined
      let fired: { readonly phase: ModelError.TimeoutPhase; readonly limit: number; readonly received: number } | undefined
      let cancel: (() => void) | undefined

      const check = (): void => {
        cancel = undefined
        let at = deadline
        let phase: ModelError.TimeoutPhase = "total"
        let limit = deadline - start
        if (received === 0 && start + headers < at) {
          at = start + headers
          phase = "headers"
          limit = headers
        }
        if (!content && start + firstToken < at) {
          at = start + firstToken
          phase = "first-token"
          limit = firstToken
        }
        if (received > 0 && !blocked && lastAt + idle < at) {
          at = lastAt + idle
          phase = "idle"
          limit = idle
        }
        const now = clock.unsafeCurrentTimeMillis()
        if (now >= at) {
          fired = { phase, limit, received }
          control?.abort(timeoutError(ctx, phase, limit, received))
          return
        }
        // Until the first chunk, wake at least every `idle`: that chunk arms the idle limit,
        // which may fall before the others, and nothing else would wake the timer for it.
        const wake = received === 0 || blocked ? Math.min(at, now + idle) : at
        if (wake !== Infinity) cancel = timer.schedule(wake - now, check)
      }

      const wrapped: LanguageModel.ChunkSink = {
        start: (c) => {
          control = c
          sink.start({
            abort: c.abort,
            resume: () => {
              blocked = false
              lastAt = clock.unsafeCurrentTimeMillis()
              c.resume()
            }
          })
          if (fired !== undefined) c.abort(timeoutError(ctx, fired.phase, fired.limit, fired.received))
        },
        push: (chunks) => {
          received += chunks.length
          lastAt = clock.unsafeCurrentTimeMillis()
          if (!content) content = ChatCompletion.firstContent(chunks) >= 0
          const more = sink.push(chunks)
          if (!more) blocked = true
          return more
        }
      }
      check()
      return LeanEffect.onExitCatchAll(
        call(wrapped),
        () => {
          cancel?.()
          cancel = undefined
        },
        (error) => fired === undefined ? Effect.fail(error) : fire(ctx, fired.phase, fired.limit, fired.received)
      )
    }))

  return { generate, stream: LanguageModel.streamFromRun(run), run, honoursSignal: model.honoursSignal, takesContext: true }
}
