/**
 * `POST /v1/chat/completions` on `@effect/platform`: the pipeline's admission and decoding, then
 * a non-streaming call or a stream. The calls run on the pipeline's host runtime (its scrubbing
 * log), tied to the handler: an interrupted handler (the client left) interrupts its call.
 */
import { type ChatCompletion, RequestContext } from "@breakwater/core"
import { ClientApi, ClientStream, RequestPipeline } from "@breakwater/gateway"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as Stream from "effect/Stream"
import * as Answer from "./answer.js"
import * as SseBody from "./sseBody.js"

const path = "/v1/chat/completions"

/** The body's bytes, read up to one byte past `max` (the pipeline answers the 413). */
const readBody = (request: HttpServerRequest.HttpServerRequest, max: number) =>
  Effect.map(
    Stream.runFoldWhile(request.stream, { parts: Chunk.empty<Uint8Array>(), size: 0 }, (s) => s.size <= max, (s, part) => ({
      parts: Chunk.append(s.parts, part),
      size: s.size + part.length
    })),
    ({ parts, size }) => {
      const bytes = new Uint8Array(size)
      let at = 0
      for (const part of parts) {
        bytes.set(part, at)
        at += part.length
      }
      return bytes
    }
  )

/** Waits for a fiber started on the host runtime; it is interrupted with the calling fiber. */
const onHost = <A, E>(start: () => Fiber.RuntimeFiber<A, E>): Effect.Effect<Exit.Exit<A, E>> =>
  Effect.async<Exit.Exit<A, E>>((resume) => {
    const fiber = start()
    fiber.addObserver((exit) => resume(Effect.succeed(exit)))
    return Fiber.interruptFork(fiber)
  })

export const chat = (pipeline: RequestPipeline.RequestPipeline) => {
  const server = pipeline.gateway.server
  return Effect.gen(function*() {
    const req = yield* HttpServerRequest.HttpServerRequest
    const startedAt = performance.now()
    const requestId = ClientApi.requestIdFrom(req.headers["x-request-id"])
    const log = (status: number, fields?: Record<string, unknown>) => pipeline.logRequest("POST", path, status, requestId, performance.now() - startedAt, fields)
    const refuse = (e: ClientApi.ApiError, trace?: RequestContext.RequestTrace) => {
      log(e.status, { error: e.code })
      return Answer.error(e, requestId, trace)
    }
    const key = pipeline.admitChat(req.headers["authorization"], req.headers["content-type"])
    if (ClientApi.isApiError(key)) return refuse(key)
    const body = yield* Effect.either(readBody(req, server.maxBodyBytes))
    if (body._tag === "Left") return refuse(ClientApi.badRequest("the request body could not be read"))
    const parsed = pipeline.decodeChat(body.right, key)
    if (parsed._tag === "Left") return refuse(parsed.left)
    const request = parsed.right
    const ctx = RequestContext.make({ requestId })
    if (request.stream === true) return yield* stream(pipeline, request, ctx, log)
    const exit = yield* onHost(() => pipeline.startGenerate(request, ctx))
    const fields = RequestPipeline.traceFields(ctx.trace)
    if (Exit.isSuccess(exit)) {
      log(200, fields)
      return Answer.json(200, JSON.stringify(exit.value), ClientApi.jsonHeaders(requestId, ctx.trace))
    }
    const error = pipeline.failureOf(exit.cause, ctx.trace)
    log(error.status, { ...fields, error: error.code })
    return Answer.error(error, requestId, ctx.trace)
  })
}

/**
 * A streamed completion: the response is decided when the stream commits (a 200 whose body is a
 * `Stream` of SSE frames) or fails first (a plain error), as `ClientStream` rules.
 */
const stream = (
  pipeline: RequestPipeline.RequestPipeline,
  request: ChatCompletion.ChatRequest,
  ctx: RequestContext.RequestContextShape,
  log: (status: number, fields?: Record<string, unknown>) => void
): Effect.Effect<HttpServerResponse.HttpServerResponse> =>
  Effect.async<HttpServerResponse.HttpServerResponse>((resumeOnce) => {
    const requestId = ctx.requestId
    let decided = false
    const resume = (response: Effect.Effect<HttpServerResponse.HttpServerResponse>) => {
      if (decided) return
      decided = true
      resumeOnce(response)
    }
    let fiber: Fiber.RuntimeFiber<void, unknown> | undefined
    const stop = () => fiber?.unsafeInterruptAsFork(FiberId.none)
    const body = SseBody.make(stop)
    const writer = ClientStream.make({
      includeUsage: request.stream_options?.include_usage === true,
      sink: {
        commit: (heldBack) => {
          clearTimeout(commitTimer)
          body.write(heldBack)
          resume(Effect.succeed(Answer.stream(body.stream, ClientStream.headers(requestId, ctx.trace, undefined))))
        },
        write: body.write
      }
    })
    // An upstream slow to start still gets a 200 and a keep-alive after this bound.
    const commitTimer = setTimeout(() => {
      writer.commit()
      body.write(ClientStream.keepAlive)
    }, pipeline.gateway.server.streamCommitTimeoutMs)
    fiber = pipeline.startStream(request, ctx, writer, body.whenFull)
    fiber.addObserver((exit) => {
      clearTimeout(commitTimer)
      const fields = RequestPipeline.traceFields(ctx.trace)
      if (Exit.isSuccess(exit)) {
        body.end(ClientStream.end(writer, undefined, requestId)!.frame)
        return log(200, fields)
      }
      if (Cause.isInterruptedOnly(exit.cause)) {
        body.end("")
        resume(Effect.interrupt)
        return log(499, { ...fields, error: "client_closed" })
      }
      const error = pipeline.failureOf(exit.cause, ctx.trace)
      const end = ClientStream.end(writer, error, requestId)
      // Before anything was committed the failure is a plain HTTP error; after, an error event.
      if (end === undefined) resume(Effect.succeed(Answer.error(error, requestId, ctx.trace)))
      else body.end(end.frame)
      log(end === undefined ? error.status : 200, { ...fields, error: error.code })
    })
    // The handler interrupted before the stream committed: nobody will read it.
    return Effect.sync(() => {
      clearTimeout(commitTimer)
      if (!writer.committed()) stop()
    })
  })
