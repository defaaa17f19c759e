import { BreakerStore } from "@breakwater/circuit-breaker"
import { LanguageModel, ModelError, RequestContext } from "@breakwater/core"
import { AnthropicProvider } from "@breakwater/provider-anthropic"
import { RetryBudget, Retry } from "@breakwater/retry"
import { Router } from "@breakwater/router"
import { StreamResume } from "@breakwater/stream-resume"
import { AttemptTimeout, Deadline } from "@breakwater/timeout"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { baseline } from "../Baseline.js"
import { ConfigError } from "../ConfigLoader.js"
import type { Gateway, Health, ServerSettings, TokenCounter } from "../Gateway.js"
import type * as GatewayBuilder from "../GatewayBuilder.js"
import type { GatewayConfig } from "../GatewayConfig.js"
import * as Providers from "../Providers.js"
import * as SharedState from "../SharedState.js"
import * as Tracing from "../Tracing.js"
import * as Breakers from "./breakers.js"
import * as Settings from "./settings.js"
import * as Targets from "./targets.js"

type UpstreamConfig = GatewayConfig["upstreams"][string]
type RouteConfig = GatewayConfig["routes"][string]

type Options = GatewayBuilder.Options

interface BuiltUpstream {
  readonly name: string
  readonly provider: string
  readonly model: LanguageModel.Service
}

/** Per upstream: breaker → attempt timeout → adapter (or the override in its place). */
const buildUpstream = (
  name: string,
  upstream: UpstreamConfig,
  config: GatewayConfig,
  breakers: Breakers.Breakers,
  adapter: LanguageModel.Service | Providers.Provider
): Effect.Effect<BuiltUpstream, never, Scope.Scope> =>
  Effect.gen(function*() {
    const timeouts = Settings.timeouts(config, upstream)
    const base = typeof adapter === "function" ? yield* adapter({ name, config: upstream, connectTimeout: timeouts.connect }) : adapter
    const { connect: _connect, ...attempt } = timeouts
    const timed = yield* AttemptTimeout.withPolicy(base, attempt)
    const guarded = yield* breakers.wrap(name, Settings.breaker(config, upstream), timed)
    return { name, provider: upstream.provider, model: guarded }
  })

/**
 * What the retry inside the router repeats on the same target: not an open breaker, and not a
 * failure whose upstream asked for a longer wait than the cap (retrying before it is pointless):
 * both fall over to the next target at once.
 */
const retryHere = (maxRetryAfter: Duration.Duration) => {
  const cap = Duration.toMillis(maxRetryAfter)
  return (error: ModelError.ModelError): boolean => {
    if (error._tag === "CircuitOpen") return false
    const delay = ModelError.retryAfterOf(error)
    return delay === undefined || Duration.toMillis(delay) <= cap
  }
}

/**
 * Per route: deadline → stream-resume → router → per target: retry → the upstream's stack (retry
 * before fallback, the default), or deadline → stream-resume → retry → router (`failover:
 * "immediate"`: fall over at once, then retry the whole chain).
 */
const buildRoute = (
  model: string,
  route: RouteConfig,
  config: GatewayConfig,
  upstreams: ReadonlyMap<string, BuiltUpstream>,
  breakers: Breakers.Breakers
): Effect.Effect<LanguageModel.Service, never, Scope.Scope | RetryBudget.RetryBudgetStore> =>
  Effect.gen(function*() {
    const targets = route.upstreams.map((target) => {
      const name = Targets.upstreamOf(target)
      const upstream = config.upstreams[name]!
      return {
        name,
        model: upstreams.get(name)!.model,
        models: { [model]: Targets.modelOf(model, target, upstream.models) },
        ...(typeof target !== "string" && target.weight !== undefined ? { weight: target.weight } : {}),
        ...(upstream.maxConcurrent === undefined ? {} : { maxConcurrent: upstream.maxConcurrent }),
        ...(upstream.maxQueue === undefined ? {} : { maxQueue: upstream.maxQueue }),
        isAvailable: breakers.isAvailable
      }
    })
    const routing = Settings.routing(route)
    const { enabled: retryEnabled, ...retry } = Settings.retry(config, route)
    const retryFirst = retryEnabled && routing.failover === "after-retries"
    const routed = yield* Router.make({
      upstreams: targets,
      strategy: routing.strategy,
      fallbackOn: routing.fallbackOn,
      leastLatency: routing.leastLatency,
      ...(routing.maxAttempts === undefined ? {} : { maxAttempts: routing.maxAttempts }),
      ...(retryFirst ? { eachTarget: Retry.withPolicy({ ...retry, retryOn: retryHere(retry.maxRetryAfter) }) } : {}),
      ...(route.hedging === undefined ? {} : { hedging: route.hedging })
    })
    const retried = retryEnabled && !retryFirst ? yield* Retry.withPolicy(routed, retry) : routed
    const resumed = yield* StreamResume.withPolicy(retried, Settings.resume(config, route))
    return yield* Deadline.withPolicy(resumed, { total: Settings.deadline(config, route) })
  })

/**
 * An upstream's circuit as a whole: its best model's (it can serve while one deployment can),
 * `closed` when no route uses it.
 */
const overall = (circuits: ReadonlyArray<string>): string =>
  circuits.length === 0 || circuits.includes("closed") ? "closed" : circuits.includes("half-open") ? "half-open" : "open"

const notServed = (model: string) =>
  new ModelError.ModelNotFound({ message: `the model \`${model}\` is not served by this gateway` })

/** The gateway's model: one map lookup per request, then the route's own stack. */
const dispatch = (routes: ReadonlyMap<string, LanguageModel.Service>): LanguageModel.Service => ({
  generate: (request, options) => {
    const route = routes.get(request.model)
    return route === undefined ? Effect.fail(notServed(request.model)) : route.generate(request, options)
  },
  stream: (request, options) => {
    const route = routes.get(request.model)
    return route === undefined ? Stream.fail(notServed(request.model)) : route.stream(request, options)
  },
  run: (request, options, sink) => {
    const route = routes.get(request.model)
    return route === undefined ? Effect.fail(notServed(request.model)) : LanguageModel.runOf(route)(request, options, sink)
  },
  // The context passes through to the route as it came.
  takesContext: [...routes.values()].every((route) => route.takesContext === true)
})

const serverSettings = (config: GatewayConfig): ServerSettings => {
  const s = Settings.server(config)
  return {
    host: s.host,
    port: s.port,
    maxBodyBytes: s.maxBodyBytes,
    maxHeaderBytes: s.maxHeaderBytes,
    maxConcurrentRequests: s.maxConcurrentRequests,
    maxConcurrentPerKey: config.server?.maxConcurrentPerKey,
    requestTimeoutMs: Duration.toMillis(s.requestTimeout),
    shutdownGraceMs: Duration.toMillis(s.shutdownGrace),
    streamCommitTimeoutMs: Duration.toMillis(s.streamCommitTimeout),
    detachGraceMs: Duration.toMillis(s.detachGrace)
  }
}

/**
 * Each upstream's adapter: the caller's replacement, else its provider kind's constructor. A kind
 * no registry serves is a config error, every one listed by path.
 */
const adaptersOf = (
  config: GatewayConfig,
  options: Options | undefined
): Effect.Effect<ReadonlyMap<string, LanguageModel.Service | Providers.Provider>, ConfigError> => {
  const registry: Providers.Registry = { ...Providers.builtIn, ...options?.providers }
  const adapters = new Map<string, LanguageModel.Service | Providers.Provider>()
  const issues: Array<{ readonly path: string; readonly message: string }> = []
  for (const [name, upstream] of Object.entries(config.upstreams)) {
    const adapter = options?.adapters?.[name] ?? (Object.hasOwn(registry, upstream.provider) ? registry[upstream.provider] : undefined)
    if (adapter !== undefined) adapters.set(name, adapter)
    else {
      issues.push({
        path: `upstreams.${name}.provider`,
        message: `unknown provider "${upstream.provider}" (known: ${Object.keys(registry).join(", ")}; register others with the builder's \`providers\`)`
      })
    }
  }
  return issues.length > 0 ? Effect.fail(new ConfigError({ issues })) : Effect.succeed(adapters)
}

/** @internal */
export const make = (config: GatewayConfig, options?: Options): Effect.Effect<Gateway, ConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    const adapters = yield* adaptersOf(config, options)
    // Tracing only when the config turns it on: off, no OpenTelemetry code is loaded at all.
    const tracer = yield* (options?.telemetry ?? Tracing.telemetry())(config)
    // Shared state only when the config asks for it: without a `redis` section no store code is
    // loaded at all.
    if (config.redis === undefined) return yield* build(config, adapters, undefined, tracer)
    const shared = yield* (options?.sharedState ?? SharedState.redis())(config.redis)
    // The breakers find their store in context when they are built.
    return yield* Effect.provideService(build(config, adapters, shared, tracer), BreakerStore.BreakerStore, shared.breakers)
  })

const build = (
  config: GatewayConfig,
  adapters: ReadonlyMap<string, LanguageModel.Service | Providers.Provider>,
  shared: SharedState.SharedState | undefined,
  tracer: Tracing.Tracer | undefined
): Effect.Effect<Gateway, never, Scope.Scope> =>
  Effect.gen(function*() {
    const breakers = yield* Breakers.make
    const upstreams = new Map<string, BuiltUpstream>()
    for (const [name, upstream] of Object.entries(config.upstreams)) {
      upstreams.set(name, yield* buildUpstream(name, upstream, config, breakers, adapters.get(name)!))
    }
    // One budget store for the whole gateway: the shared one, else one in memory.
    const store = shared?.retryBudget ?? (yield* RetryBudget.makeMemory)
    const routes = new Map<string, LanguageModel.Service>()
    // Every (upstream, upstream model) a route may call: what readiness reads the breakers of.
    const routeTargets = new Map<string, ReadonlyArray<readonly [string, string]>>()
    for (const [model, route] of Object.entries(config.routes)) {
      routes.set(
        model,
        yield* Effect.provideService(buildRoute(model, route, config, upstreams, breakers), RetryBudget.RetryBudgetStore, store)
      )
      routeTargets.set(model, route.upstreams.map((t) => {
        const name = Targets.upstreamOf(t)
        return [name, Targets.modelOf(model, t, config.upstreams[name]!.models)] as const
      }))
    }
    // Token counting where a route starts with an Anthropic upstream (the built-in adapter): one
    // counter per upstream, the body's model made the upstream's per route.
    const counters = new Map<string, AnthropicProvider.TokenCounter>()
    const tokenCounters = new Map<string, TokenCounter>()
    for (const [model, route] of Object.entries(config.routes)) {
      const first = route.upstreams[0]
      if (first === undefined) continue
      const name = Targets.upstreamOf(first)
      const upstream = config.upstreams[name]!
      if (adapters.get(name) !== Providers.anthropic) continue
      let counter = counters.get(name)
      if (counter === undefined) {
        counter = yield* AnthropicProvider.makeTokenCounter(
          Providers.transportOf({ name, config: upstream, connectTimeout: Settings.timeouts(config, upstream).connect })
        )
        counters.set(name, counter)
      }
      const upstreamModel = Targets.modelOf(model, first, upstream.models)
      const count = counter
      // The call's trace says where it went, as a chat call's does (the request's log line, its
      // span): no router sets it here.
      tokenCounters.set(model, (body) =>
        Effect.flatMap(RequestContext.current, (ctx) => {
          ctx.trace.attempts++
          return Effect.tap(count({ ...body, model: upstreamModel }), () => {
            ctx.trace.upstream = name
            ctx.trace.model = upstreamModel
          })
        }))
    }
    const health: Effect.Effect<Health> = Effect.gen(function*() {
      // One read per deployment the routes call (with the per-upstream scope they share a breaker).
      const byUpstream = new Map<string, Map<string, string>>()
      for (const name of upstreams.keys()) byUpstream.set(name, new Map())
      for (const targets of routeTargets.values()) {
        for (const [name, model] of targets) {
          const models = byUpstream.get(name)!
          if (!models.has(model)) models.set(model, yield* breakers.state(name, model))
        }
      }
      const circuitOf = (name: string, model: string) => byUpstream.get(name)!.get(model)!
      const routeHealth = [...routeTargets].map(([model, targets]) => ({
        model,
        ready: targets.some(([name, m]) => circuitOf(name, m) !== "open"),
        targets: targets.map(([upstream, m]) => ({ upstream, model: m, circuit: circuitOf(upstream, m) }))
      }))
      const sharedState = shared === undefined ? undefined : yield* shared.health
      return {
        ready: routeHealth.every((r) => r.ready),
        upstreams: [...upstreams.values()].map((u) => {
          const models = [...byUpstream.get(u.name)!].map(([model, circuit]) => ({ model, circuit }))
          return { name: u.name, provider: u.provider, circuit: overall(models.map((m) => m.circuit)), models }
        }),
        routes: routeHealth,
        ...(sharedState === undefined ? {} : { sharedState: { status: sharedState.status, since: sharedState.since, endpoint: sharedState.endpoint } })
      }
    })
    const secrets: Array<Redacted.Redacted<string>> = []
    for (const upstream of Object.values(config.upstreams)) if (upstream.apiKey !== undefined) secrets.push(upstream.apiKey)
    for (const key of config.auth?.keys ?? []) secrets.push(key.key)
    if (config.auth?.adminKey !== undefined) secrets.push(config.auth.adminKey)
    return {
      model: dispatch(routes),
      models: [...routes.keys()],
      keys: (config.auth?.keys ?? []).map((k) => ({ name: k.name, key: k.key, models: k.models, maxConcurrent: k.maxConcurrent })),
      server: serverSettings(config),
      ...(config.auth?.adminKey === undefined ? {} : { adminKey: config.auth.adminKey }),
      ...(config.cors === undefined ? {} : {
        cors: { origins: config.cors.origins, maxAgeSeconds: Math.floor(Duration.toSeconds(config.cors.maxAge ?? baseline.corsMaxAge)) }
      }),
      health,
      secrets,
      ...(shared === undefined ? {} : { journal: shared.journal }),
      ...(tracer === undefined ? {} : { telemetry: tracer }),
      ...(tokenCounters.size === 0 ? {} : { tokenCounters })
    }
  })
