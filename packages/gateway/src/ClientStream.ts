/**
 * Writes a model's chunk stream to a client as SSE, behind the commit gate: the status and
 * headers go out only with the chunk that commits the stream (`StreamCommit.commits`: content or
 * a finish), or when the host's commit bound passes, so a failure before any content is still a
 * plain HTTP error with the right status. Heartbeats
 * become keep-alive comments once committed; the usage chunk goes out only when the client asked
 * (`stream_options.include_usage`). Transport-independent: hosts supply `commit` and `write`.
 *
 * With `events` (a journaled stream, see `@breakwater/stream-resume`'s `StreamJournal`), every
 * event carries `id: <streamId>:<seq>` (seq 1, 2, …, the terminal event included), the stream
 * starts with a `retry:` hint, and each event is handed to `events.record` with its exact text
 * before it is written, so that a reconnect can replay it byte for byte. Comments carry no id:
 * keep-alives are not recorded (liveness of one connection), a seam comment travels with the
 * event after it (and is recorded with it), whatever the API.
 *
 * The events are chat completion chunks by default; another client API (Anthropic Messages) gives
 * its `encoding`, and the same gate, backpressure, write coalescing and event ids (one per named
 * event) apply to its events.
 *
 * @since 0.1.0
 */
import { type ChatCompletion, type LanguageModel, type RequestContext, SseCodec, StreamCommit, WireText } from "@breakwater/core"
import { StreamResume } from "@breakwater/stream-resume"
import { addTraceHeaders, type ApiError, errorBody } from "./ClientApi.js"

/**
 * What a host gives the writer.
 *
 * @since 0.1.0
 * @category models
 */
export interface Sink {
  /**
   * Send the 200, the SSE headers and the frames held back until now (small: a role delta; `""`
   * when the commit happens inside a batch, whose write then starts with them). Called once.
   */
  readonly commit: (heldBack: string) => void
  /** Writes frames; `false` when the transport's buffer is full (the producer pauses until it drains). */
  readonly write: (frames: string) => boolean
  /**
   * Writes frames as UTF-8 bytes, as `write` does (optional): where the sink has it, a journaled
   * stream's large writes are encoded once, and the journal keeps the bytes the client got.
   *
   * @since 0.7.0
   */
  readonly writeBytes?: ((frames: Uint8Array) => boolean) | undefined
}

/**
 * Event ids and recording for a journaled stream.
 *
 * @since 0.1.0
 * @category models
 */
export interface Events {
  /** The stream id in every event's `id:` line (`<streamId>:<seq>`). */
  readonly streamId: string
  /** The reconnect delay hinted to the client with `retry:` at the start of the stream, in ms. */
  readonly retryMs: number
  /**
   * Records the events of one batch — sequence numbers `firstSeq`, `firstSeq + 1`, … and their
   * exact text — before they are written to the client; with `bytes`, the UTF-8 encoding of the
   * write the client is sent, whose text is the frames joined from character `at` on (what is
   * before is not an event: the `retry:` hint). The journal may keep the bytes.
   */
  readonly record: (firstSeq: number, frames: ReadonlyArray<string>, bytes?: Uint8Array, at?: number) => void
}

/**
 * A commit-gated SSE writer for one response.
 *
 * @since 0.1.0
 * @category models
 */
export interface Writer {
  /** Whether the status and headers went out. */
  readonly committed: () => boolean
  /** Commits now (flushing what was held back), e.g. when the host's commit bound passes. */
  readonly commit: () => void
  /**
   * Handles the chunks of one upstream read: their frames are recorded (journaled streams) and
   * written in one write. `false` when the transport's buffer is full.
   */
  readonly onChunks: (chunks: ReadonlyArray<ChatCompletion.ChatCompletionChunk>) => boolean
  /**
   * The terminal event for `data` (`"[DONE]"` or an error body), as the host writes it last: with
   * an id (and any pending seam comment) when the stream has `events`. It is not recorded: the
   * host records it (`seq` is its number) along with closing its journal.
   */
  readonly terminal: (data: string) => { readonly frame: string; readonly seq: number }
  /**
   * The terminal event in the writer's API: the successful end (`[DONE]`, or a Messages stream's
   * `message_delta` and `message_stop`) without `failure`, else the failure as an error event.
   * Like `terminal`, the last event is returned, not recorded; events before it (a Messages
   * end's) are recorded and written here.
   */
  readonly close: (failure: ApiError | undefined, requestId: string) => { readonly frame: string; readonly seq: number }
}

/**
 * The event encoding of a client API other than chat completions (Anthropic Messages, see
 * `MessagesApi.streamEncoding`): given how to frame one event (`frame` numbers and records it on
 * a journaled stream), the encoder of one stream, chunk by chunk.
 *
 * @since 0.3.0
 * @category models
 */
export type Encoding = (frame: (type: string, data: string) => string) => {
  /** The events one chunk adds (`""` when none). */
  readonly chunk: (chunk: ChatCompletion.ChatCompletionChunk) => string
  /** The events of a successful end. */
  readonly end: () => string
  /** The error event of a failed stream. */
  readonly fail: (error: ApiError, requestId: string) => string
}

/**
 * The terminator of a successful stream.
 *
 * @since 0.1.0
 * @category encoding
 */
export const done = SseCodec.encodeLine("[DONE]")

/**
 * The keep-alive comment.
 *
 * @since 0.1.0
 * @category encoding
 */
export const keepAlive = SseCodec.encodeComment("keep-alive")

/**
 * The comment written at a seam of a resumed stream (standard SSE clients ignore comments).
 *
 * @since 0.1.0
 * @category encoding
 */
export const resumedComment = SseCodec.encodeComment("breakwater resumed the upstream stream here")

/**
 * The `retry:` hint that starts a journaled stream.
 *
 * @since 0.1.0
 * @category encoding
 */
export const retryHint = (ms: number): string => SseCodec.encodeRetry(Math.round(ms))

/**
 * The headers of a streamed response: SSE, no caching or proxy buffering, the request id, and
 * the trace headers (when a call was made) and the stream id (a journaled stream).
 *
 * @since 0.2.0
 * @category encoding
 */
export const headers = (
  requestId: string,
  trace: RequestContext.RequestTrace | undefined,
  streamId: string | undefined
): Record<string, string> => {
  const out: Record<string, string> = {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    "x-accel-buffering": "no",
    "x-request-id": requestId
  }
  if (trace !== undefined) addTraceHeaders(out, trace)
  if (streamId !== undefined) out["x-breakwater-stream-id"] = streamId
  return out
}

/**
 * How a streamed response ends once its call is over: the terminal event (`[DONE]`, or the
 * failure as an error event, never a silent truncation), committing first if nothing was;
 * `undefined` when the call failed before anything was committed, so the failure is answered as
 * a plain HTTP error with its status.
 *
 * @since 0.2.0
 * @category encoding
 */
export const end = (
  writer: Writer,
  failure: ApiError | undefined,
  requestId: string
): { readonly frame: string; readonly seq: number } | undefined => {
  if (failure === undefined) {
    writer.commit()
    return writer.close(undefined, requestId)
  }
  return writer.committed() ? writer.close(failure, requestId) : undefined
}

/**
 * The error event that ends a stream whose headers are gone (a replay cut by the journal).
 *
 * @since 0.2.0
 * @category encoding
 */
export const errorEvent = (error: ApiError, requestId: string): string => SseCodec.encodeLine(errorBody(error, requestId))

// A journaled write this long goes out as bytes the journal keeps (off the JavaScript heap: a
// back-to-back stream's ~14 KB of text was copied by two scavenges and traced for minutes, 15–25%
// of its CPU, BENCHMARKS.md). A shorter one stays text: bytes of their own cost more heap than a
// short string, and a slow stream writes one event at a time.
const bytesFrom = 4096
const utf8 = new TextEncoder()
const lengthOf = (frames: ReadonlyArray<string>): number => {
  let n = 0
  for (let i = 0; i < frames.length; i++) n += frames[i]!.length
  return n
}

/**
 * Creates the writer for one streamed response.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: {
  readonly includeUsage: boolean
  readonly sink: Sink
  readonly events?: Events | undefined
  /** The events of another client API (default: chat completion chunks). */
  readonly encoding?: Encoding | undefined
}): Writer => {
  const { events, includeUsage, sink } = options
  let committed = false
  let pending = ""
  let seq = 0
  // A seam comment waiting for the event it precedes (journaled streams only).
  let comment = ""
  // The frames of the batch being handled, for the journal.
  let recorded: Array<string> | undefined
  // The text of the batch being handled (`undefined` outside `onChunks`): a commit inside a batch
  // puts what was held back at its head, so the headers, the held-back frames and the batch
  // leave in one write.
  let batch: string | undefined
  // The characters at the head of the batch's text that are no frame: the retry hint of a commit
  // inside it.
  let hint = 0
  const commit = () => {
    if (committed) return
    committed = true
    const heldBack = events === undefined ? pending : retryHint(events.retryMs) + pending
    if (batch === undefined) sink.commit(heldBack)
    else {
      sink.commit("")
      hint = heldBack.length - pending.length
      batch += heldBack
    }
    pending = ""
  }
  const frameOf = (data: string): string => {
    if (events === undefined) return SseCodec.encodeLine(data)
    seq++
    const frame = comment + SseCodec.encodeLine(data, `${events.streamId}:${seq}`)
    comment = ""
    return frame
  }
  /** One named event of another API's encoding: numbered and recorded on a journaled stream. */
  const namedFrame = (type: string, data: string): string => {
    if (events === undefined) return SseCodec.encodeEvent({ event: type, data })
    seq++
    const frame = comment + SseCodec.encodeEvent({ id: `${events.streamId}:${seq}`, event: type, data })
    comment = ""
    if (recorded !== undefined) recorded.push(frame)
    return frame
  }
  const other = options.encoding?.(namedFrame)
  /** The text one chunk adds to the batch's write ("" when nothing goes out now). */
  const encode = (chunk: ChatCompletion.ChatCompletionChunk): string => {
    if (other !== undefined) {
      // A seam of a journaled stream travels with the event after it, as on the chat stream, so
      // that it is recorded with it and a replay is byte for byte what the client got.
      if (events !== undefined && chunk.choices.length === 0 && StreamResume.isSeamMarker(chunk)) {
        comment += resumedComment
        return ""
      }
      const text = other.chunk(chunk)
      if (!committed && text !== "") {
        if (!StreamCommit.commits(chunk)) {
          pending += text
          return ""
        }
        commit()
      }
      return text
    }
    if (chunk.choices.length === 0) {
      // A seam where stream-resume stitched a continuation: said honestly, as a comment.
      if (StreamResume.isSeamMarker(chunk)) {
        if (events !== undefined) {
          comment += resumedComment
          return ""
        }
        return committed ? resumedComment : ""
      }
      if (chunk.usage == null) return committed ? keepAlive : ""
      if (!includeUsage) return ""
    }
    const frame = frameOf(WireText.encode(chunk))
    if (recorded !== undefined) recorded.push(frame)
    if (!committed) {
      if (!StreamCommit.commits(chunk)) {
        pending += frame
        return ""
      }
      commit()
    }
    return frame
  }
  const terminal = (data: string) => {
    const frame = frameOf(data)
    return { frame, seq }
  }
  return {
    committed: () => committed,
    commit,
    onChunks: (chunks) => {
      const firstSeq = seq + 1
      if (events !== undefined) recorded = []
      batch = ""
      hint = 0
      let text: string
      try {
        for (let i = 0; i < chunks.length; i++) {
          // Not `batch += encode(…)`: a commit inside `encode` extends `batch` first.
          const frame = encode(chunks[i]!)
          batch += frame
        }
      } finally {
        text = batch
        batch = undefined
      }
      if (recorded !== undefined) {
        const frames = recorded
        recorded = undefined
        if (frames.length > 0) {
          // The text is the hint, the frames recorded, and what is not recorded (a keep-alive,
          // frames held back from an earlier batch): equal lengths mean it has nothing else.
          const writeBytes = sink.writeBytes
          if (writeBytes !== undefined && other === undefined && text.length >= bytesFrom && hint + lengthOf(frames) === text.length) {
            const bytes = utf8.encode(text)
            events!.record(firstSeq, frames, bytes, hint)
            return writeBytes(bytes)
          }
          events!.record(firstSeq, frames)
        }
      }
      return text === "" ? true : sink.write(text)
    },
    terminal,
    close: (failure, requestId) => {
      if (other === undefined) return terminal(failure === undefined ? "[DONE]" : errorBody(failure, requestId))
      if (events === undefined) return { frame: failure === undefined ? other.end() : other.fail(failure, requestId), seq }
      // Every event but the last is recorded and written now; the last is the terminal one.
      const firstSeq = seq + 1
      recorded = []
      const text = failure === undefined ? other.end() : other.fail(failure, requestId)
      const frames = recorded
      recorded = undefined
      if (frames.length <= 1) return { frame: text, seq }
      const last = frames[frames.length - 1]!
      events!.record(firstSeq, frames.slice(0, -1))
      sink.write(text.slice(0, text.length - last.length))
      return { frame: last, seq }
    }
  }
}

/**
 * The sink a host hands the gateway's model (`LanguageModel.Run`): each upstream read's chunks go
 * through the writer in one write; when the transport is full the upstream is paused, and
 * `whenFull` is given the function that resumes it (call it once the transport drains).
 *
 * @since 0.2.0
 * @category constructors
 */
export const chunkSink = (writer: Writer, whenFull: (resume: () => void) => void): LanguageModel.ChunkSink => {
  let control: LanguageModel.StreamControl | undefined
  const resume = () => control?.resume()
  return {
    start: (c) => {
      control = c
    },
    push: (chunks) => {
      if (writer.onChunks(chunks)) return true
      whenFull(resume)
      return false
    }
  }
}
