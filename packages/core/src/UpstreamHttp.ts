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
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { Pool } from "undici"
import type { Dispatcher } from "undici"
import { ConnectionFailed, fromHttpFailure, type ModelError, StreamInterrupted, Timeout } from "./ModelError.js"
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
  /** Keep-alive connections in the pool (default 128). */
  readonly connections?: number | undefined
  /** Time to establish a connection (default 10 s). */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** Time from sending the request to receiving headers (default 120 s). */
  readonly headersTimeout?: Duration.DurationInput | undefined
  /** Socket-level idle limit between body chunks (default 300 s); the idle policy is normally tighter. */
  readonly bodyTimeout?: Duration.DurationInput | undefined
}

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
  /** Sends a request; statuses ≥ 400 fail with the classified `ModelError`. */
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
    const pool = yield* Effect.acquireRelease(
      Effect.sync(() =>
        new Pool(url.origin, {
          connections: options.connections ?? 128,
          connectTimeout: Duration.toMillis(options.connectTimeout ?? "10 seconds"),
          headersTimeout: Duration.toMillis(options.headersTimeout ?? "120 seconds"),
          bodyTimeout: Duration.toMillis(options.bodyTimeout ?? "300 seconds"),
          keepAliveTimeout: 30_000
        })
      ),
      (pool) => Effect.promise(() => pool.destroy().catch(() => undefined))
    )
    const fail = (response: Dispatcher.ResponseData, readError: ErrorBodyReader) =>
      Effect.flatMap(
        Effect.promise(() => response.body.text().catch(() => "")),
        (text) => {
          let parsed: unknown = undefined
          try {
            parsed = JSON.parse(text)
          } catch {
            // Not JSON (an HTML error page from a proxy, say): the status decides alone.
          }
          const { code, message } = readError(parsed, text)
          const header = headerOf(response.headers)
          return Effect.flatMap(Effect.clockWith((clock) => clock.currentTimeMillis), (now) =>
            Effect.fail(fromHttpFailure({
              status: response.statusCode,
              upstream: name,
              code,
              message: `${name}: ${message ?? `HTTP ${response.statusCode}`}`,
              retryAfter: RetryAfter.fromHeaders(header, now)
            })))
        }
      )
    const request = (req: Request, readError: ErrorBodyReader): Effect.Effect<Response, ModelError> =>
      Effect.flatMap(
        Effect.tryPromise({
          try: (signal) =>
            pool.request({
              path: prefix + req.path,
              method: req.method ?? "POST",
              headers: unwrapHeaders(req.headers),
              body: req.body ?? null,
              signal
            }),
          catch: (error) => mapTransportError(name, error, "request")
        }),
        (response): Effect.Effect<Response, ModelError> =>
          response.statusCode >= 400
            ? fail(response, readError)
            : Effect.succeed({ status: response.statusCode, header: headerOf(response.headers), body: response.body })
      )
    return { name, request }
  })

/**
 * Reads a response body as JSON; a broken body is a connection failure.
 *
 * @since 0.1.0
 * @category combinators
 */
export const readJson = (upstream: string, response: Response): Effect.Effect<unknown, ModelError> =>
  Effect.tryPromise({
    try: () => response.body.json(),
    catch: (error) => error instanceof SyntaxError
      ? new ConnectionFailed({ message: `${upstream}: the response body is not valid JSON`, upstream, cause: error })
      : mapTransportError(upstream, error, "request")
  })

const completed = new WeakSet<object>()

/**
 * Marks a response whose protocol is complete (the adapter read its terminator, e.g.
 * `data: [DONE]`). When its `bodyStream` then ends, the rest of the body (normally just the
 * final HTTP chunk) is drained — at most 64 KiB, within 5 s — so the keep-alive connection goes
 * back to the pool instead of being closed.
 *
 * @since 0.1.0
 * @category combinators
 */
export const markComplete = (response: Response): void => {
  completed.add(response.body)
}

/**
 * The response body as a stream of byte chunks (pushed from the socket's `data` events without a
 * fiber per chunk: `Stream.async` forked one per emit, which the benchmark showed to add ~10 ms to
 * a 24-chunk stream). Ending the stream early (interruption, a
 * downstream failure) destroys the body, which closes the upstream socket — unless the response
 * was marked complete (`markComplete`), in which case its rest is drained for reuse.
 *
 * @since 0.1.0
 * @category combinators
 */
export const bodyStream = (upstream: string, response: Response, chunksSoFar: () => number = () => 0): Stream.Stream<Uint8Array, ModelError> =>
  Stream.asyncPush<Uint8Array, ModelError>((emit) => Effect.acquireRelease(Effect.sync(() => {
    const body = response.body
    const onData = (chunk: Uint8Array) => {
      emit.single(chunk)
    }
    body.on("data", onData)
    body.once("end", () => {
      emit.end()
    })
    body.once("error", (error) => {
      emit.fail(mapTransportError(upstream, error, "body", chunksSoFar()))
    })
    return { body, onData }
  }), ({ body, onData }) => Effect.sync(() => {
      if (body.destroyed) return
      if (completed.has(body)) {
        body.off("data", onData)
        // undici's typings omit dump's `signal`; it is supported since undici 5.
        const dump = body.dump as (opts: { limit: number; signal?: AbortSignal }) => Promise<unknown>
        dump.call(body, { limit: 65_536, signal: AbortSignal.timeout(5_000) }).catch(() => undefined)
      } else body.destroy()
    })), { bufferSize: "unbounded" })
