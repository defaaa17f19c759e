/**
 * An in-process fake `LanguageModel` for unit tests: scripted outcomes, deterministic text, and
 * every delay through `Effect.sleep`, so `TestClock` drives time. It honours continuations the
 * way the mock upstream does: given the text already delivered, it continues the same text.
 *
 * @since 0.1.0
 */
import { ChatCompletion, type LanguageModel, ModelError } from "@breakwater/core"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"

/**
 * What one call does. Steps are used in order; once used up, calls succeed plainly.
 *
 * @since 0.1.0
 * @category models
 */
export interface Step {
  /** Fail with this error (at once, or after `failAfterChunks` content chunks of a stream). */
  readonly fail?: ModelError.ModelError | undefined
  /** Delay before the response (generate) or the first chunk (stream). */
  readonly delay?: Duration.DurationInput | undefined
  /** Streams: delay between the role chunk and the first content chunk. */
  readonly firstChunkDelay?: Duration.DurationInput | undefined
  /** Streams: delay between content chunks. */
  readonly chunkDelay?: Duration.DurationInput | undefined
  /** Streams: emit this many content chunks, then fail with `fail` (default: a reset `StreamInterrupted`). */
  readonly failAfterChunks?: number | undefined
  /** Streams: emit this many content chunks, then go silent forever. */
  readonly stallAfterChunks?: number | undefined
  /** Streams: while stalled or delayed before content, emit a heartbeat every second. */
  readonly heartbeats?: boolean | undefined
  /** The exact text to generate. */
  readonly text?: string | undefined
  /** The number of words to generate (default 12). */
  readonly words?: number | undefined
  /** Answer with a tool call instead of text. */
  readonly toolCall?: boolean | undefined
}

/**
 * A recorded call.
 *
 * @since 0.1.0
 * @category models
 */
export interface Call {
  readonly kind: "generate" | "stream"
  readonly request: ChatCompletion.ChatRequest
  readonly options: LanguageModel.CallOptions | undefined
  /** `Clock` time of the call, in ms. */
  readonly at: number
}

/**
 * A fake model and its call log.
 *
 * @since 0.1.0
 * @category models
 */
export interface FakeLanguageModel {
  readonly model: LanguageModel.Service
  readonly calls: ReadonlyArray<Call>
  /** Appends steps for the next calls. */
  readonly script: (...steps: ReadonlyArray<Step>) => void
  /** The full text this fake generates for a request (before any continuation). */
  readonly textFor: (request: ChatCompletion.ChatRequest) => string
}

const vocabulary = [
  "the", "gateway", "keeps", "streams", "steady", "when", "upstreams", "fail", "and", "retries",
  "café", "naïve", "—", "日本語", "🙂", "résumé", "with", "care", "so", "agents", "act", "once", "."
]

const hash = (text: string): number => {
  let h = 2166136261
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619)
  return h >>> 0
}

/**
 * The deterministic words a fake (and its tests) expect for a seed.
 *
 * @since 0.1.0
 * @category utils
 */
export const wordsFor = (seed: string, count: number): Array<string> => {
  let state = hash(seed) || 1
  const out: Array<string> = []
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0
    const word = vocabulary[state % vocabulary.length]!
    out.push(i === 0 ? word : ` ${word}`)
  }
  return out
}

const seedOf = (request: ChatCompletion.ChatRequest): string =>
  request.model + "\u0000" + request.messages.map((m) => `${m.role}:${ChatCompletion.messageText(m)}`).join("\u0000")

const splitContinuation = (full: ReadonlyArray<string>, partial: string): Array<string> => {
  const text = full.join("")
  if (!text.startsWith(partial)) return [...full]
  const out: Array<string> = []
  let offset = 0
  for (const word of full) {
    const end = offset + word.length
    if (end > partial.length) out.push(offset >= partial.length ? word : word.slice(partial.length - offset))
    offset = end
  }
  return out
}

/**
 * Creates a fake model with optional initial steps.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (steps: ReadonlyArray<Step> = []): FakeLanguageModel => {
  const queue: Array<Step> = [...steps]
  const calls: Array<Call> = []
  let counter = 0

  const begin = (kind: Call["kind"], request: ChatCompletion.ChatRequest, options: LanguageModel.CallOptions | undefined) =>
    Effect.map(Clock.currentTimeMillis, (at) => {
      calls.push({ kind, request, options, at })
      counter++
      return queue.shift() ?? {}
    })

  const piecesFor = (request: ChatCompletion.ChatRequest, options: LanguageModel.CallOptions | undefined, step: Step) => {
    const full = step.text !== undefined ? step.text.split(/(?= )/) : wordsFor(seedOf(request), step.words ?? 12)
    const partial = options?.continuation?.partial
    // The fake continues its own text exactly, as a prefill does.
    if (options?.continuation?.applied !== undefined) options.continuation.applied.strategy = "assistant-prefill"
    return partial === undefined ? full : splitContinuation(full, partial)
  }

  const sleep = (d: Duration.DurationInput | undefined) => (d === undefined ? Effect.void : Effect.sleep(d))

  const generate = (request: ChatCompletion.ChatRequest, options?: LanguageModel.CallOptions) =>
    Effect.gen(function*() {
      const step = yield* begin("generate", request, options)
      yield* sleep(step.delay)
      if (step.fail !== undefined) return yield* Effect.fail(step.fail)
      const pieces = piecesFor(request, options, step)
      const created = Math.floor((yield* Clock.currentTimeMillis) / 1000)
      const toolCall = step.toolCall === true
      const completion: ChatCompletion.ChatCompletion = {
        id: `fake-${counter}`,
        object: "chat.completion",
        created,
        model: request.model,
        choices: [{
          index: 0,
          message: toolCall
            ? { role: "assistant", content: null, tool_calls: [{ id: `call_fake_${counter}`, type: "function", function: { name: toolName(request), arguments: toolArguments } }] }
            : { role: "assistant", content: pieces.join("") },
          finish_reason: toolCall ? "tool_calls" : "stop"
        }],
        usage: { prompt_tokens: request.messages.length, completion_tokens: pieces.length, total_tokens: request.messages.length + pieces.length }
      }
      return completion
    })

  const stream = (request: ChatCompletion.ChatRequest, options?: LanguageModel.CallOptions) =>
    Stream.unwrap(Effect.gen(function*() {
      const step = yield* begin("stream", request, options)
      const id = `fake-${counter}`
      const created = Math.floor((yield* Clock.currentTimeMillis) / 1000)
      const model = request.model
      const chunk = (delta: ChatCompletion.ChatCompletionChunk["choices"][number]["delta"], finish: string | null = null): ChatCompletion.ChatCompletionChunk => ({
        id, object: "chat.completion.chunk", created, model, choices: [{ index: 0, delta, finish_reason: finish }]
      })
      const heartbeatsWhile = (d: Duration.DurationInput | undefined): Stream.Stream<ChatCompletion.ChatCompletionChunk> => {
        if (d === undefined) return Stream.empty
        if (step.heartbeats !== true) return Stream.drain(Stream.fromEffect(Effect.sleep(d)))
        const total = Duration.toMillis(d)
        const beats = Math.floor(total / 1000)
        return Stream.fromIterable(Array.from({ length: beats }, () => ChatCompletion.heartbeat(id, model, created))).pipe(
          Stream.mapEffect((beat) => Effect.as(Effect.sleep("1 second"), beat)),
          Stream.concat(Stream.drain(Stream.fromEffect(Effect.sleep(Duration.millis(total - beats * 1000)))))
        )
      }
      if (step.fail !== undefined && step.failAfterChunks === undefined) {
        return Stream.concat(heartbeatsWhile(step.delay), Stream.fail(step.fail))
      }
      const pieces = piecesFor(request, options, step)
      const toolCall = step.toolCall === true
      const contentChunks: Array<ChatCompletion.ChatCompletionChunk> = toolCall
        ? toolCallChunks(toolName(request), `call_fake_${counter}`).map((d) => chunk({ tool_calls: [d] }))
        : pieces.map((p) => chunk({ content: p }))
      const limit = step.failAfterChunks ?? step.stallAfterChunks
      const emitted = limit === undefined ? contentChunks : contentChunks.slice(0, limit)
      const chunkDelay = step.chunkDelay
      const content = Stream.fromIterable(emitted).pipe(
        Stream.zipWithIndex,
        Stream.mapEffect(([c, i]) => (i > 0 && chunkDelay !== undefined ? Effect.as(Effect.sleep(chunkDelay), c) : Effect.succeed(c)))
      )
      const usage = { prompt_tokens: request.messages.length, completion_tokens: emitted.length, total_tokens: request.messages.length + emitted.length }
      const tail: Stream.Stream<ChatCompletion.ChatCompletionChunk, ModelError.ModelError> =
        step.failAfterChunks !== undefined
          ? Stream.fail(step.fail ?? new ModelError.StreamInterrupted({ message: "fake: connection reset", reason: "reset", receivedChunks: emitted.length }))
          : step.stallAfterChunks !== undefined
          ? (step.heartbeats === true
            ? Stream.repeatEffect(Effect.as(Effect.sleep("1 second"), ChatCompletion.heartbeat(id, model, created)))
            : Stream.never)
          : Stream.make(chunk({}, toolCall ? "tool_calls" : "stop"), { id, object: "chat.completion.chunk" as const, created, model, choices: [], usage })
      return heartbeatsWhile(step.delay).pipe(
        Stream.concat(Stream.make(chunk({ role: "assistant", content: "" }))),
        Stream.concat(heartbeatsWhile(step.firstChunkDelay)),
        Stream.concat(content),
        Stream.concat(tail)
      )
    }))

  return {
    model: { generate, stream },
    calls,
    script: (...more) => {
      queue.push(...more)
    },
    textFor: (request) => wordsFor(seedOf(request), 12).join("")
  }
}

const toolName = (request: ChatCompletion.ChatRequest): string => {
  const choice = request.tool_choice
  if (typeof choice === "object") return choice.function.name
  return request.tools?.[0]?.function.name ?? "lookup"
}

/**
 * The arguments of every fake tool call.
 *
 * @since 0.1.0
 * @category constants
 */
export const toolArguments = "{\"query\":\"breakwater café\",\"limit\":3}"

const toolCallChunks = (name: string, id: string): Array<ChatCompletion.ToolCallDelta> => {
  const out: Array<ChatCompletion.ToolCallDelta> = [{ index: 0, id, type: "function", function: { name, arguments: "" } }]
  for (let i = 0; i < toolArguments.length; i += 8) out.push({ index: 0, function: { arguments: toolArguments.slice(i, i + 8) } })
  return out
}
