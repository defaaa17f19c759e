/**
 * The client-facing API semantics every host shares, whatever its transport (Node HTTP, Lambda):
 * client-key authentication, request validation (size, UTF-8, JSON, schema, model, permissions),
 * and the OpenAI error shape with the right status, `x-should-retry: false` and `retry-after`.
 * Nothing that leaves the server carries a provider key.
 *
 * @since 0.1.0
 */
import { AdapterKit, ChatCompletion, ModelError, type RequestContext } from "@breakwater/core"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { createHash, randomUUID, timingSafeEqual } from "node:crypto"
import type { ClientKey, CorsSettings, Gateway, Health } from "./Gateway.js"
import * as MessagesApi from "./MessagesApi.js"

/**
 * The mark every `ApiError` carries (`apiError` puts it there), by which `isApiError` knows one.
 *
 * @since 0.3.0
 * @category symbols
 */
export const ApiErrorTypeId: unique symbol = Symbol.for("@breakwater/gateway/ClientApi/ApiError")

/**
 * The type of `ApiErrorTypeId`.
 *
 * @since 0.3.0
 * @category symbols
 */
export type ApiErrorTypeId = typeof ApiErrorTypeId

/**
 * An error response in the OpenAI error shape. Made with `apiError` (or one of this module's
 * errors, or a spread of one): the mark it carries is what `isApiError` looks for.
 *
 * @since 0.1.0
 * @category models
 */
export interface ApiError {
  readonly [ApiErrorTypeId]: ApiErrorTypeId
  readonly status: number
  readonly message: string
  readonly type: string
  readonly code: string | null
  readonly param?: string | null | undefined
  readonly retryAfterSeconds?: number | undefined
  /** Only local overload is worth a client retry: the gateway already retried everything else. */
  readonly shouldRetry?: boolean | undefined
  /** The methods a 405 names in its `Allow` header. */
  readonly allow?: string | undefined
}

/**
 * An `ApiError` of these fields.
 *
 * @since 0.3.0
 * @category constructors
 */
export const apiError = (fields: Omit<ApiError, ApiErrorTypeId>): ApiError => ({ [ApiErrorTypeId]: ApiErrorTypeId, ...fields })

/**
 * Whether a value is an `ApiError` (as opposed to the client key an authentication answers, a
 * sequence number, or any other object, whatever its fields): it carries `ApiErrorTypeId`.
 *
 * @since 0.2.0
 * @category guards
 */
export const isApiError = (u: unknown): u is ApiError =>
  typeof u === "object" && u !== null && (u as { readonly [ApiErrorTypeId]?: unknown })[ApiErrorTypeId] === ApiErrorTypeId

/**
 * Removes every configured secret (as is, URL-encoded or base64), and anything shaped like a
 * provider key, from text about to leave the server (a response body or a log line).
 *
 * @since 0.1.0
 * @category security
 */
export const scrub = (text: string, secrets: ReadonlyArray<string>): string => AdapterKit.scrubSecrets(text, secrets, 4)

/**
 * An error's text for the client: the names of upstream entries are the operator's (logs carry
 * them), so the `name: ` prefix the adapters put on upstream messages is removed, and the
 * gateway's own messages about an upstream are said without its name.
 */
const clientMessage = (error: ModelError.ModelError, secrets: ReadonlyArray<string>): string => {
  const upstream = error.upstream
  switch (error._tag) {
    // An upstream auth failure's text can quote part of the provider key: never pass it on.
    case "UpstreamAuth":
      return "the upstream rejected the gateway's credentials"
    case "CircuitOpen":
      if (upstream !== undefined) return "the upstream serving this model is failing and not called for now (circuit open)"
      break
    case "CapacityExceeded":
      if (upstream !== undefined) return "the upstream serving this model is at its concurrency limit"
      break
  }
  let text = error.message
  if (upstream !== undefined) {
    const prefix = `${upstream}: `
    while (text.startsWith(prefix)) text = text.slice(prefix.length)
  }
  return scrub(text, secrets)
}

/**
 * The client-facing form of a model error.
 *
 * @since 0.1.0
 * @category errors
 */
export const fromModelError = (
  error: ModelError.ModelError,
  retryAfterMillis: number | undefined,
  secrets: ReadonlyArray<string>
): ApiError => {
  const given = ModelError.retryAfterOf(error)
  const delay = retryAfterMillis ?? (given === undefined ? undefined : Duration.toMillis(given))
  return apiError({
    status: error.httpStatus,
    message: clientMessage(error, secrets),
    type: error.errorType,
    code: error._tag === "Timeout" ? `timeout_${error.phase}` : (error.code ?? error._tag),
    retryAfterSeconds: delay === undefined ? undefined : Math.max(1, Math.ceil(delay / 1000)),
    shouldRetry: false
  })
}

/**
 * The client-facing form of any failure of a model call (a defect becomes a plain 500).
 *
 * @since 0.1.0
 * @category errors
 */
export const fromCause = (cause: Cause.Cause<unknown>, trace: RequestContext.RequestTrace, secrets: ReadonlyArray<string>): ApiError => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure) && ModelError.isModelError(failure.value)) return fromModelError(failure.value, trace.retryAfterMillis, secrets)
  return apiError({ status: 500, message: "internal gateway error", type: "server_error", code: "internal_error", shouldRetry: false })
}

/**
 * The JSON body of an error response.
 *
 * @since 0.1.0
 * @category encoding
 */
export const errorBody = (error: ApiError, requestId: string): string =>
  JSON.stringify({ error: { message: error.message, type: error.type, param: error.param ?? null, code: error.code, request_id: requestId } })

/**
 * The headers of an error response; with `trace` (a call was made), the trace headers too.
 *
 * @since 0.1.0
 * @category encoding
 */
export const errorHeaders = (error: ApiError, requestId: string, trace?: RequestContext.RequestTrace | undefined): Record<string, string> => {
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "x-request-id": requestId,
    "x-should-retry": error.shouldRetry === true ? "true" : "false"
  }
  if (error.retryAfterSeconds !== undefined) headers["retry-after"] = String(error.retryAfterSeconds)
  if (error.allow !== undefined) headers["allow"] = error.allow
  if (trace !== undefined) addTraceHeaders(headers, trace)
  return headers
}

/**
 * Adds the trace headers to a response's headers (no intermediate object).
 *
 * @since 0.2.0
 * @category encoding
 */
export const addTraceHeaders = (headers: Record<string, string | number>, trace: RequestContext.RequestTrace): void => {
  headers["x-breakwater-attempts"] = String(trace.attempts)
  if (trace.upstream !== undefined) headers["x-breakwater-upstream"] = trace.upstream
  if (trace.resumes > 0) headers["x-breakwater-resumes"] = String(trace.resumes)
}

/**
 * The headers that say which upstream served and how many attempts it took.
 *
 * @since 0.1.0
 * @category encoding
 */
export const traceHeaders = (trace: RequestContext.RequestTrace): Record<string, string> => {
  const headers: Record<string, string> = {}
  addTraceHeaders(headers, trace)
  return headers
}

/**
 * The headers of a JSON answer (`content-type`, `x-request-id`), with the trace headers when a
 * call was made.
 *
 * @since 0.2.0
 * @category encoding
 */
export const jsonHeaders = (requestId: string, trace?: RequestContext.RequestTrace | undefined): Record<string, string> => {
  const headers: Record<string, string> = { "content-type": "application/json", "x-request-id": requestId }
  if (trace !== undefined) addTraceHeaders(headers, trace)
  return headers
}

/**
 * The 404 for a path no route serves.
 *
 * @since 0.2.0
 * @category errors
 */
export const noRoute = (method: string, path: string): ApiError => apiError({
  status: 404,
  message: `no route for ${method} ${path}`,
  type: "invalid_request_error",
  code: "not_found"
})

/**
 * The 405 for a method a route does not serve, naming the ones it does.
 *
 * @since 0.2.0
 * @category errors
 */
export const methodNotAllowed = (method: string, path: string, allow: string): ApiError => apiError({
  status: 405,
  message: `${method} is not allowed on ${path}`,
  type: "invalid_request_error",
  code: "method_not_allowed",
  allow
})

/**
 * A 400 in the OpenAI shape.
 *
 * @since 0.1.0
 * @category errors
 */
export const badRequest = (message: string, code: string | null = null, param: string | null = null): ApiError => apiError({
  status: 400,
  message,
  type: "invalid_request_error",
  code,
  param
})

/**
 * The 400 for token counting on a model no Anthropic upstream starts the route of: only
 * Anthropic's API counts tokens, so the gateway does not guess.
 *
 * @since 0.3.0
 * @category errors
 */
export const countTokensUnsupported = (model: string): ApiError => apiError({
  status: 400,
  message: `count_tokens needs an Anthropic upstream: the route of \`${model}\` does not start with one`,
  type: "invalid_request_error",
  code: "count_tokens_unsupported",
  param: "model"
})

/**
 * The 401 for a missing or wrong client key.
 *
 * @since 0.1.0
 * @category errors
 */
export const unauthorized: ApiError = apiError({
  status: 401,
  message: "missing or invalid API key (send `Authorization: Bearer <gateway key>`, or `x-api-key: <gateway key>` on /v1/messages)",
  type: "invalid_request_error",
  code: "invalid_api_key"
})

const validRequestId = /^[A-Za-z0-9._:-]{1,128}$/

/**
 * The client's `x-request-id` when it is sane, else a new one.
 *
 * @since 0.1.0
 * @category utils
 */
export const requestIdFrom = (given: string | ReadonlyArray<string> | undefined): string =>
  typeof given === "string" && validRequestId.test(given) ? given : randomUUID()

/**
 * Checks client keys: SHA-256 digests compared in constant time against every key.
 *
 * @since 0.1.0
 * @category models
 */
export interface Authenticator {
  readonly enabled: boolean
  /** The key an `Authorization` header names, or undefined. */
  readonly check: (authorization: string | undefined) => ClientKey | undefined
  /** The key a bare key (an `x-api-key` header) is, or undefined. */
  readonly checkKey: (key: string | undefined) => ClientKey | undefined
}

const digest = (value: string) => createHash("sha256").update(value).digest()

/**
 * Creates the authenticator for a set of client keys.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeAuthenticator = (keys: ReadonlyArray<ClientKey>): Authenticator => {
  const table = keys.map((key) => ({ key, digest: digest(Redacted.value(key.key)) }))
  const checkKey = (key: string | undefined): ClientKey | undefined => {
    if (key === undefined || key.length === 0) return undefined
    const candidate = digest(key)
    let found: ClientKey | undefined
    // No early exit: timing says nothing about which key matched.
    for (const entry of table) if (timingSafeEqual(entry.digest, candidate)) found = entry.key
    return found
  }
  return {
    enabled: table.length > 0,
    check: (authorization) => {
      if (authorization === undefined) return undefined
      const match = /^Bearer\s+(.+)$/i.exec(authorization.trim())
      return match === null ? undefined : checkKey(match[1]!)
    },
    checkKey
  }
}

/**
 * What a host needs, prepared once per gateway.
 *
 * @since 0.1.0
 * @category models
 */
export interface Api {
  readonly gateway: Gateway
  readonly auth: Authenticator
  /** True when the `Authorization` header carries the admin key (always false without one). */
  readonly isAdmin: (authorization: string | undefined) => boolean
  readonly secrets: ReadonlyArray<string>
  /** `GET /v1/models` body: every model (no keys configured). */
  readonly modelsBody: string
  /** `GET /v1/models` body for a client key: only the models it may use. */
  readonly modelsBodyFor: (key: ClientKey | undefined) => string
  /**
   * `GET /readyz` body and status. With client keys configured, the detail (upstreams, routes,
   * shared state) is for the admin key only; everyone else learns ready or not.
   */
  readonly readiness: (health: Health | undefined, draining: boolean, authorization: string | undefined) => { readonly status: number; readonly body: string }
  /** Whether `/metrics` may be read with this `Authorization` (open without client keys). */
  readonly metricsAllowed: (authorization: string | undefined) => boolean
  /** Validates a chat request body; the key is the authenticated client key, if any. */
  readonly parseChat: (
    body: string,
    key: ClientKey | undefined
  ) => Either.Either<ChatCompletion.ChatRequest, ApiError>
  /** Whether a key may use a model: `undefined`, or the 404 (not served) / 403 (not the key's). */
  readonly permit: (model: string, key: ClientKey | undefined) => ApiError | undefined
  /** Validates an Anthropic Messages request body (`MessagesApi.parseRequest`), then as `parseChat`. */
  readonly parseMessages: (
    body: string,
    key: ClientKey | undefined
  ) => Either.Either<ChatCompletion.ChatRequest, ApiError>
}

/**
 * Prepares the client API of a gateway.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (gateway: Gateway): Api => {
  const models = new Set(gateway.models)
  const listOf = (ids: ReadonlyArray<string>) =>
    JSON.stringify({ object: "list", data: ids.map((id) => ({ id, object: "model", created: 0, owned_by: "breakwater" })) })
  const modelsBody = listOf(gateway.models)
  const perKey = new Map<ClientKey, string>()
  for (const key of gateway.keys) if (key.models !== undefined) perKey.set(key, listOf(gateway.models.filter((m) => key.models!.includes(m))))
  const admin = gateway.adminKey === undefined ? undefined : makeAuthenticator([{ name: "admin", key: gateway.adminKey }])
  const keyed = gateway.keys.length > 0
  const isAdmin = (authorization: string | undefined) => admin?.check(authorization) !== undefined
  /** A decoded request's model: one of the gateway's, and one the key may use. */
  const permit = (model: string, key: ClientKey | undefined): ApiError | undefined => {
    if (!models.has(model)) {
      return apiError({
        status: 404,
        message: `the model \`${model}\` does not exist on this gateway; see GET /v1/models`,
        type: "invalid_request_error",
        code: "model_not_found",
        param: "model"
      })
    }
    if (key?.models !== undefined && !key.models.includes(model)) {
      return apiError({
        status: 403,
        message: `this API key may not use the model \`${model}\``,
        type: "permission_error",
        code: "model_not_permitted",
        param: "model"
      })
    }
    return undefined
  }
  const permitted = (request: ChatCompletion.ChatRequest, key: ClientKey | undefined): Either.Either<ChatCompletion.ChatRequest, ApiError> => {
    const refused = permit(request.model, key)
    return refused === undefined ? Either.right(request) : Either.left(refused)
  }
  return {
    gateway,
    auth: makeAuthenticator(gateway.keys),
    isAdmin,
    secrets: gateway.secrets.map(Redacted.value),
    modelsBody,
    modelsBodyFor: (key) => (key === undefined ? modelsBody : perKey.get(key) ?? modelsBody),
    readiness: (health, draining, authorization) => {
      const ready = health !== undefined && health.ready && !draining
      const status = ready ? "ready" : "not_ready"
      const detail = !keyed || isAdmin(authorization)
      return { status: ready ? 200 : 503, body: JSON.stringify(detail ? { status, ...health } : { status }) }
    },
    metricsAllowed: (authorization) => !keyed || isAdmin(authorization),
    permit,
    parseChat: (body, key) => {
      let parsed: unknown
      try {
        parsed = JSON.parse(body)
      } catch (error) {
        return Either.left(badRequest(`request body is not valid JSON: ${(error as Error).message}`, "invalid_json"))
      }
      const decoded = ChatCompletion.decodeChatRequest(parsed)
      if (Either.isLeft(decoded)) return Either.left(badRequest(`invalid request: ${decoded.left}`, "invalid_request"))
      return permitted(decoded.right, key)
    },
    parseMessages: (body, key) => {
      const decoded = MessagesApi.parseRequest(body)
      if (Either.isLeft(decoded)) return Either.left(badRequest(decoded.left.message, "invalid_request"))
      return permitted(decoded.right, key)
    }
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true })

/**
 * Decodes a request body as strict UTF-8 (invalid bytes are a 400, never silently replaced).
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeUtf8 = (bytes: Uint8Array): Either.Either<string, ApiError> => {
  try {
    return Either.right(utf8.decode(bytes))
  } catch {
    return Either.left(badRequest("request body is not valid UTF-8", "invalid_body"))
  }
}

/**
 * The 413 for a body over the limit.
 *
 * @since 0.1.0
 * @category errors
 */
export const tooLarge = (limit: number): ApiError => apiError({
  status: 413,
  message: `request body exceeds ${limit} bytes`,
  type: "invalid_request_error",
  code: "request_too_large"
})

/**
 * The 415 for a request body that is not declared `application/json`. A browser page can send a
 * cross-origin POST without a preflight only as `text/plain`, form or multipart: requiring JSON
 * takes that path away, whatever the key setup.
 *
 * @since 0.1.0
 * @category errors
 */
export const unsupportedMediaType: ApiError = apiError({
  status: 415,
  message: "request bodies must be JSON: send `Content-Type: application/json`",
  type: "invalid_request_error",
  code: "unsupported_media_type"
})

/**
 * Whether a `Content-Type` header declares JSON (`application/json`, any parameters).
 *
 * @since 0.1.0
 * @category validation
 */
export const isJsonContentType = (contentType: string | undefined): boolean =>
  contentType !== undefined && contentType.split(";")[0]!.trim().toLowerCase() === "application/json"

/**
 * The 401 for the operator endpoints when the admin key is missing or wrong.
 *
 * @since 0.1.0
 * @category errors
 */
export const adminRequired: ApiError = apiError({
  status: 401,
  message: "this endpoint needs the gateway's admin key (send `Authorization: Bearer <admin key>`)",
  type: "invalid_request_error",
  code: "admin_key_required"
})

const loopbackNames = new Set(["localhost", "127.0.0.1", "[::1]", "::1"])

/**
 * Whether a `Host` header names this gateway when it serves without client keys: a loopback name
 * or the configured listen host, any port. Anything else is a DNS-rebinding page that resolved
 * its own name to 127.0.0.1 to read the answers.
 *
 * @since 0.1.0
 * @category security
 */
export const isLocalHost = (host: string | undefined, listenHost: string | undefined): boolean => {
  if (host === undefined) return false
  const name = (host.startsWith("[") ? host.slice(0, host.indexOf("]") + 1) : host.replace(/:\d*$/, "")).toLowerCase()
  if (loopbackNames.has(name)) return true
  if (listenHost === undefined || listenHost === "" || listenHost === "0.0.0.0" || listenHost === "::") return false
  const listen = listenHost.toLowerCase()
  return name === listen || name === `[${listen}]`
}

/**
 * The 403 for a `Host` that is not this gateway's (keyless mode).
 *
 * @since 0.1.0
 * @category errors
 */
export const hostNotAllowed: ApiError = apiError({
  status: 403,
  message: "this gateway has no client keys and answers loopback host names only (localhost, 127.0.0.1, [::1])",
  type: "invalid_request_error",
  code: "host_not_allowed"
})

/**
 * The 403 for a browser request from an origin the `cors` section does not list.
 *
 * @since 0.1.0
 * @category errors
 */
export const originNotAllowed: ApiError = apiError({
  status: 403,
  message: "requests from this origin are not allowed (see the gateway's `cors` section)",
  type: "invalid_request_error",
  code: "origin_not_allowed"
})

/**
 * Whether `cors` allows a request's `Origin`.
 *
 * @since 0.1.0
 * @category security
 */
export const originAllowed = (cors: CorsSettings | undefined, origin: string): boolean =>
  cors !== undefined && (cors.origins.includes("*") || cors.origins.includes(origin))

/**
 * The response headers that let an allowed origin's page read an answer (and, for a preflight,
 * send the request).
 *
 * @since 0.1.0
 * @category encoding
 */
export const corsHeaders = (cors: CorsSettings, origin: string, preflight: boolean): Record<string, string> => ({
  "access-control-allow-origin": origin,
  vary: "Origin",
  ...(preflight
    ? {
      "access-control-allow-methods": "GET, POST, DELETE, OPTIONS",
      "access-control-allow-headers": "authorization, content-type, idempotency-key, last-event-id, x-request-id",
      "access-control-max-age": String(cors.maxAgeSeconds)
    }
    : {
      "access-control-expose-headers": "x-request-id, x-breakwater-stream-id, x-breakwater-upstream, x-breakwater-attempts, x-breakwater-resumes, retry-after, x-should-retry"
    })
})

/**
 * The 429 for a client key at its share of the concurrency limit.
 *
 * @since 0.1.0
 * @category errors
 */
export const keyBusy = (limit: number): ApiError => apiError({
  status: 429,
  message: `this API key already has ${limit} requests running, its share of the gateway; retry when one ends`,
  type: "rate_limit_error",
  code: "key_concurrency_limit",
  retryAfterSeconds: 1,
  shouldRetry: true
})

/**
 * A key's concurrency share: its own `maxConcurrent`, else the server's `maxConcurrentPerKey`.
 *
 * @since 0.1.0
 * @category utils
 */
export const concurrencyShareOf = (gateway: Gateway, key: ClientKey | undefined): number | undefined =>
  key === undefined ? undefined : key.maxConcurrent ?? gateway.server.maxConcurrentPerKey
