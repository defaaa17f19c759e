/**
 * A built gateway: the full model stack (dispatching by the client's model name) and what a host
 * needs around it — the models it serves, the client keys it accepts, its limits and readiness.
 * Hosts (`@breakwater/host-http`, `@breakwater/host-lambda`) take one of these.
 *
 * @since 0.1.0
 */
import type { LanguageModel, ModelError } from "@breakwater/core"
import type { StreamJournal } from "@breakwater/stream-resume"
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Redacted from "effect/Redacted"
import type * as Tracing from "./Tracing.js"

/**
 * A client (gateway) API key; provider keys never leave the server.
 *
 * @since 0.1.0
 * @category models
 */
export interface ClientKey {
  /** A name for logs and metrics (never the key itself). */
  readonly name: string
  readonly key: Redacted.Redacted<string>
  /** The client model names this key may use; all when absent. */
  readonly models?: ReadonlyArray<string> | undefined
  /** Requests this key may have running at once (overrides `ServerSettings.maxConcurrentPerKey`). */
  readonly maxConcurrent?: number | undefined
}

/**
 * Browser access: the origins allowed to call the gateway from a page (`"*"`: any).
 *
 * @since 0.1.0
 * @category models
 */
export interface CorsSettings {
  readonly origins: ReadonlyArray<string>
  /** How long a browser may cache a preflight answer, in seconds. */
  readonly maxAgeSeconds: number
}

/**
 * The state of one upstream, for readiness and operators.
 *
 * @since 0.1.0
 * @category models
 */
export interface UpstreamHealth {
  readonly name: string
  readonly provider: string
  /**
   * Circuit state: `closed`, `half-open` or `open`; with breakers per model, the best of its
   * models' (the upstream can serve while one of its deployments can).
   */
  readonly circuit: string
  /** The circuit of each model deployment the routes call on this upstream. */
  readonly models?: ReadonlyArray<{ readonly model: string; readonly circuit: string }> | undefined
}

/**
 * Readiness: ready while every route has at least one target (upstream, model) whose circuit is
 * not open.
 *
 * @since 0.1.0
 * @category models
 */
export interface Health {
  readonly ready: boolean
  readonly upstreams: ReadonlyArray<UpstreamHealth>
  /** Each route, with the targets (upstream, upstream model) it may call and their circuits. */
  readonly routes: ReadonlyArray<{
    readonly model: string
    readonly ready: boolean
    readonly targets?: ReadonlyArray<{ readonly upstream: string; readonly model: string; readonly circuit: string }> | undefined
  }>
  /** Shared state (Redis), when configured: `down` means degraded to local state, not unready. */
  readonly sharedState?: { readonly status: "up" | "down"; readonly since: number; readonly endpoint: string } | undefined
}

/**
 * Limits and behaviour of the host in front of the gateway (the `server` config section).
 *
 * @since 0.1.0
 * @category models
 */
export interface ServerSettings {
  readonly host: string
  readonly port: number
  /** Largest request body accepted, in bytes. */
  readonly maxBodyBytes: number
  /** Largest request header block accepted, in bytes. */
  readonly maxHeaderBytes: number
  /** Requests served at once; beyond it new requests get 503 at once. */
  readonly maxConcurrentRequests: number
  /** Requests one client key may have running at once (429 beyond it); no share when absent. */
  readonly maxConcurrentPerKey?: number | undefined
  /** Time a client has to send its headers and body (slow-loris bound), in ms. */
  readonly requestTimeoutMs: number
  /** On SIGTERM: time left to running streams before they are cut, in ms. */
  readonly shutdownGraceMs: number
  /** How long a stream may wait for its first content before the 200 is sent anyway, in ms. */
  readonly streamCommitTimeoutMs: number
  /** How long a stream keeps generating after its client went away, in ms (0: stop at once). */
  readonly detachGraceMs: number
}

/**
 * A built gateway.
 *
 * @since 0.1.0
 * @category models
 */
export interface Gateway {
  /** The whole stack: deadline, resume, retry, router, breakers, attempt timeouts, adapters. */
  readonly model: LanguageModel.Service
  /** The client model names served. */
  readonly models: ReadonlyArray<string>
  /** Client keys; empty means no authentication (hosts then listen on loopback only). */
  readonly keys: ReadonlyArray<ClientKey>
  readonly server: ServerSettings
  /** The operator key for `/metrics` and the full `/readyz` when client keys are configured. */
  readonly adminKey?: Redacted.Redacted<string> | undefined
  /** Browser origins allowed to call the gateway; none when absent. */
  readonly cors?: CorsSettings | undefined
  readonly health: Effect.Effect<Health>
  /** Provider keys, so that hosts can scrub them from anything leaving the server. */
  readonly secrets: ReadonlyArray<Redacted.Redacted<string>>
  /** Where hosts journal streams for client reconnects; hosts use memory when absent. */
  readonly journal?: StreamJournal.StreamJournal | undefined
  /** Request tracing (the config's `telemetry` section); absent when off. */
  readonly telemetry?: Tracing.Tracer | undefined
  /**
   * Token counting (`POST /v1/messages/count_tokens`) per client model whose route starts with an
   * Anthropic upstream: a Messages body in, the upstream's JSON answer out (the body's `model`
   * becomes the upstream's). Models without one cannot count tokens.
   */
  readonly tokenCounters?: ReadonlyMap<string, TokenCounter> | undefined
}

/**
 * Counts the input tokens of a Messages body at an upstream that can (Anthropic's
 * `count_tokens`), answering its JSON.
 *
 * @since 0.3.0
 * @category models
 */
export type TokenCounter = (body: Readonly<Record<string, unknown>>) => Effect.Effect<unknown, ModelError.ModelError>

/**
 * The gateway service tag.
 *
 * @since 0.1.0
 * @category tags
 */
export const Gateway: Context.Tag<Gateway, Gateway> = Context.GenericTag<Gateway>("@breakwater/gateway/Gateway")

/**
 * The former name of the `Gateway` tag.
 *
 * @deprecated Use `Gateway` (Effect's convention: the tag is named like its service).
 * @since 0.1.0
 * @category tags
 */
export const GatewayService: Context.Tag<Gateway, Gateway> = Gateway

/**
 * @deprecated Use `Gateway`.
 * @since 0.1.0
 * @category tags
 */
export type GatewayService = Gateway
