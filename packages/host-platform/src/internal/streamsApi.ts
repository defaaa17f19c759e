/** `GET /v1/streams/{id}` (reconnect) and `DELETE /v1/streams/{id}` (cancel) on `@effect/platform`. */
import { ClientApi, StreamReconnect, Tracing } from "@breakwater/gateway"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Answer from "./answer.js"
import { type Host, onHost } from "./host.js"
import { replay } from "./replay.js"

/** Every path under the prefix: the id is decoded and checked as the lean host does. */
export const path = `${StreamReconnect.prefix}*` as `/${string}`

export const streams = (h: Host) =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (req) => {
    const startedAt = performance.now()
    const requestId = ClientApi.requestIdFrom(req.headers["x-request-id"])
    const q = req.url.indexOf("?")
    const path = q === -1 ? req.url : req.url.slice(0, q)
    let span: Tracing.RequestSpan | undefined
    // Called once, when the response is over: the log line, and the end of a reconnect's span.
    const log = (status: number, fields?: Record<string, unknown>) => {
      h.pipeline.logRequest(req.method, path, status, requestId, performance.now() - startedAt, fields)
      if (span !== undefined) Tracing.endWith(span, status, fields?.["error"])
    }
    const refuse = (error: ClientApi.ApiError) => {
      log(error.status, { error: error.code })
      return Effect.succeed(Answer.error(error, requestId))
    }
    const key = h.pipeline.authenticate(req.headers["authorization"])
    if (ClientApi.isApiError(key)) return refuse(key)
    const journal = h.journal
    if (journal === undefined) return refuse(StreamReconnect.notFound)
    const streamId = StreamReconnect.streamIdOf(path)
    if (streamId === undefined) return refuse(StreamReconnect.notFound)
    const owner = StreamReconnect.ownerOf(key)
    if (req.method === "GET") {
      span = h.pipeline.observe(requestId, req.headers, undefined, Tracing.streamReplay)
      const afterSeq = StreamReconnect.afterSeqOf(req.headers["last-event-id"], streamId)
      if (ClientApi.isApiError(afterSeq)) return refuse(afterSeq)
      return replay(h, requestId, owner, streamId, afterSeq, log, span)
    }
    // DELETE: stops the generation at once, here or (through the journal) on whichever instance runs it.
    return Effect.map(onHost(h.pipeline, StreamReconnect.cancel(journal, owner, streamId)), (exit) => {
      const error = Exit.isFailure(exit) ? StreamReconnect.journalDown : exit.value ? undefined : StreamReconnect.notFound
      if (error !== undefined) {
        log(error.status, { error: error.code })
        return Answer.error(error, requestId)
      }
      h.running.get(streamId)?.()
      log(204, { stream_id: streamId })
      return Answer.noContent(requestId, streamId)
    })
  })
