/**
 * The reliability baseline: what a route or upstream that says nothing in the config gets. It is
 * data over the policies' options Schemas — each policy's defaults are decoded from its own
 * Schema (the one place they are written) — plus the settings only the gateway has (server,
 * CORS, `enabled`, breaker `scope`, `failover`), and `overrides`: the few places where the
 * gateway deliberately differs from a policy's default, each with its reason.
 *
 * @since 0.1.0
 */
import { CircuitBreaker } from "@breakwater/circuit-breaker"
import { Retry, RetryBudget } from "@breakwater/retry"
import { Router } from "@breakwater/router"
import { StreamResume } from "@breakwater/stream-resume"
import { AttemptTimeout, Deadline } from "@breakwater/timeout"
import * as Duration from "effect/Duration"
import * as Schema from "effect/Schema"

/** A Schema's defaults: what it decodes an empty input to. */
const defaultsOf = <A, I, R>(schema: Schema.Schema<A, I, R>): A => Schema.decodeUnknownSync(schema as Schema.Schema<A, I>)({})

// Less what a config cannot hold (functions) or the gateway sets itself (the budget's key).
const { budget: _budget, retryOn: _retryOn, ...retryDefaults } = defaultsOf(Retry.RetryOptions)
const { key: _key, ...budgetDefaults } = defaultsOf(RetryBudget.BudgetOptions)
const routingDefaults: Router.RoutingOptions = defaultsOf(Router.RoutingOptions)

/**
 * Where the gateway differs from a policy's own default, and why:
 *
 * - `retry.maxRetryAfter` 30 s (`Retry`: 60 s): inside the gateway a retry runs per target in a
 *   router, and a provider delay above the cap is not waited for: the call falls over to the
 *   next target at once. A lone `Retry` has nowhere else to go, so it waits longer; the gateway
 *   would rather spend its 120 s deadline on a fallback than a quarter or half of it on a wait.
 * - `timeouts.connect` 5 s (the adapters' transport: 10 s): a gateway route usually has
 *   somewhere else to go, and a connection (or a pooled one) that has not come in 5 s is better
 *   spent on the next target.
 *
 * @since 0.2.0
 * @category constants
 */
export const overrides = {
  retry: { maxRetryAfter: Duration.seconds(30) },
  timeouts: { connect: Duration.seconds(5) }
} as const

/**
 * Every default a gateway applies: the policies' Schema defaults, the `overrides`, and the
 * gateway's own settings.
 *
 * @since 0.1.0
 * @category constants
 */
export const baseline = {
  server: {
    host: "127.0.0.1",
    port: 8787,
    maxBodyBytes: 4 * 1024 * 1024,
    maxHeaderBytes: 16 * 1024,
    maxConcurrentRequests: 4096,
    requestTimeout: Duration.seconds(30),
    shutdownGrace: Duration.seconds(25),
    streamCommitTimeout: Duration.seconds(10),
    detachGrace: Duration.seconds(30)
  },
  deadline: defaultsOf(Deadline.DeadlineOptions).total,
  routing: {
    strategy: routingDefaults.strategy,
    fallbackOn: routingDefaults.fallbackOn as Exclude<Router.RoutingOptions["fallbackOn"], Function>,
    leastLatency: routingDefaults.leastLatency,
    /** Retry a transient failure on the same target before the next one is tried. */
    failover: "after-retries" as "after-retries" | "immediate"
  },
  retry: {
    enabled: true,
    ...retryDefaults,
    budget: budgetDefaults,
    ...overrides.retry
  },
  timeouts: {
    ...defaultsOf(AttemptTimeout.AttemptTimeoutOptions),
    ...overrides.timeouts
  },
  breaker: {
    enabled: true,
    /** One breaker per model deployment (`upstream@model`): one model's faults leave the others alone. */
    scope: "per-model" as "per-model" | "per-upstream",
    ...defaultsOf(CircuitBreaker.BreakerOptions)
  },
  resume: defaultsOf(StreamResume.ResumeOptions),
  /** How long a browser may cache a CORS preflight answer. */
  corsMaxAge: Duration.minutes(10)
}
