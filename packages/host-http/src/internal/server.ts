import type { ChatCompletion, LanguageModel } from "@breakwater/core"
import { RequestContext } from "@breakwater/core"
import { ClientApi, ClientStream, type Gateway, HostRuntime } from "@breakwater/gateway"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as MetricLabel from "effect/MetricLabel"
import * as Stream from "effect/Stream"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import type { Options, RunningServer } from "../HttpHost.js"
import * as PrometheusMetrics from "../PrometheusMetrics.js"
import * as Body from "./body.js"

const requestsTotal = Metric.counter("breakwater_http_requests_total", { description: "HTTP requests by route and status", incremental: true })
const requestDuration = Metric.histogram(
  "breakwater_http_request_duration_seconds",
  MetricBoundaries.exponential({ start: 0.001, factor: 2, count: 16 }),
  "Time from request to the end of the response"
)
const inflightGauge = Metric.gauge("breakwater_http_inflight_requests", { description: "Requests being served" })

interface Active {
  readonly res: http.ServerResponse
  fiber: Fiber.RuntimeFiber<unknown, unknown> | undefined
}

const sseHeaders = (requestId: string, trace: RequestContext.RequestTrace): http.OutgoingHttpHeaders => {
  return {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    "x-accel-buffering": "no",
    "x-request-id": requestId,
    ...ClientApi.traceHeaders(trace)
  }
}

/** Writes an error response (or just ends the response when headers already went out). */
const sendError = (res: http.ServerResponse, error: ClientApi.ApiError, requestId: string, extra?: Record<string, string>): void => {
  if (res.headersSent) {
    res.end()
    return
  }
  const payload = ClientApi.errorBody(error, requestId)
  res.writeHead(error.status, { ...ClientApi.errorHeaders(error, requestId), ...extra, "content-length": Buffer.byteLength(payload) })
  res.end(payload)
}

export const start = (gateway: Gateway.Gateway, options: Options = {}): Promise<RunningServer> => {
  const settings = gateway.server
  const api = ClientApi.make(gateway)
  const secrets = api.secrets
  const hostRuntime = HostRuntime.make({ sink: options.log, level: options.logLevel, secrets })
  const runtime = hostRuntime.runtime
  const auth = api.auth
  const model: LanguageModel.Service = gateway.model
  const active = new Set<Active>()
  let draining = false
  const modelsBody = api.modelsBody

  const finish = (
    req: http.IncomingMessage,
    path: string,
    status: number,
    startedAt: number,
    requestId: string,
    extra?: Record<string, unknown>
  ) => {
    const seconds = (performance.now() - startedAt) / 1000
    const route = path === "/v1/chat/completions" || path === "/v1/models" || path === "/healthz" || path === "/readyz" || path === "/metrics" ? path : "other"
    const tags = [MetricLabel.make("route", route), MetricLabel.make("status", String(status))]
    requestsTotal.unsafeUpdate(1, tags)
    requestDuration.unsafeUpdate(seconds, [MetricLabel.make("route", route)])
    const level = status >= 500 ? "error" : status >= 400 ? "warning" : "info"
    if (hostRuntime.enabled(level)) {
      hostRuntime.log(level, {
        msg: "request",
        request_id: requestId,
        method: req.method,
        path,
        status,
        duration_ms: Math.round(seconds * 1e4) / 10,
        ...extra
      })
    }
  }

  const json = (res: http.ServerResponse, status: number, body: string, requestId: string) => {
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body), "x-request-id": requestId })
    res.end(body)
  }

  const traceFields = (trace: RequestContext.RequestTrace) => ({
    upstream: trace.upstream,
    upstream_model: trace.model,
    attempts: trace.attempts,
    retries: trace.retries,
    resumes: trace.resumes
  })

  const failureOf = (cause: Cause.Cause<unknown>, trace: RequestContext.RequestTrace): ClientApi.ApiError => {
    const error = ClientApi.fromCause(cause, trace, secrets)
    if (error.status === 500) runtime.runFork(Effect.logError("unexpected failure", Cause.pretty(cause)))
    return error
  }

  const chat = (req: http.IncomingMessage, res: http.ServerResponse, path: string, requestId: string, startedAt: number) => {
    const reject = (error: ClientApi.ApiError, extra?: Record<string, unknown>) => {
      sendError(res, error, requestId)
      finish(req, path, error.status, startedAt, requestId, { error: error.code, ...extra })
    }
    if (draining) return reject({ status: 503, message: "the gateway is shutting down", type: "server_error", code: "shutting_down", shouldRetry: true })
    if (active.size >= settings.maxConcurrentRequests) {
      return reject({ status: 503, message: "the gateway is at its concurrency limit", type: "server_error", code: "gateway_busy", retryAfterSeconds: 1, shouldRetry: true })
    }
    const key = auth.enabled ? auth.check(req.headers.authorization) : undefined
    if (auth.enabled && key === undefined) {
      req.resume()
      return reject(ClientApi.unauthorized)
    }
    const entry: Active = { res, fiber: undefined }
    active.add(entry)
    inflightGauge.unsafeUpdate(active.size, [])
    res.once("close", () => {
      active.delete(entry)
      inflightGauge.unsafeUpdate(active.size, [])
      // A client that went away before the response ended: stop the work it asked for.
      if (!res.writableFinished && entry.fiber !== undefined) entry.fiber.unsafeInterruptAsFork(FiberId.none)
    })
    Body.read(req, settings.maxBodyBytes, (body) => {
      if (body._tag === "Aborted") return
      if (body._tag === "TooLarge") {
        res.setHeader("connection", "close")
        return reject(ClientApi.tooLarge(settings.maxBodyBytes))
      }
      const text = ClientApi.decodeUtf8(body.bytes)
      if (text._tag === "Left") return reject(text.left)
      const parsed = api.parseChat(text.right, key)
      if (parsed._tag === "Left") return reject(parsed.left, key === undefined ? undefined : { key: key.name })
      const request = parsed.right
      const ctx = RequestContext.make({ requestId })
      const extra = { model: request.model, stream: request.stream === true, key: key?.name }
      if (request.stream === true) streamChat(req, res, path, requestId, startedAt, request, ctx, entry, extra)
      else generateChat(req, res, path, requestId, startedAt, request, ctx, entry, extra)
    })
  }

  const generateChat = (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    path: string,
    requestId: string,
    startedAt: number,
    request: ChatCompletion.ChatRequest,
    ctx: RequestContext.RequestContextShape,
    entry: Active,
    extra: Record<string, unknown>
  ) => {
    const fiber = runtime.runFork(Effect.provideService(model.generate(request), RequestContext.RequestContext, ctx))
    entry.fiber = fiber
    fiber.addObserver((exit) => {
      const trace = ctx.trace
      if (Exit.isSuccess(exit)) {
        const payload = JSON.stringify(exit.value)
        if (!res.destroyed) {
          res.writeHead(200, {
            "content-type": "application/json",
            "content-length": Buffer.byteLength(payload),
            "x-request-id": requestId,
            ...ClientApi.traceHeaders(trace)
          })
          res.end(payload)
        }
        finish(req, path, 200, startedAt, requestId, { ...extra, ...traceFields(trace) })
      } else if (Cause.isInterruptedOnly(exit.cause)) {
        finish(req, path, 499, startedAt, requestId, { ...extra, ...traceFields(trace), error: "client_closed" })
      } else {
        const error = failureOf(exit.cause, trace)
        sendError(res, error, requestId, ClientApi.traceHeaders(trace))
        finish(req, path, error.status, startedAt, requestId, { ...extra, ...traceFields(trace), error: error.code })
      }
    })
  }

  const streamChat = (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    path: string,
    requestId: string,
    startedAt: number,
    request: ChatCompletion.ChatRequest,
    ctx: RequestContext.RequestContextShape,
    entry: Active,
    extra: Record<string, unknown>
  ) => {
    let commitTimer: NodeJS.Timeout | undefined
    const waitDrain = Effect.async<void>((resume) => {
      const onDrain = () => resume(Effect.void)
      res.once("drain", onDrain)
      res.once("close", onDrain)
      return Effect.sync(() => {
        res.off("drain", onDrain)
        res.off("close", onDrain)
      })
    })
    const writer = ClientStream.make({
      includeUsage: request.stream_options?.include_usage === true,
      sink: {
        commit: (heldBack) => {
          if (commitTimer !== undefined) clearTimeout(commitTimer)
          if (res.destroyed) return
          res.writeHead(200, sseHeaders(requestId, ctx.trace))
          if (heldBack !== "") res.write(heldBack)
        },
        write: (frame) => (res.write(frame) ? Effect.void : waitDrain)
      }
    })
    // An upstream slow to start still gets a 200 and a keep-alive after this bound.
    commitTimer = setTimeout(() => {
      writer.commit()
      if (!res.destroyed) res.write(ClientStream.keepAlive)
    }, settings.streamCommitTimeoutMs)
    const onChunk = writer.onChunk
    const program = Stream.runForEach(model.stream(request), onChunk)
    const fiber = runtime.runFork(Effect.provideService(program, RequestContext.RequestContext, ctx))
    entry.fiber = fiber
    fiber.addObserver((exit) => {
      if (commitTimer !== undefined) clearTimeout(commitTimer)
      const trace = ctx.trace
      if (Exit.isSuccess(exit)) {
        writer.commit()
        res.end(ClientStream.done)
        finish(req, path, 200, startedAt, requestId, { ...extra, ...traceFields(trace) })
        return
      }
      if (Cause.isInterruptedOnly(exit.cause)) {
        if (!res.destroyed) res.destroy()
        finish(req, path, 499, startedAt, requestId, { ...extra, ...traceFields(trace), error: "client_closed" })
        return
      }
      const error = failureOf(exit.cause, trace)
      const committed = writer.committed()
      if (!committed) {
        sendError(res, error, requestId, ClientApi.traceHeaders(trace))
      } else {
        // Headers are gone: the failure becomes a well-formed error event, and no [DONE].
        res.end(`data: ${ClientApi.errorBody(error, requestId)}\n\n`)
      }
      finish(req, path, committed ? 200 : error.status, startedAt, requestId, { ...extra, ...traceFields(trace), error: error.code })
    })
  }

  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const startedAt = performance.now()
    const url = req.url ?? "/"
    const q = url.indexOf("?")
    const path = q === -1 ? url : url.slice(0, q)
    const requestId = ClientApi.requestIdFrom(req.headers["x-request-id"])
    const method = req.method ?? "GET"
    const notAllowed = (allowed: string) => {
      req.resume()
      res.setHeader("allow", allowed)
      sendError(res, { status: 405, message: `${method} is not allowed on ${path}`, type: "invalid_request_error", code: "method_not_allowed" }, requestId)
      finish(req, path, 405, startedAt, requestId)
    }
    switch (path) {
      case "/v1/chat/completions":
      case "/chat/completions":
        return method === "POST" ? chat(req, res, "/v1/chat/completions", requestId, startedAt) : notAllowed("POST")
      case "/v1/models":
      case "/models": {
        if (method !== "GET") return notAllowed("GET")
        if (auth.enabled && auth.check(req.headers.authorization) === undefined) {
          sendError(res, ClientApi.unauthorized, requestId)
          return finish(req, path, 401, startedAt, requestId)
        }
        json(res, 200, modelsBody, requestId)
        return finish(req, path, 200, startedAt, requestId)
      }
      case "/healthz":
        json(res, 200, JSON.stringify({ status: draining ? "draining" : "ok" }), requestId)
        return finish(req, path, 200, startedAt, requestId)
      case "/readyz":
        runtime.runFork(gateway.health).addObserver((exit) => {
          const health = Exit.isSuccess(exit) ? exit.value : undefined
          const ready = health !== undefined && health.ready && !draining
          json(res, ready ? 200 : 503, JSON.stringify({ status: ready ? "ready" : "not_ready", ...health }), requestId)
          finish(req, path, ready ? 200 : 503, startedAt, requestId)
        })
        return
      case "/metrics":
        runtime.runFork(PrometheusMetrics.render).addObserver((exit) => {
          const text = Exit.isSuccess(exit) ? exit.value : ""
          res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8", "content-length": Buffer.byteLength(text) })
          res.end(text)
          finish(req, path, 200, startedAt, requestId)
        })
        return
      default:
        req.resume()
        sendError(res, { status: 404, message: `no route for ${method} ${path}`, type: "invalid_request_error", code: "not_found" }, requestId)
        return finish(req, path, 404, startedAt, requestId)
    }
  }

  const server = http.createServer({
    maxHeaderSize: settings.maxHeaderBytes,
    requestTimeout: settings.requestTimeoutMs,
    headersTimeout: Math.min(settings.requestTimeoutMs, 10_000),
    keepAliveTimeout: 5_000
  }, handler)
  // Requests with a malformed or oversized header block never reach the handler: answer them here.
  server.on("clientError", (error: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) return socket.destroy()
    const status = error.code === "HPE_HEADER_OVERFLOW" ? 431 : error.code === "ERR_HTTP_REQUEST_TIMEOUT" ? 408 : 400
    const payload = JSON.stringify({ error: { message: status === 431 ? "request headers too large" : status === 408 ? "request timed out" : "malformed HTTP request", type: "invalid_request_error", code: null } })
    socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(payload)}\r\nconnection: close\r\n\r\n${payload}`)
  })

  const host = gateway.keys.length === 0 ? "127.0.0.1" : options.host ?? settings.host
  const port = options.port ?? settings.port
  return new Promise<RunningServer>((resolve, reject) => {
    server.once("error", reject)
    server.listen(port, host, () => {
      server.off("error", reject)
      const address = server.address() as AddressInfo
      const url = `http://${address.family === "IPv6" ? `[${address.address}]` : address.address}:${address.port}`
      if (gateway.keys.length === 0 && (options.host ?? settings.host) !== "127.0.0.1") {
        hostRuntime.log("warning", { msg: "no gateway API keys are configured: listening on loopback only (127.0.0.1)" })
      }
      let closed: Promise<void> | undefined
      const close = (graceMs = settings.shutdownGraceMs): Promise<void> =>
        closed ??= new Promise<void>((done) => {
          draining = true
          server.close()
          server.closeIdleConnections()
          const cut = () => {
            for (const entry of active) {
              entry.fiber?.unsafeInterruptAsFork(FiberId.none)
              entry.res.destroy()
            }
          }
          const timer = setTimeout(cut, graceMs)
          const check = () => {
            if (active.size > 0) return void setTimeout(check, 20)
            clearTimeout(timer)
            server.closeAllConnections()
            void runtime.dispose().then(done, done)
          }
          check()
        })
      resolve({ url, host: address.address, port: address.port, server, close })
    })
  })
}
