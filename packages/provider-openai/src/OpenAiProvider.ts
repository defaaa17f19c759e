/**
 * The OpenAI Chat Completions adapter: provides `LanguageModel` for OpenAI and every
 * OpenAI-compatible server (vLLM, Ollama, Groq, Together, Azure-style deployments) by base URL.
 * The canonical model is the OpenAI shape, so requests go out as they are (with `stream` and
 * `stream_options.include_usage` set) and chunks come back without a Schema decode.
 *
 * @since 0.1.0
 */
import { AdapterKit as Kit, LanguageModel, UpstreamHttp } from "@breakwater/core"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as internal from "./internal/openai.js"

/**
 * The adapter's settings, with their defaults (the one place they are written).
 *
 * - `name` (`"openai"`): the upstream's name in errors, traces and metrics.
 * - `baseUrl` (`"https://api.openai.com/v1"`): origin and path prefix; `/chat/completions` is
 *   appended. For Azure, the deployment's URL (`https://X.openai.azure.com/openai/deployments/D`).
 * - `apiKey` (none): a `Redacted` key, sent as `Authorization: Bearer …` (Azure: `api-key`);
 *   local servers often need none.
 * - `azure` (none): `{ apiVersion }` switches to Azure's `api-key` header and `?api-version=`.
 * - `headers` (`{}`): extra headers on every request (`OpenAI-Organization`, …).
 * - `continuation` (`"user-instruction"`): how a broken stream is continued when stream-resume
 *   asks without forcing a strategy. OpenAI's API has no assistant prefill, so the default asks
 *   the model to go on after its partial answer — it usually does, but may rephrase or repeat a
 *   few words at the seam (stream-resume trims overlap). Servers that continue a final assistant
 *   message (vLLM) can use `"assistant-prefill"`, which is exact.
 * - `continueFinalMessage` (`false`): with a prefill, also send vLLM's
 *   `continue_final_message: true, add_generation_prompt: false`.
 * - `connections` (unbounded), `connectTimeout` (10 s, pool wait included), `headersTimeout`
 *   (120 s), `bodyTimeout` (300 s), `allowH2` (false), `maxResponseBytes` (32 MiB),
 *   `maxStreamBytes` (256 MiB): the transport (`UpstreamHttp.defaults`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const OpenAiOptions = Schema.Struct({
  name: Schema.optionalWith(Schema.NonEmptyString, { default: () => "openai" }),
  baseUrl: Schema.optionalWith(Schema.NonEmptyString, { default: () => "https://api.openai.com/v1" }),
  apiKey: Schema.optional(Schema.RedactedFromSelf(Schema.String)),
  azure: Schema.optional(Schema.Struct({ apiVersion: Schema.NonEmptyString })),
  headers: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.String }), { default: () => ({}) }),
  continuation: Schema.optionalWith(Schema.Literal("user-instruction", "assistant-prefill"), {
    default: () => "user-instruction" as const
  }),
  continueFinalMessage: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  ...Kit.transportFields
})

/**
 * The adapter's settings, resolved.
 *
 * @since 0.1.0
 * @category models
 */
export type OpenAiOptions = typeof OpenAiOptions.Type

/**
 * The adapter's settings as a user writes them (every field optional).
 *
 * @since 0.1.0
 * @category models
 */
export type OpenAiOptionsInput = typeof OpenAiOptions.Encoded

const decode = Schema.decodeUnknown(OpenAiOptions)

/**
 * Builds the adapter; its connection pool lives as long as the scope. Invalid options are a
 * defect (a programming error), reported with every problem by path.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: OpenAiOptionsInput = {}): Effect.Effect<LanguageModel.Service, never, Scope.Scope> =>
  Effect.gen(function*() {
    const settings = yield* Effect.orDie(decode(options, { errors: "all" }))
    const http = yield* UpstreamHttp.make(Kit.transportOptions(settings.name, settings.baseUrl, settings))
    return internal.makeService(settings, http)
  })

/**
 * The adapter as a layer providing `LanguageModel`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: OpenAiOptionsInput = {}): Layer.Layer<LanguageModel.LanguageModel> =>
  Layer.scoped(LanguageModel.LanguageModel, make(options))

/**
 * The key from the environment: `OPENAI_API_KEY`, as a `Redacted`.
 *
 * @since 0.1.0
 * @category config
 */
export const apiKeyConfig: Config.Config<Redacted.Redacted<string>> = Config.redacted("OPENAI_API_KEY")

/**
 * The adapter as a layer whose key comes from `OPENAI_API_KEY` (through Effect's `Config`, so
 * any `ConfigProvider` works).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Omit<OpenAiOptionsInput, "apiKey"> = {}
): Layer.Layer<LanguageModel.LanguageModel, ConfigError.ConfigError> =>
  Layer.scoped(LanguageModel.LanguageModel, Effect.flatMap(apiKeyConfig, (apiKey) => make({ ...options, apiKey })))
