/**
 * The Anthropic Messages API adapter: provides `LanguageModel` by translating the canonical
 * (OpenAI-shaped) request to a Messages request and the response, stream events and errors back.
 *
 * @since 0.1.0
 */
import { AdapterKit, LanguageModel, type ModelError, UpstreamHttp } from "@breakwater/core"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as internal from "./internal/anthropic.js"

/**
 * The adapter's settings, with their defaults (the one place they are written).
 *
 * - `name` (`"anthropic"`): the upstream's name in errors, traces and metrics.
 * - `baseUrl` (`"https://api.anthropic.com"`): origin and path prefix; `/v1/messages` is appended.
 * - `apiKey` (none): a `Redacted` key, sent as `x-api-key`.
 * - `version` (`"2023-06-01"`): the `anthropic-version` header.
 * - `headers` (`{}`): extra headers on every request (`anthropic-beta`, …).
 * - `maxTokens` (4096): `max_tokens` when the request sets neither `max_completion_tokens` nor
 *   `max_tokens` (Anthropic requires it).
 * - `continuation` (`"assistant-prefill"`): how a broken stream is continued when stream-resume
 *   asks without forcing a strategy. Anthropic continues a final assistant turn natively, so the
 *   prefill (right-trimmed) is exact. Models that refuse a prefill (Claude from the 4.6
 *   generation answer it with a 400) get the continuation again at once as a
 *   `"user-instruction"`, inside the same call (the 400 never reaches a breaker or retry), and
 *   the adapter remembers the model: its later continuations go as a user instruction directly.
 *   `"user-instruction"` uses that strategy from the start.
 * - `connections` (unbounded), `connectTimeout` (10 s, pool wait included), `headersTimeout`
 *   (120 s), `bodyTimeout` (300 s), `allowH2` (false), `maxResponseBytes` (32 MiB),
 *   `maxStreamBytes` (256 MiB): the transport (`UpstreamHttp.defaults`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const AnthropicOptions = Schema.Struct({
  name: Schema.optionalWith(Schema.NonEmptyString, { default: () => "anthropic" }),
  baseUrl: Schema.optionalWith(Schema.NonEmptyString, { default: () => "https://api.anthropic.com" }),
  apiKey: Schema.optional(Schema.RedactedFromSelf(Schema.String)),
  version: Schema.optionalWith(Schema.NonEmptyString, { default: () => "2023-06-01" }),
  headers: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.String }), { default: () => ({}) }),
  maxTokens: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 4096 }),
  continuation: Schema.optionalWith(Schema.Literal("assistant-prefill", "user-instruction"), {
    default: () => "assistant-prefill" as const
  }),
  ...AdapterKit.transportFields
})

/**
 * The adapter's settings, resolved.
 *
 * @since 0.1.0
 * @category models
 */
export type AnthropicOptions = typeof AnthropicOptions.Type

/**
 * The adapter's settings as a user writes them (every field optional).
 *
 * @since 0.1.0
 * @category models
 */
export type AnthropicOptionsInput = typeof AnthropicOptions.Encoded

const decode = Schema.decodeUnknown(AnthropicOptions)

/**
 * Builds the adapter; its connection pool lives as long as the scope. Invalid options are a
 * defect (a programming error), reported with every problem by path.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: AnthropicOptionsInput = {}): Effect.Effect<LanguageModel.Service, never, Scope.Scope> =>
  Effect.gen(function*() {
    const settings = yield* Effect.orDie(decode(options, { errors: "all" }))
    const http = yield* UpstreamHttp.make(AdapterKit.transportOptions(settings.name, settings.baseUrl, settings))
    return internal.makeService(settings, http)
  })

/**
 * Anthropic's token counting (`POST /v1/messages/count_tokens`): a Messages body (its `model`
 * the upstream's) sent as is, the upstream's answer (`{"input_tokens": n}`) returned as parsed
 * JSON, failures as the adapter's `ModelError`s.
 *
 * @since 0.3.0
 * @category models
 */
export type TokenCounter = (body: Readonly<Record<string, unknown>>) => Effect.Effect<unknown, ModelError.ModelError>

/**
 * Builds the token counter of an upstream, with the adapter's options (its own connection pool,
 * living as long as the scope).
 *
 * @since 0.3.0
 * @category constructors
 */
export const makeTokenCounter = (options: AnthropicOptionsInput = {}): Effect.Effect<TokenCounter, never, Scope.Scope> =>
  Effect.gen(function*() {
    const settings = yield* Effect.orDie(decode(options, { errors: "all" }))
    const http = yield* UpstreamHttp.make(AdapterKit.transportOptions(settings.name, settings.baseUrl, settings))
    return internal.makeTokenCounter(settings, http)
  })

/**
 * The adapter as a layer providing `LanguageModel`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: AnthropicOptionsInput = {}): Layer.Layer<LanguageModel.LanguageModel> =>
  Layer.scoped(LanguageModel.LanguageModel, make(options))

/**
 * The key from the environment: `ANTHROPIC_API_KEY`, as a `Redacted`.
 *
 * @since 0.1.0
 * @category config
 */
export const apiKeyConfig: Config.Config<Redacted.Redacted<string>> = Config.redacted("ANTHROPIC_API_KEY")

/**
 * The adapter as a layer whose key comes from `ANTHROPIC_API_KEY` (through Effect's `Config`,
 * so any `ConfigProvider` works).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Omit<AnthropicOptionsInput, "apiKey"> = {}
): Layer.Layer<LanguageModel.LanguageModel, ConfigError.ConfigError> =>
  Layer.scoped(LanguageModel.LanguageModel, Effect.flatMap(apiKeyConfig, (apiKey) => make({ ...options, apiKey })))
