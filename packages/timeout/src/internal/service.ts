import type { LanguageModel } from "@breakwater/core"

/** Tells the data-first call of a `dual` combinator (a model first) from the data-last one. */
export const isService = (u: unknown): u is LanguageModel.Service =>
  typeof u === "object" && u !== null && typeof (u as LanguageModel.Service).generate === "function" &&
  typeof (u as LanguageModel.Service).stream === "function"
