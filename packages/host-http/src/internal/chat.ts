/**
 * `POST /v1/chat/completions` and `POST /v1/messages` (the exchange's `protocol` decodes and
 * encodes; the flow is one): admission (shutdown, the server's limit, the pipeline's checks),
 * the body, then a non-streaming call, a stream (journaled when the journal is on), or a
 * reconnect by the same POST (`Last-Event-ID`, or an `Idempotency-Key` already seen).
 */
import { type ChatCompletion, RequestContext, RequestObserver } from "@breakwater/core"
import { ClientApi, type Gateway, RequestPipeline, StreamReconnect } from "@breakwater/gateway"
import type { StreamJournal } from "@breakwater/stream-resume"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { abandon, fail, finish, sendError, sendJson } from "./answer.js"
import * as Body from "./body.js"
import { chatFields, type Exchange, header } from "./exchange.js"
import type { Host } from "./host.js"
import * as Lifecycle from "./lifecycle.js"
import { replay } from "./replay.js"
import { stream } from "./stream.js"

export const chat = (h: Host, x: Exchange): void => {
  if (h.lifecycle.draining) return fail(h, x, Lifecycle.shuttingDown)
  if (h.lifecycle.active.size >= h.settings.maxConcurrentRequests) return fail(h, x, Lifecycle.gatewayBusy)
  const protocol = x.protocol!
  const key = protocol.admit(x.req.headers.authorization, header(x, "x-api-key"), header(x, "content-type"))
  if (ClientApi.isApiError(key)) return fail(h, x, key)
  Lifecycle.track(h.lifecycle, x)
  Body.readWithin(h, x, (body) => {
    const parsed = protocol.decode(body, key)
    if (parsed._tag === "Left") {
      if (key !== undefined) x.fields = { key: key.name }
      return fail(h, x, parsed.left)
    }
    dispatch(h, x, parsed.right, key)
  })
}

/** Starts the call a decoded request asks for. */
const dispatch = (h: Host, x: Exchange, request: ChatCompletion.ChatRequest, key: Gateway.ClientKey | undefined): void => {
  const span = x.span = h.pipeline.observe(x.requestId, x.req.headers, request)
  x.board = h.status?.board.begin(x.requestId, request.model, request.stream === true)
  const ctx = RequestContext.make({ requestId: x.requestId, observer: RequestObserver.combine(span, x.board) })
  x.fields = chatFields(request.model, request.stream === true, key)
  const journal = h.journal
  if (request.stream !== true || journal === undefined) {
    const full = Lifecycle.claim(h.lifecycle, h.gateway, x, key)
    if (full !== undefined) return fail(h, x, full)
    if (request.stream !== true) return generate(h, x, request, ctx)
    return stream(h, x, request, ctx, undefined)
  }
  const owner = StreamReconnect.ownerOf(key)
  const lastEventId = header(x, "last-event-id")
  if (lastEventId !== undefined) {
    // A reconnect by the same POST: the events after Last-Event-ID, whoever generates them.
    const at = StreamReconnect.reconnectAt(lastEventId)
    if (ClientApi.isApiError(at)) return fail(h, x, at)
    x.fields = undefined
    return replay(h, x, journal, owner, at.streamId, at.seq)
  }
  // The memory journal opens at once; another store by a fiber.
  const idempotencyKey = header(x, "idempotency-key")
  let openedNow: StreamReconnect.Opening | undefined
  try {
    openedNow = StreamReconnect.openNow(journal, owner, idempotencyKey, x.protocol!.name)
  } catch (defect) {
    return journalOpened(h, x, request, ctx, key, journal, owner, Exit.die(defect))
  }
  if (openedNow !== undefined) return journalOpened(h, x, request, ctx, key, journal, owner, Exit.succeed(openedNow))
  h.runtime.runFork(StreamReconnect.open(journal, owner, idempotencyKey, x.protocol!.name)).addObserver((exit) => {
    journalOpened(h, x, request, ctx, key, journal, owner, exit)
  })
}

/** Goes on once the journal answered: a replay for a known `Idempotency-Key`, else the stream (journaled if it could be). */
const journalOpened = (
  h: Host,
  x: Exchange,
  request: ChatCompletion.ChatRequest,
  ctx: RequestContext.RequestContextShape,
  key: Gateway.ClientKey | undefined,
  journal: StreamJournal.StreamJournal,
  owner: string,
  exit: Exit.Exit<StreamReconnect.Opening, unknown>
): void => {
  if (x.res.destroyed) return abandon(h, x)
  const opened = Exit.isSuccess(exit) ? exit.value : undefined
  if (opened?._tag === "Exists") {
    x.fields = undefined
    return replay(h, x, journal, owner, opened.streamId, 0)
  }
  const full = Lifecycle.claim(h.lifecycle, h.gateway, x, key)
  if (full !== undefined) {
    // Not started: a retry with the same Idempotency-Key must start afresh.
    if (opened !== undefined) h.runtime.runFork(Effect.ignore(journal.remove(opened.journaled.streamId)))
    return fail(h, x, full)
  }
  if (opened === undefined) {
    // No journal: the stream is served anyway, without reconnect.
    if (Exit.isFailure(exit)) {
      h.runtime.runFork(Effect.logWarning("stream journal unavailable", Cause.pretty(exit.cause)).pipe(Effect.annotateLogs("request_id", x.requestId)))
    }
    return stream(h, x, request, ctx, undefined)
  }
  const journaled = opened.journaled
  x.fields = { ...x.fields, stream_id: journaled.streamId }
  stream(h, x, request, ctx, journaled)
}

/** A non-streaming call. */
const generate = (h: Host, x: Exchange, request: ChatCompletion.ChatRequest, ctx: RequestContext.RequestContextShape): void => {
  const fiber = h.pipeline.startGenerate(request, ctx)
  x.fiber = fiber
  fiber.addObserver((exit) => {
    const trace = ctx.trace
    const fields = RequestPipeline.traceFields(trace)
    if (Exit.isSuccess(exit)) {
      if (!x.res.destroyed) sendJson(x, 200, x.protocol!.encodeBody(exit.value), trace)
      finish(h, x, 200, fields)
    } else if (Cause.isInterruptedOnly(exit.cause)) {
      fields["error"] = "client_closed"
      finish(h, x, 499, fields)
    } else {
      const error = h.pipeline.failureOf(exit.cause, trace)
      sendError(x, error, trace)
      fields["error"] = error.code
      finish(h, x, error.status, fields)
    }
  })
}
