/**
 * One stable stream, whatever breaks upstream. When a stream breaks after the consumer has
 * received part of the answer, this policy asks the model below for a continuation (through
 * `CallOptions.continuation`, which each adapter renders as an assistant prefill or a
 * user-instruction request), splices it onto what was delivered, and keeps one envelope: the
 * first attempt's id, `created` and model, one role delta, choice index 0, exactly one final
 * chunk with a `finish_reason`, usage summed over attempts.
 *
 * In the recommended stack it sits **below the deadline and above retry**: retry owns "nothing
 * sent yet", stream-resume owns "something sent"; a continuation goes back through retry and the
 * router, so it may land on another upstream.
 *
 * @since 0.1.0
 */
import { type ChatCompletion, LanguageModel, Policy } from "@breakwater/core"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type * as Metric from "effect/Metric"
import * as Schema from "effect/Schema"
import * as Envelope from "./internal/envelope.js"
import * as internal from "./internal/resume.js"

const Strategy = Schema.Literal("preferred", "assistant-prefill", "user-instruction")
const ToolStreaming = Schema.Literal("buffer", "pass-through")

/**
 * The policy's settings, with their defaults (the one place they are written).
 *
 * - `mode` (`"continue"`): what happens when a stream breaks after content reached the consumer.
 *   `"continue"` stitches a continuation; `"replay-before-commit"` holds content back until
 *   `replayWindow` characters (or the end) arrived, starts over from scratch on a failure before
 *   that, and behaves as `"terminate"` after; `"terminate"` fails at once with the break.
 * - `maxResumes` (3): extra upstream calls per stream (continuations, including rejected ones,
 *   and restarts of attempts whose content never reached the consumer).
 * - `toolStreaming` (`"buffer"`): tool-call deltas are released only when a call is complete
 *   (the next call begins or the finish arrives), so a cut inside a call is invisible and the
 *   call is regenerated; `"pass-through"` streams them, and a break after one fails the stream.
 * - `strategies` (`["preferred", "user-instruction"]`): continuation strategies in the order they
 *   are tried; `"preferred"` lets the adapter choose (Anthropic: prefill; OpenAI: user
 *   instruction). A rejected continuation moves to the next; an upstream that rejects prefill
 *   leaves only `"user-instruction"`.
 * - `instruction` (core's `Continuation.defaultInstruction`): the user-instruction wording.
 * - `holdBack` (64): characters of each continuation held until the seam is decided.
 * - `minOverlap` (8): the shortest repeat of the delivered text's end that is dropped as an
 *   overlap; shorter ones are taken as coincidence and kept (unless the repeat is the whole
 *   delivered text).
 * - `verifyLimit` (512): a continuation that repeats older delivered text (a restart, a long
 *   overlap) is held and verified if the repeat reaches back at most this many characters;
 *   beyond that it is rejected.
 * - `replayWindow` (256): characters held back in `"replay-before-commit"`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ResumeOptions = Schema.Struct({
  mode: Schema.optionalWith(Schema.Literal("continue", "replay-before-commit", "terminate"), { default: () => "continue" as const }),
  maxResumes: Schema.optionalWith(Schema.Int.pipe(Schema.between(0, 20)), { default: () => 3 }),
  toolStreaming: Schema.optionalWith(ToolStreaming, { default: () => "buffer" as const }),
  strategies: Schema.optionalWith(Schema.NonEmptyArray(Strategy), {
    default: () => ["preferred", "user-instruction"] as const
  }),
  instruction: Schema.optional(Schema.String),
  holdBack: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 4096)), { default: () => 64 }),
  minOverlap: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 256)), { default: () => 8 }),
  verifyLimit: Schema.optionalWith(Schema.Int.pipe(Schema.between(0, 65_536)), { default: () => 512 }),
  replayWindow: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 1_000_000)), { default: () => 256 })
})

/**
 * The policy's settings, resolved.
 *
 * @since 0.1.0
 * @category models
 */
export type ResumeOptions = typeof ResumeOptions.Type

/**
 * The policy's settings as a user writes them (every field optional).
 *
 * @since 0.1.0
 * @category models
 */
export type ResumeOptionsInput = typeof ResumeOptions.Encoded

/**
 * Counter `breakwater_stream_resumes_total`, tagged `outcome`: `resumed` (a continuation was
 * spliced in), `restarted` (an attempt whose content never reached the consumer started over),
 * `rejected` (a continuation was not glued on), `gave_up` (failed after content),
 * `terminated` (failed at once, by mode).
 *
 * @since 0.1.0
 * @category metrics
 */
export const resumesTotal: Metric.Metric.Counter<number> = internal.resumesTotal

/**
 * The name of Breakwater's extension field on chunks: `{ breakwater: { seam: n } }` on the seam
 * marker, `{ breakwater: { resumed: n } }` on the final chunk (and usage chunk) of a resumed stream.
 *
 * @since 0.1.0
 * @category constants
 */
export const extensionField: string = Envelope.EXTENSION

/**
 * Whether a chunk is a seam marker: the chunk emitted right before the first spliced text of a
 * continuation, in the stream's envelope, with no choices and no usage and the extension field
 * `breakwater: { seam: n }` (n = 1, 2, … per seam). `ChatCompletion.isHeartbeat` is true for it,
 * so a consumer that does not know it treats it as liveness; hosts write it as an SSE comment.
 *
 * @since 0.1.0
 * @category guards
 */
export const isSeamMarker: (chunk: ChatCompletion.ChatCompletionChunk) => boolean = Envelope.isSeamMarker

const decode = Schema.decodeUnknown(ResumeOptions)

/**
 * Wraps a model with stream resume. `generate` passes through (a failed non-streaming call has
 * delivered nothing: it is retry's). Invalid options are a defect, reported with every problem.
 *
 * @since 0.1.0
 * @category combinators
 */
export const withPolicy: Policy.Combinator<ResumeOptionsInput> = Policy.combinator((model, options: ResumeOptionsInput) =>
  Effect.map(Effect.orDie(decode(options, { errors: "all" })), (o) =>
    internal.wrap(model, {
      mode: o.mode,
      maxResumes: o.maxResumes,
      toolStreaming: o.toolStreaming,
      strategies: o.strategies,
      instruction: o.instruction,
      holdBack: o.holdBack,
      minOverlap: o.minOverlap,
      verifyLimit: o.verifyLimit,
      replayWindow: o.replayWindow
    }))
)

/**
 * The policy as a layer: consumes the `LanguageModel` below and provides the wrapped one.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: ResumeOptionsInput = {}): Layer.Layer<LanguageModel.LanguageModel, never, LanguageModel.LanguageModel> =>
  Policy.layer((model) => withPolicy(model, options))
