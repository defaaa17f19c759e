/**
 * The router: which upstream serves an attempt, and where it goes when that one fails or is
 * slow. It provides one `LanguageModel` over several targets — named upstreams (each with its
 * own stack: circuit breaker, attempt timeout, adapter) and the models they are called with, one
 * upstream possibly several times — chooses among those that serve the client's model
 * by a strategy (ordered fallback, weighted random, least latency, least in flight), falls over
 * on errors another upstream may not have (never on a bad request), can hedge a slow first
 * attempt with a second one, and bounds each upstream's concurrency (bulkhead).
 *
 * @since 0.1.0
 */
import { Durations, LanguageModel, ModelError, Policy, RequestBudget } from "@breakwater/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Metric from "effect/Metric"
import * as Random from "effect/Random"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { Bulkhead } from "./internal/bulkhead.js"
import * as internal from "./internal/router.js"

/**
 * How the router orders the upstreams that serve a request's model.
 *
 * - `"fallback"`: in the order given; the first is the primary, the others its fallbacks.
 * - `"weighted"`: random in proportion to `weight` (the rest, drawn the same way, are the
 *   fallbacks; weight 0 means "backup only").
 * - `"least-latency"`: lowest EWMA of latency (`generate`) or time to first content chunk
 *   (`stream`) first, with some exploration so a recovered upstream is measured again.
 * - `"least-in-flight"`: fewest attempts in flight from this router first (ties at random).
 *
 * @since 0.1.0
 * @category models
 */
export type Strategy = internal.Strategy

/**
 * The error tags that may trigger a fallback (every tag but `BadRequest`, which would fail
 * everywhere).
 *
 * @since 0.1.0
 * @category schemas
 */
export const FallbackTag = Schema.Literal(
  ...ModelError.allTags.filter((tag): tag is Exclude<typeof tag, "BadRequest"> => tag !== "BadRequest")
)

/**
 * An entry of a `fallbackOn` list: an error tag, or `"failover"` for every error the
 * taxonomy's `failover` flag marks (so `["failover", "ContentRefused"]` also routes around
 * content-policy refusals).
 *
 * @since 0.2.0
 * @category schemas
 */
export const FallbackOnEntry = Schema.Union(Schema.Literal("failover"), FallbackTag)

const FallbackPredicate = Schema.declare(
  (u: unknown): u is (error: ModelError.ModelError) => boolean => typeof u === "function",
  { identifier: "FallbackPredicate", description: "a function from a ModelError to a boolean" }
)

/**
 * The hedging budget's settings, with their defaults.
 *
 * - `ratio` (0.1): hedges in the window may reach this fraction of the requests in it.
 * - `minHedgesPerSecond` (0): hedges always allowed per second, whatever the ratio says.
 * - `window` (10 s): the sliding window, counted in one-second buckets.
 *
 * @since 0.1.0
 * @category schemas
 */
export const HedgeBudgetOptions = Schema.Struct({
  ratio: Schema.optionalWith(Schema.NonNegative, { default: () => 0.1 }),
  minHedgesPerSecond: Schema.optionalWith(Schema.NonNegative, { default: () => 0 }),
  window: Schema.optionalWith(Durations.DurationInput, { default: () => Duration.seconds(10) })
})

/**
 * A hedging delay read from recent measurements: the `percentile` (0–100) of the first
 * upstream's latency (`generate`) or time to first content chunk (`stream`) over its last 128
 * attempts. Below `minSamples` (20) measurements, the request is not hedged.
 *
 * @since 0.1.0
 * @category schemas
 */
export const PercentileDelay = Schema.Struct({
  percentile: Schema.Number.pipe(Schema.greaterThan(0), Schema.lessThanOrEqualTo(100)),
  minSamples: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 20 })
})

/**
 * Hedging: when the first attempt has produced nothing (`generate`: no response; `stream`: no
 * content chunk) after `delay`, a second attempt starts on the next upstream; the first to
 * produce wins and the other is interrupted. `delay` is a duration or a `PercentileDelay`;
 * `maxHedges` is 1; `budget` bounds how many requests are hedged (`HedgeBudgetOptions`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const HedgingOptions = Schema.Struct({
  delay: Schema.Union(PercentileDelay, Durations.DurationInput),
  maxHedges: Schema.optionalWith(Schema.Literal(1), { default: () => 1 as const }),
  budget: Schema.optionalWith(HedgeBudgetOptions, { default: () => Schema.decodeSync(HedgeBudgetOptions)({}) })
})

/**
 * Least-latency settings, with their defaults.
 *
 * - `alpha` (0.3): the EWMA's weight of a new measurement.
 * - `explorationRate` (0.1): the share of requests that lead with another upstream than the
 *   fastest, so that a recovered upstream's EWMA comes down again.
 * - `failurePenalty` (10 s): a failed attempt (a fallback-worthy error) counts as a measurement
 *   of at least this long, so an upstream that fails fast does not look fast.
 *
 * @since 0.1.0
 * @category schemas
 */
export const LeastLatencyOptions = Schema.Struct({
  alpha: Schema.optionalWith(Schema.Number.pipe(Schema.greaterThan(0), Schema.lessThanOrEqualTo(1)), { default: () => 0.3 }),
  explorationRate: Schema.optionalWith(Schema.Number.pipe(Schema.between(0, 1)), { default: () => 0.1 }),
  failurePenalty: Schema.optionalWith(Durations.DurationInput, { default: () => Duration.seconds(10) })
})

/**
 * The routing settings, with their defaults (the one place they are written).
 *
 * - `strategy` (`"fallback"`): see `Strategy`.
 * - `fallbackOn` (`"failover"`): which errors move to the next upstream: `"failover"` follows
 *   the taxonomy's `failover` flag (unavailable, overloaded, rate limited, timeouts but the
 *   total one, connection, stream interrupted before any content, circuit open, capacity,
 *   quota, upstream auth, unknown model, context too long; not a content-policy refusal); or a
 *   list of error tags, where `"failover"` stands for that set; or a predicate. `BadRequest`
 *   never falls over, whatever this says.
 * - `maxAttempts` (every candidate once): attempts across targets for one call. Each target is
 *   tried at most once per call; repeating one is the retry layer's job (see `eachTarget`).
 * - `hedging` (none): see `HedgingOptions`.
 * - `leastLatency`: see `LeastLatencyOptions`.
 * - `seed` (none): seeds the router's own random choices (weighted picks, exploration, ties);
 *   without it they come from Effect's `Random` service in context.
 *
 * @since 0.1.0
 * @category schemas
 */
export const RoutingOptions = Schema.Struct({
  strategy: Schema.optionalWith(Schema.Literal("fallback", "weighted", "least-latency", "least-in-flight"), {
    default: () => "fallback" as const
  }),
  fallbackOn: Schema.optionalWith(Schema.Union(Schema.Literal("failover"), Schema.Array(FallbackOnEntry), FallbackPredicate), {
    default: () => "failover" as const
  }),
  maxAttempts: Schema.optional(Schema.Int.pipe(Schema.positive())),
  hedging: Schema.optional(HedgingOptions),
  leastLatency: Schema.optionalWith(LeastLatencyOptions, { default: () => Schema.decodeSync(LeastLatencyOptions)({}) }),
  seed: Schema.optional(Schema.Int)
})

/**
 * The routing settings, resolved.
 *
 * @since 0.1.0
 * @category models
 */
export type RoutingOptions = typeof RoutingOptions.Type

/**
 * The routing settings as a user writes them (every field optional; durations as `Duration`,
 * milliseconds or strings like `"300 millis"`).
 *
 * @since 0.1.0
 * @category models
 */
export type RoutingOptionsInput = typeof RoutingOptions.Encoded

/**
 * One target's plain settings, with their defaults. A target is an upstream and the models it is
 * called with; one upstream may be listed several times with different models (a fallback to
 * another model of the same provider), never twice for the same model.
 *
 * - `name` (required): the upstream's name in the request context, logs and metrics.
 * - `weight` (1): its share under `"weighted"`.
 * - `models` (`"*"`): the client's model names it serves, each mapped to its own model name
 *   (`{ "gpt-4o": "gpt-4o-2024-08-06" }`); `"*"` serves every model under the client's name.
 *   An upstream that does not serve the request's model is not a candidate.
 * - `maxConcurrent` (none): the bulkhead: at most this many attempts in flight on it (one
 *   bulkhead per upstream name: targets of the same upstream share the first one's).
 * - `maxQueue` (0): attempts that may wait for a slot; beyond, `CapacityExceeded` at once (and
 *   the router moves on).
 *
 * @since 0.1.0
 * @category schemas
 */
export const UpstreamSettings = Schema.Struct({
  name: Schema.NonEmptyString,
  weight: Schema.optionalWith(Schema.NonNegative, { default: () => 1 }),
  models: Schema.optionalWith(Schema.Union(Schema.Literal("*"), Schema.Record({ key: Schema.String, value: Schema.NonEmptyString })), {
    default: () => "*" as const
  }),
  maxConcurrent: Schema.optional(Schema.Int.pipe(Schema.positive())),
  maxQueue: Schema.optionalWith(Schema.Int.pipe(Schema.nonNegative()), { default: () => 0 })
})

/**
 * One upstream as a user declares it: its settings, its model (a built `LanguageModel` or a
 * layer providing one — its per-upstream stack — built once when the router is built), and an
 * optional `isAvailable` hook, asked with the upstream's name and the model it would be called
 * with: when it answers `false` the router passes the target over without calling it (a host
 * wires it to its circuit breakers: `CircuitBreaker.keyOf`). Without the hook an open breaker
 * still costs little: it fails at once with `CircuitOpen`, and the router moves on.
 *
 * @since 0.1.0
 * @category models
 */
export interface Upstream<E = never, R = never> extends Schema.Schema.Encoded<typeof UpstreamSettings> {
  readonly model: LanguageModel.Service | Layer.Layer<LanguageModel.LanguageModel, E, R>
  readonly isAvailable?: ((upstream: string, model: string) => boolean) | undefined
}

/**
 * A policy applied to each target's model on its own, inside the router: what is retried there
 * is retried on the same target before the router moves to the next one. `Retry.withPolicy({
 * ... })` (data-last) is one: "retry the primary, then fall back". Each target gets its own
 * instance (built once, with the router).
 *
 * @since 0.2.0
 * @category models
 */
export type TargetPolicy = (model: LanguageModel.Service) => Effect.Effect<LanguageModel.Service>

/**
 * The router's options: the targets, in order, the routing settings, and `eachTarget` (none):
 * a `TargetPolicy` wrapped around every target. Without it the router falls over at once (a
 * retry layer above it then repeats the whole chain: latency first); with a retry policy there,
 * a transient failure is retried on the same target first.
 *
 * @since 0.1.0
 * @category models
 */
export type RouterOptions<U extends ReadonlyArray<Upstream<any, any>> = ReadonlyArray<Upstream<any, any>>> =
  & RoutingOptionsInput
  & { readonly upstreams: U; readonly eachTarget?: TargetPolicy | undefined }

/**
 * The error of building an upstream's layer.
 *
 * @since 0.1.0
 * @category models
 */
export type UpstreamError<U> = U extends { readonly model: infer M } ? M extends Layer.Layer<any, infer E, any> ? E : never
  : never

/**
 * The context an upstream's layer requires.
 *
 * @since 0.1.0
 * @category models
 */
export type UpstreamContext<U> = U extends { readonly model: infer M } ? M extends Layer.Layer<any, any, infer R> ? R : never
  : never

/**
 * Counter of attempts, tagged `upstream` and `outcome` (`success`, `failure`, `rejected` by the
 * bulkhead, `cancelled` as a hedge's loser or by the caller, `skipped` as unavailable).
 *
 * @since 0.1.0
 * @category metrics
 */
export const attemptsTotal: Metric.Metric.Counter<number> = internal.attemptsTotal

/**
 * Counter of fallbacks, tagged `from` (the upstream left) and `reason` (the error tag).
 *
 * @since 0.1.0
 * @category metrics
 */
export const fallbacksTotal: Metric.Metric.Counter<number> = internal.fallbacksTotal

/**
 * Counter of hedges, tagged `outcome` (`started`, `won` by the hedge, `refused` by the budget).
 *
 * @since 0.1.0
 * @category metrics
 */
export const hedgesTotal: Metric.Metric.Counter<number> = internal.hedgesTotal

/**
 * Histogram of successful attempts' durations in seconds, tagged `upstream`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const upstreamLatency: Metric.Metric.Histogram<number> = internal.upstreamLatency

/**
 * Histogram of streaming attempts' time to first content chunk in seconds, tagged `upstream`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const upstreamTtft: Metric.Metric.Histogram<number> = internal.upstreamTtft

type UpstreamSettings = typeof UpstreamSettings.Type

/** A client model two targets of one upstream would both send to the same upstream model, if any. */
const sharedDeployment = (a: UpstreamSettings["models"], b: UpstreamSettings["models"]): string | undefined => {
  if (a === "*" && b === "*") return "*"
  if (a === "*" || b === "*") {
    const map = (a === "*" ? b : a) as Readonly<Record<string, string>>
    return Object.keys(map).find((client) => map[client] === client)
  }
  return Object.keys(a).find((client) => b[client] !== undefined && b[client] === a[client])
}

const decodeRouting = Schema.decodeUnknown(RoutingOptions)
const decodeUpstream = Schema.decodeUnknown(UpstreamSettings)

// The gateway's own failure (`LocalFailure`) would fail everywhere: never a reason to fall over,
// whatever the option lists.
const fallbackPredicate = (option: RoutingOptions["fallbackOn"]): (error: ModelError.ModelError) => boolean => {
  if (option === "failover") return (error) => error.failover
  if (typeof option === "function") return (error) => error._tag !== "BadRequest" && ModelError.countsAgainstUpstream(error) && option(error)
  const tags = new Set<string>(option)
  tags.delete("LocalFailure")
  if (tags.has("failover")) return (error) => error.failover || tags.has(error._tag)
  return (error) => tags.has(error._tag)
}

/**
 * Builds the router's model; the upstreams' layers are built once, within the scope (and
 * `eachTarget` applied to each entry). Invalid options — one upstream listed twice for the same
 * model among them — are a defect (a programming error), reported with every problem by path;
 * a host validating user config checks them first (the gateway does).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <const U extends ReadonlyArray<Upstream<any, any>>>(
  options: RouterOptions<U>
): Effect.Effect<LanguageModel.Service, UpstreamError<U[number]>, UpstreamContext<U[number]> | Scope.Scope> =>
  Effect.gen(function*() {
    const { eachTarget, upstreams: inputs, ...routing } = options
    const settings = yield* Effect.orDie(decodeRouting(routing))
    if (inputs.length === 0) return yield* Effect.dieMessage("Router: at least one upstream is required")
    const seen: Array<{ readonly name: string; readonly models: UpstreamSettings["models"] }> = []
    const bulkheads = new Map<string, Bulkhead | undefined>()
    const upstreams: Array<internal.Upstream> = []
    for (const input of inputs) {
      const { model: source, isAvailable, ...plain } = input
      const upstream = yield* Effect.orDie(decodeUpstream(plain))
      for (const other of seen) {
        const clash = other.name === upstream.name ? sharedDeployment(other.models, upstream.models) : undefined
        if (clash !== undefined) {
          return yield* Effect.dieMessage(`Router: upstream "${upstream.name}" is listed twice for model "${clash}"`)
        }
      }
      seen.push({ name: upstream.name, models: upstream.models })
      let model: LanguageModel.Service = Layer.isLayer(source)
        ? yield* Policy.build(source as Layer.Layer<LanguageModel.LanguageModel, UpstreamError<U[number]>, UpstreamContext<U[number]>>)
        : source as LanguageModel.Service
      if (eachTarget !== undefined) model = yield* eachTarget(internal.holdPreamble(model))
      if (!bulkheads.has(upstream.name)) {
        bulkheads.set(
          upstream.name,
          upstream.maxConcurrent === undefined ? undefined : new Bulkhead(upstream.name, upstream.maxConcurrent, upstream.maxQueue)
        )
      }
      upstreams.push(internal.makeUpstream({
        name: upstream.name,
        model,
        weight: upstream.weight,
        models: upstream.models,
        isAvailable,
        bulkhead: bulkheads.get(upstream.name)
      }))
    }
    const hedging = settings.hedging
    return internal.make(upstreams, {
      strategy: settings.strategy,
      fallbackOn: fallbackPredicate(settings.fallbackOn),
      maxAttempts: settings.maxAttempts ?? upstreams.length,
      hedging: hedging === undefined ? undefined : {
        delay: Duration.isDuration(hedging.delay)
          ? { _tag: "fixed", millis: Duration.toMillis(hedging.delay) }
          : { _tag: "percentile", percentile: hedging.delay.percentile, minSamples: hedging.delay.minSamples },
        budget: RequestBudget.make({
          ratio: hedging.budget.ratio,
          minPerSecond: hedging.budget.minHedgesPerSecond,
          windowMillis: Duration.toMillis(hedging.budget.window)
        })
      },
      alpha: settings.leastLatency.alpha,
      explorationRate: settings.leastLatency.explorationRate,
      failurePenaltyMillis: Duration.toMillis(settings.leastLatency.failurePenalty),
      random: settings.seed === undefined ? undefined : Random.make(settings.seed)
    })
  })

/**
 * The router as a layer: provides `LanguageModel` over the upstreams (it consumes no model
 * below it; each upstream brings its own stack).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <const U extends ReadonlyArray<Upstream<any, any>>>(
  options: RouterOptions<U>
): Layer.Layer<LanguageModel.LanguageModel, UpstreamError<U[number]>, Exclude<UpstreamContext<U[number]>, Scope.Scope>> =>
  Layer.scoped(LanguageModel.LanguageModel, make(options))
