import { type ChatCompletion, type LanguageModel, LeanStream, type ModelError, RequestContext, TimeLimit } from "@breakwater/core"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type { DeadlineOptions } from "../Deadline.js"
import { fire } from "./fire.js"

export const wrap = (model: LanguageModel.Service, options: DeadlineOptions): LanguageModel.Service => {
  const total = Duration.toMillis(options.total)

  // The deadline below this layer: ours, or an outer one if it is earlier.
  const enter = Effect.flatMap(RequestContext.current, (outer) =>
    Effect.map(Clock.currentTimeMillis, (now) => {
      const own = now + total
      const deadline = outer.deadline === undefined ? own : Math.min(outer.deadline, own)
      const ctx: RequestContext.RequestContextShape = { ...outer, deadline }
      return { ctx, left: deadline - now, limit: Math.max(0, Math.min(total, deadline - now)) }
    }))

  const generate = (request: ChatCompletion.ChatRequest, callOptions?: LanguageModel.CallOptions) =>
    Effect.flatMap(enter, ({ ctx, left, limit }): Effect.Effect<ChatCompletion.ChatCompletion, ModelError.ModelError> => {
      if (left <= 0) return fire(ctx, "total", limit, 0)
      const call = Effect.provideService(model.generate(request, callOptions), RequestContext.RequestContext, ctx)
      if (left === Infinity) return call
      return TimeLimit.race(call, left, () => fire(ctx, "total", limit, 0))
    })

  const stream = (request: ChatCompletion.ChatRequest, callOptions?: LanguageModel.CallOptions) =>
    LeanStream.unwrap(Effect.map(enter, ({ ctx, left, limit }): Stream.Stream<ChatCompletion.ChatCompletionChunk, ModelError.ModelError> => {
      if (left <= 0) return Stream.fromEffect(fire(ctx, "total", limit, 0))
      const call = LeanStream.provideService(model.stream(request, callOptions), RequestContext.RequestContext, ctx)
      if (left === Infinity) return call
      // One timer for the whole stream, forked with it and interrupted when it ends.
      return LeanStream.interruptWhen(call, Effect.zipRight(Effect.sleep(Duration.millis(left)), fire(ctx, "total", limit, 0)))
    }))

  return { generate, stream }
}
