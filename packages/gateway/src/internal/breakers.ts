/**
 * The gateway's circuit breakers: one set per upstream (with its settings), shared by every
 * route that uses the upstream, keyed per model deployment (`upstream@model`) or per upstream
 * as its `scope` says. They use the `BreakerStore` in context when there is one (shared state
 * in Redis, where the key names the deployment too), else memory.
 */
import { CircuitBreaker } from "@breakwater/circuit-breaker"
import type { LanguageModel } from "@breakwater/core"
import * as Effect from "effect/Effect"
import type { BreakerSettings } from "./settings.js"

export interface Breakers {
  readonly wrap: (name: string, settings: BreakerSettings, model: LanguageModel.Service) => Effect.Effect<LanguageModel.Service>
  /** Synchronous, for the router: may this upstream be called now with this (upstream) model? */
  readonly isAvailable: (name: string, model: string) => boolean
  /** The state of the breaker that guards `model` on upstream `name`. */
  readonly state: (name: string, model: string) => Effect.Effect<CircuitBreaker.Phase>
}

export const make: Effect.Effect<Breakers> = Effect.sync(() => {
  const breakers = new Map<string, { readonly breaker: CircuitBreaker.CircuitBreaker; readonly scope: CircuitBreaker.KeyScope }>()
  return {
    wrap: (name, settings, model) => {
      const { enabled, scope, ...options } = settings
      if (!enabled) return Effect.succeed(model)
      return Effect.map(CircuitBreaker.make(options), (breaker) => {
        breakers.set(name, { breaker, scope })
        return CircuitBreaker.guard(breaker, model, { key: name, scope })
      })
    },
    isAvailable: (name, model) => {
      const b = breakers.get(name)
      return b === undefined || b.breaker.isAvailable(CircuitBreaker.keyOf(name, model, b.scope))
    },
    state: (name, model) => {
      const b = breakers.get(name)
      return b === undefined ? Effect.succeed("closed" as const) : b.breaker.state(CircuitBreaker.keyOf(name, model, b.scope))
    }
  }
})
