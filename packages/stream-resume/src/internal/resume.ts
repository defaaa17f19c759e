import { ChatCompletion, type Continuation, LanguageModel, ModelError, RequestContext } from "@breakwater/core"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import * as Env from "./envelope.js"
import * as Splice from "./splice.js"

type Out = ChatCompletion.ChatCompletionChunk
type Choice = Out["choices"][number]
type Delta = Choice["delta"]
type Usage = ChatCompletion.Usage
type Ctx = RequestContext.RequestContextShape

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

/** @internal */
export type Outcome = "resumed" | "restarted" | "rejected" | "gave_up" | "terminated"

/** @internal */
export const resumesTotal = Metric.counter("breakwater_stream_resumes_total", {
  description:
    "Stream-resume decisions by outcome: resumed (a continuation was spliced in), restarted (an attempt whose content never reached the client was started over), rejected (a continuation was not glued on), gave_up (ended with an error after content), terminated (ended at once, by mode)",
  incremental: true
})

// Tagged once, not per event.
const outcomes: Record<Outcome, Metric.Metric.Counter<number>> = {
  resumed: Metric.tagged(resumesTotal, "outcome", "resumed"),
  restarted: Metric.tagged(resumesTotal, "outcome", "restarted"),
  rejected: Metric.tagged(resumesTotal, "outcome", "rejected"),
  gave_up: Metric.tagged(resumesTotal, "outcome", "gave_up"),
  terminated: Metric.tagged(resumesTotal, "outcome", "terminated")
}

/** Ends an attempt whose continuation is not glued on. Never leaves this module. */
class Rejected extends Data.TaggedError("StreamResume/Rejected")<{ readonly reason: string }> {}

/** Ends an attempt after stream-resume wrote the final chunk itself. Never leaves this module. */
class Finished extends Data.TaggedError("StreamResume/Finished")<{}> {}

type Signal = Rejected | Finished

interface Call {
  readonly request: ChatCompletion.ChatRequest
  readonly options: LanguageModel.CallOptions | undefined
}

type Next = { readonly _tag: "call"; readonly call: Call } | { readonly _tag: "end"; readonly chunks: ReadonlyArray<Out> }

// Wordings upstreams use when they refuse a conversation that ends with an assistant message.
const prefillRejection = /prefill|final assistant|assistant message|end with a user|continue_final_message/i

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
 * One client stream over as many upstream attempts as it takes. Everything is per request and
 * mutable; an undisturbed attempt takes the fast path in `process` and its chunk batches pass
 * through as the same objects.
 */
class Session {
  readonly stops: ReadonlyArray<string>
  readonly bufferTools: boolean

  // The client's stream.
  env: Env.Envelope | undefined = undefined
  roleSent = false
  delivered = ""
  deliveredAny = false
  resumable: boolean
  seams = 0
  calls = 0
  strategy = 0
  prefillRejected = false
  prior: Usage | undefined = undefined
  committed: boolean
  pending: Array<Out> = []
  pendingChars = 0
  lastBreak: ModelError.ModelError | undefined = undefined
  finished = false
  usageSent = false

  // The current attempt.
  kind: "first" | "continuation" | "restart" = "first"
  rewrite = false
  holding = false
  held = ""
  hadContent = false
  chars = 0
  usage: Usage | undefined = undefined
  call: Env.PendingCall | undefined = undefined
  partial: string | undefined = undefined
  /** Filled in by the adapter serving a continuation: the strategy it used. */
  applied: { strategy?: Continuation.Strategy | undefined } | undefined = undefined
  strategyUsed: StrategyChoice | undefined = undefined
  signal: Signal | undefined = undefined
  effect: Effect.Effect<void> | undefined = undefined

  constructor(
    readonly model: LanguageModel.Service,
    readonly settings: Settings,
    readonly request: ChatCompletion.ChatRequest,
    readonly options: LanguageModel.CallOptions | undefined,
    readonly ctx: Ctx
  ) {
    this.stops = stopsOf(request)
    this.bufferTools = settings.mode === "continue" && settings.toolStreaming === "buffer"
    this.resumable = continuable(request)
    this.committed = settings.mode !== "replay-before-commit"
  }

  // ---- attempts ----------------------------------------------------------------------------

  begin(kind: Session["kind"], call: Call): Next {
    this.kind = kind
    this.rewrite = this.env !== undefined
    this.holding = kind === "continuation"
    this.held = ""
    this.hadContent = false
    this.chars = 0
    this.usage = undefined
    this.call = undefined
    this.partial = call.options?.continuation?.partial
    if (kind !== "continuation") this.applied = undefined
    this.signal = undefined
    return { _tag: "call", call }
  }

  first(): Call {
    this.begin("first", { request: this.request, options: this.options })
    return { request: this.request, options: this.options }
  }

  /** The usage of the attempt that just ended: reported, or estimated if it broke first. */
  private account(): void {
    if (this.usage !== undefined) this.prior = ChatCompletion.addUsage(this.prior, this.usage)
    else if (this.hadContent) {
      const prompt = Env.estimateTokens(Env.promptChars(this.request, this.partial))
      const completion = Env.estimateTokens(this.chars)
      this.prior = ChatCompletion.addUsage(this.prior, { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion })
    }
    // Counted once.
    this.usage = undefined
    this.hadContent = false
    this.chars = 0
  }

  // ---- chunks ------------------------------------------------------------------------------

  process(chunks: ReadonlyArray<Out>): ReadonlyArray<Out> {
    let out: Array<Out> | undefined
    for (let i = 0; i < chunks.length; i++) {
      if (this.signal !== undefined) break
      const chunk = chunks[i]!
      if (out === undefined) {
        if (this.fast(chunk)) continue
        out = chunks.slice(0, i)
      }
      this.handle(chunk, out)
    }
    return out === undefined ? chunks : out
  }

  /** The undisturbed case: bookkeeping only, the chunk passes as it is. */
  private fast(chunk: Out): boolean {
    if (this.rewrite || this.holding || !this.committed) return false
    const choices = chunk.choices
    if (choices.length === 0) return chunk.usage == null
    if (choices.length !== 1 || chunk.usage != null) return false
    const choice = choices[0]!
    if (choice.finish_reason != null) return false
    const delta = choice.delta
    if ((delta.tool_calls !== undefined && delta.tool_calls.length > 0) || nonEmpty(delta.refusal)) return false
    if (delta.role !== undefined) {
      if (this.roleSent) return false
      this.roleSent = true
    }
    if (this.env === undefined) this.env = Env.envelopeOf(chunk)
    const text = delta.content
    if (nonEmpty(text)) {
      this.delivered += text
      this.chars += text.length
      this.deliveredAny = true
      this.hadContent = true
    }
    return true
  }

  private handle(chunk: Out, out: Array<Out>): void {
    const choice = chunk.choices[0]
    if (choice === undefined) {
      if (chunk.usage == null) {
        out.push(chunk) // a heartbeat: liveness, never data
        return
      }
      this.usage = chunk.usage
      if (this.holding) this.settle(true, out)
      if (this.signal !== undefined) return
      this.emit(this.withUsage(chunk, chunk.usage), out, 0, true)
      return
    }
    if (chunk.usage != null) this.usage = chunk.usage
    const delta = choice.delta
    let changed = this.rewrite
    let role = delta.role
    if (role !== undefined) {
      if (this.roleSent) {
        role = undefined
        changed = true
      } else this.roleSent = true
    }
    let content = delta.content
    let emitted = 0
    if (nonEmpty(content)) {
      this.hadContent = true
      this.chars += content.length
      if (this.holding) {
        this.held += content
        content = undefined
        changed = true
        this.settle(false, out)
        if (this.signal !== undefined) return
      } else {
        this.delivered += content
        this.deliveredAny = true
        emitted = content.length
      }
    }
    const finish = choice.finish_reason
    const calls = delta.tool_calls
    const hasCalls = calls !== undefined && calls.length > 0
    const refusal = nonEmpty(delta.refusal)
    if (this.holding && (hasCalls || refusal || finish != null)) {
      // No more text will come before these: decide the seam on what arrived.
      this.settle(true, out)
      if (this.signal !== undefined) return
    }
    if (refusal) {
      this.hadContent = true
      this.deliveredAny = true
      this.resumable = false
    }
    let toolCalls = calls
    if (hasCalls) {
      this.hadContent = true
      if (this.bufferTools) {
        for (const d of calls) this.buffer(d, out)
        toolCalls = undefined
        changed = true
      } else {
        this.deliveredAny = true
        this.resumable = false
      }
    }
    if (finish != null) this.release(out)
    let extra: Record<string, unknown> | undefined
    let usage = chunk.usage
    if (finish != null && this.seams > 0) extra = { [Env.EXTENSION]: { resumed: this.seams } }
    if (usage != null && (this.prior !== undefined || this.seams > 0)) usage = this.sum(usage)
    if (extra !== undefined || usage !== chunk.usage) changed = true
    if (!changed) {
      this.emit(chunk, out, emitted, finish != null)
      return
    }
    const hasText = content != null && content.length > 0
    if (role === undefined && !hasText && toolCalls === undefined && !refusal && finish == null && usage == null) return
    const outDelta: Record<string, unknown> = { ...delta }
    if (role === undefined) delete outDelta["role"]
    if (content === undefined) delete outDelta["content"]
    if (toolCalls === undefined) delete outDelta["tool_calls"]
    const env = this.env ?? Env.envelopeOf(chunk)
    const extras: Record<string, unknown> = { ...extra }
    if (usage != null) extras["usage"] = usage
    this.emit(Env.readdress(env, chunk, choice, outDelta as Delta, extras), out, emitted, finish != null)
  }

  /** Writes a chunk for the client, through the replay buffer while it is not committed. */
  private emit(chunk: Out, out: Array<Out>, chars: number, last: boolean): void {
    if (this.env === undefined) this.env = Env.envelopeOf(chunk)
    if (chunk.usage != null) this.usageSent = true
    if (chunk.choices[0]?.finish_reason != null) this.finished = true
    if (this.committed) {
      out.push(chunk)
      return
    }
    this.pending.push(chunk)
    this.pendingChars += chars
    if (last || this.pendingChars >= this.settings.replayWindow) this.commit(out)
  }

  private commit(out: Array<Out>): void {
    this.committed = true
    for (const chunk of this.pending) out.push(chunk)
    this.pending = []
  }

  private sum(usage: Usage): Usage {
    return this.prior === undefined ? usage : { ...usage, ...ChatCompletion.addUsage(this.prior, usage) }
  }

  private withUsage(chunk: Out, usage: Usage): Out {
    if (this.prior === undefined && this.seams === 0 && !this.rewrite) return chunk
    const extra = this.seams > 0 ? { [Env.EXTENSION]: { resumed: this.seams } } : undefined
    return Env.usageChunk(this.env ?? Env.envelopeOf(chunk), chunk, this.sum(usage), extra)
  }

  // ---- tool calls --------------------------------------------------------------------------

  private buffer(d: ChatCompletion.ToolCallDelta, out: Array<Out>): void {
    let call = this.call
    if (call !== undefined && call.index !== d.index) {
      // The next call began: the previous one is complete.
      this.release(out)
      call = undefined
    }
    if (call === undefined) {
      call = { index: d.index, id: d.id, name: "", args: "" }
      this.call = call
    }
    if (d.id !== undefined) call.id = d.id
    const fn = d.function
    if (fn?.name != null) call.name += fn.name
    if (fn?.arguments != null) call.args += fn.arguments
  }

  private release(out: Array<Out>): void {
    const call = this.call
    if (call === undefined) return
    this.call = undefined
    // A delivered call cannot be continued: a later break ends the stream with an error.
    this.deliveredAny = true
    this.resumable = false
    const env = this.env ?? { id: "", created: 0, model: this.request.model }
    this.emit(Env.choiceChunk(env, Env.callDelta(call), null), out, 0, false)
  }

  // ---- seams -------------------------------------------------------------------------------

  private settle(final: boolean, out: Array<Out>): void {
    const decision = Splice.decide(this.delivered, this.held, final, this.settings, this.applied?.strategy === "assistant-prefill")
    if (decision._tag === "Hold") return
    if (decision._tag === "Reject") {
      this.signal = new Rejected({ reason: decision.reason })
      return
    }
    this.holding = false
    const text = this.held.slice(decision.drop)
    this.held = ""
    const env = this.env!
    this.seams++
    this.ctx.trace.resumes++
    this.effect = Effect.zipRight(
      Metric.increment(outcomes.resumed),
      Effect.annotateLogs(Effect.logInfo("stream resumed"), {
        request_id: this.ctx.requestId,
        seam: this.seams,
        splice: decision.kind,
        dropped_chars: decision.drop,
        delivered_chars: this.delivered.length,
        strategy: this.strategyUsed ?? "preferred"
      })
    )
    out.push(Env.seamMarker(env, this.seams))
    if (this.stops.length > 0 && Splice.stopAcrossSeam(this.delivered, text, this.stops)) {
      // The stop sequence began before the seam: the answer ends here, as the upstream would have ended it.
      this.finalize("stop", out)
      this.signal = new Finished()
      return
    }
    if (text.length > 0) {
      this.delivered += text
      this.deliveredAny = true
      this.emit(Env.choiceChunk(env, { content: text }, null), out, text.length, false)
    }
  }

  /** Writes the final chunk (and the summed usage) when stream-resume ends the answer itself. */
  private finalize(finish: string, out: Array<Out>): void {
    this.release(out)
    this.account()
    const env = this.env!
    const extra = this.seams > 0 ? { [Env.EXTENSION]: { resumed: this.seams } } : undefined
    this.emit(Env.choiceChunk(env, {}, finish, extra), out, 0, true)
    if (this.prior !== undefined) {
      this.usageSent = true
      out.push({ id: env.id, object: "chat.completion.chunk", created: env.created, model: env.model, choices: [], usage: this.prior, ...extra } as Out)
    }
  }

  /** The attempt ended cleanly. */
  end(): ReadonlyArray<Out> {
    const out: Array<Out> = []
    if (this.holding) this.settle(true, out)
    if (this.signal === undefined) {
      this.release(out)
      if (!this.committed) this.commit(out)
    }
    return out
  }

  // ---- failures ----------------------------------------------------------------------------

  private strategyChoice(): StrategyChoice | undefined {
    const list = this.settings.strategies
    while (this.strategy < list.length) {
      const s = list[this.strategy]!
      if (!(this.prefillRejected && s !== "user-instruction")) return s
      this.strategy++
    }
    return undefined
  }

  private giveUp(error: ModelError.ModelError, why: string, outcome: "gave_up" | "terminated"): Effect.Effect<never, ModelError.ModelError> {
    const failure = this.asInterrupted(error, why)
    return Effect.zipRight(
      Effect.zipRight(
        Metric.increment(outcomes[outcome]),
        Effect.annotateLogs(Effect.logWarning("stream not resumed"), {
          request_id: this.ctx.requestId,
          why,
          error: error._tag,
          delivered_chars: this.delivered.length,
          seams: this.seams
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

  onFailure(error: ModelError.ModelError | Signal): Effect.Effect<Next, ModelError.ModelError> {
    if (error instanceof Finished) return Effect.succeed({ _tag: "end", chunks: [] })
    const kind = this.kind
    const hadContent = this.hadContent
    this.account()
    // A tool call cut before it was complete never reached the client: it is regenerated.
    this.call = undefined
    let failure: ModelError.ModelError
    let rejected: string | undefined
    if (this.finished && this.committed) {
      // The answer was complete (its finish arrived); only the terminator is missing.
      const chunks: Array<Out> = []
      if (!this.usageSent && this.prior !== undefined && this.env !== undefined) {
        const extra = this.seams > 0 ? { [Env.EXTENSION]: { resumed: this.seams } } : undefined
        chunks.push({ id: this.env.id, object: "chat.completion.chunk", created: this.env.created, model: this.env.model, choices: [], usage: this.prior, ...extra } as Out)
      }
      return Effect.as(
        Effect.annotateLogs(Effect.logInfo("the stream broke after its finish: ended as complete"), { request_id: this.ctx.requestId, error: error._tag }),
        { _tag: "end", chunks }
      )
    }
    if (error instanceof Rejected) {
      rejected = error.reason
      this.strategy++
      failure = this.lastBreak!
    } else if (kind === "continuation" && !hadContent && error._tag === "BadRequest" && prefillRejection.test(error.message)) {
      rejected = "the upstream rejects assistant prefill"
      this.prefillRejected = true
      failure = this.lastBreak!
    } else {
      failure = error
      if (!this.committed) {
        // Replay-before-commit: nothing reached the client yet.
        return hadContent ? this.restart(failure) : Effect.fail(failure)
      }
      if (!this.deliveredAny) {
        // Before any content reached the consumer the failure is retry's and the router's,
        // unless this attempt's content was held here (a buffered tool call): start over.
        return hadContent && this.settings.mode !== "terminate" ? this.restart(failure) : Effect.fail(failure)
      }
      if (this.lastBreak === undefined || failure._tag === "StreamInterrupted") this.lastBreak = failure
    }
    const notes: Effect.Effect<void> = rejected === undefined ? Effect.void : Effect.zipRight(
      Metric.increment(outcomes.rejected),
      Effect.annotateLogs(Effect.logInfo("continuation rejected"), { request_id: this.ctx.requestId, why: rejected, strategy: this.strategyUsed ?? "preferred" })
    )
    return Effect.zipRight(notes, this.resume(failure))
  }

  private restart(failure: ModelError.ModelError): Effect.Effect<Next, ModelError.ModelError> {
    return Effect.flatMap(this.deadlinePassed, (passed) => {
      if (passed || this.calls >= this.settings.maxResumes) return Effect.fail(failure)
      this.calls++
      if (!this.committed || this.env === undefined) {
        // Nothing was written: the next attempt's envelope is the client's.
        this.env = undefined
        this.roleSent = false
        this.pending = []
        this.pendingChars = 0
      }
      return Effect.as(
        Effect.zipRight(
          Metric.increment(outcomes.restarted),
          Effect.annotateLogs(Effect.logInfo("stream restarted: nothing had reached the client"), { request_id: this.ctx.requestId, error: failure._tag })
        ),
        this.begin("restart", { request: this.request, options: this.options })
      )
    })
  }

  private get deadlinePassed(): Effect.Effect<boolean> {
    return Effect.map(RequestContext.remaining, (left) => Option.isSome(left) && Duration.toMillis(left.value) <= 0)
  }

  private resume(failure: ModelError.ModelError): Effect.Effect<Next, ModelError.ModelError> {
    const settings = this.settings
    if (settings.mode !== "continue") return this.giveUp(failure, `mode ${settings.mode}`, "terminated")
    if (!failure.retryable) return this.giveUp(failure, "the failure is not retryable", "gave_up")
    if (!this.resumable) return this.giveUp(failure, "the delivered content cannot be continued", "gave_up")
    if (this.calls >= settings.maxResumes) return this.giveUp(failure, `maxResumes (${settings.maxResumes}) reached`, "gave_up")
    const strategy = this.strategyChoice()
    if (strategy === undefined) return this.giveUp(failure, "no continuation strategy left", "gave_up")
    return Effect.flatMap(this.deadlinePassed, (passed): Effect.Effect<Next, ModelError.ModelError> => {
      if (passed) return this.giveUp(failure, "the deadline passed", "gave_up")
      const request = this.reduced()
      if (request === undefined) {
        // The token budget is spent: the answer ends as the upstream would have ended it.
        const out: Array<Out> = []
        this.seams++
        this.ctx.trace.resumes++
        out.push(Env.seamMarker(this.env!, this.seams))
        this.finalize("length", out)
        return Effect.succeed({ _tag: "end", chunks: out })
      }
      this.calls++
      this.strategyUsed = strategy
      // The adapter records the strategy it used: a prefill continues the text exactly.
      const applied: { strategy?: Continuation.Strategy | undefined } = {}
      const continuation: Continuation.Continuation = {
        partial: this.delivered,
        strategy: strategy === "preferred" ? undefined : strategy,
        instruction: settings.instruction,
        applied
      }
      this.applied = applied
      return Effect.succeed(this.begin("continuation", { request, options: { ...this.options, continuation } }))
    })
  }

  /** `max_tokens` / `max_completion_tokens` less what was delivered; `undefined` when none is left. */
  private reduced(): ChatCompletion.ChatRequest | undefined {
    const request = this.request
    if (request.max_tokens == null && request.max_completion_tokens == null) return request
    const spent = Env.estimateTokens(this.delivered.length)
    const out: Record<string, unknown> = { ...request }
    for (const key of ["max_tokens", "max_completion_tokens"] as const) {
      const limit = request[key]
      if (limit == null) continue
      if (limit - spent <= 0) return undefined
      out[key] = limit - spent
    }
    return out as ChatCompletion.ChatRequest
  }
}

// What stream-resume aborts an attempt with when it stops it itself (a rejected continuation, an
// answer it finished): the attempt's failure is then the session's signal, never this.
const stopped = new ModelError.StreamInterrupted({ message: "stream-resume stopped the attempt", reason: "reset", receivedChunks: 0 })

/** @internal */
export const wrap = (model: LanguageModel.Service, settings: Settings): LanguageModel.Service => {
  const below = LanguageModel.runOf(model)
  const run: LanguageModel.Run = (request, options, sink) => {
    // Several choices cannot be continued one by one: passed through, restarted only by retry.
    if (request.n != null && request.n > 1) return below(request, options, sink)
    return Effect.flatMap(Effect.zip(RequestContext.current, Effect.runtime<never>()), ([ctx, runtime]) => {
      const session = new Session(model, settings, request, options, ctx)
      // Seams are rare: their metrics and logs run on the request's runtime, off the chunk path.
      const notes = () => {
        const effect = session.effect
        if (effect !== undefined) {
          session.effect = undefined
          Runtime.runFork(runtime)(effect)
        }
      }
      let control: LanguageModel.StreamControl | undefined
      const spliced: LanguageModel.ChunkSink = {
        start: (c) => {
          control = c
          sink.start(c)
        },
        push: (chunks) => {
          if (session.signal !== undefined) return false
          const out = session.process(chunks)
          notes()
          const more = out.length === 0 ? true : sink.push(out)
          if (session.signal !== undefined) {
            control?.abort(stopped)
            return false
          }
          return more
        }
      }
      const next = (error: ModelError.ModelError | Signal): Effect.Effect<void, ModelError.ModelError> =>
        Effect.flatMap(session.onFailure(error), (n) => {
          if (n._tag === "call") return attempt(n.call)
          if (n.chunks.length > 0) sink.push(n.chunks)
          return Effect.void
        })
      const attempt = (call: Call): Effect.Effect<void, ModelError.ModelError> =>
        Effect.matchEffect(below(call.request, call.options, spliced), {
          onFailure: (error) => next(session.signal ?? error),
          onSuccess: () => {
            const out = session.end()
            notes()
            if (out.length > 0) sink.push(out)
            return session.signal === undefined ? Effect.void : next(session.signal)
          }
        })
      return attempt(session.first())
    })
  }
  return { generate: model.generate, stream: LanguageModel.streamFromRun(run), run, honoursSignal: model.honoursSignal }
}
