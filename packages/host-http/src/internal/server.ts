import { type ChatCompletion, LanguageModel } from "@breakwater/core"
import { RequestContext, TaggedMetric } from "@breakwater/core"
import { ClientApi, ClientStream, type Gateway, HostRuntime } from "@breakwater/gateway"
import { StreamJournal } from "@breakwater/stream-resume"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as Stream from "effect/Stream"
import { randomUUID } from "node:crypto"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import type { Options, RunningServer } from "../HttpHost.js"
import * as PrometheusMetrics from "../PrometheusMetrics.js"
import * as Body from "./body.js"

const requestsTotal = Metric.counter("breakwater_http_requests_total", { description: "HTTP requests by route and status", incremental: true })
const requestDuration = Metric.histogram(
  "breakwater_http_request_duration_seconds",
  MetricBoundaries.exponential({ start: 0.001, factor: 2, count: 16 }),
  "Time from request to the end of the response"
)
const inflightGauge = Metric.gauge("breakwater_http_inflight_requests", { description: "Requests being served" })

interface Active {
  readonly res: http.ServerResponse
  fiber: Fiber.RuntimeFiber<unknown, unknown> | undefined
  /** Called when the client left before the response ended; true when the work goes on (detached). */
  onClientGone: (() => boolean) | undefined
  detachTimer: NodeJS.Timeout | undefined
  /** The client key whose concurrency share this request holds, once it started a generation. */
  key: string | undefined
}

/** The default `retry:` hint of a journaled stream, in ms. */
const DEFAULT_RETRY_MS = 1_000

const cancelled: ClientApi.ApiError = { status: 499, message: "the stream was cancelled", type: "server_error", code: "stream_cancelled" }
const notFound: ClientApi.ApiError = { status: 404, message: "no such stream", type: "invalid_request_error", code: "stream_not_found" }
const eventsGone: ClientApi.ApiError = {
  status: 410,
  message: "the events after Last-Event-ID are no longer kept",
  type: "invalid_request_error",
  code: "stream_events_expired"
}
const streamGone: ClientApi.ApiError = {
  status: 410,
  message: "this stream expired or was evicted from the journal: its events are no longer kept, and whether it was complete is unknown",
  type: "invalid_request_error",
  code: "stream_expired"
}
const journalDown: ClientApi.ApiError = { status: 503, message: "the stream journal is unavailable", type: "server_error", code: "journal_unavailable", shouldRetry: true }

const header = (req: http.IncomingMessage, name: string): string | undefined => {
  const value = req.headers[name]
  return Array.isArray(value) ? value[0] : value
}

/** Waits until the response can take more, or is closed. */
const waitDrain = (res: http.ServerResponse) =>
  Effect.async<void>((resume) => {
    const onDrain = () => resume(Effect.void)
    res.once("drain", onDrain)
    res.once("close", onDrain)
    return Effect.sync(() => {
      res.off("drain", onDrain)
      res.off("close", onDrain)
    })
  })

/** Writes to a client that may have gone: nothing is written (nor waited for) once it left. */
const writeTo = (res: http.ServerResponse, frame: string): Effect.Effect<void> =>
  res.destroyed || res.writableEnded ? Effect.void : res.write(frame) ? Effect.void : waitDrain(res)

const routeOf = (path: string) =>
  path === "/v1/chat/completions" || path === "/v1/models" || path === "/healthz" || path === "/readyz" || path === "/metrics"
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

const sseHeaders = (requestId: string, trace: RequestContext.RequestTrace): http.OutgoingHttpHeaders => {
  return {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    "x-accel-buffering": "no",
    "x-request-id": requestId,
    ...ClientApi.traceHeaders(trace)
  }
}

/** Writes an error response (or just ends the response when headers already went out). */
const sendError = (res: http.ServerResponse, error: ClientApi.ApiError, requestId: string, extra?: Record<string, string>): void => {
  if (res.headersSent) {
    res.end()
    return
  }
  const payload = ClientApi.errorBody(error, requestId)
  res.writeHead(error.status, { ...ClientApi.errorHeaders(error, requestId), ...extra, "content-length": Buffer.byteLength(payload) })
  res.end(payload)
}

export const start = (gateway: Gateway.Gateway, options: Options = {}): Promise<RunningServer> => {
  const settings = gateway.server
  const api = ClientApi.make(gateway)
  const secrets = api.secrets
  const hostRuntime = HostRuntime.make({ sink: options.log, level: options.logLevel, secrets })
  const runtime = hostRuntime.runtime
  const auth = api.auth
  const model: LanguageModel.Service = gateway.model
  const run = LanguageModel.runOf(model)
  const active = new Set<Active>()
  let draining = false
  const journal = options.journal === false ? undefined : options.journal ?? gateway.journal ?? Effect.runSync(StreamJournal.makeMemory())
  const retryMs = options.reconnectRetryMs ?? DEFAULT_RETRY_MS
  /** Journaled generations running on this instance, by stream id (for the cancel endpoint). */
  const running = new Map<string, Active>()
  /** Generations running per client key (for the per-key concurrency share). */
  const perKey = new Map<string, number>()
  const listenHost = options.host ?? settings.host

  const release = (entry: Active) => {
    if (entry.detachTimer !== undefined) clearTimeout(entry.detachTimer)
    entry.detachTimer = undefined
    if (entry.key !== undefined) {
      const n = (perKey.get(entry.key) ?? 1) - 1
      if (n <= 0) perKey.delete(entry.key)
      else perKey.set(entry.key, n)
      entry.key = undefined
    }
    if (active.delete(entry)) inflightGauge.unsafeUpdate(active.size, [])
  }

  /**
   * Takes a slot of the key's concurrency share for a new generation; the error when the share is
   * full. Replays of a journaled stream take none: its generation already holds one.
   */
  const claim = (entry: Active, key: Gateway.ClientKey | undefined): ClientApi.ApiError | undefined => {
    const share = ClientApi.concurrencyShareOf(gateway, key)
    if (share === undefined || key === undefined) return undefined
    const n = perKey.get(key.name) ?? 0
    if (n >= share) return ClientApi.keyBusy(share)
    perKey.set(key.name, n + 1)
    entry.key = key.name
    return undefined
  }

  /** Registers a request as in flight; a client that leaves early stops its work (unless it detaches). */
  const track = (res: http.ServerResponse): Active => {
    const entry: Active = { res, fiber: undefined, onClientGone: undefined, detachTimer: undefined, key: undefined }
    active.add(entry)
    inflightGauge.unsafeUpdate(active.size, [])
    res.once("close", () => {
      if (!res.writableFinished) {
        if (entry.onClientGone?.() === true) return
        entry.fiber?.unsafeInterruptAsFork(FiberId.none)
      }
      release(entry)
    })
    return entry
  }

  const finish = (
    req: http.IncomingMessage,
    path: string,
    status: number,
    startedAt: number,
    requestId: string,
    extra?: Record<string, unknown>
  ) => {
    const seconds = (performance.now() - startedAt) / 1000
    const route = routeOf(path)
    seriesOf(route).requests(String(status))(1)
    seriesOf(route).duration(seconds)
    const level = status >= 500 ? "error" : status >= 400 ? "warning" : "info"
    if (hostRuntime.enabled(level)) {
      hostRuntime.log(level, {
        msg: "request",
        request_id: requestId,
        method: req.method,
        path,
        status,
        duration_ms: Math.round(seconds * 1e4) / 10,
        ...extra
      })
    }
  }

  const json = (res: http.ServerResponse, status: number, body: string, requestId: string) => {
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body), "x-request-id": requestId })
    res.end(body)
  }

  const traceFields = (trace: RequestContext.RequestTrace) => ({
    upstream: trace.upstream,
    upstream_model: trace.model,
    attempts: trace.attempts,
    retries: trace.retries,
    resumes: trace.resumes
  })

  const failureOf = (cause: Cause.Cause<unknown>, trace: RequestContext.RequestTrace): ClientApi.ApiError => {
    const error = ClientApi.fromCause(cause, trace, secrets)
    if (error.status === 500) runtime.runFork(Effect.logError("unexpected failure", Cause.pretty(cause)))
    return error
  }

  const chat = (req: http.IncomingMessage, res: http.ServerResponse, path: string, requestId: string, startedAt: number) => {
    const reject = (error: ClientApi.ApiError, extra?: Record<string, unknown>) => {
      sendError(res, error, requestId)
      finish(req, path, error.status, startedAt, requestId, { error: error.code, ...extra })
    }
    if (draining) return reject({ status: 503, message: "the gateway is shutting down", type: "server_error", code: "shutting_down", shouldRetry: true })
    if (active.size >= settings.maxConcurrentRequests) {
      return reject({ status: 503, message: "the gateway is at its concurrency limit", type: "server_error", code: "gateway_busy", retryAfterSeconds: 1, shouldRetry: true })
    }
    const key = auth.enabled ? auth.check(req.headers.authorization) : undefined
    if (auth.enabled && key === undefined) {
      req.resume()
      return reject(ClientApi.unauthorized)
    }
    if (!ClientApi.isJsonContentType(header(req, "content-type"))) {
      req.resume()
      return reject(ClientApi.unsupportedMediaType)
    }
    const entry = track(res)
    Body.read(req, settings.maxBodyBytes, (body) => {
      if (body._tag === "Aborted") return
      if (body._tag === "TooLarge") {
        res.setHeader("connection", "close")
        return reject(ClientApi.tooLarge(settings.maxBodyBytes))
      }
      const text = ClientApi.decodeUtf8(body.bytes)
      if (text._tag === "Left") return reject(text.left)
      const parsed = api.parseChat(text.right, key)
      if (parsed._tag === "Left") return reject(parsed.left, key === undefined ? undefined : { key: key.name })
      const request = parsed.right
      const ctx = RequestContext.make({ requestId })
      const extra = { model: request.model, stream: request.stream === true, key: key?.name }
      const busy = (error: ClientApi.ApiError) => reject(error, extra)
      if (request.stream !== true || journal === undefined) {
        const full = claim(entry, key)
        if (full !== undefined) return busy(full)
        if (request.stream !== true) return generateChat(req, res, path, requestId, startedAt, request, ctx, entry, extra)
        return streamChat(req, res, path, requestId, startedAt, request, ctx, entry, extra, undefined)
      }
      const owner = key?.name ?? ""
      const lastEventId = header(req, "last-event-id")
      if (lastEventId !== undefined) {
        // A reconnect by the same POST: the events after Last-Event-ID, whoever generates them.
        const at = StreamJournal.parseEventId(lastEventId)
        if (at === undefined) return reject(ClientApi.badRequest("Last-Event-ID is not an event id of this gateway", "invalid_last_event_id"))
        return replay(req, res, path, requestId, startedAt, entry, owner, at.streamId, at.seq)
      }
      const idempotencyKey = header(req, "idempotency-key")
      const alias = idempotencyKey === undefined ? undefined : `${owner.length}:${owner}:${idempotencyKey}`
      const streamId = `bws_${randomUUID().replaceAll("-", "")}`
      runtime.runFork(journal.open(streamId, { owner, alias })).addObserver((exit) => {
        if (res.destroyed) return release(entry)
        if (Exit.isSuccess(exit) && exit.value._tag === "Exists") {
          return replay(req, res, path, requestId, startedAt, entry, owner, exit.value.streamId, 0)
        }
        const full = claim(entry, key)
        if (full !== undefined) {
          // Not started: a retry with the same Idempotency-Key must start afresh.
          if (Exit.isSuccess(exit)) runtime.runFork(Effect.ignore(journal.remove(streamId)))
          return busy(full)
        }
        if (Exit.isFailure(exit)) {
          // No journal: the stream is served anyway, without reconnect.
          runtime.runFork(Effect.logWarning("stream journal unavailable", Cause.pretty(exit.cause)).pipe(Effect.annotateLogs("request_id", requestId)))
          return streamChat(req, res, path, requestId, startedAt, request, ctx, entry, extra, undefined)
        }
        streamChat(req, res, path, requestId, startedAt, request, ctx, entry, { ...extra, stream_id: streamId }, { streamId, journal, alias })
      })
    })
  }

  const generateChat = (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    path: string,
    requestId: string,
    startedAt: number,
    request: ChatCompletion.ChatRequest,
    ctx: RequestContext.RequestContextShape,
    entry: Active,
    extra: Record<string, unknown>
  ) => {
    const fiber = runtime.runFork(Effect.provideService(model.generate(request), RequestContext.RequestContext, ctx))
    entry.fiber = fiber
    fiber.addObserver((exit) => {
      const trace = ctx.trace
      if (Exit.isSuccess(exit)) {
        const payload = JSON.stringify(exit.value)
        if (!res.destroyed) {
          res.writeHead(200, {
            "content-type": "application/json",
            "content-length": Buffer.byteLength(payload),
            "x-request-id": requestId,
            ...ClientApi.traceHeaders(trace)
          })
          res.end(payload)
        }
        finish(req, path, 200, startedAt, requestId, { ...extra, ...traceFields(trace) })
      } else if (Cause.isInterruptedOnly(exit.cause)) {
        finish(req, path, 499, startedAt, requestId, { ...extra, ...traceFields(trace), error: "client_closed" })
      } else {
        const error = failureOf(exit.cause, trace)
        sendError(res, error, requestId, ClientApi.traceHeaders(trace))
        finish(req, path, error.status, startedAt, requestId, { ...extra, ...traceFields(trace), error: error.code })
      }
    })
  }

  const streamChat = (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    path: string,
    requestId: string,
    startedAt: number,
    request: ChatCompletion.ChatRequest,
    ctx: RequestContext.RequestContextShape,
    entry: Active,
    extra: Record<string, unknown>,
    journaled: { readonly streamId: string; readonly journal: StreamJournal.StreamJournal; readonly alias: string | undefined } | undefined
  ) => {
    let commitTimer: NodeJS.Timeout | undefined
    let events: ClientStream.Events | undefined
    /** Completes once every event handed to the journal is in it (the terminal event goes last). */
    let appended: Effect.Effect<void> = Effect.void
    let detached = false
    if (journaled !== undefined) {
      const { journal, streamId } = journaled
      let journaling = true
      const stopJournaling = (why: string) => {
        journaling = false
        return Effect.logWarning(`stream ${streamId} is no longer journaled: ${why}`).pipe(Effect.annotateLogs("request_id", requestId))
      }
      const onAppend = (result: StreamJournal.AppendResult) => {
        if (result === "ok") return
        if (result === "cancelled") {
          entry.fiber?.unsafeInterruptAsFork(FiberId.none)
          return
        }
        // Evicted: nobody can resume it any more, so a detached generation has no reader left.
        runtime.runFork(stopJournaling("evicted from the journal"))
        if (detached) entry.fiber?.unsafeInterruptAsFork(FiberId.none)
      }
      // Each write's events are journaled before they are written: at once where the store can
      // (memory), else appended in order, one batch per tick, by one fiber at a time (Redis).
      const appendNow = journal.appendNow
      let queued: Array<readonly [number, ReadonlyArray<string>]> = []
      let appending = false
      const drainQueue = (): void => {
        if (queued.length === 0 || appending) return
        appending = true
        const batch = queued
        queued = []
        const appendAll = Effect.forEach(batch, ([first, frames]) =>
          Effect.forEach(frames, (frame, i) =>
            journaling
              ? Effect.matchEffect(journal.append(streamId, first + i, frame), {
                onFailure: (e) => stopJournaling(e.message),
                onSuccess: (result) => Effect.sync(() => onAppend(result))
              })
              : Effect.void, { discard: true }), { discard: true })
        runtime.runFork(appendAll).addObserver(() => {
          appending = false
          drainQueue()
          if (!appending) for (const w of idle.splice(0)) w()
        })
      }
      const idle: Array<() => void> = []
      appended = Effect.async<void>((resume) => {
        if (!appending && queued.length === 0) return resume(Effect.void)
        idle.push(() => resume(Effect.void))
      })
      const record = (first: number, frames: ReadonlyArray<string>): void => {
        if (!journaling) return
        if (appendNow !== undefined) return onAppend(appendNow(streamId, first, frames))
        queued.push([first, frames])
        if (queued.length === 1) setImmediate(drainQueue)
      }
      events = { streamId, retryMs, record }
      running.set(streamId, entry)
      // Disconnect is not stop: the generation goes on (journaled) for the grace period, and is
      // cut then unless a reader reconnected. A client that never got the stream's id (nothing
      // committed, no Idempotency-Key) cannot come back, so its stream stops at once.
      entry.onClientGone = () => {
        if (settings.detachGraceMs <= 0 || !journaling || (!writer.committed() && journaled.alias === undefined)) return false
        detached = true
        const arm = () => {
          entry.detachTimer = setTimeout(() => {
            runtime.runFork(journal.state(streamId)).addObserver((exit) => {
              if (Exit.isSuccess(exit) && exit.value._tag === "Active" && exit.value.readers > 0 && !exit.value.finished) return arm()
              entry.fiber?.unsafeInterruptAsFork(FiberId.none)
            })
          }, settings.detachGraceMs)
        }
        arm()
        return true
      }
    }
    const writer = ClientStream.make({
      includeUsage: request.stream_options?.include_usage === true,
      events,
      sink: {
        commit: (heldBack) => {
          if (commitTimer !== undefined) clearTimeout(commitTimer)
          if (res.destroyed) return
          res.writeHead(200, journaled === undefined ? sseHeaders(requestId, ctx.trace) : { ...sseHeaders(requestId, ctx.trace), "x-breakwater-stream-id": journaled.streamId })
          if (heldBack !== "") res.write(heldBack)
        },
        write: (frames) => res.destroyed || res.writableEnded || res.write(frames)
      }
    })
    // An upstream slow to start still gets a 200 and a keep-alive after this bound.
    commitTimer = setTimeout(() => {
      writer.commit()
      if (!res.destroyed) res.write(ClientStream.keepAlive)
    }, settings.streamCommitTimeoutMs)
    const sink = ClientStream.chunkSink(writer, (resume) => res.once("drain", resume))
    const fiber = runtime.runFork(Effect.provideService(run(request, undefined, sink), RequestContext.RequestContext, ctx))
    entry.fiber = fiber
    fiber.addObserver((exit) => {
      if (commitTimer !== undefined) clearTimeout(commitTimer)
      const trace = ctx.trace
      const fields = { ...extra, ...traceFields(trace), ...(detached ? { detached: true } : undefined) }
      let closeJournal: Effect.Effect<unknown, unknown> = Effect.void
      /** The terminal event, journaled before the journal is closed. */
      const terminal = (data: string) => {
        const t = writer.terminal(data)
        if (journaled !== undefined) {
          closeJournal = Effect.zipRight(
            appended,
            Effect.zipRight(journaled.journal.append(journaled.streamId, t.seq, t.frame), journaled.journal.finish(journaled.streamId))
          )
        }
        return t.frame
      }
      if (journaled !== undefined) {
        running.delete(journaled.streamId)
        release(entry)
        // Failed before anything was committed: the client got an HTTP error, so a retry with the
        // same Idempotency-Key starts afresh.
        closeJournal = journaled.journal.remove(journaled.streamId)
      }
      if (Exit.isSuccess(exit)) {
        writer.commit()
        const frame = terminal("[DONE]")
        if (!res.destroyed) res.end(frame)
        finish(req, path, 200, startedAt, requestId, fields)
      } else if (Cause.isInterruptedOnly(exit.cause)) {
        if (writer.committed()) {
          // Cancelled, cut after the detach grace, or at shutdown: a reader gets a well-formed end.
          const frame = terminal(`${ClientApi.errorBody(cancelled, requestId)}`)
          if (!res.destroyed && journaled !== undefined) res.end(frame)
        }
        if (!res.destroyed && !res.writableEnded) res.destroy()
        finish(req, path, 499, startedAt, requestId, { ...fields, error: detached || journaled === undefined ? "client_closed" : "stream_cancelled" })
      } else {
        const error = failureOf(exit.cause, trace)
        const committed = writer.committed()
        if (!committed) {
          sendError(res, error, requestId, ClientApi.traceHeaders(trace))
        } else {
          // Headers are gone: the failure becomes a well-formed error event, and no [DONE].
          const frame = terminal(ClientApi.errorBody(error, requestId))
          if (!res.destroyed) res.end(frame)
        }
        finish(req, path, committed ? 200 : error.status, startedAt, requestId, { ...fields, error: error.code })
      }
      if (journaled !== undefined) {
        runtime.runFork(Effect.catchAllCause(closeJournal, (cause) => Effect.logWarning("could not close the stream journal", Cause.pretty(cause))))
      }
    })
  }

  /**
   * Serves a reconnect: the journaled events after `afterSeq`, byte for byte, then the live rest.
   * Another owner's stream is answered exactly like an unknown one.
   */
  const replay = (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    path: string,
    requestId: string,
    startedAt: number,
    entry: Active,
    owner: string,
    streamId: string,
    afterSeq: number
  ) => {
    const j = journal!
    const reject = (error: ClientApi.ApiError) => {
      sendError(res, error, requestId)
      finish(req, path, error.status, startedAt, requestId, { stream_id: streamId, error: error.code })
    }
    runtime.runFork(j.state(streamId)).addObserver((exit) => {
      if (res.destroyed) return release(entry)
      if (Exit.isFailure(exit)) return reject(journalDown)
      const state = exit.value
      if (state._tag === "Unknown" || state.owner !== owner) return reject(notFound)
      const noContent = () => {
        res.writeHead(204, { "x-request-id": requestId, "x-breakwater-stream-id": streamId })
        res.end()
        finish(req, path, 204, startedAt, requestId, { stream_id: streamId })
      }
      // Never 204 here: that says "finished, nothing follows", and this stream may not have been.
      if (state._tag === "Expired") return reject(streamGone)
      if (afterSeq >= state.lastSeq && state.finished) return noContent()
      if (afterSeq > state.lastSeq) return reject(ClientApi.badRequest("Last-Event-ID is beyond the stream's last event", "invalid_last_event_id"))
      if (afterSeq + 1 < state.firstSeq) return reject(eventsGone)
      res.writeHead(200, {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache",
        "x-accel-buffering": "no",
        "x-request-id": requestId,
        "x-breakwater-stream-id": streamId
      })
      res.write(ClientStream.retryHint(retryMs))
      const fiber = runtime.runFork(Stream.runForEach(j.follow(streamId, afterSeq), (event) => writeTo(res, event.frame)))
      entry.fiber = fiber
      fiber.addObserver((done) => {
        if (Exit.isSuccess(done)) {
          if (!res.destroyed) res.end()
          return finish(req, path, 200, startedAt, requestId, { stream_id: streamId, replayed_after: afterSeq })
        }
        if (Cause.isInterruptedOnly(done.cause)) {
          if (!res.destroyed) res.destroy()
          return finish(req, path, 499, startedAt, requestId, { stream_id: streamId, error: "client_closed" })
        }
        // Evicted or expired while being read: end well-formed, never as a silent truncation.
        const error = Cause.failureOption(done.cause)
        const apiError = error._tag === "Some" && error.value.reason === "gap" ? eventsGone : error._tag === "Some" && error.value.reason === "gone" ? { ...eventsGone, message: "the stream expired while being read" } : journalDown
        if (!res.destroyed) res.end(`data: ${ClientApi.errorBody(apiError, requestId)}\n\n`)
        finish(req, path, 200, startedAt, requestId, { stream_id: streamId, error: apiError.code })
      })
    })
  }

  /** `GET /v1/streams/{id}` (reconnect) and `DELETE /v1/streams/{id}` (cancel). */
  const streams = (req: http.IncomingMessage, res: http.ServerResponse, path: string, requestId: string, startedAt: number, method: string) => {
    const reject = (error: ClientApi.ApiError) => {
      sendError(res, error, requestId)
      finish(req, path, error.status, startedAt, requestId, { error: error.code })
    }
    req.resume()
    if (method !== "GET" && method !== "DELETE") {
      res.setHeader("allow", "GET, DELETE")
      return reject({ status: 405, message: `${method} is not allowed on ${path}`, type: "invalid_request_error", code: "method_not_allowed" })
    }
    const key = auth.enabled ? auth.check(req.headers.authorization) : undefined
    if (auth.enabled && key === undefined) return reject(ClientApi.unauthorized)
    if (journal === undefined) return reject(notFound)
    let streamId: string
    try {
      streamId = decodeURIComponent(path.slice("/v1/streams/".length))
    } catch {
      return reject(notFound)
    }
    if (streamId === "" || streamId.length > 256 || streamId.includes("/")) return reject(notFound)
    const owner = key?.name ?? ""
    if (method === "GET") {
      if (draining) return reject({ status: 503, message: "the gateway is shutting down", type: "server_error", code: "shutting_down", shouldRetry: true })
      let afterSeq = 0
      const lastEventId = header(req, "last-event-id")
      if (lastEventId !== undefined) {
        const at = StreamJournal.parseEventId(lastEventId)
        if (at === undefined || at.streamId !== streamId) return reject(ClientApi.badRequest("Last-Event-ID is not an event id of this stream", "invalid_last_event_id"))
        afterSeq = at.seq
      }
      return replay(req, res, path, requestId, startedAt, track(res), owner, streamId, afterSeq)
    }
    // DELETE: stops the generation at once, here or (through the journal) on whichever instance runs it.
    runtime.runFork(Effect.flatMap(journal.state(streamId), (state) =>
      state._tag === "Unknown" || state.owner !== owner
        ? Effect.succeed(false)
        : Effect.as(journal.cancel(streamId), true))).addObserver((exit) => {
        if (Exit.isFailure(exit)) return reject(journalDown)
        if (!exit.value) return reject(notFound)
        running.get(streamId)?.fiber?.unsafeInterruptAsFork(FiberId.none)
        res.writeHead(204, { "x-request-id": requestId, "x-breakwater-stream-id": streamId })
        res.end()
        finish(req, path, 204, startedAt, requestId, { stream_id: streamId })
      })
  }

  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const startedAt = performance.now()
    const url = req.url ?? "/"
    const q = url.indexOf("?")
    const path = q === -1 ? url : url.slice(0, q)
    const requestId = ClientApi.requestIdFrom(req.headers["x-request-id"])
    const method = req.method ?? "GET"
    const refuse = (error: ClientApi.ApiError) => {
      req.resume()
      sendError(res, error, requestId)
      finish(req, path, error.status, startedAt, requestId, { error: error.code })
    }
    // Without client keys the gateway is only for this machine: a page the operator visits must
    // neither reach it through a rebound DNS name nor spend its credit cross-origin.
    if (!auth.enabled && !ClientApi.isLocalHost(header(req, "host"), listenHost)) return refuse(ClientApi.hostNotAllowed)
    const origin = header(req, "origin")
    if (origin !== undefined) {
      if (gateway.cors !== undefined && ClientApi.originAllowed(gateway.cors, origin)) {
        if (method === "OPTIONS" && header(req, "access-control-request-method") !== undefined) {
          req.resume()
          res.writeHead(204, { ...ClientApi.corsHeaders(gateway.cors, origin, true), "x-request-id": requestId })
          res.end()
          return finish(req, path, 204, startedAt, requestId)
        }
        for (const [name, value] of Object.entries(ClientApi.corsHeaders(gateway.cors, origin, false))) res.setHeader(name, value)
      } else if (!auth.enabled) {
        return refuse(ClientApi.originNotAllowed)
      }
    }
    const notAllowed = (allowed: string) => {
      req.resume()
      res.setHeader("allow", allowed)
      sendError(res, { status: 405, message: `${method} is not allowed on ${path}`, type: "invalid_request_error", code: "method_not_allowed" }, requestId)
      finish(req, path, 405, startedAt, requestId)
    }
    switch (path) {
      case "/v1/chat/completions":
      case "/chat/completions":
        return method === "POST" ? chat(req, res, "/v1/chat/completions", requestId, startedAt) : notAllowed("POST")
      case "/v1/models":
      case "/models": {
        if (method !== "GET") return notAllowed("GET")
        const key = auth.enabled ? auth.check(req.headers.authorization) : undefined
        if (auth.enabled && key === undefined) {
          sendError(res, ClientApi.unauthorized, requestId)
          return finish(req, path, 401, startedAt, requestId)
        }
        json(res, 200, api.modelsBodyFor(key), requestId)
        return finish(req, path, 200, startedAt, requestId)
      }
      case "/healthz":
        json(res, 200, JSON.stringify({ status: draining ? "draining" : "ok" }), requestId)
        return finish(req, path, 200, startedAt, requestId)
      case "/readyz":
        runtime.runFork(gateway.health).addObserver((exit) => {
          const answer = api.readiness(Exit.isSuccess(exit) ? exit.value : undefined, draining, req.headers.authorization)
          json(res, answer.status, answer.body, requestId)
          finish(req, path, answer.status, startedAt, requestId)
        })
        return
      case "/metrics":
        if (!api.metricsAllowed(req.headers.authorization)) {
          sendError(res, ClientApi.adminRequired, requestId)
          return finish(req, path, 401, startedAt, requestId)
        }
        runtime.runFork(PrometheusMetrics.render).addObserver((exit) => {
          const text = Exit.isSuccess(exit) ? exit.value : ""
          res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8", "content-length": Buffer.byteLength(text) })
          res.end(text)
          finish(req, path, 200, startedAt, requestId)
        })
        return
      default:
        if (path.startsWith("/v1/streams/")) return streams(req, res, path, requestId, startedAt, method)
        req.resume()
        sendError(res, { status: 404, message: `no route for ${method} ${path}`, type: "invalid_request_error", code: "not_found" }, requestId)
        return finish(req, path, 404, startedAt, requestId)
    }
  }

  const server = http.createServer({
    maxHeaderSize: settings.maxHeaderBytes,
    requestTimeout: settings.requestTimeoutMs,
    headersTimeout: Math.min(settings.requestTimeoutMs, 10_000),
    // Node enforces both timeouts from a periodic sweep, every 30 s by default: a slow-loris
    // client then held its socket ~30 s whatever the limit. Sweep at a fraction of the limit.
    connectionsCheckingInterval: Math.max(100, Math.min(1_000, Math.floor(settings.requestTimeoutMs / 4))),
    keepAliveTimeout: 5_000
  }, handler)
  // Requests with a malformed or oversized header block never reach the handler: answer them here.
  server.on("clientError", (error: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) return socket.destroy()
    const status = error.code === "HPE_HEADER_OVERFLOW" ? 431 : error.code === "ERR_HTTP_REQUEST_TIMEOUT" ? 408 : 400
    const payload = JSON.stringify({ error: { message: status === 431 ? "request headers too large" : status === 408 ? "request timed out" : "malformed HTTP request", type: "invalid_request_error", code: null } })
    socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(payload)}\r\nconnection: close\r\n\r\n${payload}`)
  })

  const host = gateway.keys.length === 0 ? "127.0.0.1" : options.host ?? settings.host
  const port = options.port ?? settings.port
  return new Promise<RunningServer>((resolve, reject) => {
    server.once("error", reject)
    // Node's default accept backlog (511) overflows when a burst of clients connects at once
    // (a load balancer's reconnect storm; the soak's 2,000 simultaneous streams): connections
    // beyond it were reset. The kernel caps this at net.core.somaxconn.
    server.listen({ port, host, backlog: Math.max(511, settings.maxConcurrentRequests) }, () => {
      server.off("error", reject)
      const address = server.address() as AddressInfo
      const url = `http://${address.family === "IPv6" ? `[${address.address}]` : address.address}:${address.port}`
      if (gateway.keys.length === 0 && (options.host ?? settings.host) !== "127.0.0.1") {
        hostRuntime.log("warning", { msg: "no gateway API keys are configured: listening on loopback only (127.0.0.1)" })
      }
      let closed: Promise<void> | undefined
      const close = (graceMs = settings.shutdownGraceMs): Promise<void> =>
        closed ??= new Promise<void>((done) => {
          draining = true
          server.close()
          server.closeIdleConnections()
          const cut = () => {
            for (const entry of active) {
              entry.fiber?.unsafeInterruptAsFork(FiberId.none)
              entry.res.destroy()
            }
          }
          const timer = setTimeout(cut, graceMs)
          const check = () => {
            if (active.size > 0) return void setTimeout(check, 20)
            clearTimeout(timer)
            server.closeAllConnections()
            void runtime.dispose().then(done, done)
          }
          check()
        })
      resolve({ url, host: address.address, port: address.port, server, close })
    })
  })
}
