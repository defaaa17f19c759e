import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import { Redis } from "ioredis"

export interface Settings {
  readonly url: Redacted.Redacted<string>
  readonly prefix: string
  readonly commandTimeout: Duration.Duration
  readonly connectTimeout: Duration.Duration
  readonly healthCheckInterval: Duration.Duration
  readonly fleetSize: number
}

export interface Health {
  readonly status: "up" | "down"
  /** Wall-clock ms of the last change of status (or of the start). */
  readonly since: number
  /** `host:port/db`, never the password. */
  readonly endpoint: string
  readonly prefix: string
  /** The error that took it down, while down. */
  readonly lastError?: string
}

export interface Connection {
  readonly client: Redis
  readonly settings: Settings
  readonly endpoint: string
  readonly isUp: () => boolean
  readonly health: Effect.Effect<Health>
  readonly use: <A>(op: (client: Redis) => Promise<A>, fallback: Effect.Effect<A>) => Effect.Effect<A>
  readonly onReconnect: (reconcile: Effect.Effect<void, unknown>) => Effect.Effect<void>
  readonly markDown: (error: unknown) => Effect.Effect<void>
}

export const upGauge = Metric.gauge("breakwater_redis_up", {
  description: "1 while the Redis store is reachable and shared state is in use, 0 while serving from local state"
})

export const fallbackTotal = Metric.counter("breakwater_redis_fallback_total", {
  description: "Store operations served from local state because Redis was down or failed (tag: store)",
  incremental: true
})

/** `host:port/db` from a Redis URL, without user or password (the URL itself is never logged). */
export const endpointOf = (url: string): string => {
  try {
    const u = new URL(url)
    const db = u.pathname.length > 1 ? u.pathname : "/0"
    return `${u.hostname}:${u.port === "" ? "6379" : u.port}${db}`
  } catch {
    return "(unparsable redis url)"
  }
}

export const messageOf = (error: unknown): string => {
  // Effect.tryPromise wraps the rejection in an UnknownException whose `error` is the real one.
  const inner = typeof error === "object" && error !== null && "error" in error ? (error as { error: unknown }).error : error
  return inner instanceof Error ? inner.message : String(inner)
}

export const make = (settings: Settings): Effect.Effect<Connection, never, Scope.Scope> =>
  Effect.gen(function*() {
    const url = Redacted.value(settings.url)
    const endpoint = endpointOf(url)
    const commandTimeout = Math.max(1, Duration.toMillis(settings.commandTimeout))
    const connectTimeout = Math.max(1, Duration.toMillis(settings.connectTimeout))
    const interval = Math.max(1, Duration.toMillis(settings.healthCheckInterval))
    // The connection watches a real socket, so its own timers (command and connect timeouts,
    // reconnects, health checks) run on real time, whatever Clock the caller's fibers use.
    const live = Clock.make()

    let lastError: string | undefined
    const client = new Redis(url, {
      lazyConnect: true,
      // A dead Redis must fail a command at once, not queue it until it comes back...
      enableOfflineQueue: false,
      // ...nor replay in-flight commands after a reconnect (the caller has long used local state).
      maxRetriesPerRequest: 0,
      commandTimeout,
      connectTimeout,
      // Never give up reconnecting; back off up to the health-check interval.
      retryStrategy: (times) => Math.min(50 * times, interval),
      showFriendlyErrorStack: false
    })
    // Without a listener ioredis prints every connection error; the state change is logged once instead.
    client.on("error", (error: unknown) => {
      lastError = messageOf(error)
    })

    const state = { up: false, since: live.unsafeCurrentTimeMillis(), reconciling: false, closed: false }
    const reconcilers: Array<Effect.Effect<void, unknown>> = []

    const annotate = Effect.annotateLogs({ redis: endpoint, prefix: settings.prefix })

    const markDown = (error: unknown): Effect.Effect<void> =>
      Effect.suspend(() => {
        lastError = messageOf(error)
        if (!state.up || state.closed) return Effect.void
        state.up = false
        state.since = live.unsafeCurrentTimeMillis()
        return Effect.zipRight(
          Metric.set(upGauge, 0),
          Effect.logWarning("redis store down: serving from local state").pipe(Effect.annotateLogs({ error: lastError }), annotate)
        )
      })

    const markUp = (reconciled: boolean) =>
      Effect.suspend(() => {
        state.up = true
        state.since = live.unsafeCurrentTimeMillis()
        lastError = undefined
        return Effect.zipRight(
          Metric.set(upGauge, 1),
          Effect.logInfo(reconciled ? "redis store up: local state reconciled, shared state resumed" : "redis store up").pipe(annotate)
        )
      })

    const ping = Effect.tryPromise(() => client.ping())

    // Local state first, then shared: every reconciler must succeed before calls go to Redis again.
    const recover = Effect.suspend(() => {
      if (state.reconciling) return Effect.void
      state.reconciling = true
      return Effect.forEach(reconcilers, (r) => r, { discard: true }).pipe(
        Effect.zipRight(markUp(true)),
        Effect.catchAllCause((cause) => markDown(Cause.squash(cause))),
        Effect.ensuring(Effect.sync(() => {
          state.reconciling = false
        }))
      )
    })

    const check = ping.pipe(
      Effect.matchEffect({
        onFailure: (error) => markDown(error),
        onSuccess: () => (state.up ? Effect.void : recover)
      })
    )

    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        state.closed = true
        state.up = false
        client.disconnect()
      })
    )

    // The first connection is awaited (bounded by connectTimeout): a Redis that is down at start
    // is not a gateway that is down, it starts on local state and the health check keeps trying.
    const connected = yield* Effect.tryPromise(() => client.connect()).pipe(
      Effect.timeout(Duration.millis(connectTimeout + 50)),
      Effect.withClock(live),
      Effect.as(true),
      Effect.catchAll((error) => Effect.as(Effect.sync(() => (lastError = messageOf(error))), false))
    )
    if (connected) {
      yield* markUp(false)
    } else {
      yield* Metric.set(upGauge, 0)
      yield* Effect.logWarning("redis store unreachable at start: serving from local state").pipe(
        Effect.annotateLogs({ error: lastError ?? "unknown" }),
        annotate
      )
    }

    yield* Effect.forkScoped(
      Effect.withClock(Effect.repeat(Effect.delay(check, Duration.millis(interval)), Schedule.forever), live)
    )

    const use = <A>(op: (client: Redis) => Promise<A>, fallback: Effect.Effect<A>): Effect.Effect<A> =>
      Effect.suspend(() =>
        state.up
          ? Effect.catchAll(Effect.tryPromise(() => op(client)), (error) => Effect.zipRight(markDown(error), fallback))
          : fallback
      )

    return {
      client,
      settings,
      endpoint,
      isUp: () => state.up,
      health: Effect.sync((): Health => ({
        status: state.up ? "up" : "down",
        since: state.since,
        endpoint,
        prefix: settings.prefix,
        ...(state.up || lastError === undefined ? {} : { lastError })
      })),
      use,
      onReconnect: (reconcile) => Effect.sync(() => void reconcilers.push(reconcile)),
      markDown
    }
  })
