/**
 * Stream-resume on a route, from the resolved settings.
 */
import type { LanguageModel } from "@breakwater/core"
import { StreamResume } from "@breakwater/stream-resume"
import type * as Effect from "effect/Effect"
import type * as Settings from "./settings.js"

export const wrap = (
  settings: ReturnType<typeof Settings.resume>,
  model: LanguageModel.Service
): Effect.Effect<LanguageModel.Service> =>
  StreamResume.withPolicy(model, {
    mode: settings.mode,
    maxResumes: settings.maxResumes,
    toolCalls: settings.toolCalls,
    ...(settings.instruction === undefined ? {} : { instruction: settings.instruction })
  })
