/**
 * `POST /v1/messages/count_tokens` on `@effect/platform`: admitted as a Messages request
 * (Anthropic's auth headers and error shape), then proxied by the pipeline to the Anthropic
 * upstream that starts the model's route, or the 400 saying that none does.
 */
import { RequestContext } from "@breakwater/core"
import { ClientApi, RequestPipeline } from "@breakwater/gateway"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Answer from "./answer.js"
import { readBody } from "./body.js"
import { awaitStarted, type Host } from "./host.js"

export const path = "/v1/messages/count_tokens"

export const countTokens = (h: Host) => {
  const pipeline = h.pipeline
  const protocol = pipeline.messages
  return Effect.gen(function*() {
    const req = yield* HttpServerRequest.HttpServerRequest
    const startedAt = performance.now()
    const requestId = ClientApi.requestIdFrom(req.headers["x-request-id"])
    const log = (status: number, fields?: Record<string, unknown>) =>
      pipeline.logRequest("POST", path, status, requestId, performance.now() - startedAt, fields)
    const refuse = (e: ClientApi.ApiError, trace?: RequestContext.RequestTrace) => {
      log(e.status, { error: e.code })
      return Answer.error(e, requestId, trace, protocol)
    }
    const key = protocol.admit(req.headers["authorization"], req.headers["x-api-key"], req.headers["content-type"])
    if (ClientApi.isApiError(key)) return refuse(key)
    const body = yield* Effect.either(readBody(req, pipeline.gateway.server.maxBodyBytes))
    if (body._tag === "Left") return refuse(ClientApi.badRequest("the request body could not be read"))
    const ctx = RequestContext.make({ requestId })
    const started = pipeline.startCountTokens(body.right, key, ctx)
    if (Either.isLeft(started)) return refuse(started.left)
    // The client left: the call is interrupted with the handler, and nothing is logged.
    const exit = yield* awaitStarted(() => started.right)
    if (Exit.isFailure(exit)) return refuse(pipeline.failureOf(exit.cause, ctx.trace), ctx.trace)
    log(200, RequestPipeline.traceFields(ctx.trace))
    return Answer.json(200, exit.value, ClientApi.jsonHeaders(requestId, ctx.trace))
  })
}
