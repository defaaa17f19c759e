/**
 * `@breakwater/timeout`: a total deadline per logical request, and per-attempt limits (headers,
 * first token, idle gap) that turn a stalled upstream into an error retry or resume can act on.
 *
 * @since 0.1.0
 */

/**
 * Per-attempt time limits.
 *
 * @since 0.1.0
 */
export * as AttemptTimeout from "./AttemptTimeout.js"

/**
 * The total deadline of a logical request.
 *
 * @since 0.1.0
 */
export * as Deadline from "./Deadline.js"
