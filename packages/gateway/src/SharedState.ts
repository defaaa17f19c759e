/**
 * State shared by several gateway instances — the retry budget, the circuit breakers and the
 * client-resume journal — plugged in, not imported. The gateway itself holds no store: a config
 * without a `redis` section builds on in-memory state and never loads Redis code, so an app (a
 * Lambda bundle) without Redis carries no ioredis.
 *
 * With a `redis` section, the stores come from `@breakwater/store-redis` (an optional peer
 * dependency: install it beside the gateway), loaded at build time by the connector the builder
 * is given (`GatewayBuilder.Options.sharedState`, `redis()` by default). `redis()` resolves the
 * package from `node_modules` at run time, out of a bundler's sight; a bundled app that uses
 * Redis names the import itself so the bundler includes it:
 *
 * ```ts
 * GatewayBuilder.make(config, { sharedState: SharedState.redis(() => import("@breakwater/store-redis")) })
 * ```
 *
 * @since 0.2.0
 */
import { BreakerStore } from "@breakwater/circuit-breaker"
import { RetryBudget } from "@breakwater/retry"
import { StreamJournal } from "@breakwater/stream-resume"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { ConfigError } from "./ConfigLoader.js"
import type { Health } from "./Gateway.js"
import type { GatewayConfig } from "./GatewayConfig.js"

/**
 * The stores one gateway instance shares with the others, and their health for `/readyz`.
 *
 * @since 0.2.0
 * @category models
 */
export interface SharedState {
  readonly retryBudget: RetryBudget.RetryBudgetStore
  readonly breakers: BreakerStore.BreakerStore
  readonly journal: StreamJournal.StreamJournal
  readonly health: Effect.Effect<NonNullable<Health["sharedState"]>>
}

/**
 * Builds the shared state for a config's `redis` section; it lives as long as the scope. Fails
 * with a `ConfigError` (path `redis`) when it cannot be provided (the store package is missing).
 *
 * @since 0.2.0
 * @category models
 */
export type Connect = (redis: NonNullable<GatewayConfig["redis"]>) => Effect.Effect<SharedState, ConfigError, Scope.Scope>

/**
 * What the gateway uses of `@breakwater/store-redis` (`import("@breakwater/store-redis")`
 * satisfies it).
 *
 * @since 0.2.0
 * @category models
 */
export interface StoreRedisModule {
  readonly RedisStores: {
    readonly layer: (options: {
      readonly url: Redacted.Redacted<string>
      readonly prefix?: string
      readonly commandTimeout?: Duration.Duration
    }) => Layer.Layer<any>
  }
  readonly RedisStore: {
    readonly health: Effect.Effect<NonNullable<Health["sharedState"]>, never, any>
  }
}

// A specifier held in a variable, not a literal `import("@breakwater/store-redis")`: bundlers
// follow literal imports, and would put store-redis and ioredis in every bundle of the gateway.
const storeRedisPackage = "@breakwater/store-redis"
const importAtRunTime = (specifier: string): Promise<StoreRedisModule> => import(specifier)

/**
 * The Redis connector: every store over one connection (`RedisStores.layer`) from the module
 * `load` gives, by default `@breakwater/store-redis` resolved at run time.
 *
 * @since 0.2.0
 * @category constructors
 */
export const redis = (load: () => Promise<StoreRedisModule> = () => importAtRunTime(storeRedisPackage)): Connect => (config) =>
  Effect.gen(function*() {
    const module = yield* Effect.tryPromise({
      try: load,
      catch: (error) =>
        new ConfigError({
          issues: [{
            path: "redis",
            message: `shared state in Redis needs ${storeRedisPackage} (npm install ${storeRedisPackage}; in a bundle, pass ` +
              `\`sharedState: SharedState.redis(() => import("${storeRedisPackage}"))\`): ${(error as Error).message}`
          }]
        })
    })
    const stores = yield* Layer.build(module.RedisStores.layer({
      url: config.url,
      ...(config.prefix === undefined ? {} : { prefix: config.prefix }),
      ...(config.commandTimeout === undefined ? {} : { commandTimeout: config.commandTimeout })
    }))
    return {
      retryBudget: Context.get(stores, RetryBudget.RetryBudgetStore),
      breakers: Context.get(stores, BreakerStore.BreakerStore),
      journal: Context.get(stores, StreamJournal.StreamJournal),
      health: Effect.provide(module.RedisStore.health, stores) as Effect.Effect<NonNullable<Health["sharedState"]>>
    }
  })
