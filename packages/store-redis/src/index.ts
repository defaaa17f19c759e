/**
 * `@breakwater/store-redis`: shared state for several gateway instances (breaker state, retry
 * budget, client-resume journal) in Redis, degrading to local state when Redis is slow or down.
 *
 * @since 0.1.0
 */

/**
 * The Redis connection, its options, health and the degradation rule the stores share.
 *
 * @since 0.1.0
 */
export * as RedisStore from "./RedisStore.js"

/**
 * The fleet-wide retry budget store.
 *
 * @since 0.1.0
 */
export * as RedisRetryBudget from "./RedisRetryBudget.js"

/**
 * The fleet-wide circuit breaker state store.
 *
 * @since 0.1.0
 */
export * as RedisBreakerStore from "./RedisBreakerStore.js"

/**
 * The fleet-wide client-resume journal.
 *
 * @since 0.1.0
 */
export * as RedisStreamJournal from "./RedisStreamJournal.js"

/**
 * The three stores over one connection, in one layer.
 *
 * @since 0.1.0
 */
export * as RedisStores from "./RedisStores.js"
