/**
 * `@breakwater/circuit-breaker`: stop calling a failing upstream, fail fast, probe it back.
 *
 * @since 0.1.0
 */

/**
 * Breakers per key, their options, state and transitions; the policy layer.
 *
 * @since 0.1.0
 */
export * as CircuitBreaker from "./CircuitBreaker.js"

/**
 * Where breaker state lives: the store interface and its in-memory implementation.
 *
 * @since 0.1.0
 */
export * as BreakerStore from "./BreakerStore.js"

/**
 * The state of one breaker and its pure transitions (shared by every store).
 *
 * @since 0.1.0
 */
export * as BreakerState from "./BreakerState.js"
