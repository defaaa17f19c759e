/**
 * A circuit breaker per key (by default a model deployment: upstream + model; or an upstream): stops sending traffic to an
 * upstream that is failing, fails fast with `CircuitOpen` (saying when it may close) so a router
 * can go elsewhere and a retry can wait, and probes it back carefully.
 *
 * The model is resilience4j's: closed → open when, over a sliding window (count- or time-based)
 * holding at least `minimumCalls` calls, the failure rate or the slow-call rate reaches its
 * threshold; open for `openDuration` (growing by `openDurationMultiplier` on each consecutive
 * trip, up to `maxOpenDuration`); then half-open, where at most `halfOpenProbes` calls run at
 * once: any probe failing (or slow) re-opens it, `halfOpenProbes` successes close it.
 *
 * @since 0.1.0
 */
import { Durations, LanguageModel, ModelError, Policy, RequestContext } from "@breakwater/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as BreakerStore from "./BreakerStore.js"
import * as internal from "./internal/breaker.js"
import type * as BreakerState from "./BreakerState.js"

const DurationInput = Durations.DurationInput

/**
 * The tags of the errors that count as failures by default: the upstream is failing or
 * refusing (5xx, overload, rate limits, quota, credentials, timeouts of every phase but `total`,
 * broken connections and streams). Never counted: the client's own errors (bad request, context
 * too long, refused content, an unknown model: another request would fare differently), local
 * refusals (circuit open, capacity), a `total` timeout (the caller's budget, not the upstream's
 * fault), cancellation, and the gateway's own failures (`LocalFailure`, a defect): those never
 * count, whatever `countAs` says (`ModelError.countsAgainstUpstream`).
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultCountAs: ReadonlyArray<ModelError.ModelError["_tag"]> = [
  "UpstreamUnavailable",
  "Overloaded",
  "RateLimited",
  "QuotaExhausted",
  "UpstreamAuth",
  "ConnectionFailed",
  "Timeout",
  "StreamInterrupted"
]

/**
 * The breaker's settings, with their defaults (the one place they are written).
 *
 * - `window` (`{ kind: "count", size: 20 }`): the last 20 calls, or `{ kind: "time", duration }`:
 *   the calls of the last `duration` (one-second buckets).
 * - `minimumCalls` (10): below this many calls in the window the rates do not count.
 * - `failureRateThreshold` (50) and `slowCallRateThreshold` (100): percentages that trip it.
 * - `slowCallDuration` (30 s): a `generate` that took this long **to complete**, or a stream
 *   whose **first content** came this late (or that ended without content this late), is slow.
 * - `openDuration` (30 s), `openDurationMultiplier` (2), `maxOpenDuration` (5 min): how long it
 *   stays open; each consecutive trip multiplies it, up to the cap; a close resets the growth.
 * - `halfOpenProbes` (1): probes let through in half-open (at once, and in all before the
 *   decision); any other call fails fast.
 * - `halfOpenRule` (`"all-succeed"`): one failing or slow probe re-opens it and
 *   `halfOpenProbes` successes close it; or `"failure-rate"`: once `halfOpenProbes` probes
 *   reported, it closes unless their failure or slow-call rate reaches its threshold.
 * - `probeTimeout` (5 min): a probe that has not reported by then counts as failed (its caller
 *   hung, or its instance died while holding a fleet-wide slot).
 * - `countAs` (`defaultCountAs`): error tags that count as failures (a `total` timeout never does).
 * - `syncInterval` (1 s): with a shared store, how old this instance's view of a closed breaker
 *   may be before a call reads the store again: the bound on how long after another instance
 *   trips it this one still calls the upstream.
 *
 * @since 0.1.0
 * @category schemas
 */
export const BreakerOptions = Schema.Struct({
  window: Schema.optionalWith(
    Schema.Union(
      Schema.Struct({ kind: Schema.Literal("count"), size: Schema.Int.pipe(Schema.positive()) }),
      Schema.Struct({ kind: Schema.Literal("time"), duration: DurationInput })
    ),
    { default: () => ({ kind: "count" as const, size: 20 }) }
  ),
  minimumCalls: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 10 }),
  failureRateThreshold: Schema.optionalWith(Schema.Number.pipe(Schema.between(0, 100)), { default: () => 50 }),
  slowCallRateThreshold: Schema.optionalWith(Schema.Number.pipe(Schema.between(0, 100)), { default: () => 100 }),
  slowCallDuration: Schema.optionalWith(DurationInput, { default: () => Duration.seconds(30) }),
  openDuration: Schema.optionalWith(DurationInput, { default: () => Duration.seconds(30) }),
  openDurationMultiplier: Schema.optionalWith(Schema.Number.pipe(Schema.greaterThanOrEqualTo(1)), { default: () => 2 }),
  maxOpenDuration: Schema.optionalWith(DurationInput, { default: () => Duration.minutes(5) }),
  halfOpenProbes: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 1 }),
  halfOpenRule: Schema.optionalWith(Schema.Literal("all-succeed", "failure-rate"), { default: () => "all-succeed" as const }),
  probeTimeout: Schema.optionalWith(DurationInput, { default: () => Duration.minutes(5) }),
  countAs: Schema.optionalWith(Schema.Array(Schema.String), { default: () => defaultCountAs }),
  syncInterval: Schema.optionalWith(DurationInput, { default: () => Duration.seconds(1) })
})

/**
 * The breaker's settings, resolved.
 *
 * @since 0.1.0
 * @category models
 */
export type BreakerOptions = typeof BreakerOptions.Type

/**
 * The breaker's settings as a user writes them (durations as `Duration`, ms or strings).
 *
 * @since 0.1.0
 * @category models
 */
export type BreakerOptionsInput = typeof BreakerOptions.Encoded

/**
 * A breaker state: `closed`, `open` or `half-open`.
 *
 * @since 0.1.0
 * @category models
 */
export type Phase = BreakerState.Phase

/**
 * A state change of one breaker.
 *
 * @since 0.1.0
 * @category models
 */
export type Transition = internal.Transition

/**
 * A set of breakers, one per key, sharing settings and a store.
 *
 * @since 0.1.0
 * @category models
 */
export interface CircuitBreaker {
  /**
   * Runs an effect under the breaker of `key`: fails at once with `CircuitOpen` when refused;
   * otherwise its outcome counts (success, a counted error, slow when it took `slowCallDuration`
   * to complete; an interruption never counts).
   */
  readonly withBreaker: (key: string) => <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | ModelError.CircuitOpen, R>
  /**
   * Runs a stream under the breaker of `key`: a success once it ends normally (or the consumer
   * stops early), a failure when it fails, slow when its first content (`ChatCompletion.hasContent`)
   * came `slowCallDuration` late; an interruption never counts.
   */
  readonly withBreakerStream: (key: string) => <A, E, R>(self: Stream.Stream<A, E, R>) => Stream.Stream<A, E | ModelError.CircuitOpen, R>
  /** `withBreakerStream` for the push form of a streaming call (`LanguageModel.Run`). */
  readonly withBreakerRun: (key: string) => (run: LanguageModel.Run) => LanguageModel.Run
  /** A model whose calls run under the breaker of `key`. */
  readonly wrap: (key: string, model: LanguageModel.Service) => LanguageModel.Service
  /** The state of `key`, read from the store (this also refreshes the local view). */
  readonly state: (key: string) => Effect.Effect<Phase>
  /**
   * Synchronous, from this instance's view: may `key` be called now? False while open, and while
   * every half-open probe slot is taken (until the view is `syncInterval` old). For routers.
   */
  readonly isAvailable: (key: string) => boolean
  /** Every key this instance has seen, with its state as last seen (for health endpoints). */
  readonly snapshot: () => Readonly<Record<string, Phase>>
  /** State transitions as this instance sees them (its own, and others' read from the store). */
  readonly transitions: Stream.Stream<Transition>
}

/**
 * Gauge: 1 for each breaker's current state, 0 for the others (tags `key`, `state`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const stateGauge: Metric.Metric.Gauge<number> = internal.stateGauge

/**
 * Counter of state transitions (tags `key`, `from`, `to`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const transitionsTotal: Metric.Metric.Counter<number> = internal.transitionsTotal

/**
 * Counter of calls refused by an open breaker (tag `key`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const rejectedTotal: Metric.Metric.Counter<number> = internal.rejectedTotal

const decode = Schema.decodeUnknown(BreakerOptions)

/** @internal */
export const toConfig = (o: BreakerOptions): BreakerState.Config => ({
  window: o.window.kind === "count"
    ? { kind: "count", size: o.window.size }
    : { kind: "time", millis: Duration.toMillis(o.window.duration) },
  minimumCalls: o.minimumCalls,
  failureRateThreshold: o.failureRateThreshold,
  slowCallRateThreshold: o.slowCallRateThreshold,
  slowCallMillis: Duration.toMillis(o.slowCallDuration),
  openMillis: Duration.toMillis(o.openDuration),
  openMultiplier: o.openDurationMultiplier,
  maxOpenMillis: Duration.toMillis(o.maxOpenDuration),
  halfOpenProbes: o.halfOpenProbes,
  halfOpenRule: o.halfOpenRule,
  probeTimeoutMillis: Duration.toMillis(o.probeTimeout)
})

/**
 * Builds a set of breakers. State goes to the `BreakerStore` in context if there is one (a
 * shared store), else to a private in-memory store. Invalid options are a defect.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: BreakerOptionsInput = {}): Effect.Effect<CircuitBreaker> =>
  Effect.gen(function*() {
    const settings = yield* Effect.orDie(decode(options, { errors: "all" }))
    const shared = yield* Effect.serviceOption(BreakerStore.BreakerStore)
    const store = Option.isSome(shared) ? shared.value : yield* BreakerStore.makeMemory
    const counted = new Set(settings.countAs)
    const counts = (error: unknown) => {
      if (typeof error !== "object" || error === null || !("_tag" in error)) return false
      const e = error as { readonly _tag: string; readonly phase?: unknown }
      return counted.has(e._tag) && ModelError.countsAgainstUpstream(e) && !(e._tag === "Timeout" && e.phase === "total")
    }
    return yield* internal.make(store, toConfig(settings), counts, Duration.toMillis(settings.syncInterval))
  })

/**
 * What one breaker guards when the key comes from the call: `"per-model"` (the default) one
 * breaker per model deployment, keyed `keyOf(upstream, model)`, so one failing model does not
 * stop the other models of the same upstream; `"per-upstream"` one breaker per upstream, keyed by
 * the upstream alone (every model of it trips together).
 *
 * @since 0.2.0
 * @category models
 */
export type KeyScope = "per-model" | "per-upstream"

/**
 * The breaker key of a model deployment: `upstream@model` (`"per-model"`), or the upstream alone
 * (`"per-upstream"`). `@` cannot occur in a gateway upstream name, so a key names one deployment.
 * Routers use it with `isAvailable`, health endpoints with `state`.
 *
 * @since 0.2.0
 * @category keys
 */
export const keyOf = (upstream: string, model: string, scope: KeyScope = "per-model"): string =>
  scope === "per-upstream" ? upstream : `${upstream}@${model}`

/**
 * How a policy picks the breaker of a call: `key` names the upstream (else the request
 * context's upstream at call time, `"default"` when none), and `scope` (`"per-model"`) whether
 * the request's model is part of the key (see `KeyScope`).
 *
 * @since 0.2.0
 * @category models
 */
export interface KeyOptions {
  readonly key?: string | undefined
  readonly scope?: KeyScope | undefined
}

/**
 * Guards a model with breakers built by `make`, keyed per call as `KeyOptions` say.
 *
 * @since 0.2.0
 * @category combinators
 */
export const guard = (breaker: CircuitBreaker, model: LanguageModel.Service, options: KeyOptions = {}): LanguageModel.Service => {
  const { key, scope = "per-model" } = options
  if (key !== undefined && scope === "per-upstream") return breaker.wrap(key, model)
  // Below a router the upstream of this attempt is in the request context, and the request
  // carries the model the router chose for it: read once per call.
  const keyFor = (request: { readonly model: string }, upstream: string | undefined) =>
    keyOf(key ?? upstream ?? "default", request.model, scope)
  const below = LanguageModel.runOf(model)
  const run: LanguageModel.Run = (request, callOptions, sink) =>
    RequestContext.of(callOptions, (ctx) => breaker.withBreakerRun(keyFor(request, ctx.upstream))(below)(request, callOptions, sink))
  return {
    generate: (request, callOptions) =>
      RequestContext.of(callOptions, (ctx) => breaker.withBreaker(keyFor(request, ctx.upstream))(model.generate(request, callOptions))),
    stream: LanguageModel.streamFromRun(run),
    run,
    honoursSignal: model.honoursSignal,
    // The context passes through as it came.
    takesContext: model.takesContext
  }
}

/**
 * Wraps a model with a new set of breakers, keyed per call as `KeyOptions` say: by default one
 * breaker per (upstream, model), the upstream being `options.key` when given, else the one
 * named in the request context at call time, so one policy below a router keys by deployment.
 *
 * @since 0.1.0
 * @category combinators
 */
export const withPolicy: Policy.Combinator<BreakerOptionsInput & KeyOptions> = Policy.combinator((model, options: BreakerOptionsInput & KeyOptions) =>
  Effect.map(make(options), (breaker) => guard(breaker, model, options))
)

/**
 * The breaker as a policy layer (see `withPolicy` for the key). Its breakers are private to the
 * layer; to read their state (router, health) build them with `make` and use `layerFrom`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: BreakerOptionsInput & KeyOptions = {}
): Layer.Layer<LanguageModel.LanguageModel, never, LanguageModel.LanguageModel> =>
  Policy.layer((model) => withPolicy(model, options))

/**
 * A policy layer over breakers you built with `make` (and read elsewhere), keyed as `guard`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFrom = (
  breaker: CircuitBreaker,
  options: KeyOptions = {}
): Layer.Layer<LanguageModel.LanguageModel, never, LanguageModel.LanguageModel> =>
  Policy.layer((model) => Effect.succeed(guard(breaker, model, options)))
