/**
 * The retry budget's store in Redis: one budget for the whole fleet, so N instances together
 * retry no more than one instance would (`RetryBudget.BudgetOptions`: a ratio of the fleet's
 * requests plus a per-second floor). Each `acquire` is one Lua script, one round-trip.
 *
 * While Redis is down each instance enforces the budget alone: the ratio against its own
 * requests (recorded locally all along), and `1 / fleetSize` of the floor. Reconcile: none, the
 * shared window resumes (counts made alone are not written back; they would only age out).
 *
 * @since 0.1.0
 */
import { RetryBudget } from "@breakwater/retry"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as internal from "./internal/budget.js"
import { RedisStore } from "./RedisStore.js"

/**
 * A retry budget store over a Redis connection.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (redis: RedisStore) => Effect.Effect<RetryBudget.RetryBudgetStore> = internal.make

/**
 * Provides the retry layer's `RetryBudgetStore` from Redis (needs `RedisStore.layer`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<RetryBudget.RetryBudgetStore, never, RedisStore> = Layer.effect(
  RetryBudget.RetryBudgetStore,
  Effect.flatMap(RedisStore, internal.make)
)
