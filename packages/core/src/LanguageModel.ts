/**
 * The `LanguageModel` service: one non-streaming and one streaming chat completion. Adapters
 * provide it; every policy consumes the one below it and provides a wrapped one.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Stream from "effect/Stream"
import type { ChatCompletion, ChatCompletionChunk, ChatRequest } from "./ChatCompletion.js"
import type { Continuation } from "./Continuation.js"
import type { ModelError } from "./ModelError.js"
import type { RequestContextShape } from "./RequestContext.js"
import * as push from "./internal/push.js"

/**
 * Per-call options that travel through the stack beside the request.
 *
 * @since 0.1.0
 * @category models
 */
export interface CallOptions {
  /** Continue a broken generation from the text already delivered (set by stream-resume). */
  readonly continuation?: Continuation | undefined
  /**
   * The request context for this call, handed down by the layer above (`RequestContext.handDown`)
   * to a model that `takesContext`; it wins over the fiber's `RequestContext`. Read it with
   * `RequestContext.of`.
   */
  readonly context?: RequestContextShape | undefined
}

/**
 * The handle a producer gives the consumer of one streaming attempt (see `ChunkSink.start`).
 *
 * @since 0.2.0
 * @category models
 */
export interface StreamControl {
  /**
   * Stops the attempt: the producer stops reading, releases the upstream (the socket closes),
   * and its `run` fails with `error`. Ignored once the attempt has ended.
   */
  readonly abort: (error: ModelError) => void
  /** Lets a producer paused by `push` returning `false` read again. */
  readonly resume: () => void
}

/**
 * Where a streaming call delivers its chunks: synchronously, one batch per upstream read, with
 * no fiber or effect per chunk. A policy wraps the sink it is given (its per-chunk work is a
 * plain function) and hands the wrapper to the model below.
 *
 * @since 0.2.0
 * @category models
 */
export interface ChunkSink {
  /**
   * Called by the producer once per attempt, before the attempt's first `push` (before the
   * request is sent), with the attempt's control. A wrapper passes it on to its own sink.
   */
  readonly start: (control: StreamControl) => void
  /**
   * The chunks of one upstream read, in order (never empty). `false` asks the producer to pause
   * until `control.resume()` is called (backpressure); `true` to keep reading.
   */
  readonly push: (chunks: ReadonlyArray<ChatCompletionChunk>) => boolean
}

/**
 * A streaming call as a push: the effect runs the whole stream, delivering its chunks to `sink`,
 * and completes when the stream ended well (fails with the error that ended it otherwise).
 * Effect per attempt, plain functions per chunk.
 *
 * @since 0.2.0
 * @category models
 */
export type Run = (
  request: ChatRequest,
  options: CallOptions | undefined,
  sink: ChunkSink
) => Effect.Effect<void, ModelError>

/**
 * A chat model: non-streaming and streaming completion in the canonical shape. A streaming call
 * has two forms: `stream`, an `effect/Stream` for Effect users, and `run`, the push form every
 * Breakwater layer and host uses (`make` derives whichever one is missing).
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  readonly generate: (request: ChatRequest, options?: CallOptions) => Effect.Effect<ChatCompletion, ModelError>
  readonly stream: (request: ChatRequest, options?: CallOptions) => Stream.Stream<ChatCompletionChunk, ModelError>
  /** The push form of `stream`; a model written with `stream` alone may leave it out (see `runOf`). */
  readonly run?: Run | undefined
  /**
   * Whether `generate` stops its upstream I/O when the request context's `signal` aborts, failing
   * with the signal's reason (the adapters do; a policy does when the model below it does). Time
   * limits on such a model are one plain timer, not a race.
   */
  readonly honoursSignal?: boolean | undefined
  /**
   * Whether the model reads its request context from `CallOptions.context` when it is given
   * (`RequestContext.of`; every Breakwater layer and adapter does). A layer above then hands it the
   * context there; a model without it gets the context provided in the fiber instead, which costs
   * a context switch per call.
   */
  readonly takesContext?: boolean | undefined
}

/**
 * The `LanguageModel` service tag.
 *
 * @since 0.1.0
 * @category tags
 */
export class LanguageModel extends Context.Tag("@breakwater/core/LanguageModel")<LanguageModel, Service>() {}

/**
 * Builds a `LanguageModel` from `generate` and either streaming form (or both): the missing one
 * is derived, `stream` from `run` with one fiber per stream, `run` from `stream` with one fiber
 * per call.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  service:
    | {
      readonly generate: Service["generate"]
      readonly stream: Service["stream"]
      readonly run?: Run | undefined
      readonly honoursSignal?: boolean | undefined
      readonly takesContext?: boolean | undefined
    }
    | {
      readonly generate: Service["generate"]
      readonly run: Run
      readonly stream?: Service["stream"] | undefined
      readonly honoursSignal?: boolean | undefined
      readonly takesContext?: boolean | undefined
    }
): Service & { readonly run: Run } => {
  const run = service.run ?? push.runFromStream(service.stream!)
  return {
    generate: service.generate,
    stream: service.stream ?? push.streamFromRun(run),
    run,
    honoursSignal: service.honoursSignal,
    takesContext: service.takesContext
  }
}

/**
 * The push form of a model's streaming call: its own `run`, or one derived from its `stream`
 * (for models written with `stream` alone; the derived form costs a fiber per call).
 *
 * @since 0.2.0
 * @category accessors
 */
export const runOf = (model: Service): Run => model.run ?? push.runFromStream(model.stream)

/**
 * A push call over an `effect/Stream` call (one fiber per call runs the stream; `abort`
 * interrupts it). What `make` and `runOf` use for models written with `stream`.
 *
 * @since 0.2.0
 * @category constructors
 */
export const runFromStream: (stream: Service["stream"]) => Run = (stream) => push.runFromStream(stream)

/**
 * An `effect/Stream` over a push call: one fiber runs the call, its chunks are buffered (up to a
 * bound, then the producer is paused) until the stream's consumer pulls them.
 *
 * @since 0.2.0
 * @category constructors
 */
export const streamFromRun: (run: Run) => Service["stream"] = (run) => push.streamFromRun(run)

/**
 * Whether a value is a `LanguageModel` service (it has `generate` and `stream`): how a policy's
 * `dual` combinator tells its data-first call (a model first) from its data-last one.
 *
 * @since 0.1.0
 * @category guards
 */
export const isService = (u: unknown): u is Service =>
  typeof u === "object" && u !== null && typeof (u as Service).generate === "function" &&
  (typeof (u as Service).stream === "function" || typeof (u as Service).run === "function")

/**
 * Calls the model in the context (non-streaming).
 *
 * @since 0.1.0
 * @category accessors
 */
export const generate = (request: ChatRequest, options?: CallOptions): Effect.Effect<ChatCompletion, ModelError, LanguageModel> =>
  Effect.flatMap(LanguageModel, (model) => model.generate(request, options))
