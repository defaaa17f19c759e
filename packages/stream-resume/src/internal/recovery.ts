/**
 * What follows an attempt that failed — the failure policy: start it over (its content never
 * reached the client), ask for a continuation with the next strategy, end the stream as complete
 * or at its token limit, or give up with the error the client sees. Holds what the client
 * stream's failures taught: the upstream calls made, the strategy reached, whether the upstream
 * refuses assistant prefill, the last break. Runs once per failure, never per chunk.
 */
import { type ChatCompletion, Continuation, type LanguageModel, ModelError, type RequestContext } from "@breakwater/core"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import { type Call, type Kind, Rejected, type Signal } from "./attempt.js"
import type { Delivered } from "./delivered.js"
import * as Env from "./envelope.js"
import { outcomes } from "./outcomes.js"
import type { Applied } from "./seam.js"

/** A continuation strategy, or `preferred`: the adapter's own choice. */
export type StrategyChoice = "preferred" | Continuation.Strategy

/** @internal */
export interface Settings {
  readonly mode: "continue" | "replay-before-commit" | "terminate"
  readonly maxResumes: number
  readonly toolStreaming: "buffer" | "pass-through"
  readonly strategies: ReadonlyArray<StrategyChoice>
  readonly instruction: string | undefined
  readonly holdBack: number
  readonly minOverlap: number
  readonly verifyLimit: number
  readonly replayWindow: number
}

export type Decision =
  /** The stream ends cleanly, with these chunks. */
  | { readonly _tag: "end"; readonly chunks: ReadonlyArray<ChatCompletion.ChatCompletionChunk> }
  /** Start the request over: nothing of the attempt reached the client. */
  | { readonly _tag: "restart" }
  /** Ask for a continuation. */
  | { readonly _tag: "continue"; readonly call: Call; readonly applied: Applied }
  /** The token limit is spent: the answer ends as the upstream would have ended it. */
  | { readonly _tag: "length" }

const RESTART: Decision = { _tag: "restart" }
const LENGTH: Decision = { _tag: "length" }

// Wordings upstreams use when they refuse a conversation that ends with an assistant message.

// The request's own context, not the fiber's: a deadline set above arrives with the call.
const deadlinePassed = (ctx: RequestContext.RequestContextShape): Effect.Effect<boolean> => {
  const deadline = ctx.deadline
  return deadline === undefined ? Effect.succeed(false) : Effect.map(Clock.currentTimeMillis, (now) => now >= deadline)
}

export class Recovery {
  /** Upstream calls made after the first (continuations, rejected ones included, and restarts). */
  private calls = 0
  /** The index of the strategy to try next. */
  private strategy = 0
  private prefillRejected = false
  /** The strategy of the latest continuation, for its notes. */
  strategyUsed: StrategyChoice | undefined = undefined
  private lastBreak: ModelError.ModelError | undefined = undefined

  constructor(
    readonly settings: Settings,
    readonly ctx: RequestContext.RequestContextShape,
    readonly request: ChatCompletion.ChatRequest,
    readonly options: LanguageModel.CallOptions | undefined,
    readonly delivered: Delivered
  ) {}

  /** Decides what follows the failure of an attempt of `kind` that had (or had not) content. */
  decide(error: ModelError.ModelError | Signal, kind: Kind, hadContent: boolean): Effect.Effect<Decision, ModelError.ModelError> {
    const delivered = this.delivered
    // Whether what was written went on to the client (no replay buffer holds it back).
    const released = delivered.replay === undefined
    let failure: ModelError.ModelError
    let rejected: string | undefined
    if (delivered.finished && released) {
      // The answer was complete (its finish arrived); only the terminator is missing.
      const chunks: Array<ChatCompletion.ChatCompletionChunk> = []
      if (!delivered.usageSent && delivered.prior !== undefined && delivered.env !== undefined) {
        chunks.push(delivered.priorUsage(delivered.env, delivered.extension()))
      }
      return Effect.as(
        Effect.annotateLogs(Effect.logInfo("the stream broke after its finish: ended as complete"), { request_id: this.ctx.requestId, error: error._tag }),
        { _tag: "end", chunks } as const
      )
    }
    if (error instanceof Rejected) {
      rejected = error.reason
      this.strategy++
      failure = this.lastBreak!
    } else if (kind === "continuation" && !hadContent && error._tag === "BadRequest" && Continuation.isPrefillRejection(error)) {
      rejected = "the upstream rejects assistant prefill"
      this.prefillRejected = true
      failure = this.lastBreak!
    } else {
      failure = error as ModelError.ModelError
      if (!released) {
        // Replay-before-commit: nothing reached the client yet.
        return hadContent ? this.restart(failure) : Effect.fail(failure)
      }
      if (!delivered.committed) {
        // Before the client stream committed (`StreamCommit`) the failure is retry's and the
        // router's, by the same rule, unless this attempt's content was held here (a buffered
        // tool call): start over.
        return hadContent && this.settings.mode !== "terminate" ? this.restart(failure) : Effect.fail(failure)
      }
      if (this.lastBreak === undefined || failure._tag === "StreamInterrupted") this.lastBreak = failure
    }
    const notes: Effect.Effect<void> = rejected === undefined ? Effect.void : Effect.zipRight(
      Effect.sync(() => {
        outcomes.rejected(1)
        this.ctx.observer?.event({ _tag: "Resume", outcome: "rejected", reason: rejected, seam: undefined, splice: undefined, droppedChars: undefined })
      }),
      Effect.annotateLogs(Effect.logInfo("continuation rejected"), { request_id: this.ctx.requestId, why: rejected, strategy: this.strategyUsed ?? "preferred" })
    )
    return Effect.zipRight(notes, this.resume(failure))
  }

  private restart(failure: ModelError.ModelError): Effect.Effect<Decision, ModelError.ModelError> {
    return Effect.flatMap(deadlinePassed(this.ctx), (passed) => {
      if (passed || this.calls >= this.settings.maxResumes) return Effect.fail(failure)
      this.calls++
      return Effect.as(
        Effect.zipRight(
          Effect.sync(() => {
            outcomes.restarted(1)
            this.ctx.observer?.event({ _tag: "Resume", outcome: "restarted", reason: failure._tag, seam: undefined, splice: undefined, droppedChars: undefined })
          }),
          Effect.annotateLogs(Effect.logInfo("stream restarted: nothing had reached the client"), { request_id: this.ctx.requestId, error: failure._tag })
        ),
        RESTART
      )
    })
  }

  private resume(failure: ModelError.ModelError): Effect.Effect<Decision, ModelError.ModelError> {
    const settings = this.settings
    if (settings.mode !== "continue") return this.giveUp(failure, `mode ${settings.mode}`, "terminated")
    if (!failure.retryable) return this.giveUp(failure, "the failure is not retryable", "gave_up")
    if (!this.delivered.resumable) return this.giveUp(failure, "the delivered content cannot be continued", "gave_up")
    if (this.calls >= settings.maxResumes) return this.giveUp(failure, `maxResumes (${settings.maxResumes}) reached`, "gave_up")
    const strategy = this.strategyChoice()
    if (strategy === undefined) return this.giveUp(failure, "no continuation strategy left", "gave_up")
    return Effect.flatMap(deadlinePassed(this.ctx), (passed): Effect.Effect<Decision, ModelError.ModelError> => {
      if (passed) return this.giveUp(failure, "the deadline passed", "gave_up")
      const request = this.reduced()
      if (request === undefined) return Effect.succeed(LENGTH)
      this.calls++
      this.strategyUsed = strategy
      // The adapter records the strategy it used: a prefill continues the text exactly.
      const applied: Applied = {}
      const continuation: Continuation.Continuation = {
        partial: this.delivered.text,
        strategy: strategy === "preferred" ? undefined : strategy,
        instruction: settings.instruction,
        applied
      }
      return Effect.succeed({ _tag: "continue", call: { request, options: { ...this.options, continuation } }, applied })
    })
  }

  private strategyChoice(): StrategyChoice | undefined {
    const list = this.settings.strategies
    while (this.strategy < list.length) {
      const s = list[this.strategy]!
      if (!(this.prefillRejected && s !== "user-instruction")) return s
      this.strategy++
    }
    return undefined
  }

  /** `max_tokens` / `max_completion_tokens` less what was delivered; `undefined` when none is left. */
  private reduced(): ChatCompletion.ChatRequest | undefined {
    const request = this.request
    if (request.max_tokens == null && request.max_completion_tokens == null) return request
    const spent = Env.estimateTokens(this.delivered.text.length)
    const out: Record<string, unknown> = { ...request }
    for (const key of ["max_tokens", "max_completion_tokens"] as const) {
      const limit = request[key]
      if (limit == null) continue
      if (limit - spent <= 0) return undefined
      out[key] = limit - spent
    }
    return out as ChatCompletion.ChatRequest
  }

  private giveUp(error: ModelError.ModelError, why: string, outcome: "gave_up" | "terminated"): Effect.Effect<never, ModelError.ModelError> {
    const failure = this.asInterrupted(error, why)
    return Effect.zipRight(
      Effect.zipRight(
        Effect.sync(() => {
          outcomes[outcome](1)
          this.ctx.observer?.event({ _tag: "Resume", outcome, reason: why, seam: undefined, splice: undefined, droppedChars: undefined })
        }),
        Effect.annotateLogs(Effect.logWarning("stream not resumed"), {
          request_id: this.ctx.requestId,
          why,
          error: error._tag,
          delivered_chars: this.delivered.text.length,
          seams: this.delivered.seams
        })
      ),
      Effect.fail(failure)
    )
  }

  /** The error the client sees: the break itself, or a `StreamInterrupted` that carries it. */
  private asInterrupted(error: ModelError.ModelError, why: string): ModelError.ModelError {
    if (error._tag === "StreamInterrupted" || error._tag === "Timeout") return error
    const last = this.lastBreak
    return new ModelError.StreamInterrupted({
      message: `the stream broke and was not resumed (${why}): ${error.message}`,
      upstream: error.upstream,
      status: error.status,
      code: error.code,
      reason: last?._tag === "StreamInterrupted" ? last.reason : "reset",
      receivedChunks: last?._tag === "StreamInterrupted" ? last.receivedChunks : 0,
      cause: error
    })
  }
}
