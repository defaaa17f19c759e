/**
 * The transport adapters share: one keep-alive `undici` pool per upstream, connect and header
 * timeouts, real cancellation (interrupting the Effect aborts the request and closes its socket),
 * and transport failures mapped into the taxonomy. Provider keys are passed as `Redacted`
 * and unwrapped only here, at the socket.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { Pool } from "undici"
import type { Dispatcher } from "undici"
import {
  ConnectionFailed,
  fromHttpFailure,
  type ModelError,
  ResponseTooLarge,
  StreamInterrupted,
  Timeout
} from "./ModelError.js"
import * as Signals from "./internal/signals.js"
import * as RetryAfter from "./RetryAfter.js"

/**
 * Transport settings for one upstream.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The upstream's name, used in errors and metrics. */
  readonly name: string
  /** Origin and optional path prefix, e.g. `https://api.openai.com/v1`. */
  readonly baseUrl: string
  /**
   * Connections in the pool (default unbounded: the pool never queues a call the server admitted;
   * the server's `maxConcurrentRequests` and the router's bulkheads are the limits). A number
   * caps them; calls beyond it wait for a free connection, at most `connectTimeout`.
   */
  readonly connections?: number | undefined
  /** Time to get a connection: waiting for a free one in the pool and establishing it (default 10 s). */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** Time from sending the request to receiving headers (default 120 s). */
  readonly headersTimeout?: Duration.DurationInput | undefined
  /** Socket-level idle limit between body chunks (default 300 s); the idle policy is normally tighter. */
  readonly bodyTimeout?: Duration.DurationInput | undefined
  /** Speak HTTP/2 to upstreams that offer it over TLS (ALPN), many streams per connection (default false). */
  readonly allowH2?: boolean | undefined
  /** Largest non-streaming response body read (default 32 MiB); larger fails with `ResponseTooLarge`. */
  readonly maxResponseBytes?: number | undefined
  /** Largest streamed response body read (default 256 MiB); beyond it the stream fails with `ResponseTooLarge`. */
  readonly maxStreamBytes?: number | undefined
}

/**
 * The transport's defaults (the one place they are written).
 *
 * @since 0.2.0
 * @category constants
 */
export const defaults = {
  connectTimeout: Duration.seconds(10),
  headersTimeout: Duration.seconds(120),
  bodyTimeout: Duration.seconds(300),
  maxResponseBytes: 32 * 1024 * 1024,
  maxStreamBytes: 256 * 1024 * 1024,
  /** Of an error response, at most this much is read: its message is all that is used. */
  maxErrorBodyBytes: 64 * 1024
} as const

/**
 * A request to send upstream. Header values may be `Redacted` (keys): they are unwrapped only here.
 *
 * @since 0.1.0
 * @category models
 */
export interface Request {
  readonly method?: "GET" | "POST" | undefined
  /** Path appended to the base URL's path, e.g. `/chat/completions?api-version=…`. */
  readonly path: string
  readonly headers: Readonly<Record<string, string | Redacted.Redacted<string>>>
  readonly body?: string | undefined
  /** Aborts the request (as interrupting the call does), e.g. when a limit fires before its headers. */
  readonly signal?: AbortSignal | undefined
}

/**
 * A response whose status is below 400; its body is still unread.
 *
 * @since 0.1.0
 * @category models
 */
export interface Response {
  readonly status: number
  readonly header: (name: string) => string | undefined
  readonly body: Dispatcher.ResponseData["body"]
  /** The body limit `readJson` applies (default `defaults.maxResponseBytes`). */
  readonly maxResponseBytes?: number | undefined
  /** The body limit a streamed body is read to (`AdapterKit.runCall`; default `defaults.maxStreamBytes`). */
  readonly maxStreamBytes?: number | undefined
}

/**
 * How an adapter reads a failed response into a message and a provider code.
 *
 * @since 0.1.0
 * @category models
 */
export type ErrorBodyReader = (body: unknown, text: string) => { readonly message?: string | undefined; readonly code?: string | undefined }

/**
 * The transport of one upstream.
 *
 * @since 0.1.0
 * @category models
 */
export interface UpstreamHttp {
  readonly name: string
  /** Sends a request; any status but 2xx (redirects are never followed) fails with the classified `ModelError`. */
  readonly request: (request: Request, readError: ErrorBodyReader) => Effect.Effect<Response, ModelError>
}

const headerOf = (headers: Dispatcher.ResponseData["headers"]) => (name: string): string | undefined => {
  const v = headers[name]
  return Array.isArray(v) ? v[0] : v
}

/**
 * Maps an error thrown by the transport (undici, sockets) into the taxonomy.
 *
 * @since 0.1.0
 * @category errors
 */
export const mapTransportError = (upstream: string, error: unknown, phase: "request" | "body", receivedChunks = 0): ModelError => {
  const code = (error as { code?: string } | undefined)?.code ?? ""
  const message = `${upstream}: ${(error as Error | undefined)?.message ?? String(error)}`
  switch (code) {
    case "UND_ERR_CONNECT_TIMEOUT":
      return new Timeout({ message, upstream, phase: "connect", code })
    case "UND_ERR_HEADERS_TIMEOUT":
      return new Timeout({ message, upstream, phase: "headers", code })
    case "UND_ERR_BODY_TIMEOUT":
      return new StreamInterrupted({ message, upstream, reason: "idle-timeout", receivedChunks, code })
  }
  return phase === "body"
    ? new StreamInterrupted({ message, upstream, reason: "reset", receivedChunks, code, cause: error })
    : new ConnectionFailed({ message, upstream, code, cause: error })
}

const unwrapHeaders = (headers: Request["headers"]): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const key in headers) {
    const v = headers[key]!
    out[key] = typeof v === "string" ? v : Redacted.value(v)
  }
  return out
}

/**
 * Seconds each upstream call waited for a pool connection (queueing for a free one and
 * establishing it), tagged `upstream`.
 *
 * @since 0.2.0
 * @category metrics
 */
export const poolWait: Metric.Metric.Histogram<number> = Metric.histogram(
  "breakwater_upstream_pool_wait_seconds",
  MetricBoundaries.exponential({ start: 0.001, factor: 4, count: 10 }),
  "Seconds an upstream call waited for a connection from the pool (queueing and connecting)"
)

/** The reason a call is aborted with when no connection came within `connectTimeout`. */
class PoolWaitTimeout extends Error {}

// The request's `onConnect` fires once it is written to a connected socket: the end of the wait.
const connectedKey = Symbol.for("breakwater/UpstreamHttp/onConnected")
const notifyOnConnect = (dispatch: Dispatcher["dispatch"]): Dispatcher["dispatch"] => (opts, handler) => {
  const onConnected = (opts as { [connectedKey]?: () => void })[connectedKey]
  if (onConnected !== undefined && handler.onConnect !== undefined) {
    const original = handler.onConnect
    handler.onConnect = function(this: unknown, ...args: Parameters<NonNullable<Dispatcher.DispatchHandlers["onConnect"]>>) {
      onConnected()
      return original.apply(this, args)
    } as typeof original
  }
  return dispatch(opts, handler)
}

/** Reads at most `limit` bytes of a body as text (an error body: only its message is used). */
const readText = (body: Dispatcher.ResponseData["body"], limit: number): Promise<string> =>
  new Promise((resolve) => {
    const parts: Array<Buffer> = []
    let size = 0
    const done = () => resolve(Buffer.concat(parts).toString("utf8"))
    body.on("data", (chunk: Buffer) => {
      if (size >= limit) return
      parts.push(chunk)
      size += chunk.length
      if (size >= limit) {
        body.destroy()
        done()
      }
    })
    body.once("end", done)
    body.once("error", done)
  })

/**
 * Creates the transport of one upstream; its pool is closed with the scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<UpstreamHttp, never, Scope.Scope> =>
  Effect.gen(function*() {
    const url = new URL(options.baseUrl)
    const prefix = url.pathname.replace(/\/+$/, "")
    const name = options.name
    const connectMillis = Duration.toMillis(options.connectTimeout ?? defaults.connectTimeout)
    const maxResponseBytes = options.maxResponseBytes ?? defaults.maxResponseBytes
    const maxStreamBytes = options.maxStreamBytes ?? defaults.maxStreamBytes
    const waited = Metric.tagged(poolWait, "upstream", name)
    const pool = yield* Effect.acquireRelease(
      Effect.sync(() =>
        new Pool(url.origin, {
          // `null` is undici's "no limit".
          connections: options.connections ?? null,
          connectTimeout: connectMillis,
          headersTimeout: Duration.toMillis(options.headersTimeout ?? defaults.headersTimeout),
          bodyTimeout: Duration.toMillis(options.bodyTimeout ?? defaults.bodyTimeout),
          allowH2: options.allowH2 ?? false,
          keepAliveTimeout: 30_000
        })
      ),
      (pool) => Effect.promise(() => pool.destroy().catch(() => undefined))
    )
    const dispatcher = pool.compose(notifyOnConnect)
    const queues = options.connections != null
    const fail = (response: Dispatcher.ResponseData, readError: ErrorBodyReader) =>
      Effect.flatMap(
        Effect.promise(() => readText(response.body, defaults.maxErrorBodyBytes)),
        (text) => {
          let parsed: unknown = undefined
          try {
            parsed = JSON.parse(text)
          } catch {
            // Not JSON (an HTML error page from a proxy, say): the status decides alone.
          }
          const { code, message } = readError(parsed, text)
          const header = headerOf(response.headers)
          const status = response.statusCode
          const fallback = status < 400 ? `answered HTTP ${status}; the gateway does not follow redirects` : `HTTP ${status}`
          return Effect.flatMap(Effect.clockWith((clock) => clock.currentTimeMillis), (now) =>
            Effect.fail(fromHttpFailure({
              status,
              upstream: name,
              code,
              message: `${name}: ${status < 400 ? fallback : message ?? fallback}`,
              retryAfter: RetryAfter.fromHeaders(header, now)
            })))
        }
      )
    const poolTimeout = () =>
      new Timeout({
        message: `${name}: no connection to the upstream within ${connectMillis} ms (${
          options.connections === undefined ? "connecting" : `all ${options.connections} pool connections busy`
        })`,
        upstream: name,
        phase: "connect",
        code: "pool_wait_timeout"
      })
    const send = (req: Request, signal: AbortSignal) =>
      new Promise<{ readonly response: Dispatcher.ResponseData; readonly waitedMillis: number }>((resolve, reject) => {
        const started = performance.now()
        let connectedAt: number | undefined
        let settled = false
        // undici cannot abort a request still queued for a connection (it takes the abort once
        // connected): the wait is bounded here, and the abandoned request aborts when it is
        // dequeued. Only a capped pool queues: an uncapped one (the default) needs no timer.
        const timeout = queues ? new AbortController() : undefined
        const timer = timeout === undefined ? undefined : setTimeout(() => {
          if (connectedAt !== undefined || settled) return
          settled = true
          timeout.abort(new PoolWaitTimeout())
          reject(poolTimeout())
        }, connectMillis)
        const onConnected = () => {
          if (connectedAt !== undefined) return
          connectedAt = performance.now()
          clearTimeout(timer)
          waited.unsafeUpdate((connectedAt - started) / 1000, [])
        }
        dispatcher.request({
          path: prefix + req.path,
          method: req.method ?? "POST",
          headers: unwrapHeaders(req.headers),
          body: req.body ?? null,
          signal: Signals.anyOf(signal, [timeout?.signal, req.signal]),
          [connectedKey]: onConnected
        } as Dispatcher.RequestOptions).then(
          (response) => {
            clearTimeout(timer)
            if (settled) return response.body.destroy()
            settled = true
            resolve({ response, waitedMillis: (connectedAt ?? performance.now()) - started })
          },
          (error: unknown) => {
            clearTimeout(timer)
            if (settled) return
            settled = true
            reject(error)
          }
        )
      })
    const request = (req: Request, readError: ErrorBodyReader): Effect.Effect<Response, ModelError> =>
      Effect.flatMap(
        Effect.tryPromise({
          try: (signal) => send(req, signal),
          catch: (error) => error instanceof Timeout ? error : mapTransportError(name, error, "request")
        }),
        ({ response, waitedMillis }): Effect.Effect<Response, ModelError> => {
          const result = response.statusCode < 200 || response.statusCode >= 300
            ? fail(response, readError)
            : Effect.succeed({
              status: response.statusCode,
              header: headerOf(response.headers),
              body: response.body,
              maxResponseBytes,
              maxStreamBytes
            })
          // A wait worth a line: the pool (or connecting) held the call up for a second or more.
          return waitedMillis < 1000 ? result : Effect.zipRight(
            Effect.annotateLogs(Effect.logWarning("waited for an upstream connection"), {
              upstream: name,
              waited_ms: Math.round(waitedMillis)
            }),
            result
          )
        }
      )
    return { name, request }
  })

/**
 * The error of a response larger than its limit.
 *
 * @since 0.2.0
 * @category errors
 */
export const tooLarge = (upstream: string, limit: number, what: string): ResponseTooLarge =>
  new ResponseTooLarge({
    message: `${upstream}: the ${what} is larger than the ${limit} bytes allowed`,
    upstream,
    code: "response_too_large",
    limit
  })

/**
 * Reads a response body as JSON, at most `response.maxResponseBytes` of it (a larger body fails
 * with `ResponseTooLarge` without being buffered); a broken body is a connection failure.
 *
 * @since 0.1.0
 * @category combinators
 */
export const readJson = (upstream: string, response: Response): Effect.Effect<unknown, ModelError> => {
  const limit = response.maxResponseBytes ?? defaults.maxResponseBytes
  return Effect.flatMap(
    Effect.async<string, ModelError>((resume) => {
      const body = response.body
      const declared = Number(response.header("content-length"))
      if (declared > limit) {
        body.destroy()
        return resume(Effect.fail(tooLarge(upstream, limit, "response")))
      }
      const parts: Array<Buffer> = []
      let size = 0
      body.on("data", (chunk: Buffer) => {
        size += chunk.length
        if (size > limit) {
          body.destroy()
          resume(Effect.fail(tooLarge(upstream, limit, "response")))
        } else parts.push(chunk)
      })
      body.once("end", () => resume(Effect.succeed(Buffer.concat(parts).toString("utf8"))))
      body.once("error", (error) => {
        if (size <= limit) resume(Effect.fail(mapTransportError(upstream, error, "request")))
      })
      return Effect.sync(() => {
        if (!body.readableEnded) body.destroy()
      })
    }),
    (text) =>
      Effect.try({
        try: () => JSON.parse(text) as unknown,
        catch: (error) => new ConnectionFailed({ message: `${upstream}: the response body is not valid JSON`, upstream, cause: error })
      })
  )
}

/**
 * Lets go of a response body whose reader is done with it: a body whose protocol is complete
 * (`complete`) has its rest (normally just the final HTTP chunk) drained — at most 64 KiB, within
 * 5 s — so the keep-alive connection goes back to the pool; any other is destroyed, which closes
 * the upstream socket.
 *
 * @since 0.2.0
 * @category combinators
 */
export const releaseBody = (body: Response["body"], complete: boolean): void => {
  if (body.destroyed) return
  if (!complete) {
    body.destroy()
    return
  }
  body.removeAllListeners("data")
  // undici's typings omit dump's `signal`; it is supported since undici 5. A body that is not
  // undici's (a test's stream) has no dump: it is destroyed.
  const dump = body.dump as ((opts: { limit: number; signal?: AbortSignal }) => Promise<unknown>) | undefined
  if (typeof dump !== "function") body.destroy()
  else dump.call(body, { limit: 65_536, signal: AbortSignal.timeout(5_000) }).catch(() => undefined)
}
