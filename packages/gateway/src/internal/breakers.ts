/**
 * The gateway's circuit breakers: one per upstream (each with its own settings), shared by
 * every route that uses the upstream. They use the `BreakerStore` in context when there is one
 * (shared state in Redis), else memory.
 */
import { CircuitBreaker } from "@breakwater/circuit-breaker"
import type { LanguageModel } from "@breakwater/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { BreakerSettings } from "./settings.js"

export interface Breakers {
  readonly wrap: (name: string, settings: BreakerSettings, model: LanguageModel.Service) => Effect.Effect<LanguageModel.Service>
  /** Synchronous, for the router: may this upstream be called now? */
  readonly isAvailable: (name: string) => boolean
  readonly state: (name: string) => Effect.Effect<CircuitBreaker.Phase>
}

const toOptions = (s: BreakerSettings): CircuitBreaker.BreakerOptionsInput => ({
  window: s.window.type === "count"
    ? { kind: "count", size: s.window.size }
    : { kind: "time", duration: Duration.toMillis(s.window.duration) },
  minimumCalls: s.minimumCalls,
  failureRateThreshold: s.failureRateThreshold,
  slowCallDuration: Duration.toMillis(s.slowCallDuration),
  slowCallRateThreshold: s.slowCallRateThreshold,
  openDuration: Duration.toMillis(s.openDuration),
  maxOpenDuration: Duration.toMillis(s.maxOpenDuration),
  openDurationMultiplier: s.openBackoffFactor,
  halfOpenProbes: s.halfOpenProbes
})

export const make: Effect.Effect<Breakers> = Effect.sync(() => {
  const breakers = new Map<string, CircuitBreaker.CircuitBreaker>()
  return {
    wrap: (name, settings, model) => {
      if (!settings.enabled) return Effect.succeed(model)
      return Effect.map(CircuitBreaker.make(toOptions(settings)), (breaker) => {
        breakers.set(name, breaker)
        return breaker.wrap(name, model)
      })
    },
    isAvailable: (name) => breakers.get(name)?.isAvailable(name) ?? true,
    state: (name) => breakers.get(name)?.state(name) ?? Effect.succeed("closed" as const)
  }
})
