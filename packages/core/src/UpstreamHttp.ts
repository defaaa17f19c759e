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
import {
  ConnectionFailed,
  fromHttpFailure,
  isModelError,
  type ModelError,
  ResponseTooLarge,
  StreamInterrupted,
  Timeout
} from "./ModelError.js"
import type { Signal } from "./RequestContext.js"
import * as RetryAfter from "./RetryAfter.js"
import * as TaggedMetric from "./TaggedMetric.js"
import * as WireText from "./WireText.js"

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
  readonly signal?: Signal | undefined
}

/**
 * The status and headers of a response.
 *
 * @since 0.3.0
 * @category models
 */
export interface Head {
  readonly status: number
  readonly header: (name: string) => string | undefined
}

/**
 * A response whose body is a Node stream still unread (a recorded body, say): what
 * `AdapterKit.sseChunks` decodes. Calls the transport makes read their bodies through a
 * `BodyReader` instead, with no stream in between.
 *
 * @since 0.1.0
 * @category models
 */
export interface Response extends Head {
  readonly body: NodeJS.ReadableStream & { destroy: (error?: Error) => unknown }
  /** The body limit a streamed body is read to (default `defaults.maxStreamBytes`). */
  readonly maxStreamBytes?: number | undefined
}

/**
 * How the reader of a streamed call ends it or reads on.
 *
 * @since 0.3.0
 * @category models
 */
export interface BodyControl {
  /**
   * Ends the call successfully. The rest of a complete body (normally its final HTTP chunk) is
   * drained, at most 64 KiB within 5 s, so that its keep-alive connection goes back to the pool.
   */
  readonly end: () => void
  /** Ends the call with `error` and closes the socket (before the headers: the request is aborted). */
  readonly fail: (error: ModelError) => void
  /** Reads on after `data` answered `false`. */
  readonly resume: () => void
}

/**
 * Reads a 2xx response body as it arrives, on the socket's own callbacks: no Node stream, fiber
 * or effect between the socket and the reader. A throw from any of these is a defect that ends
 * the call.
 *
 * @since 0.3.0
 * @category models
 */
export interface BodyReader {
  /** Called once, before the request is sent, with the call's control. */
  readonly start: (control: BodyControl) => void
  /** The upstream accepted the call (2xx headers). */
  readonly head?: ((head: Head) => void) | undefined
  /** A piece of the body; `false` pauses the socket until `control.resume()`. */
  readonly data: (piece: Uint8Array) => boolean
  /** The body is complete. A reader that has not ended the call ends it here (else it ends successfully). */
  readonly end: () => void
  /** The connection broke mid-body: the error the call fails with. */
  readonly error: (cause: unknown) => ModelError
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
  /**
   * A non-streaming call: the response body parsed as JSON, at most `maxResponseBytes` of it (a
   * larger body fails with `ResponseTooLarge` unbuffered). Any status but 2xx (redirects are never
   * followed) fails with the classified `ModelError`; an aborted `request.signal` fails with its
   * reason when that is a `ModelError` (a limit's), and stops the call wherever it is.
   */
  readonly json: (request: Request, readError: ErrorBodyReader) => Effect.Effect<unknown, ModelError>
  /**
   * A streamed call: a 2xx body goes to `reader` as it arrives (at most `maxStreamBytes` of it);
   * the call ends when the reader ends it, or fails as `json` does. Interrupting it closes the
   * socket.
   */
  readonly stream: (request: Request, readError: ErrorBodyReader, reader: BodyReader) => Effect.Effect<void, ModelError>
}

/** A lookup over undici's raw header list (name, value, name, value, …); `name` in lower case. */
const rawHeaderOf = (raw: ReadonlyArray<Buffer | string> | null) => (name: string): string | undefined => {
  if (raw === null) return undefined
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const key = raw[i]!
    if (key.length === name.length && key.toString("latin1").toLowerCase() === name) return raw[i + 1]!.toString("latin1")
  }
  return undefined
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

// The wire form of a request's headers (undici's flat [name, value, …] array, secrets revealed),
// remembered for the last few header objects: an adapter sends the same object on every call
// (built once: its JSON and SSE headers), and building an object per call, keyed store by keyed
// store, was ~2% of a non-streaming request's instructions. Matched by identity, so a request's
// headers must not be changed once sent (they are `Readonly`).
const recentHeaders: Array<Request["headers"] | undefined> = [undefined, undefined, undefined, undefined]
const recentWire: Array<Array<string>> = [[], [], [], []]
let nextRecent = 0
const wireHeaders = (headers: Request["headers"]): Array<string> => {
  for (let i = 0; i < recentHeaders.length; i++) if (recentHeaders[i] === headers) return recentWire[i]!
  const wire: Array<string> = []
  for (const key in headers) {
    const v = headers[key]!
    wire.push(key, typeof v === "string" ? v : Redacted.value(v))
  }
  recentHeaders[nextRecent] = headers
  recentWire[nextRecent] = wire
  nextRecent = (nextRecent + 1) % recentHeaders.length
  return wire
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

/** How long, and how much of, the rest of a complete body is drained so its connection is reused. */
const drainLimit = { bytes: 65_536, millis: 5_000 }

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
    const waited = TaggedMetric.make(poolWait, { upstream: name })
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
    const queues = options.connections != null
    const poolTimeout = () =>
      new Timeout({
        message: `${name}: no connection to the upstream within ${connectMillis} ms (${
          options.connections === undefined ? "connecting" : `all ${options.connections} pool connections busy`
        })`,
        upstream: name,
        phase: "connect",
        code: "pool_wait_timeout"
      })
    const failed = (status: number, header: Head["header"], text: string, readError: ErrorBodyReader) =>
      Effect.flatMap(Effect.clockWith((clock) => clock.currentTimeMillis), (now) => {
        let parsed: unknown = undefined
        try {
          parsed = JSON.parse(text)
        } catch {
          // Not JSON (an HTML error page from a proxy, say): the status decides alone.
        }
        const { code, message } = readError(parsed, text)
        const fallback = status < 400 ? `answered HTTP ${status}; the gateway does not follow redirects` : `HTTP ${status}`
        return Effect.fail(fromHttpFailure({
          status,
          upstream: name,
          code,
          message: `${name}: ${status < 400 ? fallback : message ?? fallback}`,
          retryAfter: RetryAfter.fromHeaders(header, now)
        }))
      })

    /**
     * One exchange on undici's dispatcher, its handler written here: the body goes from the
     * socket's callbacks to the JSON buffer or the reader, with no Node stream, abort controller
     * or promise per call. `reader` undefined: a JSON call. `resume` gets the outcome, once; what
     * is returned stops the call (an interruption), or is undefined when it already settled.
     */
    const begin = (
      req: Request,
      readError: ErrorBodyReader,
      reader: BodyReader | undefined,
      resume: (result: Effect.Effect<unknown, ModelError>) => void
    ): (() => void) | undefined => {
      const signal = req.signal
      const started = performance.now()
      let settled = false
      // "body": a 2xx body being read; "error": an error body (its message) being read;
      // "drain": the call ended, the rest of a complete body read so the connection is reused.
      let phase: "waiting" | "body" | "error" | "drain" | "closed" = "waiting"
      let abortSocket: ((reason?: Error) => void) | undefined
      let pendingAbort: Error | undefined = undefined
      let resumeSocket: (() => void) | undefined
      let status = 0
      let header: Head["header"] = noHeader
      let parts: Array<Buffer> = []
      let size = 0
      let timer: ReturnType<typeof setTimeout> | undefined
      let waitedMillis = 0
      const limit = reader === undefined ? maxResponseBytes : maxStreamBytes

      // The body read so far as text (one piece, the usual case, without a copy).
      const bodyText = () => (parts.length === 1 ? parts[0]!.toString("utf8") : Buffer.concat(parts).toString("utf8"))
      const close = (reason: Error | undefined) => {
        phase = "closed"
        if (abortSocket !== undefined) abortSocket(reason)
        else pendingAbort = reason
      }
      const settle = (result: Effect.Effect<unknown, ModelError>) => {
        if (settled) return
        settled = true
        if (timer !== undefined) clearTimeout(timer)
        signal?.removeEventListener("abort", onSignal)
        // A wait worth a line: the pool (or connecting) held the call up for a second or more.
        resume(waitedMillis < 1000 ? result : Effect.zipRight(
          Effect.annotateLogs(Effect.logWarning("waited for an upstream connection"), {
            upstream: name,
            waited_ms: Math.round(waitedMillis)
          }),
          result
        ))
      }
      const fail = (error: ModelError) => {
        settle(Effect.fail(error))
        if (phase !== "closed") close(error)
      }
      const guard = <A>(f: () => A, otherwise: A): A => {
        try {
          return f()
        } catch (defect) {
          // A throw on the body path (a bug, never the upstream's doing) ends the call as a defect.
          settle(Effect.die(defect))
          close(defect instanceof Error ? defect : undefined)
          return otherwise
        }
      }
      function onSignal() {
        const reason = signal!.reason
        // Stopped by a limit: the limit's error, never a transport failure held against the upstream.
        fail(isModelError(reason) ? reason : mapTransportError(name, reason, "request"))
      }
      const control: BodyControl = {
        end: () => {
          if (settled) return
          settle(Effect.void)
          if (phase === "closed") return
          phase = "drain"
          size = 0
          timer = setTimeout(() => close(undefined), drainLimit.millis)
          timer.unref?.()
        },
        fail,
        resume: () => {
          if (!settled) resumeSocket?.()
        }
      }

      if (reader !== undefined) {
        guard(() => reader.start(control), undefined)
        if (settled) return
      }
      if (signal !== undefined) {
        if (signal.aborted) {
          onSignal()
          return
        }
        signal.addEventListener("abort", onSignal, { once: true })
      }
      // undici cannot abort a request still queued for a connection (it takes the abort once
      // connected): the wait is bounded here, and the abandoned request aborts when it is
      // dequeued. Only a capped pool queues: an uncapped one (the default) needs no timer.
      if (queues) timer = setTimeout(() => fail(poolTimeout()), connectMillis)

      pool.dispatch({
        path: prefix + req.path,
        method: req.method ?? "POST",
        headers: wireHeaders(req.headers),
        body: req.body ?? null
      }, {
        onConnect: (abort) => {
          abortSocket = abort
          if (pendingAbort !== undefined || phase === "closed") return abort(pendingAbort ?? new Error("aborted"))
          if (timer !== undefined) {
            clearTimeout(timer)
            timer = undefined
          }
          waitedMillis = performance.now() - started
          waited(waitedMillis / 1000)
        },
        onHeaders: (statusCode, rawHeaders, resumeFn) => {
          if (settled) return true
          status = statusCode
          const lookup = rawHeaderOf(rawHeaders as Array<Buffer> | null)
          resumeSocket = resumeFn
          if (statusCode < 200 || statusCode >= 300) {
            phase = "error"
            // Kept for the error (its Retry-After). An answer's are not: undici's raw headers are
            // views of the socket's first read, and a stream would hold them (about a kilobyte of
            // heap) for as long as it lasts.
            header = lookup
            return true
          }
          phase = "body"
          if (reader === undefined) {
            if (Number(lookup("content-length")) > limit) fail(tooLarge(name, limit, "response"))
          } else if (reader.head !== undefined) {
            const head: Head = { status, header: lookup }
            guard(() => reader.head!(head), undefined)
          }
          return true
        },
        onData: (chunk) => {
          size += chunk.length
          switch (phase) {
            case "body":
              if (size > limit) {
                fail(tooLarge(name, limit, reader === undefined ? "response" : "stream"))
                return true
              }
              if (reader === undefined) {
                parts.push(chunk)
                return true
              }
              return guard(() => reader.data(chunk), true)
            case "error":
              // Of an error body only the message is used: at most this much is read.
              if (size - chunk.length < defaults.maxErrorBodyBytes) parts.push(chunk)
              if (size >= defaults.maxErrorBodyBytes) {
                settle(failed(status, header, bodyText(), readError))
                close(undefined)
              }
              return true
            case "drain":
              if (size > drainLimit.bytes) close(undefined)
              return true
            default:
              return true
          }
        },
        onComplete: () => {
          const was = phase
          phase = "closed"
          if (timer !== undefined) clearTimeout(timer)
          if (settled) return
          if (was === "error") return settle(failed(status, header, bodyText(), readError))
          if (reader !== undefined) {
            guard(() => reader.end(), undefined)
            return settle(Effect.void)
          }
          // A copy (one part is a view of the socket's read, which the text ring must not pin).
          const bytes = parts.length === 1 ? Buffer.from(parts[0]!) : Buffer.concat(parts)
          parts = []
          let json: unknown
          try {
            json = JSON.parse(bytes.toString("utf8"))
          } catch (error) {
            return settle(Effect.fail(new ConnectionFailed({ message: `${name}: the response body is not valid JSON`, upstream: name, cause: error })))
          }
          // An answer sent on unchanged goes to the client as the upstream's own bytes: neither
          // encoded again nor its text encoded to UTF-8 again.
          settle(Effect.succeed(json !== null && typeof json === "object" ? WireText.attachBytes(json, bytes) : json))
        },
        onError: (error) => {
          const was = phase
          phase = "closed"
          if (settled) return
          if (isModelError(error)) return settle(Effect.fail(error))
          if (was === "body" && reader !== undefined) {
            const mapped = guard(() => reader.error(error), undefined)
            if (mapped !== undefined) settle(Effect.fail(mapped))
            return
          }
          settle(Effect.fail(mapTransportError(name, error, "request")))
        },
        onUpgrade: () => {},
        onBodySent: () => {}
      })
      return () => {
        // Interrupted: stop the call wherever it is (a body being drained is left to finish).
        if (settled) return
        settled = true
        if (timer !== undefined) clearTimeout(timer)
        signal?.removeEventListener("abort", onSignal)
        if (phase !== "drain" && phase !== "closed") close(undefined)
      }
    }

    // A JSON call: its interruption is seen by an observer on the fiber (as `LeanEffect` does),
    // not by `Effect.async`'s canceler, which wraps the call in `onInterrupt` (an interruption
    // mask and its restore: five run-loop steps on every call). The socket is then closed when the
    // interrupted fiber ends, a moment later; nothing is read into anything meanwhile but the
    // JSON buffer.
    const json = (request: Request, readError: ErrorBodyReader): Effect.Effect<unknown, ModelError> =>
      Effect.withFiberRuntime((fiber) =>
        Effect.async<unknown, ModelError>((resume) => {
          let settled = false
          let cancel: (() => void) | undefined
          const interrupted = () => {
            if (settled) return
            settled = true
            cancel?.()
          }
          const started = begin(request, readError, undefined, (result) => {
            if (settled) return
            settled = true
            if (cancel !== undefined) fiber.removeObserver(interrupted)
            resume(result)
          })
          // Not when it settled at once (a signal already aborted).
          if (!settled && started !== undefined) {
            cancel = started
            fiber.addObserver(interrupted)
          }
        })
      )
    // A stream's body goes to its reader as it arrives: an interruption stops it at once.
    const stream = (request: Request, readError: ErrorBodyReader, reader: BodyReader): Effect.Effect<void, ModelError> =>
      Effect.async<void, ModelError>((resume) => {
        const cancel = begin(request, readError, reader, resume as (result: Effect.Effect<unknown, ModelError>) => void)
        return cancel === undefined ? undefined : Effect.sync(cancel)
      })
    return { name, json, stream }
  })

const noHeader = (_name: string): string | undefined => undefined

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
