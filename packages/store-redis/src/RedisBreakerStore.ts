/**
 * The circuit breaker's state store in Redis: one state per breaker key for the whole fleet, so
 * an upstream tripped by one instance fails fast on all of them, and at most `halfOpenProbes`
 * probes run at once fleet-wide. The breaker's transitions stay the breaker's pure functions;
 * this store applies them atomically with a compare-and-set (one Lua script, one round-trip
 * unless another instance wrote in between). Calls of one instance on the same key are batched
 * into one compare-and-set, so they never conflict among themselves.
 *
 * Propagation: every permit and outcome goes through Redis, so instance B's next call after A
 * tripped a breaker is refused (delay: one round-trip). B's synchronous view (`isAvailable`,
 * `snapshot`, used by routers and health) catches up on B's next call through that key, or on
 * `state(key)`. An open breaker refuses without a round-trip until its open time is up.
 *
 * Degradation: while Redis is down each instance runs its breakers on its local copy of the
 * last fleet state it saw (an open breaker stays open; probes are its own). Reconcile when Redis
 * returns: breakers open in the local view are written back unless Redis holds a later opening,
 * so trips made alone are not forgotten; everything else resumes from the fleet state.
 *
 * @since 0.1.0
 */
import { BreakerStore } from "@breakwater/circuit-breaker"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as internal from "./internal/breaker.js"
import { type RedisStore, RedisStoreTag } from "./RedisStore.js"

/**
 * A breaker state store over a Redis connection.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (redis: RedisStore) => Effect.Effect<BreakerStore.BreakerStore> = internal.make

/**
 * Provides the circuit breaker's `BreakerStore` from Redis (needs `RedisStore.layer`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<BreakerStore.BreakerStoreTag, never, RedisStoreTag> = Layer.effect(
  BreakerStore.BreakerStoreTag,
  Effect.flatMap(RedisStoreTag, internal.make)
)
