/**
 * Client reconnects, whatever the transport: a client that lost its stream comes back with
 * `Last-Event-ID` (on the same POST, or `GET /v1/streams/{id}`) or repeats a POST with an
 * `Idempotency-Key` already seen, and gets exactly what it missed, then the live rest, from the
 * stream journal (`@breakwater/stream-resume`'s `StreamJournal`); `DELETE /v1/streams/{id}`
 * stops a generation. A host owns only its transport (reading the request, writing the replayed
 * frames with backpressure); this module holds the rest: naming and opening a journaled stream,
 * recording its events (on the chunk path: one plain call per write, no effect where the store
 * appends synchronously), its detach when the client leaves, who may read or cancel which
 * stream, and each answer.
 *
 * Replayed frames are the exact text the client first received, so nothing here assumes the
 * framing of one API: a host journals whatever events its writer produces. Only the error event
 * that ends a replay the journal cut is written anew, in the API the stream's id names (`apiOf`).
 *
 * @since 0.3.0
 */
import type { StreamJournal } from "@breakwater/stream-resume"
import type * as Cause from "effect/Cause"
import type * as Effect from "effect/Effect"
import type * as ManagedRuntime from "effect/ManagedRuntime"
import type { ApiError } from "./ClientApi.js"
import type { Events } from "./ClientStream.js"
import type { ClientKey, Gateway } from "./Gateway.js"
import * as journaling from "./internal/journaling.js"
import * as internal from "./internal/reconnect.js"

/**
 * The `retry:` hint (ms) that starts a journaled stream when the host is not told otherwise.
 *
 * @since 0.3.0
 * @category constants
 */
export const defaultRetryMs = 1_000

/**
 * The path prefix of the streams API (`GET` and `DELETE /v1/streams/{id}`).
 *
 * @since 0.3.0
 * @category constants
 */
export const prefix: string = internal.prefix

/**
 * `404`: no such stream, or another owner's (answered alike, so a stream id reveals nothing).
 *
 * @since 0.3.0
 * @category answers
 */
export const notFound: ApiError = internal.notFound

/**
 * `503`: the journal could not be reached (a shared store down).
 *
 * @since 0.3.0
 * @category answers
 */
export const journalDown: ApiError = internal.journalDown

/**
 * `410`: the events after `Last-Event-ID` were dropped by a bound.
 *
 * @since 0.3.0
 * @category answers
 */
export const eventsGone: ApiError = internal.eventsGone

/**
 * `410`: the stream expired or was evicted; whether it was complete is no longer known (never a `204`).
 *
 * @since 0.3.0
 * @category answers
 */
export const streamGone: ApiError = internal.streamGone

/**
 * The error that ends a stream stopped by a cancel, the detach grace or a shutdown (`499` in the log).
 *
 * @since 0.3.0
 * @category answers
 */
export const cancelled: ApiError = internal.cancelled

/**
 * The journal a host uses: the one it was given, `undefined` for `false` (journaling off: no
 * event ids, no reconnects), else the gateway's (shared state) or a new in-memory one.
 *
 * @since 0.3.0
 * @category constructors
 */
export const journalOf: (gateway: Gateway, option: StreamJournal.StreamJournal | false | undefined) => StreamJournal.StreamJournal | undefined =
  internal.journalOf

/**
 * The stream id a streams-API path names (`/v1/streams/{id}`, URL-decoded), or `undefined` for
 * one that cannot be a stream's.
 *
 * @since 0.3.0
 * @category decoding
 */
export const streamIdOf: (path: string) => string | undefined = internal.streamIdOf

/**
 * Who owns the streams a caller opens and may read back: its client key's name (`""` without keys).
 *
 * @since 0.3.0
 * @category decoding
 */
export const ownerOf: (key: ClientKey | undefined) => string = internal.ownerOf

/**
 * Where a reconnect by the same POST resumes: the stream and sequence number its `Last-Event-ID`
 * names, or the `400` for a header that is not one of this gateway's event ids.
 *
 * @since 0.3.0
 * @category decoding
 */
export const reconnectAt: (lastEventId: string) => { readonly streamId: string; readonly seq: number } | ApiError = internal.reconnectAt

/**
 * The sequence number a `GET /v1/streams/{id}` resumes after: `0` without `Last-Event-ID`, the
 * header's number when it is an event id of that stream, else the `400`.
 *
 * @since 0.3.0
 * @category decoding
 */
export const afterSeqOf: (lastEventId: string | undefined, streamId: string) => number | ApiError = internal.afterSeqOf

/**
 * A stream being generated and journaled: its id, its journal, and the owner-scoped
 * `Idempotency-Key` it answers to, if any.
 *
 * @since 0.3.0
 * @category models
 */
export interface Journaled extends journaling.Journaled {}

/**
 * What `open` found: a new journaled stream, or the stream an `Idempotency-Key` already names
 * (replay it instead of generating again).
 *
 * @since 0.3.0
 * @category models
 */
export type Opening = internal.Opening

/**
 * The client API a journaled stream was started with (`RequestPipeline.Protocol`'s `name`).
 *
 * @since 0.3.0
 * @category models
 */
export type Api = internal.Api

/**
 * The client API a stream was started with, as its id says (`open` names a Messages stream
 * `bws_msg_…`, a chat stream `bws_…`): a replay that the journal cuts ends with that API's
 * error event (`RequestPipeline.Protocol.errorEvent`), whichever endpoint the reader came by.
 *
 * @since 0.3.0
 * @category decoding
 */
export const apiOf: (streamId: string) => Api = internal.apiOf

/**
 * Opens a new journaled stream of the client API `api` for `owner`, claiming its
 * `Idempotency-Key` (scoped to the owner) when given. A failure means no journal: the host
 * serves the stream anyway, without reconnects.
 *
 * @since 0.3.0
 * @category constructors
 */
export const open: (
  journal: StreamJournal.StreamJournal,
  owner: string,
  idempotencyKey: string | undefined,
  api: Api
) => Effect.Effect<Opening, StreamJournal.JournalError> = internal.open

/**
 * `open`, synchronously, where the journal can (`StreamJournal.openNow`, the memory store), so
 * a host starts a journaled stream without a fiber; `undefined` where it cannot (then `open`).
 * A throw is the store's failure, as `open`'s failure is.
 *
 * @since 0.5.0
 * @category constructors
 */
export const openNow: (
  journal: StreamJournal.StreamJournal,
  owner: string,
  idempotencyKey: string | undefined,
  api: Api
) => Opening | undefined = internal.openNow

/**
 * How a stream's events reach the journal.
 *
 * @since 0.3.0
 * @category models
 */
export interface Recorder {
  /** What the stream's writer (`ClientStream.make`'s `events`) records its events with. */
  readonly events: Events
  /** Whether events still go to the journal (false once it failed or evicted the stream). */
  readonly journaling: () => boolean
  /**
   * Closes the journal once the call is over (in the background, a failure logged): with the
   * terminal event, appended after every earlier one before the stream is marked finished; without
   * (nothing was committed: the client got an error answer), the stream is removed, so a retry
   * with the same `Idempotency-Key` starts afresh.
   */
  readonly end: (terminal: journaling.Terminal | undefined) => void
}

/**
 * The recorder of a journaled stream. Events are appended at once where the store can
 * (`appendNow`, the memory store), else in order, one batch per tick, by one fiber at a time.
 * `on.cancelled`: the stream was cancelled (possibly on another instance); `on.evicted`: the
 * journal dropped it, nobody can resume it any more.
 *
 * @since 0.3.0
 * @category constructors
 */
export const record: (
  runtime: ManagedRuntime.ManagedRuntime<never, never>,
  journaled: Journaled,
  requestId: string,
  retryMs: number,
  on: { readonly cancelled: () => void; readonly evicted: () => void }
) => Recorder = journaling.make

/**
 * Lets a journaled generation go on after its client left (disconnect is not stop) for
 * `graceMs`; then `stop` is called, unless a reader reconnected (checked again a grace later
 * while one follows). Returns the function that disarms it (the generation ended).
 *
 * @since 0.3.0
 * @category constructors
 */
export const detach: (
  runtime: ManagedRuntime.ManagedRuntime<never, never>,
  journaled: Journaled,
  graceMs: number,
  stop: () => void
) => () => void = journaling.detach

/**
 * Whether a generation whose client left may go on detached: the server has a detach grace, the
 * stream is still journaled, and its client can come back (it got the stream id, or it holds an
 * `Idempotency-Key`).
 *
 * @since 0.3.0
 * @category predicates
 */
export const canDetach = (detachGraceMs: number, recorder: Recorder, journaled: Journaled, committed: boolean): boolean =>
  detachGraceMs > 0 && recorder.journaling() && (committed || journaled.alias !== undefined)

/**
 * What a reconnect to a stream gets, from the journal's state: `Refused` (`404` unknown or
 * another owner's, `410` expired or its events dropped, `400` beyond its last event),
 * `Finished` (`204`: finished and fully read) or `Follow` (a `200` with the events after
 * `afterSeq`: `StreamJournal.follow`).
 *
 * @since 0.3.0
 * @category models
 */
export type Replay = internal.Replay

/**
 * Decides a reconnect to a stream in the given state, by `owner`, after `afterSeq`.
 *
 * @since 0.3.0
 * @category constructors
 */
export const replayOf: (state: StreamJournal.StreamState, owner: string, afterSeq: number) => Replay = internal.replayOf

/**
 * The error event that ends a replay the journal cut (events dropped, the stream expired, the
 * store gone): a replay never ends as a silent truncation.
 *
 * @since 0.3.0
 * @category answers
 */
export const followFailure: (cause: Cause.Cause<StreamJournal.JournalError>) => ApiError = internal.followFailure

/**
 * `DELETE /v1/streams/{id}`: asks the generation to stop (seen by whichever instance runs it);
 * `false` for an unknown stream or another owner's (answered `404`).
 *
 * @since 0.3.0
 * @category constructors
 */
export const cancel: (journal: StreamJournal.StreamJournal, owner: string, streamId: string) => Effect.Effect<boolean, StreamJournal.JournalError> =
  internal.cancel
