/**
 * The Lambda event and result shapes the handler speaks: API Gateway HTTP API (payload 2.0) and
 * function URLs (the same 2.0 shape), and API Gateway REST API (payload 1.0).
 *
 * @since 0.1.0
 */

/**
 * An API Gateway HTTP API (v2) or function URL event.
 *
 * @since 0.1.0
 * @category models
 */
export interface EventV2 {
  readonly version: "2.0"
  readonly rawPath: string
  readonly rawQueryString?: string | undefined
  readonly headers?: Readonly<Record<string, string | undefined>> | undefined
  readonly requestContext: { readonly http: { readonly method: string; readonly path?: string | undefined }; readonly requestId?: string | undefined }
  readonly body?: string | undefined
  readonly isBase64Encoded?: boolean | undefined
}

/**
 * An API Gateway REST API (v1) event.
 *
 * @since 0.1.0
 * @category models
 */
export interface EventV1 {
  readonly version?: "1.0" | undefined
  readonly httpMethod: string
  readonly path: string
  readonly headers?: Readonly<Record<string, string | undefined>> | null | undefined
  readonly multiValueHeaders?: Readonly<Record<string, ReadonlyArray<string> | undefined>> | null | undefined
  readonly requestContext?: { readonly requestId?: string | undefined } | undefined
  readonly body?: string | null | undefined
  readonly isBase64Encoded?: boolean | undefined
}

/**
 * Any supported event.
 *
 * @since 0.1.0
 * @category models
 */
export type Event = EventV1 | EventV2

/**
 * A buffered proxy result (valid for both payload versions).
 *
 * @since 0.1.0
 * @category models
 */
export interface Result {
  readonly statusCode: number
  readonly headers: Record<string, string>
  readonly body: string
  readonly isBase64Encoded: false
}

/**
 * The part of the Lambda context the handler uses.
 *
 * @since 0.1.0
 * @category models
 */
export interface Context {
  readonly getRemainingTimeInMillis: () => number
  readonly awsRequestId?: string | undefined
}

/**
 * A request extracted from either event version, headers lower-cased, body decoded.
 *
 * @since 0.1.0
 * @category models
 */
export interface Request {
  readonly method: string
  readonly path: string
  readonly headers: Readonly<Record<string, string>>
  readonly body: Uint8Array
}

/**
 * Normalises an event of either version.
 *
 * @since 0.1.0
 * @category decoding
 */
export const toRequest = (event: Event): Request => {
  const headers: Record<string, string> = {}
  for (const [k, v] of Object.entries(event.headers ?? {})) if (v !== undefined) headers[k.toLowerCase()] = v
  const raw = event.body ?? ""
  const body = event.isBase64Encoded === true ? Buffer.from(raw, "base64") : Buffer.from(raw, "utf8")
  if ("httpMethod" in event) return { method: event.httpMethod.toUpperCase(), path: event.path, headers, body }
  return { method: event.requestContext.http.method.toUpperCase(), path: event.rawPath, headers, body }
}
