/**
 * A streamed response's events, journaled for reconnects: each write's events go to the journal
 * before they are written to the client — at once where the store can (memory), else appended in
 * order, one batch per tick, by one fiber at a time (Redis) — and the terminal event last, before
 * the journal is closed.
 */
import type { ClientStream } from "@breakwater/gateway"
import type { StreamJournal } from "@breakwater/stream-resume"
import * as Effect from "effect/Effect"
import type * as ManagedRuntime from "effect/ManagedRuntime"

/** The journal entry of a stream being generated. */
export interface Journaled {
  readonly streamId: string
  readonly journal: StreamJournal.StreamJournal
  /** The owner-scoped `Idempotency-Key` it answers to, if any. */
  readonly alias: string | undefined
}

export interface Recorder {
  /** What the stream's writer records its events with. */
  readonly events: ClientStream.Events
  /** Whether events still go to the journal (false once it failed or evicted the stream). */
  readonly journaling: () => boolean
  /** Appends the terminal event once every earlier one is in, then marks the stream finished. */
  readonly close: (terminal: { readonly frame: string; readonly seq: number }) => Effect.Effect<unknown, unknown>
}

export const make = (
  runtime: ManagedRuntime.ManagedRuntime<never, never>,
  { journal, streamId }: Journaled,
  requestId: string,
  retryMs: number,
  on: {
    /** The stream was cancelled (`DELETE /v1/streams/{id}`, possibly on another instance). */
    readonly cancelled: () => void
    /** The journal evicted the stream: nobody can resume it any more. */
    readonly evicted: () => void
  }
): Recorder => {
  let journaling = true
  const stopJournaling = (why: string) => {
    journaling = false
    return Effect.logWarning(`stream ${streamId} is no longer journaled: ${why}`).pipe(Effect.annotateLogs("request_id", requestId))
  }
  const onAppend = (result: StreamJournal.AppendResult) => {
    if (result === "ok") return
    if (result === "cancelled") return on.cancelled()
    runtime.runFork(stopJournaling("evicted from the journal"))
    on.evicted()
  }
  const appendNow = journal.appendNow
  let queued: Array<readonly [number, ReadonlyArray<string>]> = []
  let appending = false
  const idle: Array<() => void> = []
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
  /** Completes once every event handed to the journal is in it. */
  const appended = Effect.async<void>((resume) => {
    if (!appending && queued.length === 0) return resume(Effect.void)
    idle.push(() => resume(Effect.void))
  })
  const record = (first: number, frames: ReadonlyArray<string>): void => {
    if (!journaling) return
    if (appendNow !== undefined) return onAppend(appendNow(streamId, first, frames))
    queued.push([first, frames])
    if (queued.length === 1) setImmediate(drainQueue)
  }
  return {
    events: { streamId, retryMs, record },
    journaling: () => journaling,
    close: (terminal) => Effect.zipRight(appended, Effect.zipRight(journal.append(streamId, terminal.seq, terminal.frame), journal.finish(streamId)))
  }
}
