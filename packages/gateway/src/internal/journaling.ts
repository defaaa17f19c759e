/**
 * A streamed response's events, journaled for reconnects: each write's events go to the journal
 * before they are written to the client — at once where the store can (memory), else appended in
 * order, one batch per tick, by one fiber at a time (Redis) — and the terminal event last, before
 * the journal is closed. Also the detach of a generation whose client left.
 */
import type { StreamJournal } from "@breakwater/stream-resume"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as ManagedRuntime from "effect/ManagedRuntime"
import type { Events } from "../ClientStream.js"

/** The journal entry of a stream being generated. */
export interface Journaled {
  readonly streamId: string
  readonly journal: StreamJournal.StreamJournal
  /** The owner-scoped `Idempotency-Key` it answers to, if any. */
  readonly alias: string | undefined
}

/** A stream's terminal event, as `ClientStream` gives it. */
export interface Terminal {
  readonly frame: string
  readonly seq: number
}

export interface Recorder {
  readonly events: Events
  readonly journaling: () => boolean
  readonly end: (terminal: Terminal | undefined) => void
}

export const make = (
  runtime: ManagedRuntime.ManagedRuntime<never, never>,
  { journal, streamId }: Journaled,
  requestId: string,
  retryMs: number,
  on: {
    readonly cancelled: () => void
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
  const record = (first: number, frames: ReadonlyArray<string>, bytes?: Uint8Array, at?: number): void => {
    if (!journaling) return
    if (appendNow !== undefined) return onAppend(appendNow(streamId, first, frames, bytes, at))
    queued.push([first, frames])
    if (queued.length === 1) setImmediate(drainQueue)
  }
  return {
    events: { streamId, retryMs, record },
    journaling: () => journaling,
    end: (terminal) => {
      // No terminal: the call failed before anything was committed and the client got an error
      // answer, so the stream is removed (a retry with the same Idempotency-Key starts afresh);
      // else the terminal event is appended and the stream finished. Where the store answers at
      // once and nothing is still being appended, that happens here and now.
      if (!appending && queued.length === 0 && appendNow !== undefined && journal.finishNow !== undefined && journal.removeNow !== undefined) {
        try {
          if (terminal === undefined) journal.removeNow(streamId)
          else {
            appendNow(streamId, terminal.seq, [terminal.frame])
            journal.finishNow(streamId)
          }
        } catch (defect) {
          runtime.runFork(Effect.logWarning("could not close the stream journal", Cause.pretty(Cause.die(defect))))
        }
        return
      }
      const close = terminal === undefined
        ? journal.remove(streamId)
        : Effect.zipRight(appended, Effect.zipRight(journal.append(streamId, terminal.seq, terminal.frame), journal.finish(streamId)))
      runtime.runFork(Effect.catchAllCause(close, (cause) => Effect.logWarning("could not close the stream journal", Cause.pretty(cause))))
    }
  }
}

export const detach = (
  runtime: ManagedRuntime.ManagedRuntime<never, never>,
  { journal, streamId }: Journaled,
  graceMs: number,
  stop: () => void
): () => void => {
  let timer: ReturnType<typeof setTimeout> | undefined
  const arm = () => {
    timer = setTimeout(() => {
      runtime.runFork(journal.state(streamId)).addObserver((exit) => {
        if (timer === undefined) return
        if (Exit.isSuccess(exit) && exit.value._tag === "Active" && exit.value.readers > 0 && !exit.value.finished) return arm()
        stop()
      })
    }, graceMs)
  }
  arm()
  return () => {
    if (timer !== undefined) clearTimeout(timer)
    timer = undefined
  }
}
