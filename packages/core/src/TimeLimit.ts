/**
 * A time limit on an effect that costs at most one fiber and one timer. `Effect.timeoutTo` races
 * the effect against a sleeping fiber (two forks and a race per call); `race` runs the effect in
 * one child fiber and arms a timer from `Timer.current` (a plain timer on the default clock, a
 * sleeping fiber on any other, so `TestClock` drives the same code path tests and production
 * run). `limit` needs no fiber at all for a model that honours the request context's signal.
 *
 * @since 0.1.0
 */
import type * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import type * as ModelError from "./ModelError.js"
import * as Signals from "./internal/signals.js"
import * as LeanEffect from "./LeanEffect.js"
import * as RequestContext from "./RequestContext.js"
import * as Timer from "./Timer.js"

/**
 * Runs `self`; if it has not completed after `millis`, interrupts it (waiting for its finalizers,
 * so sockets are closed) and runs `onTimeout` instead.
 *
 * @since 0.1.0
 * @category combinators
 */
export const race = <A, E, R, E2, R2>(
  self: Effect.Effect<A, E, R>,
  millis: number,
  onTimeout: () => Effect.Effect<never, E2, R2>
): Effect.Effect<A, E | E2, R | R2> =>
  Effect.flatMap(Effect.zip(Timer.current, Effect.fork(self)), ([timer, fiber]) =>
    Effect.async<A, E | E2, R2>((resume) => {
      let settled = false
      const cancel = timer.schedule(millis, () => {
        if (settled) return
        settled = true
        resume(Effect.zipRight(Fiber.interrupt(fiber), onTimeout()))
      })
      fiber.addObserver((exit) => {
        if (settled) return
        settled = true
        cancel()
        resume(exit)
      })
      return Effect.suspend(() => {
        if (!settled) {
          settled = true
          cancel()
        }
        return Fiber.interruptAs(fiber, FiberId.none)
      })
    }))

/**
 * Runs `call` under a time limit of `millis`, for the policy whose context is `ctx`; `call` is
 * given the context to hand down to the model below (`RequestContext.handDown`). Where the model
 * honours the request context's signal (`LanguageModel.Service.honoursSignal`), one plain timer
 * aborts the call's I/O through a signal in that context (no fiber); otherwise it is `race`.
 * Either way, a limit that fired ends the call with `onTimeout` (which says why). `clock`: the
 * `Clock` the caller already read, if it did (its timers are then found without a run-loop step).
 *
 * @since 0.2.0
 * @category combinators
 */
export const limit = <A>(
  honoursSignal: boolean | undefined,
  call: (ctx: RequestContext.RequestContextShape) => Effect.Effect<A, ModelError.ModelError>,
  ctx: RequestContext.RequestContextShape,
  millis: number,
  expired: () => ModelError.ModelError,
  onTimeout: () => Effect.Effect<never, ModelError.ModelError>,
  clock?: Clock.Clock | undefined
): Effect.Effect<A, ModelError.ModelError> => {
  if (honoursSignal !== true) return race(call(ctx), millis, onTimeout)
  const limited = (timer: Timer.Timer) => {
    const signal = new Signals.Abort()
    let fired = false
    const cancel = timer.schedule(millis, () => {
      fired = true
      signal.abort(expired())
    })
    // An outer limit (the deadline) aborts this call's I/O too.
    const unfollow = Signals.follow(ctx.signal, signal)
    return LeanEffect.onExitCatchAll(
      call({ ...ctx, signal }),
      () => {
        cancel()
        unfollow()
      },
      (error) => (fired ? onTimeout() : Effect.fail(error))
    )
  }
  // The caller's clock when it read one already (a run-loop step fewer).
  return clock === undefined ? Timer.withTimer(limited) : Timer.withClock(clock, limited)
}
