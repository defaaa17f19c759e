/**
 * The client's stream as stream-resume has written it, over every attempt: its envelope and role,
 * the text a continuation must continue, whether it still can be continued, its seams, whether
 * its finish and usage went out, the usage of the attempts before the current one, and the
 * replay buffer in front of the client. Lives as long as the client's stream.
 */
import { ChatCompletion, StreamCommit } from "@breakwater/core"
import * as Env from "./envelope.js"
import type { ReplayBuffer } from "./replay.js"

type Out = ChatCompletion.ChatCompletionChunk
type Usage = ChatCompletion.Usage

export class Delivered {
  /** The client's envelope: the first delivered attempt's. */
  env: Env.Envelope | undefined = undefined
  roleSent = false
  /** The text delivered: what a continuation continues. */
  text = ""
  /**
   * Whether the client stream committed (`StreamCommit`: content or a finish went out): from then
   * on a failure is stream-resume's, as retry and the router below pass it through by the same rule.
   */
  committed = false
  /** Whether it can be continued (no refusal or tool call was delivered, the output is not strict). */
  resumable: boolean
  seams = 0
  finished = false
  usageSent = false
  /** The usage of the attempts before the current one. */
  prior: Usage | undefined = undefined
  /** The replay buffer while it holds chunks back (`replay-before-commit`); `undefined` once they pass on. */
  replay: ReplayBuffer | undefined

  constructor(resumable: boolean, replay: ReplayBuffer | undefined) {
    this.resumable = resumable
    this.replay = replay
  }

  /** Delivers text of the current attempt (text commits the stream). */
  deliver(text: string): void {
    this.text += text
    this.committed = true
  }

  /** Writes a chunk for the client, through the replay buffer while it holds back. */
  emit(chunk: Out, out: Array<Out>, chars: number, last: boolean): void {
    if (this.env === undefined) this.env = Env.envelopeOf(chunk)
    if (!this.committed && StreamCommit.commits(chunk)) this.committed = true
    if (chunk.usage != null) this.usageSent = true
    if (chunk.choices[0]?.finish_reason != null) this.finished = true
    const replay = this.replay
    if (replay === undefined) out.push(chunk)
    else if (replay.write(chunk, out, chars, last)) this.replay = undefined
  }

  /** Sends on what the replay buffer still holds (the attempt ended cleanly). */
  release(out: Array<Out>): void {
    const replay = this.replay
    if (replay === undefined) return
    this.replay = undefined
    replay.release(out)
  }

  /** Adds an ended attempt's usage to the sum. */
  account(usage: Usage | undefined): void {
    if (usage !== undefined) this.prior = ChatCompletion.addUsage(this.prior, usage)
  }

  /** `usage` plus the earlier attempts'. */
  sum(usage: Usage): Usage {
    return this.prior === undefined ? usage : { ...usage, ...ChatCompletion.addUsage(this.prior, usage) }
  }

  /** The extension field a resumed stream's finish and usage carry (`breakwater: { resumed }`). */
  extension(): Record<string, unknown> | undefined {
    return this.seams > 0 ? { [Env.EXTENSION]: { resumed: this.seams } } : undefined
  }

  /** The usage-only chunk with the sum of every attempt's usage (stream-resume ends the stream). */
  priorUsage(env: Env.Envelope, extra: Record<string, unknown> | undefined): Out {
    return { id: env.id, object: "chat.completion.chunk", created: env.created, model: env.model, choices: [], usage: this.prior, ...extra } as Out
  }

  /** Nothing reached the client: the next attempt's envelope and role are the client's. */
  forgetUnsent(): void {
    if (this.replay === undefined && this.env !== undefined) return
    this.env = undefined
    this.roleSent = false
    this.replay?.clear()
  }
}
