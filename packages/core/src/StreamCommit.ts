/**
 * When a stream is committed: the one rule every layer follows that must not repeat what a
 * client already has — retry and the router's lanes (which may start a stream over only before
 * it), stream-resume (which continues a stream only after it), the host's SSE writer (which sends
 * the status and headers with it).
 *
 * A chunk **commits** its stream when it carries what a client appends or ends on: content
 * (text, a refusal, a tool-call fragment: `ChatCompletion.hasContent`) or a finish reason. Once
 * such a chunk went downstream, starting the stream over would show the client something twice,
 * so a failure after it is stream-resume's to handle, or the client's to see. Nothing else
 * commits: heartbeats (liveness, never data), the role and usage (values a client sets, so a
 * repeat overrides them: usage comes after the finish, or as running totals on other chunks).
 * The gates — the router's lanes, the host's writer — hold back what precedes the chunk that
 * commits (the preamble: a role-only delta) and release it with that chunk.
 *
 * The checks are plain functions for the chunk path: a layer scans its batches only until the
 * stream commits, then keeps one flag.
 *
 * @since 0.2.0
 */
import { type ChatCompletionChunk, hasContent } from "./ChatCompletion.js"

/**
 * Whether a chunk commits its stream: it carries content or a finish reason.
 *
 * @since 0.2.0
 * @category guards
 */
export const commits = (chunk: ChatCompletionChunk): boolean => {
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
