/**
 * Where the events of a client stream are kept so that a client that lost its connection can
 * reconnect with `Last-Event-ID` and get exactly what it missed, byte for byte, then the live
 * rest. The journal stores each SSE event as the exact text the client received (its `id:`
 * line included), keyed by the stream id and numbered by a sequence number that starts at 1.
 *
 * The contract is written so that a shared store can implement it (Redis: a stream or a capped
 * list per stream id, a TTL, `SET NX` for aliases, a flag key for cancellation): every method
 * is an `Effect`, every value is plain serialisable data, nothing refers to in-process objects.
 * The in-memory store here is the default; with a shared store a reconnect that lands on
 * another instance replays the events and follows live.
 *
 * Bounds (`JournalOptions`): events and bytes per stream (the oldest events are dropped first;
 * a reconnect from before the oldest kept event gets a `Gap`), streams and bytes per owner (the
 * owner's own oldest streams are dropped, finished ones first) and overall (an owner's own
 * finished streams go first, then anyone's finished ones, then its own live ones: one client key
 * cannot push out another's detached stream while it has streams of its own to give up), a TTL
 * after the finish, and an idle TTL for
 * a stream that stopped receiving events without finishing (its writer crashed). An expired
 * stream leaves a tombstone for `tombstoneTtl`, so that it answers "expired" rather than
 * "unknown".
 *
 * @since 0.1.0
 */
import { Durations } from "@breakwater/core"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Stream from "effect/Stream"
import * as internal from "./internal/journalMemory.js"

/**
 * The journal's bounds, with their defaults (the one place they are written).
 *
 * - `maxEventsPerStream` (10 000): events kept per stream; beyond it the oldest are dropped.
 * - `maxBytesPerStream` (4 Mi): size kept per stream, counted as the frames' string length
 *   (about their byte size: JSON frames are mostly ASCII); beyond it the oldest events are dropped.
 * - `finishedTtl` (5 minutes): how long a finished stream stays replayable.
 * - `idleTtl` (10 minutes): how long an unfinished stream with no new event stays (a writer that
 *   died without finishing); each append renews it.
 * - `tombstoneTtl` (1 hour): how long an expired stream still answers "expired" (not "unknown").
 * - `maxStreams` (10 000): streams kept at once (memory store; a shared store bounds itself).
 * - `maxTotalBytes` (256 Mi): size (as above) kept over all streams (memory store; a shared store relies
 *   on its own limit, e.g. Redis `maxmemory`).
 * - `maxStreamsPerOwner` (2 500, a quarter of `maxStreams`): streams one owner (client key) keeps
 *   at once; beyond it its own oldest go, finished ones first (memory store).
 * - `maxBytesPerOwner` (64 Mi, a quarter of `maxTotalBytes`): size one owner keeps over its
 *   streams, likewise (memory store).
 *
 * @since 0.1.0
 * @category schemas
 */
export const JournalOptions = Schema.Struct({
  maxEventsPerStream: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 10_000 }),
  maxBytesPerStream: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 4 * 1024 * 1024 }),
  finishedTtl: Schema.optionalWith(Durations.DurationInput, { default: () => Duration.minutes(5) }),
  idleTtl: Schema.optionalWith(Durations.DurationInput, { default: () => Duration.minutes(10) }),
  tombstoneTtl: Schema.optionalWith(Durations.DurationInput, { default: () => Duration.hours(1) }),
  maxStreams: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 10_000 }),
  maxTotalBytes: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 256 * 1024 * 1024 }),
  maxStreamsPerOwner: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 2_500 }),
  maxBytesPerOwner: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 64 * 1024 * 1024 })
})

/**
 * The journal's bounds, resolved.
 *
 * @since 0.1.0
 * @category models
 */
export type JournalOptions = typeof JournalOptions.Type

/**
 * The journal's bounds as a user writes them (every field optional; durations as `Duration`,
 * milliseconds or strings like `"5 minutes"`).
 *
 * @since 0.1.0
 * @category models
 */
export type JournalOptionsInput = typeof JournalOptions.Encoded

/**
 * One event of a stream: its sequence number (1, 2, …, no holes) and the exact text the client
 * received for it (e.g. `"id: s1:3\ndata: {...}\n\n"`, possibly preceded by comment lines that
 * belong to it, such as a seam comment).
 *
 * @since 0.1.0
 * @category models
 */
export interface JournalEvent {
  readonly seq: number
  readonly frame: string
}

/**
 * What `open` is told about a new stream.
 *
 * - `owner`: who may read it back (the host uses the client key's name; `""` without auth).
 *   Readers compare it themselves; the journal only stores it.
 * - `alias`: an optional second name (the host uses owner + `Idempotency-Key`). `open` claims it
 *   atomically: if it already names a stream that is not expired, nothing is opened. A stream
 *   evicted by a bound keeps its alias while its tombstone lasts (`open` answers `Exists` with
 *   it, and its state is `Expired`), so that a retry is told its answer is gone instead of
 *   paying for the generation again; a removed or expired stream frees its alias.
 *
 * @since 0.1.0
 * @category models
 */
export interface OpenOptions {
  readonly owner: string
  readonly alias?: string | undefined
}

/**
 * The answer of `open`: `Opened`, or `Exists` with the stream the alias already names.
 *
 * @since 0.1.0
 * @category models
 */
export type OpenResult =
  | { readonly _tag: "Opened" }
  | { readonly _tag: "Exists"; readonly streamId: string }

/**
 * The answer of `append`: `ok`; `cancelled` (someone asked the stream to stop: the writer should
 * stop generating); `unknown` (the stream is gone: expired, evicted or removed; the writer keeps
 * serving its client but journals no more).
 *
 * @since 0.1.0
 * @category models
 */
export type AppendResult = "ok" | "cancelled" | "unknown"

/**
 * What the journal knows about a stream id.
 *
 * - `Unknown`: never seen, or its tombstone is gone too.
 * - `Expired`: it existed and expired (or was evicted or removed); its events are gone. A host
 *   answers a reconnect to it `410 Gone`: whether it was complete is no longer known.
 * - `Active`: its events are kept: `firstSeq` is the oldest kept event (`lastSeq + 1` when none
 *   is kept), `lastSeq` the newest (0 before the first); `finished` once `finish` ran;
 *   `cancelled` once `cancel` ran; `readers` the number of `follow` streams running on it (a
 *   shared store may count readers seen within the last few seconds).
 *
 * @since 0.1.0
 * @category models
 */
export type StreamState =
  | { readonly _tag: "Unknown" }
  | { readonly _tag: "Expired"; readonly owner: string }
  | {
    readonly _tag: "Active"
    readonly owner: string
    readonly firstSeq: number
    readonly lastSeq: number
    readonly finished: boolean
    readonly cancelled: boolean
    readonly readers: number
  }

/**
 * A batch read: the events after the asked sequence number (in order, possibly fewer than
 * exist, at most `limit`), and whether the stream is finished and nothing follows them.
 *
 * @since 0.1.0
 * @category models
 */
export interface ReadResult {
  readonly events: ReadonlyArray<JournalEvent>
  readonly finished: boolean
}

/**
 * A journal failure: `gap` (the events right after the asked one were dropped by a bound),
 * `gone` (the stream is unknown or expired, or expired while being followed), `unavailable`
 * (a shared store could not be reached).
 *
 * @since 0.1.0
 * @category errors
 */
export class JournalError extends Data.TaggedError("JournalError")<{
  readonly reason: "gap" | "gone" | "unavailable"
  readonly streamId: string
  readonly message: string
}> {}

/**
 * A stream event store.
 *
 * Writers call `open`, then `append` for each event in sequence order (1, 2, …), then `finish`
 * (or `remove`, for a stream that never reached its client). Readers call `state`, then `read`
 * or `follow` from the last sequence number they have (0 for everything).
 *
 * @since 0.1.0
 * @category models
 */
export interface StreamJournal {
  /** Creates the stream (empty, unfinished), claiming `alias` if given; see `OpenOptions`. */
  readonly open: (streamId: string, options: OpenOptions) => Effect.Effect<OpenResult, JournalError>
  /**
   * `open`, synchronously, where the store can (the memory store), so a host opens a stream
   * without a fiber. Absent where it cannot (Redis).
   */
  readonly openNow?: ((streamId: string, options: OpenOptions) => OpenResult) | undefined
  /**
   * Adds the next event. `seq` is the writer's (lastSeq + 1); the store applies the per-stream
   * and overall bounds and renews the idle TTL.
   */
  readonly append: (streamId: string, seq: number, frame: string) => Effect.Effect<AppendResult, JournalError>
  /**
   * `append` for the events of one write (`seq`, `seq + 1`, …) at once and synchronously, where
   * the store can (the memory store), so a host journals on the chunk path without an effect.
   * Absent where it cannot (Redis): the host then appends with `append`, batched per tick.
   * `bytes`, when given, are the UTF-8 encoding of the write the client got, whose text is the
   * frames joined from character `at` (default 0) on: the store may keep them instead of a text
   * of its own (the memory store does, off the JavaScript heap, from 0.7.0).
   */
  readonly appendNow?:
    | ((
      streamId: string,
      seq: number,
      frames: ReadonlyArray<string>,
      bytes?: Uint8Array | undefined,
      at?: number | undefined
    ) => AppendResult)
    | undefined
  /** Marks the stream finished (nothing follows its last event); starts the `finishedTtl`. */
  readonly finish: (streamId: string) => Effect.Effect<void, JournalError>
  /** `finish`, synchronously, where the store can (as `openNow`). */
  readonly finishNow?: ((streamId: string) => void) | undefined
  /** Forgets the stream at once (and its alias), leaving a tombstone; followers end with `gone`. */
  readonly remove: (streamId: string) => Effect.Effect<void, JournalError>
  /** `remove`, synchronously, where the store can (as `openNow`). */
  readonly removeNow?: ((streamId: string) => void) | undefined
  /** Asks the stream's writer to stop (seen by its next `append`); false if unknown or finished. */
  readonly cancel: (streamId: string) => Effect.Effect<boolean, JournalError>
  /** What the journal knows about the stream. */
  readonly state: (streamId: string) => Effect.Effect<StreamState, JournalError>
  /** The stream id an alias names, if it names one that is not expired. */
  readonly resolve: (alias: string) => Effect.Effect<Option.Option<string>, JournalError>
  /**
   * The events after `afterSeq` that exist now (at most `limit`, default all). Fails with `gap`
   * when the event `afterSeq + 1` was dropped, with `gone` when the stream is unknown or expired.
   */
  readonly read: (streamId: string, afterSeq: number, limit?: number) => Effect.Effect<ReadResult, JournalError>
  /**
   * The events after `afterSeq`, then each new one as it is appended; ends after the last event
   * of a finished stream. Fails with `gap` or `gone` as `read` does (also when the stream expires
   * or a bound drops events before this reader had them). Counts as a reader while it runs.
   */
  readonly follow: (streamId: string, afterSeq: number) => Stream.Stream<JournalEvent, JournalError>
}

/**
 * The journal tag.
 *
 * @since 0.1.0
 * @category tags
 */
export const StreamJournal: Context.Tag<StreamJournal, StreamJournal> = Context.GenericTag<StreamJournal>("@breakwater/stream-resume/StreamJournal")

/**
 * The former name of the `StreamJournal` tag.
 *
 * @deprecated Use `StreamJournal` (Effect's convention: the tag is named like its service).
 * @since 0.1.0
 * @category tags
 */
export const StreamJournalTag: Context.Tag<StreamJournal, StreamJournal> = StreamJournal

/**
 * @deprecated Use `StreamJournal`.
 * @since 0.1.0
 * @category tags
 */
export type StreamJournalTag = StreamJournal

/**
 * A journal in process memory (expiry by `Clock`, so `TestClock` drives it). Invalid options are
 * a defect, reported with every problem.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: (options?: JournalOptionsInput) => Effect.Effect<StreamJournal> = internal.makeMemory

/**
 * The in-memory journal as a layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (options?: JournalOptionsInput): Layer.Layer<StreamJournalTag> =>
  Layer.effect(StreamJournalTag, makeMemory(options))

/**
 * The documented format of an event id: `<streamId>:<seq>`.
 *
 * @since 0.1.0
 * @category encoding
 */
export const eventId = (streamId: string, seq: number): string => `${streamId}:${seq}`

/**
 * Parses a `Last-Event-ID` (`<streamId>:<seq>`; the stream id may itself contain `:`, the last
 * one separates). Undefined when it is not of that form.
 *
 * @since 0.1.0
 * @category encoding
 */
export const parseEventId = (id: string): { readonly streamId: string; readonly seq: number } | undefined => {
  const at = id.lastIndexOf(":")
  if (at <= 0) return undefined
  const digits = id.slice(at + 1)
  if (!/^\d{1,15}$/.test(digits)) return undefined
  return { streamId: id.slice(0, at), seq: Number(digits) }
}
