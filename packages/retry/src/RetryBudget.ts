/**
 * A retry budget shared across requests, so that an upstream outage does not become a retry
 * storm: retries may add at most a fraction (`ratio`, 20% by default) to the request rate over
 * a sliding window, with a small floor (`minRetriesPerSecond`) so that a quiet service can still
 * retry. The counts live behind a small store interface: in memory by default, in Redis (another
 * package) where several gateway instances share one budget.
 *
 * @since 0.1.0
 */
import { Durations, type RequestBudget } from "@breakwater/core"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as internal from "./internal/budget.js"

/**
 * The budget's settings, with their defaults (the one place they are written).
 *
 * - `ratio` (0.2): retries in the window may reach this fraction of the requests in it.
 * - `minRetriesPerSecond` (10): retries always allowed per second, whatever the ratio says.
 * - `window` (10 s): the sliding window, counted in one-second buckets.
 * - `key` (`"retry"`): the budget's name in a shared store (one budget per key).
 *
 * @since 0.1.0
 * @category schemas
 */
export const BudgetOptions = Schema.Struct({
  ratio: Schema.optionalWith(Schema.NonNegative, { default: () => 0.2 }),
  minRetriesPerSecond: Schema.optionalWith(Schema.NonNegative, { default: () => 10 }),
  window: Schema.optionalWith(Durations.DurationInput, { default: () => Duration.seconds(10) }),
  key: Schema.optionalWith(Schema.String, { default: () => "retry" })
})

/**
 * The budget's settings, resolved.
 *
 * @since 0.1.0
 * @category models
 */
export type BudgetOptions = typeof BudgetOptions.Type

/**
 * The budget's settings as a user writes them (every field optional).
 *
 * @since 0.1.0
 * @category models
 */
export type BudgetOptionsInput = typeof BudgetOptions.Encoded

/**
 * The limits a store applies, in plain numbers (`RequestBudget.Limits` of `@breakwater/core`,
 * whose module documents the exact rule a store applies).
 *
 * @since 0.1.0
 * @category models
 */
export interface Limits extends RequestBudget.Limits {}

/**
 * One store operation: record requests and, optionally, ask for a retry token.
 *
 * @since 0.1.0
 * @category models
 */
export interface Acquire {
  readonly key: string
  /** `Clock` time in ms, read by the caller (so `TestClock` drives every store). */
  readonly now: number
  /** New logical requests to add to the window (0 when only asking for a retry). */
  readonly requests: number
  /** Whether to try to take one retry token. */
  readonly retry: boolean
  readonly limits: Limits
}

/**
 * Where budget counts live. `acquire` is atomic: a shared implementation (Redis: one script,
 * one round-trip) adds the requests, then, when asked, takes a retry token if the window allows
 * it, and answers whether it did (`true` when no token was asked for). It never fails: a
 * shared store decides itself whether to allow or refuse when it cannot be reached.
 *
 * @since 0.1.0
 * @category models
 */
export interface RetryBudgetStore {
  readonly acquire: (input: Acquire) => Effect.Effect<boolean>
}

/**
 * The store tag. The retry layer uses the store in its context when there is one, and a fresh
 * in-memory store of its own otherwise.
 *
 * @since 0.1.0
 * @category tags
 */
export const RetryBudgetStore: Context.Tag<RetryBudgetStore, RetryBudgetStore> = Context.GenericTag<RetryBudgetStore>(
  "@breakwater/retry/RetryBudgetStore"
)

/**
 * A store in this process's memory: a `RequestBudget.SlidingWindow` (a ring of one-second
 * buckets) per key.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<RetryBudgetStore> = internal.makeMemory

/**
 * Provides an in-memory store (to share one budget between several retry layers).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<RetryBudgetStore> = Layer.effect(RetryBudgetStore, makeMemory)

/**
 * A budget bound to a store and its settings.
 *
 * @since 0.1.0
 * @category models
 */
export interface RetryBudget {
  /** Counts one new logical request. */
  readonly recordRequest: Effect.Effect<void>
  /** Takes one retry token; `false` when the budget is spent. */
  readonly tryRetry: Effect.Effect<boolean>
}

/**
 * Binds a store to settings.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (store: RetryBudgetStore, options: BudgetOptions): RetryBudget => {
  const limits: Limits = {
    ratio: options.ratio,
    minPerSecond: options.minRetriesPerSecond,
    windowMillis: Duration.toMillis(options.window)
  }
  const key = options.key
  // The clock read in the step that reads the clock service (it runs on every call).
  const acquire = (requests: number, retry: boolean) =>
    Effect.clockWith((clock) => store.acquire({ key, now: clock.unsafeCurrentTimeMillis(), requests, retry, limits }))
  return {
    recordRequest: Effect.asVoid(acquire(1, false)),
    tryRetry: acquire(0, true)
  }
}
