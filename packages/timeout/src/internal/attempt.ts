import { ChatCompletion, type LanguageModel, LeanStream, type ModelError, RequestContext, TimeLimit } from "@breakwater/core"
import type * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type { AttemptTimeoutOptions } from "../AttemptTimeout.js"
import { fire } from "./fire.js"

const millisOf = (d: Duration.Duration): number => (Duration.isFinite(d) ? Duration.toMillis(d) : Infinity)

export const wrap = (model: LanguageModel.Service, options: AttemptTimeoutOptions): LanguageModel.Service => {
  const headers = millisOf(options.headers)
  const firstToken = millisOf(options.firstToken)
  const idle = millisOf(options.idle)

  const generate = (request: ChatCompletion.ChatRequest, callOptions?: LanguageModel.CallOptions) =>
    Effect.flatMap(RequestContext.current, (ctx) =>
      Effect.flatMap(Clock.currentTimeMillis, (now): Effect.Effect<ChatCompletion.ChatCompletion, ModelError.ModelError> => {
        const call = model.generate(request, callOptions)
        // Capped by the deadline left; when the deadline is the tighter bound, it is what fired.
        const left = ctx.deadline === undefined ? Infinity : ctx.deadline - now
        const phase: ModelError.TimeoutPhase = left <= headers ? "total" : "headers"
        const limit = Math.min(left, headers)
        if (limit === Infinity) return call
        if (limit <= 0) return fire(ctx, phase, 0, 0)
        return TimeLimit.race(call, limit, () => fire(ctx, phase, limit, 0))
      }))

  const stream = (request: ChatCompletion.ChatRequest, callOptions?: LanguageModel.CallOptions) =>
    LeanStream.unwrap(Effect.map(Effect.zip(RequestContext.current, Effect.clock), ([ctx, clock]) => {
      const start = clock.unsafeCurrentTimeMillis()
      const deadline = ctx.deadline ?? Infinity
      let received = 0
      let lastAt = start
      let content = false
      let blocked = false

      // Per chunk batch: one clock read; `hasContent` only until the first token.
      const observe = (chunk: Chunk.Chunk<ChatCompletion.ChatCompletionChunk>) => {
        if (chunk.length === 0) return chunk
        received += chunk.length
        lastAt = clock.unsafeCurrentTimeMillis()
        if (!content) {
          for (const c of chunk) {
            if (ChatCompletion.hasContent(c)) {
              content = true
              break
            }
          }
        }
        return chunk
      }

      // One timer per attempt, not per chunk: it sleeps until the earliest limit that could
      // fire given what has arrived so far, then re-checks (later chunks only move it later).
      const check = (): Effect.Effect<never, ModelError.ModelError> => {
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
        // While the consumer is not taking chunks, the source is held back, not idle.
        if (received > 0 && !blocked && lastAt + idle < at) {
          at = lastAt + idle
          phase = "idle"
          limit = idle
        }
        const now = clock.unsafeCurrentTimeMillis()
        if (now >= at) return fire(ctx, phase, limit, received)
        // Until the first chunk, wake at least every `idle`: that chunk arms the idle limit,
        // which may fall before the others, and nothing else would wake the timer for it.
        const wake = received === 0 || blocked ? Math.min(at, now + idle) : at
        if (wake === Infinity) return Effect.never
        return Effect.flatMap(Effect.sleep(Duration.millis(wake - now)), check)
      }

      const call = Stream.mapChunks(model.stream(request, callOptions), observe)
      if (deadline === Infinity && headers === Infinity && firstToken === Infinity && idle === Infinity) return call
      return LeanStream.interruptWhen(call, Effect.suspend(check), {
        onBlocked: (b) => {
          blocked = b
          // The idle limit starts again once the consumer takes chunks.
          if (!b) lastAt = clock.unsafeCurrentTimeMillis()
        }
      })
    }))

  return { generate, stream }
}
