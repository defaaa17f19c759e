/**
 * The request handler: the request's `Exchange`, the checks every path shares (the keyless
 * `Host` check, `Origin` and CORS), then the route.
 */
import { ClientApi, type RequestPipeline } from "@breakwater/gateway"
import type * as http from "node:http"
import { fail, finish, sendJson } from "./answer.js"
import { chat } from "./chat.js"
import { countTokens } from "./countTokens.js"
import * as Exchange from "./exchange.js"
import type { Host } from "./host.js"
import * as Operator from "./operator.js"
import * as StatusPage from "./statusPage.js"
import * as StreamsApi from "./streamsApi.js"

/** `GET /v1/models`: the models the caller's key may use. */
const models = (h: Host, x: Exchange.Exchange): void => {
  const key = h.pipeline.authenticate(x.req.headers.authorization)
  if (ClientApi.isApiError(key)) return fail(h, x, key)
  sendJson(x, 200, h.pipeline.api.modelsBodyFor(key))
  finish(h, x, 200)
}

/**
 * Whether the request may go on past the browser checks; answers it (a preflight, or a refusal)
 * when not. An allowed origin's answers carry the CORS headers.
 */
const browserChecks = (h: Host, x: Exchange.Exchange): boolean => {
  const auth = h.pipeline.api.auth
  // Without client keys the gateway is only for this machine: a page the operator visits must
  // neither reach it through a rebound DNS name nor spend its credit cross-origin.
  if (!auth.enabled && !ClientApi.isLocalHost(Exchange.header(x, "host"), h.listenHost)) {
    fail(h, x, ClientApi.hostNotAllowed)
    return false
  }
  const origin = Exchange.header(x, "origin")
  if (origin === undefined) return true
  const cors = h.gateway.cors
  if (cors !== undefined && ClientApi.originAllowed(cors, origin)) {
    if (x.method === "OPTIONS" && Exchange.header(x, "access-control-request-method") !== undefined) {
      x.req.resume()
      x.res.writeHead(204, { ...ClientApi.corsHeaders(cors, origin, true), "x-request-id": x.requestId })
      x.res.end()
      finish(h, x, 204)
      return false
    }
    for (const [name, value] of Object.entries(ClientApi.corsHeaders(cors, origin, false))) x.res.setHeader(name, value)
    return true
  }
  if (auth.enabled) return true
  fail(h, x, ClientApi.originNotAllowed)
  return false
}

/** A `POST` route of a client API: its errors in that API's shape, its path as logged and measured. */
const post = (h: Host, x: Exchange.Exchange, path: string, protocol: RequestPipeline.Protocol, serve: (h: Host, x: Exchange.Exchange) => void): void => {
  x.protocol = protocol
  if (x.method !== "POST") return fail(h, x, ClientApi.methodNotAllowed(x.method, x.path, "POST"))
  x.path = path
  serve(h, x)
}

export const handler = (h: Host) => (req: http.IncomingMessage, res: http.ServerResponse): void => {
  const startedAt = performance.now()
  const url = req.url ?? "/"
  const q = url.indexOf("?")
  const x = Exchange.make(req, res, q === -1 ? url : url.slice(0, q), ClientApi.requestIdFrom(req.headers["x-request-id"]), startedAt)
  if (!browserChecks(h, x)) return
  const method = x.method
  switch (x.path) {
    case "/v1/chat/completions":
    case "/chat/completions":
      return post(h, x, "/v1/chat/completions", h.pipeline.chat, chat)
    case "/v1/messages":
    case "/messages":
      return post(h, x, "/v1/messages", h.pipeline.messages, chat)
    case "/v1/messages/count_tokens":
    case "/messages/count_tokens":
      return post(h, x, "/v1/messages/count_tokens", h.pipeline.messages, countTokens)
    case "/v1/models":
    case "/models":
      return method === "GET" ? models(h, x) : fail(h, x, ClientApi.methodNotAllowed(method, x.path, "GET"))
    case "/healthz":
      return Operator.healthz(h, x)
    case "/readyz":
      return Operator.readyz(h, x)
    case "/metrics":
      return Operator.metrics(h, x)
    default:
      if (x.path.startsWith(StreamsApi.prefix)) return StreamsApi.streams(h, x)
      if (x.path === StatusPage.prefix || x.path.startsWith(`${StatusPage.prefix}/`)) return StatusPage.serve(h, x)
      return fail(h, x, ClientApi.noRoute(method, x.path))
  }
}
