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
): Effect.Effect<A, E, R> =>
  Effect.withFiberRuntime<A, E, R>((fiber) =>
    onEnd(fiber, self, (exit) => {
      release(exit)
      return Effect.void
    }, () => release(Exit.interrupt(fiber.id())))
  )

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
): Effect.Effect<A, E, R | R2> => Effect.withFiberRuntime<A, E, R | R2>((fiber) => onEnd(fiber, self, release, interrupted))

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
): Effect.Effect<A, E, R | R2> => onEnd(fiber, self, release, interrupted)

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
  Effect.withFiberRuntime<A | A2, E2, R | R2>((fiber) => {
    let ended = false
    const onFiberEnd = () => {
      if (ended) return
      ended = true
      release(Exit.interrupt(fiber.id()))
    }
    fiber.addObserver(onFiberEnd)
    const end = (exit: Exit.Exit<A, E>) => {
      fiber.removeObserver(onFiberEnd)
      if (ended) return
      ended = true
      release(exit)
    }
    return Effect.matchCauseEffect(self, {
      onFailure: (cause): Effect.Effect<A2, E2, R2> => {
        end(Exit.failCause(cause))
        if (Cause.isDie(cause)) return Effect.failCause(cause as unknown as Cause.Cause<E2>)
        const failure = Cause.failureOption(cause)
        return failure._tag === "Some" ? orElse(failure.value) : Effect.failCause(cause as unknown as Cause.Cause<E2>)
      },
      onSuccess: (a: A) => {
        end(Exit.succeed(a))
        return Effect.succeed(a)
      }
    })
  })

interface Observed {
  readonly addObserver: (observer: (exit: Exit.Exit<unknown, unknown>) => void) => void
  readonly removeObserver: (observer: (exit: Exit.Exit<unknown, unknown>) => void) => void
}

const onEnd = <A, E, R, R2>(
  fiber: Observed,
  self: Effect.Effect<A, E, R>,
  release: (exit: Exit.Exit<A, E>) => Effect.Effect<void, never, R2>,
  interrupted: () => void
): Effect.Effect<A, E, R | R2> => {
  let ended = false
  const onFiberEnd = () => {
    if (ended) return
    ended = true
    interrupted()
  }
  fiber.addObserver(onFiberEnd)
  const end = (exit: Exit.Exit<A, E>): Effect.Effect<A, E, R2> => {
    fiber.removeObserver(onFiberEnd)
    if (ended) return exit
    ended = true
    const released = release(exit)
    return released === Effect.void ? exit : Effect.zipRight(released, exit)
  }
  return Effect.matchCauseEffect(self, {
    onFailure: (cause: Cause.Cause<E>) => end(Exit.failCause(cause)),
    onSuccess: (a: A) => end(Exit.succeed(a))
  })
}
