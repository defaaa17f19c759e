/**
 * When a stream is committed: the one rule every layer follows that must not repeat what a
 * client already has — retry and the router's lanes (which may start a stream over only before
 * it), stream-resume (which continues a stream only after it), the host's SSE writer (which sends
 * the status and headers with it).
 *
 * A chunk **commits** its stream when it carries something a client keeps: content (text, a
 * refusal, a tool-call fragment: `ChatCompletion.hasContent`), a finish reason, or usage. Once
 * such a chunk went downstream, starting the stream over would show the client something twice,
 * so a failure after it is stream-resume's to handle, or the client's to see. What may come
 * before it does not commit: heartbeats (liveness, never data) and the preamble (a role-only
 * delta), which the gates — the router's lanes, the host's writer — hold back until the chunk that
 * commits, and which a repeat does not harm (a role is set, not appended).
 *
 * The checks are plain functions for the chunk path: a layer scans its batches only until the
 * stream commits, then keeps one flag.
 *
 * @since 0.2.0
 */
import { type ChatCompletionChunk, hasContent } from "./ChatCompletion.js"

/**
 * Whether a chunk commits its stream: it carries content, a finish reason or usage.
 *
 * @since 0.2.0
 * @category guards
 */
export const commits = (chunk: ChatCompletionChunk): boolean => {
  if (chunk.usage != null) return true
  const choices = chunk.choices
  for (let i = 0; i < choices.length; i++) if (choices[i]!.finish_reason != null) return true
  return hasContent(chunk)
}

/**
 * The index of the first chunk of a batch that commits the stream, `-1` when none does.
 *
 * @since 0.2.0
 * @category utils
 */
export const firstCommit = (chunks: ReadonlyArray<ChatCompletionChunk>): number => {
  for (let i = 0; i < chunks.length; i++) if (commits(chunks[i]!)) return i
  return -1
}
