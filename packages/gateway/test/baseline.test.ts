/**
 * One source of defaults and names: a gateway route or upstream that says nothing gets each
 * policy's own Schema defaults, except the documented `Baseline.overrides`; each config section
 * carries its policy's option names; the old names are read as deprecated aliases.
 */
import { CircuitBreaker } from "@breakwater/circuit-breaker"
import { UpstreamHttp } from "@breakwater/core"
import { Baseline, ConfigLoader, GatewayConfig } from "@breakwater/gateway"
import { Retry, RetryBudget } from "@breakwater/retry"
import { Router } from "@breakwater/router"
import { StreamResume } from "@breakwater/stream-resume"
import { AttemptTimeout, Deadline } from "@breakwater/timeout"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Either, Logger, Schema } from "effect"
import * as Settings from "../src/internal/settings.js"

const defaultsOf = <A, I>(schema: Schema.Schema<A, I>): A => Schema.decodeUnknownSync(schema)({})

const bare = {
  upstreams: { up: { provider: "openai", models: ["chat"] } },
  routes: { chat: { upstreams: ["up"] } }
}

describe("the baseline is the policies' defaults", () => {
  it.effect("a route and an upstream that say nothing get each policy's Schema defaults, but for the documented overrides", () =>
    Effect.gen(function*() {
      const config = yield* ConfigLoader.fromObject(bare, {})
      const route = config.routes["chat"]!
      const upstream = config.upstreams["up"]!
      const { budget, retryOn: _, ...retry } = defaultsOf(Retry.RetryOptions)
      const { key: _key, ...budgetOptions } = budget === false ? defaultsOf(RetryBudget.BudgetOptions) : budget
      expect(Settings.retry(config, route)).toEqual({ enabled: true, ...retry, budget: budgetOptions, ...Baseline.overrides.retry })
      expect(Settings.timeouts(config, upstream)).toEqual({ ...defaultsOf(AttemptTimeout.AttemptTimeoutOptions), ...Baseline.overrides.timeouts })
      expect(Settings.breaker(config, upstream)).toEqual({ enabled: true, scope: "per-model", ...defaultsOf(CircuitBreaker.BreakerOptions) })
      expect(Settings.resume(config, route)).toEqual(defaultsOf(StreamResume.ResumeOptions))
      expect(Settings.deadline(config, route)).toEqual(defaultsOf(Deadline.DeadlineOptions).total)
      const routing = defaultsOf(Router.RoutingOptions)
      expect(Settings.routing(route)).toEqual({
        strategy: routing.strategy,
        fallbackOn: routing.fallbackOn,
        leastLatency: routing.leastLatency,
        failover: "after-retries",
        maxAttempts: undefined
      })
    }))

  it("the overrides are the two documented ones, and each really differs from the library's default", () => {
    expect(Baseline.overrides).toEqual({ retry: { maxRetryAfter: Duration.seconds(30) }, timeouts: { connect: Duration.seconds(5) } })
    expect(Duration.toMillis(defaultsOf(Retry.RetryOptions).maxRetryAfter)).not.toBe(30_000)
    expect(Duration.toMillis(UpstreamHttp.defaults.connectTimeout)).not.toBe(5_000)
  })

  it.effect("a setting falls through field by field: route, then defaults, then the baseline (the budget one level down)", () =>
    Effect.gen(function*() {
      const config = yield* ConfigLoader.fromObject({
        ...bare,
        routes: { chat: { upstreams: ["up"], retry: { maxRetries: 5, budget: { ratio: 0.5 } } } },
        defaults: { retry: { maxRetries: 1, baseDelay: "1 second", budget: { minRetriesPerSecond: 3 } } }
      }, {})
      const retry = Settings.retry(config, config.routes["chat"]!)
      expect(retry.maxRetries).toBe(5)
      expect(Duration.toMillis(retry.baseDelay)).toBe(1_000)
      expect(retry.maxRetryAfter).toEqual(Baseline.overrides.retry.maxRetryAfter)
      expect(retry.budget).toEqual({ ...Baseline.baseline.retry.budget, ratio: 0.5, minRetriesPerSecond: 3 })
    }))
})

describe("one name per setting", () => {
  const keysOf = (fields: object) => Object.keys(fields).sort()

  it("each policy section of the config has its policy's option names (less functions and what the gateway sets)", () => {
    const breaker = keysOf(CircuitBreaker.BreakerOptions.fields)
    expect(keysOf(GatewayConfig.BreakerConfig.fields)).toEqual([...breaker, "enabled", "scope"].sort())
    expect(keysOf(GatewayConfig.ResumeConfig.fields)).toEqual(keysOf(StreamResume.ResumeOptions.fields))
    expect(keysOf(GatewayConfig.AttemptTimeoutConfig.fields)).toEqual([...keysOf(AttemptTimeout.AttemptTimeoutOptions.fields), "connect"].sort())
    expect(keysOf(GatewayConfig.RetryConfig.fields)).toEqual(
      [...keysOf(Retry.RetryOptions.fields).filter((k) => k !== "retryOn"), "enabled"].sort()
    )
    expect(keysOf(GatewayConfig.RetryBudgetConfig.fields)).toEqual(keysOf(RetryBudget.BudgetOptions.fields).filter((k) => k !== "key"))
    expect(GatewayConfig.HedgingConfig).toBe(Router.HedgingOptions)
  })

  it.effect("the policies' names are accepted: window.kind, openDurationMultiplier, toolStreaming, budget.ratio", () =>
    Effect.gen(function*() {
      const config = yield* ConfigLoader.fromObject({
        ...bare,
        upstreams: { up: { provider: "openai", models: ["chat"], breaker: { window: { kind: "time", duration: "20 seconds" }, openDurationMultiplier: 3 } } },
        routes: {
          chat: {
            upstreams: ["up"],
            resume: { toolStreaming: "pass-through" },
            retry: { budget: { ratio: 0.3 } },
            hedging: { delay: "2 seconds", budget: { ratio: 0.05 } }
          }
        }
      }, {})
      const breaker = Settings.breaker(config, config.upstreams["up"]!)
      expect(breaker.window).toEqual({ kind: "time", duration: Duration.seconds(20) })
      expect(breaker.openDurationMultiplier).toBe(3)
      expect(Settings.resume(config, config.routes["chat"]!).toolStreaming).toBe("pass-through")
      expect(Settings.retry(config, config.routes["chat"]!).budget.ratio).toBe(0.3)
      expect(config.routes["chat"]!.hedging?.budget.ratio).toBe(0.05)
    }))

  it.effect("the old names are read as deprecated aliases, with a warning each", () =>
    Effect.gen(function*() {
      const warnings: Array<unknown> = []
      const logger = Logger.make(({ logLevel, message }) => {
        if (logLevel._tag === "Warning") warnings.push(message)
      })
      const config = yield* ConfigLoader.fromObject({
        ...bare,
        upstreams: { up: { provider: "openai", models: ["chat"], breaker: { window: { type: "count", size: 7 }, openBackoffFactor: 4 } } },
        routes: {
          chat: {
            upstreams: ["up"],
            resume: { toolCalls: "pass-through" },
            retry: { budgetRatio: 0.4, budgetMinPerSecond: 2 },
            hedging: { delay: "2 seconds", budgetRatio: 0.2 }
          }
        }
      }, {}).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
      const breaker = Settings.breaker(config, config.upstreams["up"]!)
      expect(breaker.window).toEqual({ kind: "count", size: 7 })
      expect(breaker.openDurationMultiplier).toBe(4)
      expect(Settings.resume(config, config.routes["chat"]!).toolStreaming).toBe("pass-through")
      expect(Settings.retry(config, config.routes["chat"]!).budget).toMatchObject({ ratio: 0.4, minRetriesPerSecond: 2 })
      expect(config.routes["chat"]!.hedging?.budget.ratio).toBe(0.2)
      expect(warnings.flat()).toEqual([
        "config: upstreams.up.breaker.openBackoffFactor is deprecated; write upstreams.up.breaker.openDurationMultiplier",
        "config: upstreams.up.breaker.window.type is deprecated; write upstreams.up.breaker.window.kind",
        "config: routes.chat.retry.budgetRatio is deprecated; write routes.chat.retry.budget.ratio",
        "config: routes.chat.retry.budgetMinPerSecond is deprecated; write routes.chat.retry.budget.minRetriesPerSecond",
        "config: routes.chat.resume.toolCalls is deprecated; write routes.chat.resume.toolStreaming",
        "config: routes.chat.hedging.budgetRatio is deprecated; write routes.chat.hedging.budget.ratio"
      ])
    }))

  it.effect("a setting written under both names is an issue at the old name", () =>
    Effect.gen(function*() {
      const result = yield* Effect.either(ConfigLoader.fromObject({
        ...bare,
        defaults: { resume: { toolCalls: "buffer", toolStreaming: "pass-through" } }
      }, {}))
      expect(Either.isLeft(result) && result.left.issues).toEqual([
        { path: "defaults.resume.toolCalls", message: "the old name of defaults.resume.toolStreaming: write only defaults.resume.toolStreaming" }
      ])
    }))
})
