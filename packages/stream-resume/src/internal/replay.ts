/**
 * The replay buffer of `mode: "replay-before-commit"`: the client's chunks are held back until
 * `replayWindow` characters of content (or the end) arrived, so that an attempt that breaks
 * before that is started over without the client seeing any of it. It exists only while it holds
 * chunks back: once released (and from the start in the other modes) chunks pass straight on.
 */
import type { ChatCompletion } from "@breakwater/core"

type Out = ChatCompletion.ChatCompletionChunk

export class ReplayBuffer {
  private pending: Array<Out> = []
  private chars = 0

  constructor(readonly window: number) {}

  /**
   * Holds a chunk (with its `chars` of content); when the window fills or the chunk is the
   * `last`, releases everything held and returns `true`: the buffer is done.
   */
  write(chunk: Out, out: Array<Out>, chars: number, last: boolean): boolean {
    this.pending.push(chunk)
    this.chars += chars
    if (!(last || this.chars >= this.window)) return false
    this.release(out)
    return true
  }

  /** Sends on what was held. */
  release(out: Array<Out>): void {
    for (const chunk of this.pending) out.push(chunk)
    this.pending = []
  }

  /** Drops what was held: none of it reached the client, the next attempt writes it again. */
  clear(): void {
    this.pending = []
    this.chars = 0
  }
}
