/**
 * A reconnect on `@effect/platform`: the journaled events after `afterSeq`, byte for byte, then
 * the live rest, as a response body the server pulls (a slow reader holds back only itself).
 * Another owner's stream is answered exactly like an unknown one.
 */
import type { RequestObserver } from "@breakwater/core"
import { ClientStream, type RequestPipeline, StreamReconnect } from "@breakwater/gateway"
import { StreamJournal } from "@breakwater/stream-resume"
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Stream from "effect/Stream"
import * as Answer from "./answer.js"
import { type Host, onHost } from "./host.js"

/** Writes the request's log line (status and fields) once. */
export type Log = (status: number, fields?: Record<string, unknown>) => void

export const replay = (
  h: Host,
  requestId: string,
  owner: string,
  streamId: string,
  afterSeq: number,
  log: Log,
  observer?: RequestObserver.RequestObserver | undefined,
  protocol?: RequestPipeline.Protocol | undefined
): Effect.Effect<HttpServerResponse.HttpServerResponse> => {
  const journal = h.journal!
  return Effect.map(onHost(h.pipeline, journal.state(streamId)), (exit) => {
    const refuse = (error: typeof StreamReconnect.notFound) => {
      log(error.status, { stream_id: streamId, error: error.code })
      return Answer.error(error, requestId, undefined, protocol)
    }
    if (Exit.isFailure(exit)) return refuse(StreamReconnect.journalDown)
    const decided = StreamReconnect.replayOf(exit.value, owner, afterSeq)
    if (decided._tag === "Refused") return refuse(decided.error)
    if (decided._tag === "Finished") {
      log(204, { stream_id: streamId })
      return Answer.noContent(requestId, streamId)
    }
    let logged = false
    let events = 0
    const end = (status: number, fields: Record<string, unknown>) => {
      if (logged) return
      logged = true
      observer?.event({ _tag: "JournalReplay", events, lastEventId: afterSeq === 0 ? undefined : StreamJournal.eventId(streamId, afterSeq) })
      log(status, { stream_id: streamId, ...fields })
    }
    const frames = Stream.concat(
      Stream.succeed(ClientStream.retryHint(h.retryMs)),
      Stream.map(journal.follow(streamId, afterSeq), (event) => {
        events++
        return event.frame
      })
    ).pipe(
      Stream.onEnd(Effect.sync(() => end(200, { replayed_after: afterSeq }))),
      // Evicted or expired while being read: end well-formed, never as a silent truncation, in
      // the API the stream was started with (a reader by the streams API does not say it).
      Stream.catchAllCause((cause) => {
        const error = StreamReconnect.followFailure(cause)
        end(200, { error: error.code })
        return Stream.succeed(h.pipeline[StreamReconnect.apiOf(streamId)].errorEvent(error, requestId))
      }),
      Stream.ensuring(Effect.sync(() => end(499, { error: "client_closed" })))
    )
    return Answer.stream(Stream.encodeText(frames), ClientStream.headers(requestId, undefined, streamId))
  })
}
