/**
 * One client stream over as many upstream attempts as it takes: the chunk path of stream-resume.
 * Each batch of the current attempt goes through `process` into what the client stream gets;
 * an undisturbed attempt takes the fast path and its batches pass through as the same objects.
 * Plain methods, no effect per chunk; the seam's notes wait in `effect` for the policy to run.
 */
import type { ChatCompletion, LanguageModel, ModelError, RequestContext } from "@breakwater/core"
import * as Effect from "effect/Effect"
import { Attempt, type Call, Finished, type Kind, Rejected, type Signal } from "./attempt.js"
import { Delivered } from "./delivered.js"
import * as Env from "./envelope.js"
import { outcomes } from "./outcomes.js"
import { type Decision, Recovery, type Settings } from "./recovery.js"
import { ReplayBuffer } from "./replay.js"
import type { Applied, Seam } from "./seam.js"
import * as Splice from "./splice.js"

type Out = ChatCompletion.ChatCompletionChunk
type Delta = Out["choices"][number]["delta"]

/** What follows an attempt: another upstream call, or the end of the client's stream with these chunks. */
export type Next = { readonly _tag: "call"; readonly call: Call } | { readonly _tag: "end"; readonly chunks: ReadonlyArray<Out> }

const nonEmpty = (s: string | null | undefined): s is string => s != null && s.length > 0

/** Output that cannot be continued faithfully: `logprobs`, a strict JSON schema. */
const continuable = (request: ChatCompletion.ChatRequest): boolean => {
  if (request.logprobs === true) return false
  const format = request.response_format as { readonly type?: unknown; readonly json_schema?: { readonly strict?: unknown } } | undefined
  return !(format?.type === "json_schema" && format.json_schema?.strict === true)
}

const stopsOf = (request: ChatCompletion.ChatRequest): ReadonlyArray<string> => {
  const stop = request.stop
  if (stop == null) return []
  return (typeof stop === "string" ? [stop] : stop).filter((s) => s.length > 0)
}

/**
 * The state of one client stream: the current `attempt` (made anew for each), what the client
 * stream got (`delivered`), and the failure policy (`recovery`), which decides what follows a
 * failed attempt.
 */
export class Session {
  readonly stops: ReadonlyArray<string>
  readonly bufferTools: boolean
  readonly delivered: Delivered
  readonly recovery: Recovery
  attempt: Attempt
  /** The notes (metrics, logs) of a seam, run off the chunk path. */
  effect: Effect.Effect<void> | undefined = undefined

  constructor(
    readonly settings: Settings,
    readonly request: ChatCompletion.ChatRequest,
    readonly options: LanguageModel.CallOptions | undefined,
    readonly ctx: RequestContext.RequestContextShape
  ) {
    this.stops = stopsOf(request)
    this.bufferTools = settings.mode === "continue" && settings.toolStreaming === "buffer"
    this.delivered = new Delivered(continuable(request), settings.mode === "replay-before-commit" ? new ReplayBuffer(settings.replayWindow) : undefined)
    this.recovery = new Recovery(settings, ctx, request, options, this.delivered)
    this.attempt = new Attempt("first", { request, options }, false, undefined)
  }

  // ---- attempts ----------------------------------------------------------------------------

  first(): Call {
    return { request: this.request, options: this.options }
  }

  private begin(kind: Kind, call: Call, applied: Applied | undefined): Next {
    this.attempt = new Attempt(kind, call, this.delivered.env !== undefined, applied)
    return { _tag: "call", call }
  }

  // ---- chunks ------------------------------------------------------------------------------

  /** The batch the client stream gets for a batch of `attempt` (the current one). */
  process(attempt: Attempt, chunks: ReadonlyArray<Out>): ReadonlyArray<Out> {
    let out: Array<Out> | undefined
    for (let i = 0; i < chunks.length; i++) {
      if (attempt.signal !== undefined) break
      const chunk = chunks[i]!
      if (out === undefined) {
        if (this.fast(attempt, chunk)) continue
        out = chunks.slice(0, i)
      }
      this.handle(attempt, chunk, out)
    }
    return out === undefined ? chunks : out
  }

  /**
   * The undisturbed case: bookkeeping only, the chunk passes as it is. A chunk passes here only
   * without a finish, usage, refusal or tool call, so it commits the stream exactly when it has text.
   */
  private fast(attempt: Attempt, chunk: Out): boolean {
    const delivered = this.delivered
    if (attempt.rewrite || attempt.seam !== undefined || delivered.replay !== undefined) return false
    const choices = chunk.choices
    if (choices.length === 0) return chunk.usage == null
    if (choices.length !== 1 || chunk.usage != null) return false
    const choice = choices[0]!
    if (choice.finish_reason != null) return false
    const delta = choice.delta
    if ((delta.tool_calls !== undefined && delta.tool_calls.length > 0) || nonEmpty(delta.refusal)) return false
    if (delta.role !== undefined) {
      if (delivered.roleSent) return false
      delivered.roleSent = true
    }
    if (delivered.env === undefined) delivered.env = Env.envelopeOf(chunk)
    const text = delta.content
    if (nonEmpty(text)) {
      delivered.deliver(text)
      attempt.chars += text.length
      attempt.hadContent = true
    }
    return true
  }

  private handle(attempt: Attempt, chunk: Out, out: Array<Out>): void {
    const delivered = this.delivered
    const choice = chunk.choices[0]
    if (choice === undefined) {
      if (chunk.usage == null) {
        out.push(chunk) // a heartbeat: liveness, never data
        return
      }
      attempt.usage = chunk.usage
      if (attempt.seam !== undefined) this.settle(attempt, attempt.seam, true, out)
      if (attempt.signal !== undefined) return
      delivered.emit(this.withUsage(attempt, chunk, chunk.usage), out, 0, true)
      return
    }
    if (chunk.usage != null) attempt.usage = chunk.usage
    const delta = choice.delta
    let changed = attempt.rewrite
    let role = delta.role
    if (role !== undefined) {
      if (delivered.roleSent) {
        role = undefined
        changed = true
      } else delivered.roleSent = true
    }
    let content = delta.content
    let emitted = 0
    if (nonEmpty(content)) {
      attempt.hadContent = true
      attempt.chars += content.length
      const seam = attempt.seam
      if (seam !== undefined) {
        seam.hold(content)
        content = undefined
        changed = true
        this.settle(attempt, seam, false, out)
        if (attempt.signal !== undefined) return
      } else {
        delivered.deliver(content)
        emitted = content.length
      }
    }
    const finish = choice.finish_reason
    const calls = delta.tool_calls
    const hasCalls = calls !== undefined && calls.length > 0
    const refusal = nonEmpty(delta.refusal)
    if (attempt.seam !== undefined && (hasCalls || refusal || finish != null)) {
      // No more text will come before these: decide the seam on what arrived.
      this.settle(attempt, attempt.seam, true, out)
      if (attempt.signal !== undefined) return
    }
    if (refusal) {
      attempt.hadContent = true
      delivered.resumable = false
    }
    let toolCalls = calls
    if (hasCalls) {
      attempt.hadContent = true
      if (this.bufferTools) {
        for (const d of calls) {
          const whole = attempt.tools.add(d)
          // The next call began: the previous one is whole.
          if (whole !== undefined) this.releaseCall(whole, out)
        }
        toolCalls = undefined
        changed = true
      } else delivered.resumable = false
    }
    if (finish != null) this.release(attempt, out)
    let extra: Record<string, unknown> | undefined
    let usage = chunk.usage
    if (finish != null) extra = delivered.extension()
    if (usage != null && (delivered.prior !== undefined || delivered.seams > 0)) usage = delivered.sum(usage)
    if (extra !== undefined || usage !== chunk.usage) changed = true
    if (!changed) {
      delivered.emit(chunk, out, emitted, finish != null)
      return
    }
    const hasText = content != null && content.length > 0
    if (role === undefined && !hasText && toolCalls === undefined && !refusal && finish == null && usage == null) return
    const outDelta: Record<string, unknown> = { ...delta }
    if (role === undefined) delete outDelta["role"]
    if (content === undefined) delete outDelta["content"]
    if (toolCalls === undefined) delete outDelta["tool_calls"]
    const env = delivered.env ?? Env.envelopeOf(chunk)
    const extras: Record<string, unknown> = { ...extra }
    if (usage != null) extras["usage"] = usage
    delivered.emit(Env.readdress(env, chunk, choice, outDelta as Delta, extras), out, emitted, finish != null)
  }

  private withUsage(attempt: Attempt, chunk: Out, usage: ChatCompletion.Usage): Out {
    const delivered = this.delivered
    if (delivered.prior === undefined && delivered.seams === 0 && !attempt.rewrite) return chunk
    return Env.usageChunk(delivered.env ?? Env.envelopeOf(chunk), chunk, delivered.sum(usage), delivered.extension())
  }

  // ---- tool calls --------------------------------------------------------------------------

  /** Releases the buffered tool call, if any. */
  private release(attempt: Attempt, out: Array<Out>): void {
    const call = attempt.tools.take()
    if (call !== undefined) this.releaseCall(call, out)
  }

  private releaseCall(call: Env.PendingCall, out: Array<Out>): void {
    const delivered = this.delivered
    // A delivered call cannot be continued: a later break ends the stream with an error.
    delivered.resumable = false
    const env = delivered.env ?? { id: "", created: 0, model: this.request.model }
    delivered.emit(Env.choiceChunk(env, Env.callDelta(call), null), out, 0, false)
  }

  // ---- seams -------------------------------------------------------------------------------

  private settle(attempt: Attempt, seam: Seam, final: boolean, out: Array<Out>): void {
    const delivered = this.delivered
    const decision = seam.decide(delivered.text, final, this.settings)
    if (decision._tag === "Hold") return
    if (decision._tag === "Reject") {
      attempt.signal = new Rejected({ reason: decision.reason })
      return
    }
    const text = seam.accept(decision.drop)
    attempt.seam = undefined
    const env = delivered.env!
    delivered.seams++
    this.ctx.trace.resumes++
    this.effect = Effect.zipRight(
      Effect.sync(() => {
        outcomes.resumed(1)
        this.ctx.observer?.event({ _tag: "Resume", outcome: "resumed", reason: undefined, seam: delivered.seams, splice: decision.kind, droppedChars: decision.drop })
      }),
      Effect.annotateLogs(Effect.logInfo("stream resumed"), {
        request_id: this.ctx.requestId,
        seam: delivered.seams,
        splice: decision.kind,
        dropped_chars: decision.drop,
        delivered_chars: delivered.text.length,
        strategy: this.recovery.strategyUsed ?? "preferred"
      })
    )
    out.push(Env.seamMarker(env, delivered.seams))
    if (this.stops.length > 0 && Splice.stopAcrossSeam(delivered.text, text, this.stops)) {
      // The stop sequence began before the seam: the answer ends here, as the upstream would have ended it.
      this.finalize(attempt, "stop", out)
      attempt.signal = new Finished()
      return
    }
    if (text.length > 0) {
      delivered.deliver(text)
      delivered.emit(Env.choiceChunk(env, { content: text }, null), out, text.length, false)
    }
  }

  /** Writes the final chunk (and the summed usage) when stream-resume ends the answer itself. */
  private finalize(attempt: Attempt, finish: string, out: Array<Out>): void {
    const delivered = this.delivered
    this.release(attempt, out)
    delivered.account(attempt.spent(this.request))
    const env = delivered.env!
    const extra = delivered.extension()
    delivered.emit(Env.choiceChunk(env, {}, finish, extra), out, 0, true)
    if (delivered.prior !== undefined) {
      delivered.usageSent = true
      out.push(delivered.priorUsage(env, extra))
    }
  }

  /** The attempt ended cleanly. */
  end(): ReadonlyArray<Out> {
    const attempt = this.attempt
    const out: Array<Out> = []
    if (attempt.seam !== undefined) this.settle(attempt, attempt.seam, true, out)
    if (attempt.signal === undefined) {
      this.release(attempt, out)
      this.delivered.release(out)
    }
    return out
  }

  // ---- failures ----------------------------------------------------------------------------

  onFailure(error: ModelError.ModelError | Signal): Effect.Effect<Next, ModelError.ModelError> {
    if (error instanceof Finished) return Effect.succeed({ _tag: "end", chunks: [] })
    const attempt = this.attempt
    const hadContent = attempt.hadContent
    this.delivered.account(attempt.spent(this.request))
    // A tool call cut before it was complete never reached the client: it is regenerated.
    attempt.tools.take()
    return Effect.map(this.recovery.decide(error, attempt.kind, hadContent), (decision) => this.follow(attempt, decision))
  }

  private follow(attempt: Attempt, decision: Decision): Next {
    switch (decision._tag) {
      case "end":
        return decision
      case "restart":
        this.delivered.forgetUnsent()
        return this.begin("restart", { request: this.request, options: this.options }, undefined)
      case "continue":
        return this.begin("continuation", decision.call, decision.applied)
      case "length": {
        // The token budget is spent: the answer ends as the upstream would have ended it.
        const delivered = this.delivered
        const out: Array<Out> = []
        delivered.seams++
        this.ctx.trace.resumes++
        out.push(Env.seamMarker(delivered.env!, delivered.seams))
        this.finalize(attempt, "length", out)
        return { _tag: "end", chunks: out }
      }
    }
  }
}
