/**
 * Plain timers for the time limits of the stream path: a limit is one timer per call, armed when
 * the call starts and fired from the event loop — no fiber per limit.
 *
 * Which timer a call gets follows the program's `Clock`: on Effect's default clock it is
 * `setTimeout`; on any other clock (`TestClock`, a custom one) it is a fiber sleeping on that
 * clock, so a test drives every limit with `TestClock.adjust` and the limits' logic is the same
 * on both.
 *
 * @since 0.2.0
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"
import * as Runtime from "effect/Runtime"

/**
 * Schedules `f` after `millis`; the returned function cancels it (a no-op once it ran).
 *
 * @since 0.2.0
 * @category models
 */
export interface Timer {
  readonly schedule: (millis: number, f: () => void) => () => void
}

/**
 * The live timers: `setTimeout`, unref'd so a pending limit never keeps a process alive.
 *
 * @since 0.2.0
 * @category constructors
 */
export const live: Timer = {
  schedule: (millis, f) => {
    const handle = setTimeout(f, Math.max(0, millis))
    handle.unref?.()
    return () => clearTimeout(handle)
  }
}

/**
 * Timers on a runtime's `Clock`: each is a fiber sleeping on it.
 *
 * @since 0.2.0
 * @category constructors
 */
export const fromRuntime = (runtime: Runtime.Runtime<never>): Timer => {
  const fork = Runtime.runFork(runtime)
  return {
    schedule: (millis, f) => {
      const fiber = fork(Effect.zipRight(Effect.sleep(Duration.millis(Math.max(0, millis))), Effect.sync(f)))
      return () => fiber.unsafeInterruptAsFork(FiberId.none)
    }
  }
}

// The clock every program has unless it provides another one.
const defaultClock: Clock.Clock = Effect.runSync(Effect.clock)
const liveTimer: Effect.Effect<Timer> = Effect.succeed(live)
const clockTimer: Effect.Effect<Timer> = Effect.map(Effect.runtime<never>(), fromRuntime)

/**
 * The timers for the current program: `live` on Effect's default clock, `fromRuntime` otherwise.
 *
 * @since 0.2.0
 * @category accessors
 */
export const current: Effect.Effect<Timer> = Effect.flatMap(Effect.clock, (clock) => clock === defaultClock ? liveTimer : clockTimer)

/**
 * `f` with the current program's timers and its `Clock` (one run-loop step on the default clock,
 * where `Effect.flatMap(current, …)` takes several).
 *
 * @since 0.5.0
 * @category accessors
 */
export const withTimer = <A, E, R>(f: (timer: Timer, clock: Clock.Clock) => Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.clockWith((clock) => withClock(clock, f))

/**
 * `withTimer` for a caller that already read the `Clock` (`Effect.clockWith`): no run-loop step
 * on the default clock.
 *
 * @since 0.6.0
 * @category accessors
 */
export const withClock = <A, E, R>(
  clock: Clock.Clock,
  f: (timer: Timer, clock: Clock.Clock) => Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> => clock === defaultClock ? f(live, clock) : Effect.flatMap(clockTimer, (timer) => f(timer, clock))
