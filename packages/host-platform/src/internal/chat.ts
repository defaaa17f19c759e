/**
 * `POST /v1/chat/completions` and `POST /v1/messages` on `@effect/platform` (the client API, the
 * pipeline's `Protocol`, decodes and encodes; the flow is one): admission and decoding, then
 * a non-streaming call, a stream (journaled when the journal is on), or a reconnect by the same
 * POST (`Last-Event-ID`, or an `Idempotency-Key` already seen). The calls run on the pipeline's
 * host runtime (its scrubbing log), tied to the handler: an interrupted handler (the client left)
 * interrupts its call, unless a journaled stream goes on detached for its client to come back.
 */
import { type ChatCompletion, RequestContext, RequestObserver } from "@breakwater/core"
import { ClientApi, ClientStream, RequestPipeline, StreamReconnect, Tracing } from "@breakwater/gateway"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as Answer from "./answer.js"
import { readBody } from "./body.js"
import { awaitStarted, type Host, onHost } from "./host.js"
import { type Log, replay } from "./replay.js"
import * as SseBody from "./sseBody.js"

export const chat = (h: Host, protocol: RequestPipeline.Protocol, path: string) => {
  const pipeline = h.pipeline
  const server = pipeline.gateway.server
  return Effect.gen(function*() {
    const req = yield* HttpServerRequest.HttpServerRequest
    const startedAt = performance.now()
    const requestId = ClientApi.requestIdFrom(req.headers["x-request-id"])
    let span: Tracing.RequestSpan | undefined
    // Called once, when the response is over: the log line, and the end of the request's span.
    const log: Log = (status, fields) => {
      pipeline.logRequest("POST", path, status, requestId, performance.now() - startedAt, fields)
      if (span !== undefined) Tracing.endWith(span, status, fields?.["error"])
    }
    const refuse = (e: ClientApi.ApiError, trace?: RequestContext.RequestTrace) => {
      log(e.status, { error: e.code })
      return Answer.error(e, requestId, trace, protocol)
    }
    const key = protocol.admit(req.headers["authorization"], req.headers["x-api-key"], req.headers["content-type"])
    if (ClientApi.isApiError(key)) return refuse(key)
    const body = yield* Effect.either(readBody(req, server.maxBodyBytes))
    if (body._tag === "Left") return refuse(ClientApi.badRequest("the request body could not be read"))
    const parsed = protocol.decode(body.right, key)
    if (parsed._tag === "Left") return refuse(parsed.left)
    const request = parsed.right
    span = pipeline.observe(requestId, req.headers, request)
    const ctx = RequestContext.make({ requestId, observer: RequestObserver.combine(span) })
    if (request.stream === true) {
      const journal = h.journal
      if (journal === undefined) return yield* stream(h, protocol, request, ctx, log, undefined)
      const owner = StreamReconnect.ownerOf(key)
      const lastEventId = req.headers["last-event-id"]
      if (lastEventId !== undefined) {
        // A reconnect by the same POST: the events after Last-Event-ID, whoever generates them.
        const at = StreamReconnect.reconnectAt(lastEventId)
        if (ClientApi.isApiError(at)) return refuse(at)
        return yield* replay(h, requestId, owner, at.streamId, at.seq, log, span, protocol)
      }
      const opened = yield* onHost(pipeline, StreamReconnect.open(journal, owner, req.headers["idempotency-key"], protocol.name))
      if (Exit.isFailure(opened)) {
        // No journal: the stream is served anyway, without reconnect.
        pipeline.host.runtime.runFork(
          Effect.logWarning("stream journal unavailable", Cause.pretty(opened.cause)).pipe(Effect.annotateLogs("request_id", requestId))
        )
        return yield* stream(h, protocol, request, ctx, log, undefined)
      }
      if (opened.value._tag === "Exists") return yield* replay(h, requestId, owner, opened.value.streamId, 0, log, span, protocol)
      return yield* stream(h, protocol, request, ctx, log, opened.value.journaled)
    }
    const started = awaitStarted(() => pipeline.startGenerate(request, ctx))
    const traced = span
    // The client left: no log line, but the span ends.
    const exit = yield* (traced === undefined ? started : Effect.onInterrupt(started, () => Effect.sync(() => traced.end(Tracing.ClientGone))))
    const fields = RequestPipeline.traceFields(ctx.trace)
    if (Exit.isSuccess(exit)) {
      log(200, fields)
      return Answer.json(200, protocol.encode(exit.value), ClientApi.jsonHeaders(requestId, ctx.trace))
    }
    const error = pipeline.failureOf(exit.cause, ctx.trace)
    log(error.status, { ...fields, error: error.code })
    return Answer.error(error, requestId, ctx.trace, protocol)
  })
}

/**
 * A streamed completion: the response is decided when the stream commits (a 200 whose body is a
 * `Stream` of SSE frames) or fails first (a plain error), as `ClientStream` rules. A journaled
 * stream records its events, and goes on detached when its client leaves (disconnect is not stop).
 */
const stream = (
  h: Host,
  protocol: RequestPipeline.Protocol,
  request: ChatCompletion.ChatRequest,
  ctx: RequestContext.RequestContextShape,
  log: Log,
  journaled: StreamReconnect.Journaled | undefined
): Effect.Effect<HttpServerResponse.HttpServerResponse> =>
  Effect.async<HttpServerResponse.HttpServerResponse>((resumeOnce) => {
    const pipeline = h.pipeline
    const runtime = pipeline.host.runtime
    const requestId = ctx.requestId
    let decided = false
    const resume = (response: Effect.Effect<HttpServerResponse.HttpServerResponse>) => {
      if (decided) return
      decided = true
      resumeOnce(response)
    }
    let fiber: Fiber.RuntimeFiber<void, unknown> | undefined
    let finished = false
    let detached = false
    let undetach: (() => void) | undefined
    const stop = () => fiber?.unsafeInterruptAsFork(FiberId.none)
    const recorder = journaled === undefined ? undefined : StreamReconnect.record(runtime, journaled, requestId, h.retryMs, {
      cancelled: stop,
      // A detached generation has no reader left.
      evicted: () => {
        if (detached) stop()
      }
    })
    /**
     * The client left (the body's reader went away, or the handler was interrupted before the
     * stream committed): the generation stops, unless it is journaled and its client can come
     * back (it got the stream id, or holds an Idempotency-Key); then it goes on for the grace.
     */
    const clientGone = () => {
      body.abandon()
      if (finished || detached) return
      if (journaled === undefined || !StreamReconnect.canDetach(pipeline.gateway.server.detachGraceMs, recorder!, journaled, writer.committed())) {
        return stop()
      }
      detached = true
      undetach = StreamReconnect.detach(runtime, journaled, pipeline.gateway.server.detachGraceMs, stop)
    }
    const body = SseBody.make(clientGone)
    const writer = protocol.writer(request, {
      commit: (heldBack) => {
        clearTimeout(commitTimer)
        body.write(heldBack)
        resume(Effect.succeed(Answer.stream(body.stream, ClientStream.headers(requestId, ctx.trace, journaled?.streamId))))
      },
      write: body.write
    }, recorder?.events)
    // An upstream slow to start still gets a 200 and a keep-alive after this bound.
    const commitTimer = setTimeout(() => {
      writer.commit()
      body.write(ClientStream.keepAlive)
    }, pipeline.gateway.server.streamCommitTimeoutMs)
    if (journaled !== undefined) h.running.set(journaled.streamId, stop)
    fiber = pipeline.startStream(request, ctx, writer, body.whenFull)
    fiber.addObserver((exit) => {
      finished = true
      clearTimeout(commitTimer)
      undetach?.()
      if (journaled !== undefined) h.running.delete(journaled.streamId)
      const fields = RequestPipeline.traceFields(ctx.trace)
      if (journaled !== undefined) fields["stream_id"] = journaled.streamId
      if (detached) fields["detached"] = true
      /** The terminal event, journaled before the journal is closed. */
      let last: { readonly frame: string; readonly seq: number } | undefined
      const terminal = (t: { readonly frame: string; readonly seq: number }) => {
        last = t
        return t.frame
      }
      if (Exit.isSuccess(exit)) {
        body.end(terminal(ClientStream.end(writer, undefined, requestId)!))
        log(200, fields)
      } else if (Cause.isInterruptedOnly(exit.cause)) {
        // Cancelled, or cut after the detach grace: a reader gets a well-formed end.
        const frame = writer.committed() && journaled !== undefined
          ? terminal(writer.close(StreamReconnect.cancelled, requestId))
          : ""
        body.end(frame)
        resume(Effect.interrupt)
        log(499, { ...fields, error: detached || journaled === undefined ? "client_closed" : "stream_cancelled" })
      } else {
        const error = pipeline.failureOf(exit.cause, ctx.trace)
        const end = ClientStream.end(writer, error, requestId)
        // Before anything was committed the failure is a plain HTTP error; after, an error event.
        if (end === undefined) resume(Effect.succeed(Answer.error(error, requestId, ctx.trace, protocol)))
        else body.end(terminal(end))
        log(end === undefined ? error.status : 200, { ...fields, error: error.code })
      }
      recorder?.end(last)
    })
    // The handler interrupted before the stream committed: nobody will read this response.
    return Effect.sync(() => {
      clearTimeout(commitTimer)
      if (!writer.committed()) clientGone()
    })
  })
