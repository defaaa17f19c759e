/** `GET /v1/models`, and what an operator asks: liveness, readiness, metrics. */
import { ClientApi, type RequestPipeline } from "@breakwater/gateway"
import { PrometheusMetrics } from "@breakwater/host-http"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Answer from "./answer.js"

/** A handler that answers with the request's id and writes the request's log line. */
const answered = (
  pipeline: RequestPipeline.RequestPipeline,
  path: string,
  answer: (authorization: string | undefined, requestId: string) => Effect.Effect<HttpServerResponse.HttpServerResponse>
) =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (req) => {
    const startedAt = performance.now()
    const requestId = ClientApi.requestIdFrom(req.headers["x-request-id"])
    return Effect.tap(answer(req.headers["authorization"], requestId), (response) =>
      pipeline.logRequest(req.method, path, response.status, requestId, performance.now() - startedAt))
  })

const ok = (requestId: string, status: number, body: string) => Effect.succeed(Answer.json(status, body, ClientApi.jsonHeaders(requestId)))

export const models = (pipeline: RequestPipeline.RequestPipeline) =>
  answered(pipeline, "/v1/models", (authorization, requestId) => {
    const key = pipeline.authenticate(authorization)
    return ClientApi.isApiError(key) ? Effect.succeed(Answer.error(key, requestId)) : ok(requestId, 200, pipeline.api.modelsBodyFor(key))
  })

export const healthz = (pipeline: RequestPipeline.RequestPipeline) =>
  answered(pipeline, "/healthz", (_, requestId) => ok(requestId, 200, `{"status":"ok"}`))

export const readyz = (pipeline: RequestPipeline.RequestPipeline) =>
  answered(pipeline, "/readyz", (authorization, requestId) =>
    Effect.flatMap(Effect.promise(() => pipeline.host.runtime.runPromise(pipeline.gateway.health)), (health) => {
      const answer = pipeline.api.readiness(health, false, authorization)
      return ok(requestId, answer.status, answer.body)
    }))

export const metrics = (pipeline: RequestPipeline.RequestPipeline) =>
  answered(pipeline, "/metrics", (authorization, requestId) => {
    if (!pipeline.api.metricsAllowed(authorization)) return Effect.succeed(Answer.error(ClientApi.adminRequired, requestId))
    return Effect.map(Effect.promise(() => pipeline.host.runtime.runPromise(PrometheusMetrics.render)), (text) =>
      HttpServerResponse.text(text, { contentType: "text/plain; version=0.0.4; charset=utf-8" }))
  })
