/**
 * How the host answers: an error (the one way, whatever the route), JSON, no content, and the
 * request's end (route metrics and the log line).
 */
import type { RequestContext } from "@breakwater/core"
import { TaggedMetric } from "@breakwater/core"
import { ClientApi, RequestPipeline, Tracing } from "@breakwater/gateway"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import type { Exchange } from "./exchange.js"
import type { Host } from "./host.js"
import * as Lifecycle from "./lifecycle.js"

const requestsTotal = Metric.counter("breakwater_http_requests_total", { description: "HTTP requests by route and status", incremental: true })
const requestDuration = Metric.histogram(
  "breakwater_http_request_duration_seconds",
  MetricBoundaries.exponential({ start: 0.001, factor: 2, count: 16 }),
  "Time from request to the end of the response"
)

const routeOf = (path: string) =>
  path === "/v1/chat/completions" || path === "/v1/messages" || path === "/v1/messages/count_tokens" || path === "/v1/models" ||
    path === "/healthz" || path === "/readyz" || path === "/metrics"
    ? path
    : path.startsWith("/v1/streams/") ? "/v1/streams/{id}" : "other"

// Each route's series, resolved once (routes are a closed set: `routeOf`'s answers).
const series = new Map<string, { readonly requests: (status: string) => TaggedMetric.Updater<number>; readonly duration: TaggedMetric.Updater<number> }>()
const seriesOf = (route: string) => {
  let known = series.get(route)
  if (known === undefined) {
    known = { requests: TaggedMetric.byValue(requestsTotal, "status", { route }), duration: TaggedMetric.make(requestDuration, { route }) }
    series.set(route, known)
  }
  return known
}

/** Ends a request's accounting: its route's metrics and its log line (the exchange's fields, then `more`). */
export const finish = (h: Host, x: Exchange, status: number, more?: Record<string, unknown>): void => {
  const ms = performance.now() - x.startedAt
  const route = seriesOf(routeOf(x.path))
  route.requests(String(status))(1)
  route.duration(ms / 1000)
  // Not merged here: a second spread into one object took V8's slow copy (~15,000 instructions
  // a request, `npm run bench`'s profile), and where the level skips the line nothing is built.
  h.pipeline.logRequest(x.method, x.path, status, x.requestId, ms, x.fields, more)
  if (x.span !== undefined) endSpan(x, status, more?.["error"])
  if (x.board !== undefined) {
    const error = more !== undefined && "error" in more ? more["error"] : x.fields?.["error"]
    x.board.end(status, typeof error === "string" ? error : undefined)
  }
}

/** A request dropped unanswered (its client left before anything ran): its span ends with that. */
export const abandon = (h: Host, x: Exchange): void => {
  if (x.span !== undefined) endSpan(x, 499, Tracing.ClientGone.code)
  if (x.board !== undefined) x.board.end(499, Tracing.ClientGone.code)
  Lifecycle.release(h.lifecycle, x)
}

/** Ends a traced request's span with what the client got: nothing, its error, or its leaving. */
const endSpan = (x: Exchange, status: number, code: unknown): void => {
  const span = x.span!
  x.span = undefined
  Tracing.endWith(span, status, code)
}

/**
 * Answers an error (or just ends the response when its headers already went out); with `trace`,
 * a call was made and the answer says how. Whatever the client still sends is drained.
 */
export const sendError = (x: Exchange, error: ClientApi.ApiError, trace?: RequestContext.RequestTrace): void => {
  const res = x.res
  x.req.resume()
  if (res.headersSent) {
    res.end()
    return
  }
  const payload = (x.protocol?.errorBody ?? ClientApi.errorBody)(error, x.requestId)
  const headers = ClientApi.errorHeaders(error, x.requestId, trace)
  headers["content-length"] = String(Buffer.byteLength(payload))
  res.writeHead(error.status, headers)
  res.end(payload)
}

/** Answers an error and ends the request: the one way every route refuses or fails. */
export const fail = (h: Host, x: Exchange, error: ClientApi.ApiError, trace?: RequestContext.RequestTrace): void => {
  sendError(x, error, trace)
  finish(h, x, error.status, trace === undefined ? { error: error.code } : { ...RequestPipeline.traceFields(trace), error: error.code })
}

/** Writes a JSON answer (the trace headers with it when a call was made). */
export const sendJson = (x: Exchange, status: number, body: string | Uint8Array, trace?: RequestContext.RequestTrace): void => {
  const headers = ClientApi.jsonHeaders(x.requestId, trace)
  headers["content-length"] = String(typeof body === "string" ? Buffer.byteLength(body) : body.length)
  x.res.writeHead(status, headers)
  x.res.end(body)
}

/** Answers `204 No Content` about a stream. */
export const noContent = (h: Host, x: Exchange, streamId: string): void => {
  x.res.writeHead(204, { "x-request-id": x.requestId, "x-breakwater-stream-id": streamId })
  x.res.end()
  finish(h, x, 204, { stream_id: streamId })
}
