/**
 * The circuit breaker's state store in Redis: one state per breaker key for the whole fleet, so
 * an upstream tripped by one instance fails fast on all of them, and at most `halfOpenProbes`
 * probes run at once fleet-wide. The transitions stay the breaker's own pure functions
 * (`BreakerState`), run by `BreakerStore.modify` on every instance; this store provides the
 * atomic part: `get` (one `HMGET`) and `compareAndSet` (one Lua script: compare the version,
 * write state, version + 1 and expiry, or return what is stored). The state is kept as the
 * breaker's JSON (`BreakerState.BreakerStateFromJson`) and decoded on read: a value that does
 * not decode (another version of Breakwater under the same prefix) is a `BreakerStoreError`,
 * never a silent reset.
 *
 * Propagation: another instance refuses calls within the breaker's `syncInterval` (1 s by
 * default) after a trip: its view of a closed breaker is trusted that long, and its next call
 * after that (or the outcome of any call it made meanwhile) reads the fleet state. A half-open
 * or open breaker is read from Redis on every permit.
 *
 * Degradation: this instance keeps a local copy of every state Redis returned or accepted, and
 * while Redis is down serves `get` and `compareAndSet` from it (so breakers keep counting,
 * tripping and probing on local traffic, starting from the last fleet state this instance saw;
 * an open breaker stays open). Reconcile when Redis returns: breakers the local copy holds open
 * (and still open) are written back unless Redis holds an opening that lasts as long, with a
 * generation above both so permits granted meanwhile change nothing; the fleet then fails fast
 * on them too. Closed and half-open local states are not written back (the fleet's counts are
 * as good, and probing restarts under the fleet-wide limit).
 *
 * @since 0.1.0
 */
import { BreakerStore } from "@breakwater/circuit-breaker"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as internal from "./internal/breaker.js"
import { RedisStore } from "./RedisStore.js"

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
export const layer: Layer.Layer<BreakerStore.BreakerStore, never, RedisStore> = Layer.effect(
  BreakerStore.BreakerStore,
  Effect.flatMap(RedisStore, internal.make)
)
