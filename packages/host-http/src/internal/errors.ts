import { ModelError } from "@breakwater/core"
import type * as http from "node:http"
import * as Duration from "effect/Duration"

/** An error the host itself raises (bad input, auth, limits), in the OpenAI error shape. */
export interface HostError {
  readonly status: number
  readonly message: string
  readonly type: string
  readonly code: string | null
  readonly param?: string | null
  readonly retryAfterSeconds?: number | undefined
  /** Local overload is worth a client retry; everything else the gateway already retried. */
  readonly shouldRetry?: boolean
}

const keyLike = /\b(sk-(?:ant-)?[A-Za-z0-9_*.-]{6,})|\b([A-Za-z0-9_-]{24,}\*{2,}[A-Za-z0-9_-]*)/g

/**
 * Removes anything that looks like a provider key, and every configured secret, from a message
 * that is about to leave the server (a response or a log line).
 */
export const scrub = (message: string, secrets: ReadonlyArray<string>): string => {
  let out = message
  for (const secret of secrets) if (secret.length >= 4 && out.includes(secret)) out = out.split(secret).join("[redacted]")
  return out.replace(keyLike, "[redacted]")
}

/** The client-facing form of a model error: the gateway has given up, so no client retry. */
export const fromModelError = (error: ModelError.ModelError, retryAfterMillis: number | undefined, secrets: ReadonlyArray<string>): HostError => {
  const delay = retryAfterMillis ?? (() => {
    const d = ModelError.retryAfterOf(error)
    return d === undefined ? undefined : Duration.toMillis(d)
  })()
  // An upstream auth failure's text can quote part of the provider key: never pass it on.
  const message = error._tag === "UpstreamAuth"
    ? `upstream ${error.upstream ?? ""} rejected the gateway's credentials`.replace("  ", " ")
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

/** The OpenAI error body. */
export const body = (error: HostError, requestId: string): string =>
  JSON.stringify({ error: { message: error.message, type: error.type, param: error.param ?? null, code: error.code, request_id: requestId } })

/** Writes an error response (unless headers already went out). */
export const send = (res: http.ServerResponse, error: HostError, requestId: string, extraHeaders?: Record<string, string>): void => {
  if (res.headersSent) {
    res.end()
    return
  }
  const payload = body(error, requestId)
  const headers: Record<string, string | number> = {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(payload),
    "x-request-id": requestId,
    "x-should-retry": error.shouldRetry === true ? "true" : "false",
    ...extraHeaders
  }
  if (error.retryAfterSeconds !== undefined) headers["retry-after"] = String(error.retryAfterSeconds)
  res.writeHead(error.status, headers)
  res.end(payload)
}

export const badRequest = (message: string, code: string | null = null, param: string | null = null): HostError => ({
  status: 400, message, type: "invalid_request_error", code, param
})
