/**
 * One stable stream, whatever breaks upstream. When a stream breaks after the client has
 * received part of the answer, this policy asks the model below for a continuation (through
 * `CallOptions.continuation`, which each adapter renders as an assistant prefill or a
 * user-instruction request), splices it onto what was delivered, and keeps one envelope on the
 * wire: one id and `created`, one role delta, exactly one finish, usage summed over attempts.
 *
 * In the recommended stack it sits **below the deadline and above retry**: retry owns "nothing
 * sent yet", stream-resume owns "something sent"; a continuation goes through retry and the
 * router, so it may land on another upstream.
 *
 * @since 0.1.0
 */
import { type ChatCompletion, type LanguageModel, Policy } from "@breakwater/core"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import type * as Layer from "effect/Layer"
import type * as Metric from "effect/Metric"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as session from "./internal/session.js"

/**
 * The policy's settings, with their defaults (the one place they are written).
 *
 * - `mode` (`"continue"`): what to do when a stream breaks after content reached the client:
 *   `"continue"` stitches a continuation; `"replay-before-commit"` holds the first
 *   `replayWindow` characters back and restarts from scratch on a failure before they are
 *   released, then behaves as `"terminate"`; `"terminate"` ends at once with the error (the host
 *   sends the dialect's error event, never `[DONE]`).
 * - `maxResumes` (3): seams per stream (replays, in `replay-before-commit`).
 * - `holdBack` (64): characters of each continuation held until the seam is decided.
 * - `minOverlap` (4): the shortest repeated suffix that is dropped at a seam (shorter repeats
 *   are taken as coincidence and kept).
 * - `replayWindow` (256): characters held back in `replay-before-commit`.
 * - `toolCalls` (`"buffer"`): tool-call deltas are released only when a call is complete, so a
 *   cut inside a call is invisible and the call is regenerated; `"pass-through"` streams them,
 *   and a break after one ends the stream with an error.
 * - `instruction` (core's `Continuation.defaultInstruction`): the user-instruction wording.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ResumeOptions = Schema.Struct({
  mode: Schema.optionalWith(Schema.Literal("continue", "replay-before-commit", "terminate"), { default: () => "continue" as const }),
  maxResumes: Schema.optionalWith(Schema.Int.pipe(Schema.between(0, 20)), { default: () => 3 }),
  holdBack: Schema.optionalWith(Schema.Int.pipe(Schema.between(0, 4096)), { default: () => 64 }),
  minOverlap: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 256)), { default: () => 4 }),
  replayWindow: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 1_000_000)), { default: () => 256 }),
  toolCalls: Schema.optionalWith(Schema.Literal("buffer", "pass-through"), { default: () => "buffer" as const }),
  instruction: Schema.optional(Schema.String)
})

/**
 * The policy's settings, resolved.
 *
 * @since 0.1.0
 * @category models
 */
export type ResumeOptions = typeof ResumeOptions.Type

/**
 * The policy's settings as a user writes them.
 *
 * @since 0.1.0
 * @category models
 */
export type ResumeOptionsInput = typeof ResumeOptions.Encoded

/**
 * Counter of broken streams by `outcome`: `resumed`, `restarted` (replayed before commit), `gave_up`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const resumesTotal: Metric.Metric.Counter<number> = session.resumesTotal

/**
 * The name of the extension field on Breakwater's marker chunks: `{ breakwater: { seam: n } }` on
 * a choice-less chunk at each seam (hosts write it as an SSE comment), and
 * `{ breakwater: { resumed: n } }` on the final chunk of a resumed stream (standard clients ignore both).
 *
 * @since 0.1.0
 * @category constants
 */
export const extensionField: string = session.EXTENSION

/**
 * Whether a chunk is the seam marker (hosts write it as an SSE comment, never as data).
 *
 * @since 0.1.0
 * @category guards
 */
export const isSeamMarker: (chunk: ChatCompletion.ChatCompletionChunk) => boolean = session.isSeamMarker

const decode = Schema.decodeUnknown(ResumeOptions)

/**
 * Wraps a model with stream resume (`generate` passes through: a failed non-streaming call is
 * retry's to handle). Invalid options are a defect.
 *
 * @since 0.1.0
 * @category combinators
 */
export const withPolicy: {
  (options?: ResumeOptionsInput): (model: LanguageModel.Service) => Effect.Effect<LanguageModel.Service>
  (model: LanguageModel.Service, options?: ResumeOptionsInput): Effect.Effect<LanguageModel.Service>
} = dual(
  (args) => typeof args[0] === "object" && args[0] !== null && typeof (args[0] as LanguageModel.Service).stream === "function",
  (model: LanguageModel.Service, options: ResumeOptionsInput = {}): Effect.Effect<LanguageModel.Service> =>
    Effect.map(Effect.orDie(decode(options, { errors: "all" })), (settings) => {
      const resolved: session.Settings = { ...settings, instruction: settings.instruction }
      return {
        generate: model.generate,
        stream: (request, callOptions) => Stream.suspend(() => session.run(model, resolved, request, callOptions))
      }
    })
)

/**
 * The policy as a layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: ResumeOptionsInput = {}): Layer.Layer<LanguageModel.LanguageModel, never, LanguageModel.LanguageModel> =>
  Policy.layer((model) => withPolicy(model, options))
