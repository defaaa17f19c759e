import { type ChatCompletion, LanguageModel, LeanEffect, type ModelError, RequestContext, TimeLimit, Timer } from "@breakwater/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { DeadlineOptions } from "../Deadline.js"
import { fire, timeoutError } from "./fire.js"

export const wrap = (model: LanguageModel.Service, options: DeadlineOptions): LanguageModel.Service => {
  const total = Duration.toMillis(options.total)

  // The deadline below this layer: ours, or an outer one if it is earlier.
  const enter = (outer: RequestContext.RequestContextShape, now: number) => {
    const own = now + total
    const deadline = outer.deadline === undefined ? own : Math.min(outer.deadline, own)
    const ctx: RequestContext.RequestContextShape = { ...outer, deadline }
    return { ctx, left: deadline - now, limit: Math.max(0, Math.min(total, deadline - now)) }
  }

  const generate = (request: ChatCompletion.ChatRequest, callOptions?: LanguageModel.CallOptions) =>
    RequestContext.of(callOptions, (outer) =>
      Effect.clockWith((clock): Effect.Effect<ChatCompletion.ChatCompletion, ModelError.ModelError> => {
        const { ctx, left, limit } = enter(outer, clock.unsafeCurrentTimeMillis())
        if (left <= 0) return fire(ctx, "total", limit, 0)
        const call = (limited: RequestContext.RequestContextShape) =>
          RequestContext.handDown(model.takesContext, limited, callOptions, (o) => model.generate(request, o))
        if (left === Infinity) return call(ctx)
        return TimeLimit.limit(model.honoursSignal, call, ctx, left, () => timeoutError(ctx, "total", limit, 0), () => fire(ctx, "total", limit, 0), clock)
      }))

  const below = LanguageModel.runOf(model)

  // One timer for the whole call; when it fires it aborts the attempt running then (or the next
  // one, the moment it starts), and the layers below see a `total` timeout, which ends them.
  const run: LanguageModel.Run = (request, callOptions, sink) =>
    RequestContext.of(callOptions, (outer) =>
      Timer.withTimer((timer, clock) => {
        const { ctx, left, limit } = enter(outer, clock.unsafeCurrentTimeMillis())
        if (left <= 0) return fire(ctx, "total", limit, 0)
        const call = (s: LanguageModel.ChunkSink) => RequestContext.handDown(model.takesContext, ctx, callOptions, (o) => below(request, o, s))
        if (left === Infinity) return call(sink)
        let control: LanguageModel.StreamControl | undefined
        let fired = false
        const expired = () => timeoutError(ctx, "total", limit, 0)
        const cancel = timer.schedule(left, () => {
          fired = true
          control?.abort(expired())
        })
        const wrapped: LanguageModel.ChunkSink = {
          start: (c) => {
            control = c
            sink.start(c)
            if (fired) c.abort(expired())
          },
          push: sink.push
        }
        return LeanEffect.onExitCatchAll(call(wrapped), cancel, (error) => (fired ? fire(ctx, "total", limit, 0) : Effect.fail(error)))
      }))

  return { generate, stream: LanguageModel.streamFromRun(run), run, honoursSignal: model.honoursSignal, takesContext: true }
}
