/**
 * `@breakwater/retry`: retry with backoff and jitter, provider delays honoured, a shared retry
 * budget, and streams retried only before their first chunk.
 *
 * @since 0.1.0
 */

/**
 * The retry policy.
 *
 * @since 0.1.0
 */
export * as Retry from "./Retry.js"

/**
 * The retry budget shared across requests, and its store interface.
 *
 * @since 0.1.0
 */
export * as RetryBudget from "./RetryBudget.js"
