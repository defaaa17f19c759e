/**
 * A reconnect: the journaled events after `afterSeq`, byte for byte, then the live rest. Another
 * owner's stream is answered exactly like an unknown one.
 */
import { ClientApi, ClientStream } from "@breakwater/gateway"
import type { StreamJournal } from "@breakwater/stream-resume"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Stream from "effect/Stream"
import type * as http from "node:http"
import { fail, finish, noContent } from "./answer.js"
import type { Exchange } from "./exchange.js"
import type { Host } from "./host.js"
import * as Lifecycle from "./lifecycle.js"

export const notFound: ClientApi.ApiError = { status: 404, message: "no such stream", type: "invalid_request_error", code: "stream_not_found" }
export const journalDown: ClientApi.ApiError = { status: 503, message: "the stream journal is unavailable", type: "server_error", code: "journal_unavailable", shouldRetry: true }
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

/** Serves a reconnect of a tracked exchange to the stream `streamId` of `owner`. */
export const replay = (h: Host, x: Exchange, journal: StreamJournal.StreamJournal, owner: string, streamId: string, afterSeq: number): void => {
  const { requestId, res } = x
  x.fields = x.fields === undefined ? { stream_id: streamId } : { ...x.fields, stream_id: streamId }
  h.runtime.runFork(journal.state(streamId)).addObserver((exit) => {
    if (res.destroyed) return Lifecycle.release(h.lifecycle, x)
    if (Exit.isFailure(exit)) return fail(h, x, journalDown)
    const state = exit.value
    if (state._tag === "Unknown" || state.owner !== owner) return fail(h, x, notFound)
    // Never 204 here: that says "finished, nothing follows", and this stream may not have been.
    if (state._tag === "Expired") return fail(h, x, streamGone)
    if (afterSeq >= state.lastSeq && state.finished) return noContent(h, x, streamId)
    if (afterSeq > state.lastSeq) return fail(h, x, ClientApi.badRequest("Last-Event-ID is beyond the stream's last event", "invalid_last_event_id"))
    if (afterSeq + 1 < state.firstSeq) return fail(h, x, eventsGone)
    res.writeHead(200, ClientStream.headers(requestId, undefined, streamId))
    res.write(ClientStream.retryHint(h.retryMs))
    const fiber = h.runtime.runFork(Stream.runForEach(journal.follow(streamId, afterSeq), (event) => writeTo(res, event.frame)))
    x.fiber = fiber
    fiber.addObserver((done) => {
      if (Exit.isSuccess(done)) {
        if (!res.destroyed) res.end()
        return finish(h, x, 200, { replayed_after: afterSeq })
      }
      if (Cause.isInterruptedOnly(done.cause)) {
        if (!res.destroyed) res.destroy()
        return finish(h, x, 499, { error: "client_closed" })
      }
      // Evicted or expired while being read: end well-formed, never as a silent truncation.
      const error = Cause.failureOption(done.cause)
      const apiError = error._tag === "Some" && error.value.reason === "gap"
        ? eventsGone
        : error._tag === "Some" && error.value.reason === "gone"
        ? { ...eventsGone, message: "the stream expired while being read" }
        : journalDown
      if (!res.destroyed) res.end(ClientStream.errorEvent(apiError, requestId))
      finish(h, x, 200, { error: apiError.code })
    })
  })
}
