/**
 * The gateway's configuration: upstreams, routes, client keys, server limits and the policy
 * settings of the reliability baseline. A JSON file (or an object in code) validated by this
 * Schema; secrets are written as environment references (`"${OPENAI_API_KEY}"`) and resolved at
 * load. Invalid config fails at start-up with every problem listed by path — never at the first
 * request.
 *
 * The policy sections (`retry`, `resume`, `timeouts`, `breaker`, a route's routing and
 * `hedging`) are each policy's own options Schema — the same names, validation and defaults as
 * the policy package — with every field optional, so that a setting falls through field by field:
 * the route's (or upstream's), else `defaults`, else the baseline (`Baseline.ts`: the policies'
 * defaults, and where the gateway differs, why).
 *
 * @since 0.1.0
 */
import { CircuitBreaker } from "@breakwater/circuit-breaker"
import { Durations, TelemetryOptions } from "@breakwater/core"
import { Retry, RetryBudget } from "@breakwater/retry"
import { Router } from "@breakwater/router"
import { StreamResume } from "@breakwater/stream-resume"
import { AttemptTimeout, Deadline } from "@breakwater/timeout"
import * as Schema from "effect/Schema"
import { ConfigDuration } from "./ConfigDuration.js"
import { partial } from "./internal/partial.js"
import * as Targets from "./internal/targets.js"

const Name = Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9._:/-]{1,128}$/, {
  message: () => "a name is 1 to 128 letters, digits or . _ : / -"
}))
const Url = Schema.String.pipe(Schema.filter((s) => {
  try {
    const u = new URL(s)
    return u.protocol === "http:" || u.protocol === "https:" ? undefined : "expected an http(s) URL"
  } catch {
    return `expected a URL, got ${JSON.stringify(s)}`
  }
}))
const PositiveInt = Schema.Int.pipe(Schema.positive())

/**
 * Server limits (the `server` section).
 *
 * @since 0.1.0
 * @category schemas
 */
export const ServerConfig = Schema.Struct({
  host: Schema.optional(Schema.String),
  port: Schema.optional(Schema.Int.pipe(Schema.between(0, 65535))),
  maxBodyBytes: Schema.optional(PositiveInt),
  maxHeaderBytes: Schema.optional(PositiveInt),
  maxConcurrentRequests: Schema.optional(PositiveInt),
  maxConcurrentPerKey: Schema.optional(PositiveInt),
  requestTimeout: Schema.optional(ConfigDuration),
  shutdownGrace: Schema.optional(ConfigDuration),
  streamCommitTimeout: Schema.optional(ConfigDuration),
  detachGrace: Schema.optional(ConfigDuration)
})

/**
 * A client key (the `auth.keys` entries).
 *
 * @since 0.1.0
 * @category schemas
 */
export const ClientKeyConfig = Schema.Struct({
  name: Name,
  key: Schema.Redacted(Schema.String.pipe(Schema.minLength(8, { message: () => "a gateway key has at least 8 characters" }))),
  models: Schema.optional(Schema.Array(Schema.String)),
  maxConcurrent: Schema.optional(PositiveInt)
})

/**
 * Client authentication (the `auth` section): the client keys, and an optional admin key for the
 * operator endpoints' detail (`/metrics`, the full `/readyz`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const AuthConfig = Schema.Struct({
  keys: Schema.Array(ClientKeyConfig),
  adminKey: Schema.optional(Schema.Redacted(Schema.String.pipe(Schema.minLength(16, { message: () => "the admin key has at least 16 characters" }))))
})

/**
 * Browser access (the `cors` section): the origins whose pages may call the gateway. Absent,
 * every request that carries an `Origin` is refused when no client keys are configured.
 *
 * @since 0.1.0
 * @category schemas
 */
export const CorsConfig = Schema.Struct({
  origins: Schema.Array(Schema.String.pipe(Schema.filter((s) => {
    if (s === "*") return undefined
    try {
      const u = new URL(s)
      return (u.protocol === "http:" || u.protocol === "https:") && u.origin === s ? undefined : "an origin is scheme://host[:port], nothing else"
    } catch {
      return "an origin is scheme://host[:port], or \"*\""
    }
  }))),
  maxAge: Schema.optional(ConfigDuration)
})

/**
 * Attempt timeouts (per upstream): `connect` (the adapter's connect timeout, pool wait included)
 * and `AttemptTimeout`'s `headers`, `firstToken` and `idle`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const AttemptTimeoutConfig = Schema.Struct({
  connect: Schema.optional(Durations.DurationInput),
  ...partial(AttemptTimeout.AttemptTimeoutOptions.fields)
})

/**
 * Circuit breaker settings (per upstream): `CircuitBreaker`'s options (`window: { kind, ... }`,
 * `openDurationMultiplier`, ...), plus `enabled` and `scope`: `"per-model"` (default) one breaker
 * per model deployment of the upstream, `"per-upstream"` one for all its models.
 *
 * @since 0.1.0
 * @category schemas
 */
export const BreakerConfig = Schema.Struct({
  enabled: Schema.optional(Schema.Boolean),
  scope: Schema.optional(Schema.Literal("per-model", "per-upstream")),
  ...partial(CircuitBreaker.BreakerOptions.fields)
})

/**
 * The retry budget of a route (`RetryBudget`'s options; the gateway names the budget itself).
 *
 * @since 0.2.0
 * @category schemas
 */
export const RetryBudgetConfig = Schema.Struct(partial(RetryBudget.BudgetOptions.fields, ["ratio", "minRetriesPerSecond", "window"]))

/**
 * Retry settings (per route): `Retry`'s options (`budget: { ratio, minRetriesPerSecond, window }`),
 * plus `enabled`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const RetryConfig = Schema.Struct({
  enabled: Schema.optional(Schema.Boolean),
  ...partial(Retry.RetryOptions.fields, ["maxRetries", "baseDelay", "maxDelay", "jitter", "maxRetryAfter"]),
  budget: Schema.optional(RetryBudgetConfig)
})

/**
 * Stream-resume settings (per route): `StreamResume`'s options (`mode`, `maxResumes`,
 * `toolStreaming`, ...).
 *
 * @since 0.1.0
 * @category schemas
 */
export const ResumeConfig = Schema.Struct(partial(StreamResume.ResumeOptions.fields))

/**
 * Hedging settings (per route): `Router.HedgingOptions` (`delay`, `budget: { ratio, ... }`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const HedgingConfig = Router.HedgingOptions

/**
 * An upstream: a provider endpoint with its key and the models it serves.
 *
 * @since 0.1.0
 * @category schemas
 */
export const UpstreamConfig = Schema.Struct({
  /** The provider kind: `openai`, `anthropic`, or one registered with the builder (`Providers`). */
  provider: Name,
  baseUrl: Schema.optional(Url),
  apiKey: Schema.optional(Schema.Redacted(Schema.String)),
  /** Client model names this upstream serves: a list (same name upstream) or a map client → upstream name. */
  models: Schema.optional(Schema.Union(Schema.Array(Schema.String), Schema.Record({ key: Schema.String, value: Schema.String }))),
  azureApiVersion: Schema.optional(Schema.String),
  continuation: Schema.optional(Schema.Literal("assistant-prefill", "user-instruction")),
  headers: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String })),
  /** Pool connections; unbounded unless set (calls beyond a cap wait, at most the connect timeout). */
  connections: Schema.optional(PositiveInt),
  /** HTTP/2 to an upstream that offers it over TLS (default false). */
  http2: Schema.optional(Schema.Boolean),
  /** Largest non-streaming response read (default 32 MiB) and streamed response (default 256 MiB). */
  maxResponseBytes: Schema.optional(PositiveInt),
  maxStreamBytes: Schema.optional(PositiveInt),
  maxConcurrent: Schema.optional(PositiveInt),
  maxQueue: Schema.optional(Schema.NonNegativeInt),
  timeouts: Schema.optional(AttemptTimeoutConfig),
  breaker: Schema.optional(BreakerConfig)
})

/**
 * One target of a route: an upstream by name, with an optional model override and weight. The
 * same upstream may be listed again with another model (a same-provider model fallback).
 *
 * @since 0.1.0
 * @category schemas
 */
export const RouteTarget = Schema.Union(
  Name,
  Schema.Struct({ upstream: Name, model: Schema.optional(Schema.String), weight: Schema.optional(Schema.Positive) })
)

/**
 * A route: how requests for one client model name are served: its targets, the router's
 * options (`strategy`, `fallbackOn`, `maxAttempts`, `leastLatency`, `hedging`: `Router`'s names
 * and defaults), and the route's `deadline`, `retry` and `resume`.
 *
 * - `failover`: `"after-retries"` (default) retries a transient failure on the same target (per
 *   `retry`) before the next target is tried; `"immediate"` moves to the next target at once and
 *   retries the whole chain (latency first).
 * - `fallbackOn`: `"failover"` (default: the taxonomy's choice; never a content-policy refusal)
 *   or a list of error tags, where `"failover"` stands for that set (`["failover",
 *   "ContentRefused"]` also routes around refusals).
 * - `maxAttempts`: targets tried per call (default: every one once).
 *
 * @since 0.1.0
 * @category schemas
 */
export const RouteConfig = Schema.Struct({
  ...partial(Router.RoutingOptions.fields, ["strategy", "maxAttempts", "leastLatency"]),
  failover: Schema.optional(Schema.Literal("after-retries", "immediate")),
  // The router's own `fallbackOn` less its predicate form, which a config cannot hold.
  fallbackOn: Schema.optional(Schema.Union(Schema.Literal("failover"), Schema.Array(Router.FallbackOnEntry))),
  upstreams: Schema.Array(RouteTarget),
  deadline: Schema.optional(Deadline.DeadlineOptions.fields.total.from),
  retry: Schema.optional(RetryConfig),
  resume: Schema.optional(ResumeConfig),
  hedging: Schema.optional(HedgingConfig)
})

/**
 * The policy settings every route and upstream gets unless it says otherwise.
 *
 * @since 0.1.0
 * @category schemas
 */
export const PolicyDefaults = Schema.Struct({
  deadline: Schema.optional(Deadline.DeadlineOptions.fields.total.from),
  retry: Schema.optional(RetryConfig),
  resume: Schema.optional(ResumeConfig),
  timeouts: Schema.optional(AttemptTimeoutConfig),
  breaker: Schema.optional(BreakerConfig)
})

/**
 * Shared state in Redis (off unless present).
 *
 * @since 0.1.0
 * @category schemas
 */
export const RedisConfig = Schema.Struct({
  url: Schema.Redacted(Schema.String),
  prefix: Schema.optional(Schema.String),
  commandTimeout: Schema.optional(ConfigDuration)
})

/**
 * Tracing (the `telemetry` section; off unless enabled): `TelemetryOptions`, whose defaults and
 * `OTEL_*` variables apply (`enabled`, `captureContent`, `serviceName`, `samplingRatio`). Spans go
 * out as OTLP over HTTP where `OTEL_EXPORTER_OTLP_ENDPOINT` says; `@breakwater/telemetry` must be
 * installed.
 *
 * @since 0.4.0
 * @category schemas
 */
export const TelemetryConfig = TelemetryOptions.TelemetryOptions

/**
 * The whole configuration.
 *
 * @since 0.1.0
 * @category schemas
 */
export const GatewayConfig = Schema.Struct({
  server: Schema.optional(ServerConfig),
  auth: Schema.optional(AuthConfig),
  cors: Schema.optional(CorsConfig),
  upstreams: Schema.Record({ key: Name, value: UpstreamConfig }),
  routes: Schema.Record({ key: Schema.String, value: RouteConfig }),
  defaults: Schema.optional(PolicyDefaults),
  redis: Schema.optional(RedisConfig),
  telemetry: Schema.optional(TelemetryConfig)
}).pipe(Schema.filter((config) => {
  const issues: Array<Schema.FilterIssue> = []
  const names = new Set(Object.keys(config.upstreams))
  if (names.size === 0) issues.push({ path: ["upstreams"], message: "at least one upstream is required" })
  if (Object.keys(config.routes).length === 0) issues.push({ path: ["routes"], message: "at least one route is required" })
  for (const [model, route] of Object.entries(config.routes)) {
    if (route.upstreams.length === 0) {
      issues.push({ path: ["routes", model, "upstreams"], message: "a route needs at least one upstream" })
    }
    const pairs = new Map<string, number>()
    route.upstreams.forEach((target, i) => {
      const name = Targets.upstreamOf(target)
      if (!names.has(name)) {
        issues.push({ path: ["routes", model, "upstreams", i], message: `unknown upstream "${name}" (known: ${[...names].join(", ")})` })
        return
      }
      const upstreamModel = Targets.modelOf(model, target, config.upstreams[name]!.models)
      const pair = JSON.stringify([name, upstreamModel])
      const first = pairs.get(pair)
      if (first !== undefined) {
        issues.push({
          path: ["routes", model, "upstreams", i],
          message: `upstream "${name}" with model "${upstreamModel}" is already target ${first} of this route (list another model, or remove it)`
        })
      } else pairs.set(pair, i)
    })
  }
  for (const [name, upstream] of Object.entries(config.upstreams)) {
    if (upstream.azureApiVersion !== undefined && upstream.provider !== "openai") {
      issues.push({ path: ["upstreams", name, "azureApiVersion"], message: "azureApiVersion applies to the openai provider only" })
    }
  }
  return issues
}))

/**
 * The decoded configuration.
 *
 * @since 0.1.0
 * @category models
 */
export type GatewayConfig = typeof GatewayConfig.Type

/**
 * The configuration as written (JSON).
 *
 * @since 0.1.0
 * @category models
 */
export type GatewayConfigInput = typeof GatewayConfig.Encoded
