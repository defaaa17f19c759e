/**
 * A budget for extra requests (retries, hedges) so that they cannot turn an outage into a
 * storm: extra requests may add at most `ratio` of the requests over a sliding window (counted
 * in one-second buckets), with a floor of `minPerSecond` extra requests in the current second
 * whatever the ratio says. Plain synchronous counters on a caller-given clock time, so any
 * `Clock` (TestClock included) drives them and a shared store can apply the same rule.
 *
 * The rule, exactly: an extra request at time `now` is allowed when the extras already taken in
 * `now`'s second are below `minPerSecond`, or when the extras in the window (the buckets of the
 * last `ceil(windowMillis / 1000)` seconds, `now`'s included) are below `ratio` × the requests
 * recorded in it; an allowed one is counted in `now`'s second.
 *
 * @since 0.1.0
 */
import * as internal from "./internal/requestBudget.js"

/**
 * The limits of a budget, in plain numbers.
 *
 * @since 0.1.0
 * @category models
 */
export interface Limits {
  /** Extra requests in the window may reach this fraction of the requests in it. */
  readonly ratio: number
  /** Extra requests always allowed per second, whatever the ratio says. */
  readonly minPerSecond: number
  /** The sliding window's length (rounded up to whole seconds, at least one). */
  readonly windowMillis: number
}

/**
 * One sliding window of counts. `acquire` adds `requests` new requests to `now`'s second and,
 * when `extra` is set, takes one extra-request token if `limits` allow it, answering whether it
 * did (`true` when no token was asked for). The window's length is fixed at creation
 * (`buckets` seconds); the ratio and floor are read from `limits` on each call.
 *
 * @since 0.1.0
 * @category models
 */
export interface SlidingWindow {
  readonly buckets: number
  readonly acquire: (now: number, requests: number, extra: boolean, limits: Limits) => boolean
}

/**
 * A sliding window covering `windowMillis` (a ring of one-second buckets; nothing to sweep).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeWindow: (windowMillis: number) => SlidingWindow = internal.makeWindow

/**
 * How many one-second buckets a window of `windowMillis` has (at least one).
 *
 * @since 0.1.0
 * @category constructors
 */
export const bucketsFor: (windowMillis: number) => number = internal.bucketsFor

/**
 * A window bound to its limits: count a request, ask for an extra one. Times are `Clock` millis.
 *
 * @since 0.1.0
 * @category models
 */
export interface Budget {
  readonly limits: Limits
  /** Counts one new request at `now`. */
  readonly recordRequest: (now: number) => void
  /** Takes one extra-request token at `now`; `false` when the budget is spent. */
  readonly tryExtra: (now: number) => boolean
}

/**
 * A budget in this process's memory with the given limits.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (limits: Limits) => Budget = internal.make
