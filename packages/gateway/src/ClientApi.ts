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
import type { ClientKey, Gateway } from "./Gateway.js"

/**
 * An error response in the OpenAI error shape.
 *
 * @since 0.1.0
 * @category models
 */
export interface ApiError {
  readonly status: number
  readonly message: string
  readonly type: string
  readonly code: string | null
  readonly param?: string | null | undefined
  readonly retryAfterSeconds?: number | undefined
  /** Only local overload is worth a client retry: the gateway already retried everything else. */
  readonly shouldRetry?: boolean | undefined
}

/**
 * Removes every configured secret (as is, URL-encoded or base64), and anything shaped like a
 * provider key, from text about to leave the server (a response body or a log line).
 *
 * @since 0.1.0
 * @category security
 */
export const scrub = (text: string, secrets: ReadonlyArray<string>): string => AdapterKit.scrubSecrets(text, secrets, 4)

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
  // An upstream auth failure's text can quote part of the provider key: never pass it on.
  const message = error._tag === "UpstreamAuth"
    ? `upstream${error.upstream === undefined ? "" : ` ${error.upstream}`} rejected the gateway's credentials`
    : scrub(error.message, secrets)
  return {
    status: error.httpStatus,
    message,
    type: error.errorType,
    code: error._tag === "Timeout" ? `timeout_${error.phase}` : (error.code ?? error._tag),
    retryAfterSeconds: delay === undefined ? undefined : Math.max(1, Math.ceil(delay / 1000)),
    shouldRetry: false
  }
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
  return { status: 500, message: "internal gateway error", type: "server_error", code: "internal_error", shouldRetry: false }
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
 * The headers of an error response.
 *
 * @since 0.1.0
 * @category encoding
 */
export const errorHeaders = (error: ApiError, requestId: string): Record<string, string> => {
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "x-request-id": requestId,
    "x-should-retry": error.shouldRetry === true ? "true" : "false"
  }
  if (error.retryAfterSeconds !== undefined) headers["retry-after"] = String(error.retryAfterSeconds)
  return headers
}

/**
 * The headers that say which upstream served and how many attempts it took.
 *
 * @since 0.1.0
 * @category encoding
 */
export const traceHeaders = (trace: RequestContext.RequestTrace): Record<string, string> => {
  const headers: Record<string, string> = { "x-breakwater-attempts": String(trace.attempts) }
  if (trace.upstream !== undefined) headers["x-breakwater-upstream"] = trace.upstream
  if (trace.resumes > 0) headers["x-breakwater-resumes"] = String(trace.resumes)
  return headers
}

/**
 * A 400 in the OpenAI shape.
 *
 * @since 0.1.0
 * @category errors
 */
export const badRequest = (message: string, code: string | null = null, param: string | null = null): ApiError => ({
  status: 400,
  message,
  type: "invalid_request_error",
  code,
  param
})

/**
 * The 401 for a missing or wrong client key.
 *
 * @since 0.1.0
 * @category errors
 */
export const unauthorized: ApiError = {
  status: 401,
  message: "missing or invalid API key (send `Authorization: Bearer <gateway key>`)",
  type: "invalid_request_error",
  code: "invalid_api_key"
}

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
  return {
    enabled: table.length > 0,
    check: (authorization) => {
      if (authorization === undefined) return undefined
      const match = /^Bearer\s+(.+)$/i.exec(authorization.trim())
      if (match === null) return undefined
      const candidate = digest(match[1]!)
      let found: ClientKey | undefined
      // No early exit: timing says nothing about which key matched.
      for (const entry of table) if (timingSafeEqual(entry.digest, candidate)) found = entry.key
      return found
    }
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
  readonly secrets: ReadonlyArray<string>
  /** `GET /v1/models` body. */
  readonly modelsBody: string
  /** Validates a chat request body; the key is the authenticated client key, if any. */
  readonly parseChat: (
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
  return {
    gateway,
    auth: makeAuthenticator(gateway.keys),
    secrets: gateway.secrets.map(Redacted.value),
    modelsBody: JSON.stringify({
      object: "list",
      data: gateway.models.map((id) => ({ id, object: "model", created: 0, owned_by: "breakwater" }))
    }),
    parseChat: (body, key) => {
      let parsed: unknown
      try {
        parsed = JSON.parse(body)
      } catch (error) {
        return Either.left(badRequest(`request body is not valid JSON: ${(error as Error).message}`, "invalid_json"))
      }
      const decoded = ChatCompletion.decodeChatRequest(parsed)
      if (Either.isLeft(decoded)) return Either.left(badRequest(`invalid request: ${decoded.left}`, "invalid_request"))
      const request = decoded.right
      if (!models.has(request.model)) {
        return Either.left({
          status: 404,
          message: `the model \`${request.model}\` does not exist on this gateway; see GET /v1/models`,
          type: "invalid_request_error",
          code: "model_not_found",
          param: "model"
        })
      }
      if (key?.models !== undefined && !key.models.includes(request.model)) {
        return Either.left({
          status: 403,
          message: `this API key may not use the model \`${request.model}\``,
          type: "permission_error",
          code: "model_not_permitted",
          param: "model"
        })
      }
      return Either.right(request)
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
export const tooLarge = (limit: number): ApiError => ({
  status: 413,
  message: `request body exceeds ${limit} bytes`,
  type: "invalid_request_error",
  code: "request_too_large"
})
