/**
 * The replay buffer of `mode: "replay-before-commit"`: the client's chunks are held back until
 * `replayWindow` characters of content (or the end) arrived, so that an attempt that breaks
 * before that is started over without the client seeing any of it. In the other modes it is
 * released from the start and passes every chunk straight on.
 */
import type { ChatCompletion } from "@breakwater/core"

type Out = ChatCompletion.ChatCompletionChunk

export class ReplayBuffer {
  /** Whether what was written went on to the client: nothing is held back any more. */
  released: boolean
  private pending: Array<Out> = []
  private chars = 0

  constructor(readonly window: number, released: boolean) {
    this.released = released
  }

  /** Passes a chunk on, or holds it (with its `chars` of content) until the window fills or `last`. */
  write(chunk: Out, out: Array<Out>, chars: number, last: boolean): void {
    if (this.released) {
      out.push(chunk)
      return
    }
    this.pending.push(chunk)
    this.chars += chars
    if (last || this.chars >= this.window) this.release(out)
  }

  /** Sends on what was held; from now on chunks pass straight on. */
  release(out: Array<Out>): void {
    this.released = true
    for (const chunk of this.pending) out.push(chunk)
    this.pending = []
  }

  /** Drops what was held: none of it reached the client, the next attempt writes it again. */
  clear(): void {
    this.pending = []
    this.chars = 0
  }
}
