/**
 * Builds a gateway from a config: the layer stack of DESIGN.md for every route, over one
 * per-upstream stack shared by the routes that use it.
 *
 * ```
 * route "gpt-4o"  : deadline → stream-resume → router ─┬─ retry ─ upstream "openai"    : breakers per model → attempt timeout → adapter
 * route "claude"  : deadline → stream-resume → router ─┴─ retry ─ upstream "anthropic" : breakers per model → attempt timeout → adapter
 * ```
 *
 * The retry sits per target inside the router (a transient failure is retried on the same
 * target before the next is tried), or above the router for a route with `failover:
 * "immediate"` (fall over at once, then retry the chain). Upstreams are built once (one
 * connection pool and one set of breakers, per model deployment by default, each), whatever the
 * number of routes. The retry budget is one per gateway (every route draws on it), so an outage
 * of a shared upstream cannot multiply retries by the number of routes.
 *
 * @since 0.1.0
 */
import type { LanguageModel } from "@breakwater/core"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { ConfigError } from "./ConfigLoader.js"
import { Gateway } from "./Gateway.js"
import type { GatewayConfig } from "./GatewayConfig.js"
import * as internal from "./internal/builder.js"
import type * as Providers from "./Providers.js"
import type * as SharedState from "./SharedState.js"
import type * as Tracing from "./Tracing.js"

/**
 * What the builder takes besides the config; all optional.
 *
 * - `adapters`: replaces the adapter of named upstreams (tests, or a one-off model of your own);
 *   the upstream keeps its breaker and attempt timeouts from the config.
 * - `providers`: adapter constructors by provider kind, merged over `Providers.builtIn`
 *   (`openai`, `anthropic`): an upstream whose `provider` names one of them is built with it.
 * - `sharedState`: how the config's `redis` section is served (`SharedState.redis()` by
 *   default: `@breakwater/store-redis`, loaded only when the section is there).
 * - `telemetry`: how requests are traced (`Tracing.telemetry()` by default:
 *   `@breakwater/telemetry`, loaded only when the config turns tracing on); `Tracing.given(t)`
 *   uses a tracer of your own (a test's, over an in-memory exporter) whatever the config says.
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  readonly adapters?: Readonly<Record<string, LanguageModel.Service>> | undefined
  readonly providers?: Providers.Registry | undefined
  readonly sharedState?: SharedState.Connect | undefined
  readonly telemetry?: Tracing.Connect | undefined
}

/**
 * The builder's options under their first name.
 *
 * @since 0.1.0
 * @category models
 */
export type Overrides = Options

/**
 * Builds the gateway; pools, breakers and budgets live as long as the scope. Fails with a
 * `ConfigError` when the config names a provider kind no registry serves, or asks for shared
 * state that cannot be provided.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (config: GatewayConfig, options?: Options) => Effect.Effect<Gateway, ConfigError, Scope.Scope> =
  internal.make

/**
 * The gateway as a layer providing the `Gateway` service.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (config: GatewayConfig, options?: Options): Layer.Layer<Gateway, ConfigError> =>
  Layer.scoped(Gateway, internal.make(config, options))
