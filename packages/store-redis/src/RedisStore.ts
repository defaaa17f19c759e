/**
 * The Redis connection every Redis-backed store uses, and the degradation rule they all follow:
 * when Redis is slow or down, a store serves from this instance's local (in-memory) state, says
 * so once (the `breakwater_redis_up` gauge, `health`, one log line per change), keeps checking,
 * and reconciles when Redis returns. A Redis outage never becomes a gateway outage: no call
 * waits longer than `commandTimeout` for Redis, and none fails because of it.
 *
 * @since 0.1.0
 */
import { Durations } from "@breakwater/core"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Metric from "effect/Metric"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type { Redis } from "ioredis"
import * as internal from "./internal/connection.js"

/**
 * The connection's settings, with their defaults (the one place they are written).
 *
 * - `url` (required): `redis://[user:password@]host:port/db` (or `rediss://` for TLS), as a
 *   string or a `Redacted`; it is kept `Redacted` and never logged (health shows `host:port/db`).
 * - `prefix` (`"breakwater:"`): prepended to every key, one per deployment sharing a Redis.
 * - `commandTimeout` (250 ms): the longest a call waits for Redis before it is served locally.
 * - `connectTimeout` (1 s): the bound on each connection attempt, and on the wait at start.
 * - `healthCheckInterval` (1 s): how often the connection is checked (a `PING`); while down, how
 *   often Redis is retried. Sharing resumes at most about this long after Redis is back.
 * - `fleetSize` (1): how many instances share the state; while Redis is down each instance
 *   enforces `1 / fleetSize` of the retry budget's per-second floor, so the fleet's total holds.
 *
 * @since 0.1.0
 * @category schemas
 */
export const RedisOptions = Schema.Struct({
  url: Schema.Union(Schema.RedactedFromSelf(Schema.String), Schema.Redacted(Schema.String)),
  prefix: Schema.optionalWith(Schema.String, { default: () => "breakwater:" }),
  commandTimeout: Schema.optionalWith(Durations.DurationInput, { default: () => Duration.millis(250) }),
  connectTimeout: Schema.optionalWith(Durations.DurationInput, { default: () => Duration.seconds(1) }),
  healthCheckInterval: Schema.optionalWith(Durations.DurationInput, { default: () => Duration.seconds(1) }),
  fleetSize: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 1 })
})

/**
 * The connection's settings, resolved.
 *
 * @since 0.1.0
 * @category models
 */
export type RedisOptions = typeof RedisOptions.Type

/**
 * The connection's settings as a user writes them (`url` required; durations as `Duration`,
 * milliseconds or strings like `"250 millis"`).
 *
 * @since 0.1.0
 * @category models
 */
export type RedisOptionsInput = typeof RedisOptions.Encoded

/**
 * The connection's health, for a health endpoint.
 *
 * @since 0.1.0
 * @category models
 */
export type Health = internal.Health

/**
 * A Redis connection with its degradation state.
 *
 * @since 0.1.0
 * @category models
 */
export interface RedisStore {
  /** The ioredis client (offline queue off, bounded timeouts): for stores of your own. */
  readonly client: Redis
  readonly options: RedisOptions
  /** `host:port/db`, without credentials. */
  readonly endpoint: string
  /** Whether shared state is in use right now. */
  readonly isUp: () => boolean
  /** The health detail: status, since when, endpoint, prefix, the last error while down. */
  readonly health: Effect.Effect<Health>
  /**
   * Runs `op` against Redis while it is up; when Redis fails (or is down already) runs
   * `fallback` instead, after marking the connection down. Never fails.
   */
  readonly use: <A>(op: (client: Redis) => Promise<A>, fallback: Effect.Effect<A>) => Effect.Effect<A>
  /** Registers what to do when Redis comes back, before calls use it again (a failure keeps it down). */
  readonly onReconnect: (reconcile: Effect.Effect<void, unknown>) => Effect.Effect<void>
}

/**
 * The connection tag.
 *
 * @since 0.1.0
 * @category tags
 */
export const RedisStore: Context.Tag<RedisStore, RedisStore> = Context.GenericTag<RedisStore>("@breakwater/store-redis/RedisStore")

/**
 * The former name of the `RedisStore` tag.
 *
 * @deprecated Use `RedisStore` (Effect's convention: the tag is named like its service).
 * @since 0.1.0
 * @category tags
 */
export const RedisStoreTag: Context.Tag<RedisStore, RedisStore> = RedisStore

/**
 * @deprecated Use `RedisStore`.
 * @since 0.1.0
 * @category tags
 */
export type RedisStoreTag = RedisStore

/**
 * Gauge: 1 while Redis is reachable and shared state is in use, 0 while serving locally.
 *
 * @since 0.1.0
 * @category metrics
 */
export const upGauge: Metric.Metric.Gauge<number> = internal.upGauge

/**
 * Counter of store operations served from local state (tag `store`: `budget`, `breaker`, `journal`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const fallbackTotal: Metric.Metric.Counter<number> = internal.fallbackTotal

const decode = Schema.decodeUnknown(RedisOptions)

/**
 * Opens a connection for the scope. Never fails on an unreachable Redis (it starts on local
 * state); invalid options are a defect.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: RedisOptionsInput): Effect.Effect<RedisStore, never, Scope.Scope> =>
  Effect.gen(function*() {
    const settings = yield* Effect.orDie(decode(options, { errors: "all" }))
    const connection = yield* internal.make(settings)
    return {
      client: connection.client,
      options: settings,
      endpoint: connection.endpoint,
      isUp: connection.isUp,
      health: connection.health,
      use: connection.use,
      onReconnect: connection.onReconnect
    }
  })

/**
 * The connection as a layer; the Redis stores (`RedisRetryBudget`, `RedisBreakerStore`,
 * `RedisStreamJournal`) are provided over it.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: RedisOptionsInput): Layer.Layer<RedisStoreTag> => Layer.scoped(RedisStoreTag, make(options))

/**
 * The health detail of the connection in context (for a host's health endpoint).
 *
 * @since 0.1.0
 * @category accessors
 */
export const health: Effect.Effect<Health, never, RedisStoreTag> = Effect.flatMap(RedisStoreTag, (store) => store.health)
