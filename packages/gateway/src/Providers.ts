/**
 * The provider registry: which adapter serves an upstream's `provider` kind. The builder looks
 * each upstream's kind up in a registry (`builtIn`, merged with the caller's `providers`), so a
 * provider Breakwater has no adapter for plugs in by name, without a fork of the builder:
 *
 * ```ts
 * GatewayBuilder.make(config, { providers: { mistral: (upstream) => MyMistral.make(Providers.transportOf(upstream)) } })
 * ```
 *
 * A kind no registry entry serves is a config error at build, by path
 * (`upstreams.<name>.provider`).
 *
 * @since 0.2.0
 */
import { AnthropicProvider } from "@breakwater/provider-anthropic"
import { OpenAiProvider } from "@breakwater/provider-openai"
import type { LanguageModel } from "@breakwater/core"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import type { GatewayConfig } from "./GatewayConfig.js"

/**
 * What an adapter constructor is given: the upstream's name and config section, and its connect
 * timeout as the config resolves it (the upstream's, else `defaults`, else the baseline).
 *
 * @since 0.2.0
 * @category models
 */
export interface Upstream {
  readonly name: string
  readonly config: GatewayConfig["upstreams"][string]
  readonly connectTimeout: Duration.Duration
}

/**
 * An adapter constructor: builds the upstream's `LanguageModel` (its pool lives as long as the
 * scope).
 *
 * @since 0.2.0
 * @category models
 */
export type Provider = (upstream: Upstream) => Effect.Effect<LanguageModel.Service, never, Scope.Scope>

/**
 * Provider kind → adapter constructor.
 *
 * @since 0.2.0
 * @category models
 */
export type Registry = Readonly<Record<string, Provider>>

/**
 * The transport settings every adapter built on `AdapterKit` takes, from an upstream's config:
 * name, base URL, key, headers, continuation, pool and body limits, connect timeout.
 *
 * @since 0.2.0
 * @category constructors
 */
export const transportOf = (upstream: Upstream): {
  readonly name: string
  readonly baseUrl?: string
  readonly apiKey?: Redacted.Redacted<string>
  readonly headers?: Readonly<Record<string, string>>
  readonly continuation?: "assistant-prefill" | "user-instruction"
  readonly connections?: number
  readonly allowH2?: boolean
  readonly maxResponseBytes?: number
  readonly maxStreamBytes?: number
  readonly connectTimeout: Duration.Duration
} => {
  const c = upstream.config
  return {
    name: upstream.name,
    ...(c.baseUrl === undefined ? {} : { baseUrl: c.baseUrl }),
    ...(c.apiKey === undefined ? {} : { apiKey: c.apiKey }),
    ...(c.headers === undefined ? {} : { headers: c.headers }),
    ...(c.continuation === undefined ? {} : { continuation: c.continuation }),
    ...(c.connections === undefined ? {} : { connections: c.connections }),
    ...(c.http2 === undefined ? {} : { allowH2: c.http2 }),
    ...(c.maxResponseBytes === undefined ? {} : { maxResponseBytes: c.maxResponseBytes }),
    ...(c.maxStreamBytes === undefined ? {} : { maxStreamBytes: c.maxStreamBytes }),
    connectTimeout: upstream.connectTimeout
  }
}

/**
 * The OpenAI Chat Completions adapter (and every OpenAI-compatible server; `azureApiVersion`
 * for Azure-style endpoints).
 *
 * @since 0.2.0
 * @category providers
 */
export const openai: Provider = (upstream) =>
  OpenAiProvider.make({
    ...transportOf(upstream),
    ...(upstream.config.azureApiVersion === undefined ? {} : { azure: { apiVersion: upstream.config.azureApiVersion } })
  })

/**
 * The Anthropic Messages adapter.
 *
 * @since 0.2.0
 * @category providers
 */
export const anthropic: Provider = (upstream) => AnthropicProvider.make(transportOf(upstream))

/**
 * The providers every gateway knows: `openai` and `anthropic`. A caller's `providers` are
 * merged over these (and may replace them).
 *
 * @since 0.2.0
 * @category providers
 */
export const builtIn: Registry = { openai, anthropic }
