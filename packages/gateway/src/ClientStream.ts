/**
 * Writes a model's chunk stream to a client as SSE, behind the commit gate: the status and
 * headers go out only with the first content (or when the host's commit bound passes), so a
 * failure before any content is still a plain HTTP error with the right status. Heartbeats
 * become keep-alive comments once committed; the usage chunk goes out only when the client asked
 * (`stream_options.include_usage`). Transport-independent: hosts supply `commit` and `write`.
 *
 * @since 0.1.0
 */
import { ChatCompletion } from "@breakwater/core"
import { StreamResume } from "@breakwater/stream-resume"
import * as Effect from "effect/Effect"

/**
 * What a host gives the writer.
 *
 * @since 0.1.0
 * @category models
 */
export interface Sink {
  /** Send the 200, the SSE headers and the frames held back until now (small: a role delta). Called once. */
  readonly commit: (heldBack: string) => void
  /** Write frames; the effect completes when the transport can take more (backpressure). */
  readonly write: (frame: string) => Effect.Effect<void>
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
  /** Handles one chunk of the model's stream. */
  readonly onChunk: (chunk: ChatCompletion.ChatCompletionChunk) => Effect.Effect<void>
}

/**
 * The terminator of a successful stream.
 *
 * @since 0.1.0
 * @category encoding
 */
export const done = "data: [DONE]\n\n"

/**
 * The keep-alive comment.
 *
 * @since 0.1.0
 * @category encoding
 */
export const keepAlive = ": keep-alive\n\n"

/**
 * The comment written at a seam of a resumed stream (standard SSE clients ignore comments).
 *
 * @since 0.1.0
 * @category encoding
 */
export const resumedComment = ": breakwater resumed the upstream stream here\n\n"

/**
 * Creates the writer for one streamed response.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: { readonly includeUsage: boolean; readonly sink: Sink }): Writer => {
  const { includeUsage, sink } = options
  let committed = false
  let pending = ""
  const commit = () => {
    if (committed) return
    committed = true
    const heldBack = pending
    pending = ""
    sink.commit(heldBack)
  }
  return {
    committed: () => committed,
    commit,
    onChunk: (chunk) => {
      if (chunk.choices.length === 0) {
        // A seam where stream-resume stitched a continuation: said honestly, as a comment.
        if (StreamResume.isSeamMarker(chunk)) return committed ? sink.write(resumedComment) : Effect.void
        if (chunk.usage == null) return committed ? sink.write(keepAlive) : Effect.void
        if (!includeUsage) return Effect.void
      }
      const frame = `data: ${JSON.stringify(chunk)}\n\n`
      if (!committed) {
        if (!ChatCompletion.hasContent(chunk) && chunk.choices[0]?.finish_reason == null) {
          pending += frame
          return Effect.void
        }
        commit()
      }
      return sink.write(frame)
    }
  }
}
