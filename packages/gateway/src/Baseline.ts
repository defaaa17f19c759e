/**
 * The reliability baseline: the one place that holds every default. A route or upstream that
 * says nothing in the config gets exactly these.
 *
 * | setting | default | why |
 * |---|---|---|
 * | deadline | 120 s | bounds retries and resumes of one request |
 * | retry | 2 retries, 200 ms base, 10 s cap, full jitter; provider delays honoured up to 30 s | absorbs transient failures without multiplying load |
 * | retry budget | retries ≤ 20% of requests (floor 10/s) | an outage does not become a retry storm |
 * | attempt timeouts | connect 5 s, headers 30 s, first token 30 s, idle 30 s | a stalled upstream becomes a retryable error |
 * | breaker | one per model deployment (upstream + model); count window 20, ≥ 10 calls, 50% failures, open 30 s (×2 per trip, ≤ 5 min), 1 probe | fail fast on a failing deployment, probe it back; one model's faults leave the upstream's other models alone |
 * | resume | continue, ≤ 3 resumes, tool calls buffered | one stable stream for the client |
 * | routing | fallback in the listed order; a transient failure is retried on the same target before the next one is tried; fall over on the taxonomy's `failover` errors (never a content-policy refusal) | predictable; what a fallback means to LiteLLM, Portkey and Bifrost users |
 * | server | 127.0.0.1:8787, 4 MiB bodies, 16 KiB headers, 4096 concurrent (no per-key share), 30 s to send a request, 25 s shutdown grace, 10 s commit bound, 30 s detach grace | safe on a laptop and behind a load balancer |
 * | cors | no origin allowed; preflights cached 10 min | browsers kept out unless the config names their origin |
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"

/**
 * Every default of the gateway.
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
  deadline: Duration.seconds(120),
  strategy: "fallback" as const,
  routing: {
    failover: "after-retries" as "after-retries" | "immediate",
    fallbackOn: "failover" as const
  },
  retry: {
    enabled: true,
    maxRetries: 2,
    baseDelay: Duration.millis(200),
    maxDelay: Duration.seconds(10),
    maxRetryAfter: Duration.seconds(30),
    budgetRatio: 0.2,
    budgetMinPerSecond: 10
  },
  timeouts: {
    connect: Duration.seconds(5),
    headers: Duration.seconds(30),
    firstToken: Duration.seconds(30),
    idle: Duration.seconds(30)
  },
  breaker: {
    enabled: true,
    scope: "per-model" as "per-model" | "per-upstream",
    window: { type: "count" as const, size: 20 },
    minimumCalls: 10,
    failureRateThreshold: 50,
    slowCallDuration: Duration.seconds(30),
    slowCallRateThreshold: 100,
    openDuration: Duration.seconds(30),
    maxOpenDuration: Duration.minutes(5),
    openBackoffFactor: 2,
    halfOpenProbes: 1
  },
  resume: {
    mode: "continue" as const,
    maxResumes: 3,
    toolCalls: "buffer" as const
  },
  hedgingBudgetRatio: 0.1,
  /** How long a browser may cache a CORS preflight answer. */
  corsMaxAge: Duration.minutes(10)
}
