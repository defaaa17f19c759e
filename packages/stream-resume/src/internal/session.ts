import { ChatCompletion, type Continuation, type LanguageModel, ModelError, RequestContext } from "@breakwater/core"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { spliceSeam } from "./splice.js"

type Chunk_ = ChatCompletion.ChatCompletionChunk
type ToolCallDelta = ChatCompletion.ToolCallDelta
type Usage = NonNullable<Chunk_["usage"]>

export interface Settings {
  readonly mode: "continue" | "replay-before-commit" | "terminate"
  readonly maxResumes: number
  readonly holdBack: number
  readonly minOverlap: number
  readonly replayWindow: number
  readonly toolCalls: "buffer" | "pass-through"
  readonly instruction: string | undefined
}

export const resumesTotal = Metric.counter("breakwater_stream_resumes_total", {
  description: "Broken streams by outcome: resumed (a continuation was spliced), restarted (replayed before commit), gave_up",
  incremental: true
})
const resumed = Metric.tagged(resumesTotal, "outcome", "resumed")
const restarted = Metric.tagged(resumesTotal, "outcome", "restarted")
const gaveUp = Metric.tagged(resumesTotal, "outcome", "gave_up")

/** The extension field that marks a seam (on a choice-less chunk) and a resumed stream (on its final chunk). */
export const EXTENSION = "breakwater"

export const isSeamMarker = (chunk: Chunk_): boolean =>
  chunk.choices.length === 0 && typeof (chunk as { readonly [EXTENSION]?: { readonly seam?: unknown } })[EXTENSION]?.seam === "number"

/** A continuation attempt whose output restarts instead of continuing: not glued on. */
class Restarted {
  readonly _tag = "Restarted"
}

const isModelError = (u: unknown): u is ModelError.ModelError => ModelError.isModelError(u)

/** Requests whose output cannot be continued faithfully: they are restarted only before any content. */
const notContinuable = (request: ChatCompletion.ChatRequest): boolean => {
  const r = request as { readonly n?: number | null; readonly logprobs?: boolean | null; readonly response_format?: { readonly type?: string; readonly json_schema?: { readonly strict?: boolean } } }
  return (r.n != null && r.n > 1) || r.logprobs === true ||
    (r.response_format?.type === "json_schema" && r.response_format.json_schema?.strict === true)
}

interface PendingCall {
  readonly index: number
  id: string | undefined
  name: string
  args: string
}

const strategies: ReadonlyArray<Continuation.Strategy | undefined> = [undefined, "user-instruction", "assistant-prefill"]

/**
 * One client stream over as many upstream attempts as it takes. All state is per request;
 * an undisturbed stream costs one pass over its chunks.
 */
export const run = (
  model: LanguageModel.Service,
  settings: Settings,
  request: ChatCompletion.ChatRequest,
  options: LanguageModel.CallOptions | undefined
): Stream.Stream<Chunk_, ModelError.ModelError> => {
  let envelope: { id: string; created: number; model: string } | undefined
  let roleSent = false
  let delivered = ""
  let finish: Chunk_["choices"][number]["finish_reason"] = null
  let usage: Usage | undefined
  let resumes = 0
  let releasedCalls = 0
  let passedToolDelta = false
  const pending = new Map<number, PendingCall>()
  // Replay-before-commit: content held until the window fills; failures before that restart.
  let committed = settings.mode !== "replay-before-commit"
  let replayHeld: Array<Chunk_> = []

  const stamp = (choices: Chunk_["choices"], extra?: Record<string, unknown>): Chunk_ => ({
    id: envelope!.id,
    object: "chat.completion.chunk",
    created: envelope!.created,
    model: envelope!.model,
    choices,
    ...extra
  })

  const contentChunk = (text: string): Chunk_ => {
    const delta: Record<string, unknown> = { content: text }
    if (!roleSent) {
      roleSent = true
      delta["role"] = "assistant"
    }
    return stamp([{ index: 0, delta: delta as never, finish_reason: null }])
  }

  const releaseCall = (call: PendingCall, out: Array<Chunk_>) => {
    pending.delete(call.index)
    releasedCalls++
    const delta: Record<string, unknown> = {
      tool_calls: [{ index: call.index, id: call.id, type: "function", function: { name: call.name, arguments: call.args } }]
    }
    if (!roleSent) {
      roleSent = true
      delta["role"] = "assistant"
      delta["content"] = null
    }
    out.push(stamp([{ index: 0, delta: delta as never, finish_reason: null }]))
  }

  const releaseBefore = (index: number, out: Array<Chunk_>) => {
    for (const call of [...pending.values()].sort((a, b) => a.index - b.index)) if (call.index < index) releaseCall(call, out)
  }

  const bufferTools = (calls: ReadonlyArray<ToolCallDelta>, out: Array<Chunk_>) => {
    for (const d of calls) {
      let call = pending.get(d.index)
      if (call === undefined) {
        // A new call begins: every call before it is complete.
        releaseBefore(d.index, out)
        call = { index: d.index, id: d.id, name: "", args: "" }
        pending.set(d.index, call)
      }
      if (d.id !== undefined) call.id = d.id
      if (d.function?.name !== undefined) call.name += d.function.name
      if (d.function?.arguments !== undefined) call.args += d.function.arguments
    }
  }

  /** Processes one upstream chunk; `accept` receives the (possibly spliced) text first. */
  const process = (chunk: Chunk_, accept: (text: string) => string, out: Array<Chunk_>) => {
    if (chunk.choices.length === 0) {
      if (chunk.usage != null) usage = ChatCompletion.addUsage(usage, chunk.usage)
      else out.push(chunk) // a heartbeat: liveness for the host, no data
      return
    }
    if (envelope === undefined) envelope = { id: chunk.id, created: chunk.created, model: chunk.model }
    if (chunk.usage != null) usage = ChatCompletion.addUsage(usage, chunk.usage)
    const choice = chunk.choices[0]!
    const delta = choice.delta
    if (delta.role !== undefined && !roleSent && delta.content == null && delta.tool_calls === undefined) {
      roleSent = true
      out.push(stamp([{ index: 0, delta: { role: "assistant", content: "" } as never, finish_reason: null }]))
    }
    if (delta.content != null && delta.content.length > 0) {
      const text = accept(delta.content)
      if (text.length > 0) {
        delivered += text
        out.push(contentChunk(text))
      }
    }
    if (delta.refusal != null && delta.refusal.length > 0) {
      out.push(stamp([{ index: 0, delta: { refusal: delta.refusal } as never, finish_reason: null }]))
    }
    if (delta.tool_calls !== undefined && delta.tool_calls.length > 0) {
      if (settings.toolCalls === "pass-through") {
        passedToolDelta = true
        out.push(stamp([{ index: 0, delta: { tool_calls: delta.tool_calls } as never, finish_reason: null }]))
      } else bufferTools(delta.tool_calls, out)
    }
    if (choice.finish_reason != null) {
      finish = choice.finish_reason
      releaseBefore(Infinity, out)
    }
  }

  const hasDelivered = () => delivered.length > 0 || releasedCalls > 0 || passedToolDelta

  const toOutput = (out: Array<Chunk_>): Chunk.Chunk<Chunk_> => {
    if (committed) return Chunk.unsafeFromArray(out)
    // Replay-before-commit: hold content until the window is full.
    replayHeld.push(...out)
    if (delivered.length < settings.replayWindow) return Chunk.empty()
    committed = true
    const held = replayHeld
    replayHeld = []
    return Chunk.unsafeFromArray(held)
  }

  /** A first attempt (or a replay from scratch): chunks pass straight through `process`. */
  const plainAttempt = (call: ChatCompletion.ChatRequest, callOptions: LanguageModel.CallOptions | undefined) =>
    Stream.mapChunks(model.stream(call, callOptions), (chunks) => {
      const out: Array<Chunk_> = []
      for (const c of chunks) process(c, (t) => t, out)
      return toOutput(out)
    })

  /** A continuation: its first characters are held until the seam is decided. */
  const continuationAttempt = (strategy: Continuation.Strategy | undefined) => {
    const applied: { strategy?: Continuation.Strategy | undefined } = {}
    const continuation: Continuation.Continuation = {
      partial: delivered,
      applied,
      ...(strategy === undefined ? {} : { strategy }),
      ...(settings.instruction === undefined ? {} : { instruction: settings.instruction })
    }
    const seamAt = delivered
    let held = ""
    let deciding = true
    const accept = (text: string): string => {
      if (!deciding) return text
      held += text
      const decision = spliceSeam(seamAt, held, settings, false, applied.strategy === "assistant-prefill")
      if (decision._tag === "Wait") return ""
      if (decision._tag === "Restarted") throw new Restarted()
      deciding = false
      return decision.text
    }
    const call = reduceMaxTokens(request, delivered, usage)
    return Stream.concat(
      Stream.mapChunksEffect(model.stream(call, { ...options, continuation }), (chunks) =>
        Effect.suspend(() => {
          const out: Array<Chunk_> = []
          try {
            for (const c of chunks) process(c, accept, out)
          } catch (error) {
            if (error instanceof Restarted) return Effect.fail(error)
            throw error
          }
          return Effect.succeed(toOutput(out))
        })),
      // The attempt ended while the seam was undecided: decide on what arrived.
      Stream.suspend(() => {
        if (!deciding || held.length === 0) return Stream.empty
        deciding = false
        const decision = spliceSeam(seamAt, held, settings, true, applied.strategy === "assistant-prefill")
        if (decision._tag !== "Text") return Stream.fail(new Restarted())
        if (decision.text.length === 0) return Stream.empty
        delivered += decision.text
        return Stream.make(contentChunk(decision.text))
      })
    )
  }

  const seamMarker = (): Chunk_ =>
    envelope === undefined
      ? ChatCompletion.heartbeat("resume", request.model, 0)
      : ({ ...stamp([]), [EXTENSION]: { seam: resumes } } as Chunk_)

  const giveUp = (error: ModelError.ModelError) =>
    Stream.fromEffect(Effect.zipRight(Metric.increment(gaveUp), Effect.fail(error)))

  const deadlinePassed = Effect.map(RequestContext.remaining, (left) => Option.isSome(left) && Duration.toMillis(left.value) === 0)

  /** After a failure: continue, replay, or give up. `tries` counts strategies tried at this seam. */
  const recover = (error: ModelError.ModelError | Restarted, tries: number): Stream.Stream<Chunk_, ModelError.ModelError> =>
    Stream.unwrap(Effect.gen(function*() {
      const failure = error instanceof Restarted
        ? new ModelError.StreamInterrupted({ message: "the continuation restarted the answer instead of continuing it", reason: "malformed", receivedChunks: 0 })
        : error
      if (!isModelError(failure)) return Stream.fail(failure)
      if (!committed) {
        // Replay-before-commit: nothing reached the client; start over from scratch.
        if (resumes >= settings.maxResumes || (yield* deadlinePassed)) return giveUp(failure)
        resumes++
        const ctx = yield* RequestContext.current
        ctx.trace.resumes++
        yield* Metric.increment(restarted)
        envelope = undefined
        roleSent = false
        delivered = ""
        replayHeld = []
        pending.clear()
        return Stream.catchAll(plainAttempt(request, options), (e) => recover(e, 0))
      }
      if (!hasDelivered()) return Stream.fail(failure)
      const recoverable = error instanceof Restarted || failure._tag === "StreamInterrupted" || failure.retryable ||
        (tries > 0 && failure._tag === "BadRequest")
      if (
        settings.mode !== "continue" || !recoverable || notContinuable(request) || releasedCalls > 0 || passedToolDelta
      ) return giveUp(failure)
      if (tries === 0 && resumes >= settings.maxResumes) return giveUp(failure)
      if (tries >= strategies.length) return giveUp(failure)
      if (yield* deadlinePassed) return giveUp(failure)
      // Tool calls still buffered were cut: they are regenerated by the continuation.
      pending.clear()
      const marker: Array<Chunk_> = []
      if (tries === 0) {
        resumes++
        const ctx = yield* RequestContext.current
        ctx.trace.resumes++
        yield* Metric.increment(resumed)
        yield* Effect.annotateLogs(Effect.logInfo("resuming a broken stream"), {
          request_id: ctx.requestId,
          upstream: ctx.upstream ?? "",
          reason: failure._tag === "StreamInterrupted" ? failure.reason : failure._tag,
          delivered_chars: delivered.length,
          resume: resumes
        })
        marker.push(seamMarker())
      }
      const strategy = strategies[tries]
      return Stream.concat(
        Stream.fromIterable(marker),
        Stream.catchAll(continuationAttempt(strategy), (e) => recover(e, e instanceof Restarted || (e as ModelError.ModelError)._tag === "BadRequest" ? tries + 1 : 0))
      )
    }))

  const finalChunks = (): Array<Chunk_> => {
    const out: Array<Chunk_> = []
    if (envelope === undefined) return out
    releaseBefore(Infinity, out)
    if (!committed) {
      committed = true
      out.unshift(...replayHeld)
      replayHeld = []
    }
    if (finish !== null) {
      out.push(stamp([{ index: 0, delta: {}, finish_reason: finish }], resumes > 0 ? { [EXTENSION]: { resumed: resumes } } : undefined))
    }
    if (usage !== undefined) out.push(stamp([], { usage }))
    return out
  }

  return Stream.concat(
    Stream.catchAll(plainAttempt(request, options), (e) => recover(e, 0)),
    Stream.suspend(() => Stream.fromIterable(finalChunks()))
  )
}

/** `max_tokens` reduced by what was already delivered (usage when known, else ~4 characters a token). */
const reduceMaxTokens = (request: ChatCompletion.ChatRequest, delivered: string, usage: Usage | undefined): ChatCompletion.ChatRequest => {
  const spent = usage?.completion_tokens ?? Math.ceil(delivered.length / 4)
  const r = request as { max_tokens?: number | null; max_completion_tokens?: number | null }
  if (r.max_tokens == null && r.max_completion_tokens == null) return request
  const out: Record<string, unknown> = { ...request }
  if (r.max_tokens != null) out["max_tokens"] = Math.max(1, r.max_tokens - spent)
  if (r.max_completion_tokens != null) out["max_completion_tokens"] = Math.max(1, r.max_completion_tokens - spent)
  return out as ChatCompletion.ChatRequest
}
