/**
 * Effect combinators for what runs once per call on the hot path, with fewer run-loop steps than
 * their `effect` namesakes. `Effect.onExit` and `Effect.acquireUseRelease` mask interruption
 * around the effect and restore it inside (about ten run-loop steps each, every one a closure
 * and an effect object); a policy layer that arms a timer or holds a breaker permit per call
 * paid that on every request. Here the effect's end is observed with one `matchCauseEffect`, and
 * the one case it does not see — the fiber interrupted while the effect runs, which skips every
 * handler — is caught by an observer on the fiber, removed again when the effect ends otherwise.
 *
 * @since 0.5.0
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"

/**
 * Runs `self`, then `release` (a plain function that must not throw) exactly once with how it
 * ended. If the fiber is interrupted while `self` runs, `release` gets the interruption when the
 * fiber ends (after its finalizers ran), rather than at the moment of the interruption: use it for
 * releases that may come a little late — a timer to cancel, a slot to free — and `Effect.onExit`
 * where the order of finalizers matters.
 *
 * @since 0.5.0
 * @category combinators
 */
export const onExit = <A, E, R>(
  self: Effect.Effect<A, E, R>,
  release: (exit: Exit.Exit<A, E>) => void
): Effect.Effect<A, E, R> => onExitThen(self, release, asIs)

/**
 * Runs `self`, then the effect `release` returns for how it ended (succeeded or failed), or,
 * if the fiber is interrupted while `self` runs, the plain function `interrupted` when the fiber
 * ends. Exactly one of the two runs. For a release that reports through effects (metrics, logs)
 * when the call ends normally and has nothing to report when it was interrupted.
 *
 * @since 0.5.0
 * @category combinators
 */
export const onExitOrInterrupt = <A, E, R, R2>(
  self: Effect.Effect<A, E, R>,
  release: (exit: Exit.Exit<A, E>) => Effect.Effect<void, never, R2>,
  interrupted: () => void
): Effect.Effect<A, E, R | R2> => Effect.withFiberRuntime<A, E, R | R2>((fiber) => onEnd(fiber, self, release, interrupted, asIs))

/**
 * `onExitOrInterrupt` for a caller already inside `Effect.withFiberRuntime` with `fiber`: what
 * it took in that same step (a permit, a slot) is guarded from this step on, so no interruption
 * can fall between taking it and guarding its release.
 *
 * @since 0.5.0
 * @category combinators
 */
export const onExitOrInterruptIn = <A, E, R, R2>(
  fiber: Fiber.RuntimeFiber<unknown, unknown>,
  self: Effect.Effect<A, E, R>,
  release: (exit: Exit.Exit<A, E>) => Effect.Effect<void, never, R2>,
  interrupted: () => void
): Effect.Effect<A, E, R | R2> => onEnd(fiber, self, release, interrupted, asIs)

/**
 * `Effect.catchAll(onExit(self, release), orElse)` in fewer run-loop steps: `release` (a plain
 * function that must not throw) runs exactly once with how `self` ended, as `onExit`'s does, then
 * a typed failure goes to `orElse`. A cause with a defect, or an interruption, passes on as it
 * is.
 *
 * @since 0.6.0
 * @category combinators
 */
export const onExitCatchAll = <A, E, R, A2, E2, R2>(
  self: Effect.Effect<A, E, R>,
  release: (exit: Exit.Exit<A, E>) => void,
  orElse: (error: E) => Effect.Effect<A2, E2, R2>
): Effect.Effect<A | A2, E2, R | R2> =>
  onExitThen(self, release, (exit): Effect.Effect<A | A2, E2, R2> => {
    // What passes on as it is (a success, a cause with a defect, an interruption) is not a
    // typed failure of `E2`'s in any way `orElse` would have handled: hence the casts.
    if (Exit.isSuccess(exit) || Cause.isDie(exit.cause)) return exit as unknown as Effect.Effect<A, E2>
    const failure = Cause.failureOption(exit.cause)
    return failure._tag === "Some" ? orElse(failure.value) : exit as unknown as Effect.Effect<A, E2>
  })

interface Observed {
  readonly addObserver: (observer: (exit: Exit.Exit<unknown, unknown>) => void) => void
  readonly removeObserver: (observer: (exit: Exit.Exit<unknown, unknown>) => void) => void
}

/** `onEnd` with a plain `release`, which an interruption reaches too (when the fiber ends). */
const onExitThen = <A, E, R, B, E3, R3>(
  self: Effect.Effect<A, E, R>,
  release: (exit: Exit.Exit<A, E>) => void,
  then: (exit: Exit.Exit<A, E>) => Effect.Effect<B, E3, R3>
): Effect.Effect<B, E3, R | R3> =>
  Effect.withFiberRuntime<B, E3, R | R3>((fiber) =>
    onEnd(fiber, self, (exit) => {
      release(exit)
      return Effect.void
    }, () => release(Exit.interrupt(fiber.id())), then)
  )

/** How the call ended, passed on as it is. */
const asIs = <A, E>(exit: Exit.Exit<A, E>): Effect.Effect<A, E> => exit

/** The mechanism of every combinator here; `then` makes the call's result from how it ended. */
const onEnd = <A, E, R, R2, B, E3, R3>(
  fiber: Observed,
  self: Effect.Effect<A, E, R>,
  release: (exit: Exit.Exit<A, E>) => Effect.Effect<void, never, R2>,
  interrupted: () => void,
  then: (exit: Exit.Exit<A, E>) => Effect.Effect<B, E3, R3>
): Effect.Effect<B, E3, R | R2 | R3> => {
  let ended = false
  const onFiberEnd = () => {
    if (ended) return
    ended = true
    interrupted()
  }
  fiber.addObserver(onFiberEnd)
  const end = (exit: Exit.Exit<A, E>): Effect.Effect<B, E3, R2 | R3> => {
    fiber.removeObserver(onFiberEnd)
    if (ended) return then(exit)
    ended = true
    const released = release(exit)
    return released === Effect.void ? then(exit) : Effect.zipRight(released, then(exit))
  }
  return Effect.matchCauseEffect(self, {
    onFailure: (cause: Cause.Cause<E>) => end(Exit.failCause(cause)),
    onSuccess: (a: A) => end(Exit.succeed(a))
  })
}
