/** Responses of the gateway's API as `HttpServerResponse`s, with the pipeline's headers and bodies. */
import type { RequestContext } from "@breakwater/core"
import { ClientApi, type RequestPipeline } from "@breakwater/gateway"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type * as Stream from "effect/Stream"

export const json = (status: number, body: string, headers: Record<string, string>): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.text(body, { status, headers, contentType: headers["content-type"] ?? "application/json" })

/** An error answer, in the shape of the request's client API (OpenAI's when none is given). */
export const error = (
  e: ClientApi.ApiError,
  requestId: string,
  trace?: RequestContext.RequestTrace,
  protocol?: RequestPipeline.Protocol
): HttpServerResponse.HttpServerResponse =>
  json(e.status, (protocol?.errorBody ?? ClientApi.errorBody)(e, requestId), ClientApi.errorHeaders(e, requestId, trace))

export const stream = (body: Stream.Stream<Uint8Array>, headers: Record<string, string>): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.stream(body, { status: 200, headers, contentType: headers["content-type"] })

/** `204 No Content` about a stream. */
export const noContent = (requestId: string, streamId: string): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.empty({ status: 204, headers: { "x-request-id": requestId, "x-breakwater-stream-id": streamId } })
