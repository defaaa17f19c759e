/**
 * Reads the delay an upstream asks for from its response headers: `retry-after-ms`,
 * `retry-after` (seconds or an HTTP date), OpenAI's `x-ratelimit-reset-requests/-tokens`
 * (`"1s"`, `"6m0s"`, `"120ms"`) and Anthropic's `anthropic-ratelimit-*-reset` (RFC 3339).
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"

/**
 * Looks a header up by lower-case name.
 *
 * @since 0.1.0
 * @category models
 */
export type HeaderLookup = (name: string) => string | undefined

const unitMillis: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
const openAiDuration = /(\d+(?:\.\d+)?)(ms|s|m|h)/g

/**
 * Parses OpenAI's reset format (`"1s"`, `"6m0s"`, `"1h2m3.5s"`, `"120ms"`) into milliseconds.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseResetDuration = (text: string): number | undefined => {
  let total = 0
  let matched = ""
  for (const match of text.trim().matchAll(openAiDuration)) {
    total += Number(match[1]) * unitMillis[match[2]!]!
    matched += match[0]
  }
  return matched.length > 0 && matched === text.trim() ? total : undefined
}

const fromSeconds = (value: string, now: number): number | undefined => {
  const trimmed = value.trim()
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed) * 1000
  const date = Date.parse(trimmed)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}

const resetPairs: ReadonlyArray<readonly [reset: string, remaining: string, parse: (v: string, now: number) => number | undefined]> = [
  ["x-ratelimit-reset-requests", "x-ratelimit-remaining-requests", (v) => parseResetDuration(v)],
  ["x-ratelimit-reset-tokens", "x-ratelimit-remaining-tokens", (v) => parseResetDuration(v)],
  ["anthropic-ratelimit-requests-reset", "anthropic-ratelimit-requests-remaining", fromSeconds],
  ["anthropic-ratelimit-tokens-reset", "anthropic-ratelimit-tokens-remaining", fromSeconds],
  ["anthropic-ratelimit-input-tokens-reset", "anthropic-ratelimit-input-tokens-remaining", fromSeconds],
  ["anthropic-ratelimit-output-tokens-reset", "anthropic-ratelimit-output-tokens-remaining", fromSeconds]
]

/**
 * The delay the upstream asked for, or `undefined`. `retry-after-ms` wins over `retry-after`;
 * the rate-limit reset headers are used only when neither is present, preferring the limits
 * whose remaining count is zero (the ones actually hit).
 *
 * @since 0.1.0
 * @category parsing
 */
export const fromHeaders = (header: HeaderLookup, now: number): Duration.Duration | undefined => {
  const ms = header("retry-after-ms")
  if (ms !== undefined && /^\d+(\.\d+)?$/.test(ms.trim())) return Duration.millis(Number(ms))
  const ra = header("retry-after")
  if (ra !== undefined) {
    const value = fromSeconds(ra, now)
    if (value !== undefined) return Duration.millis(value)
  }
  let exhausted: number | undefined
  let any: number | undefined
  for (const [resetName, remainingName, parse] of resetPairs) {
    const reset = header(resetName)
    if (reset === undefined) continue
    const value = parse(reset, now)
    if (value === undefined) continue
    any = Math.max(any ?? 0, value)
    if (header(remainingName)?.trim() === "0") exhausted = Math.max(exhausted ?? 0, value)
  }
  const chosen = exhausted ?? any
  return chosen === undefined ? undefined : Duration.millis(chosen)
}
