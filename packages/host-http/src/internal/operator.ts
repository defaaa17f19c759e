/** What an operator (or an orchestrator) asks: liveness, readiness, metrics. */
import { ClientApi } from "@breakwater/gateway"
import * as Exit from "effect/Exit"
import * as PrometheusMetrics from "../PrometheusMetrics.js"
import { fail, finish, sendJson } from "./answer.js"
import type { Exchange } from "./exchange.js"
import type { Host } from "./host.js"

/** `GET /healthz`: always open; says when the server is draining. */
export const healthz = (h: Host, x: Exchange): void => {
  sendJson(x, 200, h.lifecycle.draining ? `{"status":"draining"}` : `{"status":"ok"}`)
  finish(h, x, 200)
}

/** `GET /readyz`: the gateway's health; the detail for the admin key only when client keys are configured. */
export const readyz = (h: Host, x: Exchange): void => {
  h.runtime.runFork(h.gateway.health).addObserver((exit) => {
    const answer = h.pipeline.api.readiness(Exit.isSuccess(exit) ? exit.value : undefined, h.lifecycle.draining, x.req.headers.authorization)
    sendJson(x, answer.status, answer.body)
    finish(h, x, answer.status)
  })
}

/** `GET /metrics`: Prometheus text; the admin key when client keys are configured. */
export const metrics = (h: Host, x: Exchange): void => {
  if (!h.pipeline.api.metricsAllowed(x.req.headers.authorization)) return fail(h, x, ClientApi.adminRequired)
  h.runtime.runFork(PrometheusMetrics.render).addObserver((exit) => {
    const text = Exit.isSuccess(exit) ? exit.value : ""
    x.res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8", "content-length": Buffer.byteLength(text) })
    x.res.end(text)
    finish(h, x, 200)
  })
}
