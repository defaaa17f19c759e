/**
 * Resolution of every setting: the route's (or upstream's) own value, else the config's
 * `defaults` section, else the baseline. Field by field, so a route that sets one retry field
 * keeps the baseline for the others; a nested record (the retry budget) the same way, one level
 * down; a union (a breaker's `window`) is replaced whole.
 */
import type * as Duration from "effect/Duration"
import { baseline } from "../Baseline.js"
import type { GatewayConfig } from "../GatewayConfig.js"

type UpstreamConfig = GatewayConfig["upstreams"][string]
type RouteConfig = GatewayConfig["routes"][string]

/** Later sources win; `undefined` fields never override. */
type Overlay<A> = { readonly [K in keyof A]?: A[K] | undefined }

const merge = <A extends object>(base: A, ...layers: ReadonlyArray<Overlay<A> | undefined>): A => {
  const out: Record<string, unknown> = { ...base as Record<string, unknown> }
  for (const layer of layers) {
    if (layer === undefined) continue
    for (const [key, value] of Object.entries(layer)) if (value !== undefined) out[key] = value
  }
  return out as A
}

export const server = (config: GatewayConfig) => merge(baseline.server, config.server)

export const deadline = (config: GatewayConfig, route: RouteConfig): Duration.Duration =>
  route.deadline ?? config.defaults?.deadline ?? baseline.deadline

export const routing = (route: RouteConfig) => ({
  strategy: route.strategy ?? baseline.routing.strategy,
  failover: route.failover ?? baseline.routing.failover,
  fallbackOn: route.fallbackOn ?? baseline.routing.fallbackOn,
  leastLatency: route.leastLatency ?? baseline.routing.leastLatency,
  maxAttempts: route.maxAttempts
})

export type RetrySettings = typeof baseline.retry

export const retry = (config: GatewayConfig, route: RouteConfig): RetrySettings => {
  const { budget: defaultBudget, ...defaults } = config.defaults?.retry ?? {}
  const { budget: routeBudget, ...own } = route.retry ?? {}
  return { ...merge(baseline.retry, defaults, own), budget: merge(baseline.retry.budget, defaultBudget, routeBudget) }
}

export type ResumeSettings = typeof baseline.resume

export const resume = (config: GatewayConfig, route: RouteConfig): ResumeSettings =>
  merge<ResumeSettings>(baseline.resume, config.defaults?.resume, route.resume)

export const timeouts = (config: GatewayConfig, upstream: UpstreamConfig) =>
  merge(baseline.timeouts, config.defaults?.timeouts, upstream.timeouts)

export type BreakerSettings = typeof baseline.breaker

export const breaker = (config: GatewayConfig, upstream: UpstreamConfig): BreakerSettings =>
  merge<BreakerSettings>(baseline.breaker, config.defaults?.breaker, upstream.breaker)
