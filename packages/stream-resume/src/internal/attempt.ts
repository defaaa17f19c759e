/**
 * The state of one upstream attempt, made anew for each: what kind of attempt it is, what it
 * produced (content, characters, reported usage), its seam and its buffered tool call, and the
 * signal that ends it early. Nothing here outlives the attempt but its usage, which `spent` hands
 * over to the client stream's sum.
 */
import type { ChatCompletion, LanguageModel } from "@breakwater/core"
import * as Data from "effect/Data"
import * as Env from "./envelope.js"
import { type Applied, Seam } from "./seam.js"
import { ToolBuffer } from "./toolBuffer.js"

/** Ends an attempt whose continuation is not glued on. Never leaves this package. */
export class Rejected extends Data.TaggedError("StreamResume/Rejected")<{ readonly reason: string }> {}

/** Ends an attempt after stream-resume wrote the final chunk itself. Never leaves this package. */
export class Finished extends Data.TaggedError("StreamResume/Finished")<{}> {}

export type Signal = Rejected | Finished

/** What an attempt's upstream call is given. */
export interface Call {
  readonly request: ChatCompletion.ChatRequest
  readonly options: LanguageModel.CallOptions | undefined
}

export type Kind = "first" | "continuation" | "restart"

export class Attempt {
  /** Its chunks are re-addressed to the client's envelope (an envelope was set by an earlier attempt). */
  readonly rewrite: boolean
  /** The text already delivered that this attempt's request carries (a continuation's). */
  readonly partial: string | undefined
  /** A continuation's seam, until it is decided. */
  seam: Seam | undefined
  readonly tools = new ToolBuffer()
  /** Whether it produced content (text, a refusal, a tool call), delivered or held. */
  hadContent = false
  /** Characters of text it produced. */
  chars = 0
  /** The usage it reported. */
  usage: ChatCompletion.Usage | undefined = undefined
  /** Set when stream-resume ends the attempt itself. */
  signal: Signal | undefined = undefined

  constructor(readonly kind: Kind, call: Call, rewrite: boolean, applied: Applied | undefined) {
    this.rewrite = rewrite
    this.partial = call.options?.continuation?.partial
    this.seam = kind === "continuation" && applied !== undefined ? new Seam(applied) : undefined
  }

  /**
   * The usage of the attempt, counted once: what it reported, or, when it broke before
   * reporting, an estimate from the characters it sent and received.
   */
  spent(request: ChatCompletion.ChatRequest): ChatCompletion.Usage | undefined {
    let usage = this.usage
    if (usage === undefined && this.hadContent) {
      const prompt = Env.estimateTokens(Env.promptChars(request, this.partial))
      const completion = Env.estimateTokens(this.chars)
      usage = { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion }
    }
    this.usage = undefined
    this.hadContent = false
    this.chars = 0
    return usage
  }
}
