/**
 * A reconnect: the journaled events after `afterSeq`, byte for byte, then the live rest. Another
 * owner's stream is answered exactly like an unknown one.
 */
import { ClientStream, StreamReconnect } from "@breakwater/gateway"
import type { StreamJournal } from "@breakwater/stream-resume"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Stream from "effect/Stream"
import type * as http from "node:http"
import { abandon, fail, finish, noContent } from "./answer.js"
import { type Exchange, header } from "./exchange.js"
import type { Host } from "./host.js"

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
    if (res.destroyed) return abandon(h, x)
    if (Exit.isFailure(exit)) return fail(h, x, StreamReconnect.journalDown)
    const decided = StreamReconnect.replayOf(exit.value, owner, afterSeq)
    if (decided._tag === "Refused") return fail(h, x, decided.error)
    if (decided._tag === "Finished") return noContent(h, x, streamId)
    res.writeHead(200, ClientStream.headers(requestId, undefined, streamId))
    res.write(ClientStream.retryHint(h.retryMs))
    let events = 0
    const fiber = h.runtime.runFork(Stream.runForEach(journal.follow(streamId, afterSeq), (event) => {
      events++
      return writeTo(res, event.frame)
    }))
    x.fiber = fiber
    fiber.addObserver((done) => {
      x.span?.event({ _tag: "JournalReplay", events, lastEventId: header(x, "last-event-id") })
      if (Exit.isSuccess(done)) {
        if (!res.destroyed) res.end()
        return finish(h, x, 200, { replayed_after: afterSeq })
      }
      if (Cause.isInterruptedOnly(done.cause)) {
        if (!res.destroyed) res.destroy()
        return finish(h, x, 499, { error: "client_closed" })
      }
      // Evicted or expired while being read: end well-formed, never as a silent truncation, in
      // the API the stream was started with (a reader by the streams API does not say it).
      const apiError = StreamReconnect.followFailure(done.cause)
      if (!res.destroyed) res.end(h.pipeline[StreamReconnect.apiOf(streamId)].errorEvent(apiError, requestId))
      finish(h, x, 200, { error: apiError.code })
    })
  })
}
