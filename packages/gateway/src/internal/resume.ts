/**
 * Stream-resume on a route.
 */
import type { LanguageModel } from "@breakwater/core"
import * as Effect from "effect/Effect"
import type * as Settings from "./settings.js"

// TODO(stream-resume): replaced by @breakwater/stream-resume once it lands.
export const wrap = (
  _settings: ReturnType<typeof Settings.resume>,
  model: LanguageModel.Service
): Effect.Effect<LanguageModel.Service> => Effect.succeed(model)
