/**
 * The decisions of a client reconnect, whatever the transport: the names (stream ids, aliases,
 * owners, event ids), who may read or cancel which stream, and the answer to each state the
 * journal reports.
 */
import { StreamJournal } from "@breakwater/stream-resume"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import { randomUUID } from "node:crypto"
import { type ApiError, apiError, badRequest } from "../ClientApi.js"
import type { ClientKey, Gateway } from "../Gateway.js"
import type { Journaled } from "./journaling.js"

export const notFound: ApiError = apiError({ status: 404, message: "no such stream", type: "invalid_request_error", code: "stream_not_found" })
export const journalDown: ApiError = apiError({ status: 503, message: "the stream journal is unavailable", type: "server_error", code: "journal_unavailable", shouldRetry: true })
export const eventsGone: ApiError = apiError({
  status: 410,
  message: "the events after Last-Event-ID are no longer kept",
  type: "invalid_request_error",
  code: "stream_events_expired"
})
export const streamGone: ApiError = apiError({
  status: 410,
  message: "this stream expired or was evicted from the journal: its events are no longer kept, and whether it was complete is unknown",
  type: "invalid_request_error",
  code: "stream_expired"
})
export const cancelled: ApiError = apiError({ status: 499, message: "the stream was cancelled", type: "server_error", code: "stream_cancelled" })

export const journalOf = (gateway: Gateway, option: StreamJournal.StreamJournal | false | undefined): StreamJournal.StreamJournal | undefined =>
  option === false ? undefined : option ?? gateway.journal ?? Effect.runSync(StreamJournal.makeMemory())

export const prefix = "/v1/streams/"

export const streamIdOf = (path: string): string | undefined => {
  let id: string
  try {
    id = decodeURIComponent(path.slice(prefix.length))
  } catch {
    return undefined
  }
  return id === "" || id.length > 256 || id.includes("/") ? undefined : id
}

export const ownerOf = (key: ClientKey | undefined): string => key?.name ?? ""

export const reconnectAt = (lastEventId: string): { readonly streamId: string; readonly seq: number } | ApiError =>
  StreamJournal.parseEventId(lastEventId) ?? badRequest("Last-Event-ID is not an event id of this gateway", "invalid_last_event_id")

export const afterSeqOf = (lastEventId: string | undefined, streamId: string): number | ApiError => {
  if (lastEventId === undefined) return 0
  const at = StreamJournal.parseEventId(lastEventId)
  return at === undefined || at.streamId !== streamId ? badRequest("Last-Event-ID is not an event id of this stream", "invalid_last_event_id") : at.seq
}

/** The client API a stream was started with, which its replay ends in the shape of. */
export type Api = "chat" | "messages"

// A stream's id says its API: the journal keeps only its owner, and a reconnect by the streams
// API (`GET /v1/streams/{id}`) does not say it. Chat streams keep the plain prefix of 0.3.
const messagesPrefix = "bws_msg_"

export const apiOf = (streamId: string): Api => streamId.startsWith(messagesPrefix) ? "messages" : "chat"

export type Opening =
  | { readonly _tag: "Opened"; readonly journaled: Journaled }
  | { readonly _tag: "Exists"; readonly streamId: string }

// An Idempotency-Key names a request of one API: the same key on the other API is another
// request (a Messages client must not get a chat stream's replay). Chat aliases keep their form
// of 0.3 (a journal shared with older instances still finds them); a Messages alias starts with
// a letter, where a chat alias starts with its owner's length, so the two never meet.
const aliasOf = (owner: string, idempotencyKey: string | undefined, api: Api) =>
  idempotencyKey === undefined
    ? undefined
    : `${api === "messages" ? "m:" : ""}${owner.length}:${owner}:${idempotencyKey}`

const newStreamId = (api: Api) => `${api === "messages" ? messagesPrefix : "bws_"}${randomUUID().replaceAll("-", "")}`

const opening = (journal: StreamJournal.StreamJournal, streamId: string, alias: string | undefined, opened: StreamJournal.OpenResult): Opening =>
  opened._tag === "Exists" ? opened : { _tag: "Opened", journaled: { streamId, journal, alias } }

export const open = (
  journal: StreamJournal.StreamJournal,
  owner: string,
  idempotencyKey: string | undefined,
  api: Api
): Effect.Effect<Opening, StreamJournal.JournalError> => {
  const alias = aliasOf(owner, idempotencyKey, api)
  const streamId = newStreamId(api)
  return Effect.map(journal.open(streamId, { owner, alias }), (opened) => opening(journal, streamId, alias, opened))
}

export const openNow = (
  journal: StreamJournal.StreamJournal,
  owner: string,
  idempotencyKey: string | undefined,
  api: Api
): Opening | undefined => {
  if (journal.openNow === undefined) return undefined
  const alias = aliasOf(owner, idempotencyKey, api)
  const streamId = newStreamId(api)
  return opening(journal, streamId, alias, journal.openNow(streamId, { owner, alias }))
}

export type Replay =
  | { readonly _tag: "Refused"; readonly error: ApiError }
  | { readonly _tag: "Finished" }
  | { readonly _tag: "Follow" }

export const replayOf = (state: StreamJournal.StreamState, owner: string, afterSeq: number): Replay => {
  if (state._tag === "Unknown" || state.owner !== owner) return { _tag: "Refused", error: notFound }
  // Never "finished" here: that says nothing follows, and this stream may not have been complete.
  if (state._tag === "Expired") return { _tag: "Refused", error: streamGone }
  if (afterSeq >= state.lastSeq && state.finished) return { _tag: "Finished" }
  if (afterSeq > state.lastSeq) return { _tag: "Refused", error: badRequest("Last-Event-ID is beyond the stream's last event", "invalid_last_event_id") }
  if (afterSeq + 1 < state.firstSeq) return { _tag: "Refused", error: eventsGone }
  return { _tag: "Follow" }
}

export const followFailure = (cause: Cause.Cause<StreamJournal.JournalError>): ApiError => {
  const error = Cause.failureOption(cause)
  return error._tag === "Some" && error.value.reason === "gap"
    ? eventsGone
    : error._tag === "Some" && error.value.reason === "gone"
    ? { ...eventsGone, message: "the stream expired while being read" }
    : journalDown
}

export const cancel = (journal: StreamJournal.StreamJournal, owner: string, streamId: string): Effect.Effect<boolean, StreamJournal.JournalError> =>
  Effect.flatMap(journal.state(streamId), (state) =>
    state._tag === "Unknown" || state.owner !== owner
      ? Effect.succeed(false)
      : Effect.as(journal.cancel(streamId), true))
