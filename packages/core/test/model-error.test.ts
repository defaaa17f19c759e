import { ModelError, RetryAfter } from "@breakwater/core"
import { describe, expect, it } from "@effect/vitest"
import { Duration } from "effect"

const classify = (status: number, code?: string, message = "boom") =>
  ModelError.fromHttpFailure({ status, code, message, upstream: "u" })

describe("ModelError.fromHttpFailure", () => {
  it.each([
    [400, undefined, "BadRequest", false, false],
    [413, undefined, "BadRequest", false, false],
    [422, undefined, "BadRequest", false, false],
    [400, "context_length_exceeded", "ContextTooLong", false, true],
    [400, "content_filter", "ContentRefused", false, false],
    [400, "content_policy_violation", "ContentRefused", false, false],
    [429, "insufficient_quota", "QuotaExhausted", false, true],
    [429, "enforced_spend_limit_reached", "QuotaExhausted", false, true],
    [401, undefined, "UpstreamAuth", false, true],
    [403, undefined, "UpstreamAuth", false, true],
    [404, "model_not_found", "ModelNotFound", false, true],
    [408, undefined, "UpstreamUnavailable", true, true],
    [409, undefined, "UpstreamUnavailable", true, true],
    [500, undefined, "UpstreamUnavailable", true, true],
    [502, undefined, "UpstreamUnavailable", true, true],
    [503, undefined, "UpstreamUnavailable", true, true],
    [504, undefined, "UpstreamUnavailable", true, true],
    [429, "rate_limit_exceeded", "RateLimited", true, true],
    [529, undefined, "Overloaded", true, true],
    [500, "overloaded_error", "Overloaded", true, true]
  ] as const)("%i %s -> %s", (status, code, tag, retryable, failover) => {
    const error = classify(status, code)
    expect(error._tag).toBe(tag)
    expect(error.retryable).toBe(retryable)
    expect(error.failover).toBe(failover)
    expect(ModelError.isModelError(error)).toBe(true)
  })

  it("recognises a context overflow by message when the code is missing", () => {
    expect(classify(400, undefined, "prompt is too long: 210000 tokens > 200000 maximum")._tag).toBe("ContextTooLong")
  })

  it("keeps the upstream's delay on retryable errors", () => {
    const error = ModelError.fromHttpFailure({ status: 429, message: "x", retryAfter: Duration.seconds(3) })
    expect(ModelError.retryAfterOf(error)).toEqual(Duration.seconds(3))
  })

  it("makes only the total timeout final", () => {
    expect(new ModelError.Timeout({ message: "t", phase: "idle" }).retryable).toBe(true)
    expect(new ModelError.Timeout({ message: "t", phase: "total" }).retryable).toBe(false)
  })
})

describe("RetryAfter.fromHeaders", () => {
  const now = Date.parse("2026-11-24T10:00:00Z")
  const lookup = (headers: Record<string, string>) => (name: string) => headers[name]
  const ms = (headers: Record<string, string>) => {
    const d = RetryAfter.fromHeaders(lookup(headers), now)
    return d === undefined ? undefined : Duration.toMillis(d)
  }

  it("reads every form the providers send", () => {
    expect(ms({ "retry-after": "2" })).toBe(2000)
    expect(ms({ "retry-after": "1.5" })).toBe(1500)
    expect(ms({ "retry-after": "Tue, 24 Nov 2026 10:00:07 GMT" })).toBe(7000)
    expect(ms({ "retry-after-ms": "250", "retry-after": "9" })).toBe(250)
    expect(ms({ "x-ratelimit-reset-requests": "6m0s" })).toBe(360_000)
    expect(ms({ "x-ratelimit-reset-requests": "1s", "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-tokens": "20s", "x-ratelimit-remaining-tokens": "100" })).toBe(1000)
    expect(ms({ "anthropic-ratelimit-requests-reset": "2026-11-24T10:00:30Z", "anthropic-ratelimit-requests-remaining": "0" })).toBe(30_000)
    expect(ms({})).toBeUndefined()
    expect(ms({ "retry-after": "soon" })).toBeUndefined()
  })

  it("never returns a negative delay for a date in the past", () => {
    expect(ms({ "retry-after": "Tue, 24 Nov 2026 09:59:00 GMT" })).toBe(0)
  })

  it("parses OpenAI's reset durations", () => {
    expect(RetryAfter.parseResetDuration("120ms")).toBe(120)
    expect(RetryAfter.parseResetDuration("1h2m3.5s")).toBe(3_723_500)
    expect(RetryAfter.parseResetDuration("later")).toBeUndefined()
  })
})
