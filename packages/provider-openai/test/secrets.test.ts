import type { ChatCompletion, LanguageModel } from "@breakwater/core"
import { OpenAiProvider } from "@breakwater/provider-openai"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import { probe } from "./support/probe.js"
import * as Upstream from "./support/upstream.js"

// The worst case: an upstream that echoes the key it received in every error it sends.
const CANARY = "sk-canary-7f3a9c1e5b2d4680"
const request: ChatCompletion.ChatRequest = { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }
const echo = (status: number, code?: string) =>
  Upstream.json(status, { error: { message: `Incorrect API key provided: ${CANARY}`, type: code ?? "invalid_request_error", code: code ?? null } })
const streamError = Upstream.sse([
  Upstream.openAiFrames("a")[0]!,
  `data: ${JSON.stringify({ error: { message: `key ${CANARY} is rate limited`, type: "requests", code: "rate_limit_exceeded" } })}\n\n`
])

const behaviors: ReadonlyArray<Upstream.Behavior> = [
  echo(400),
  echo(400, "context_length_exceeded"),
  echo(400, "content_filter"),
  echo(401, "invalid_api_key"),
  echo(403),
  echo(404, "model_not_found"),
  echo(429, "rate_limit_exceeded"),
  echo(429, "insufficient_quota"),
  echo(500, "server_error"),
  echo(503),
  echo(529, "overloaded_error"),
  Upstream.json(200, { error: { message: `bad key ${CANARY}`, type: "server_error" } }),
  streamError,
  Upstream.sse([Upstream.openAiFrames("a")[0]!, `data: {"oops ${CANARY}\n\n`]),
  Upstream.sse(Upstream.openAiFrames("a b").slice(0, 2), "cut"),
  Upstream.sse(Upstream.openAiFrames("a b", { done: false }))
]

describe("the provider key never leaves the socket", () => {
  it.scopedLive("no error, cause or log line of any error class contains the key", () =>
    Effect.gen(function*() {
      const server = yield* Upstream.start("/v1", Upstream.dynamic((r) => behaviors[(r.body.messages[0].content as string).length - 1]!))
      const model = yield* OpenAiProvider.make({ baseUrl: server.baseUrl, apiKey: Redacted.make(CANARY) })
      const closed = yield* Effect.scoped(Upstream.start("/v1", Upstream.silent))
      const refused = yield* OpenAiProvider.make({ baseUrl: closed.baseUrl, apiKey: Redacted.make(CANARY) })
      const silent = yield* Upstream.start("/v1", Upstream.silent)
      const slow = yield* OpenAiProvider.make({ baseUrl: silent.baseUrl, apiKey: Redacted.make(CANARY), headersTimeout: 100 })

      const calls = (m: LanguageModel.Service, r: ChatCompletion.ChatRequest) => [m.generate(r), Stream.runDrain(m.stream(r))]
      const all = []
      for (let i = 1; i <= behaviors.length; i++) all.push(...calls(model, { ...request, messages: [{ role: "user", content: "x".repeat(i) }] }))
      all.push(...calls(refused, request), ...calls(slow, request))
      const failures = yield* Effect.forEach(all, probe)

      expect([...new Set(failures.map((f) => f.tag))].sort()).toEqual([
        "BadRequest",
        "ConnectionFailed",
        "ContentRefused",
        "ContextTooLong",
        "ModelNotFound",
        "Overloaded",
        "QuotaExhausted",
        "RateLimited",
        "StreamInterrupted",
        "Timeout",
        "UpstreamAuth",
        "UpstreamUnavailable"
      ])
      expect([...new Set(failures.flatMap((f) => f.reason ?? []))].sort()).toEqual(["error-event", "malformed", "no-terminator", "reset"])
      for (const failure of failures) {
        expect(failure.text).not.toContain(CANARY)
        expect(failure.logs.length).toBeGreaterThan(0)
        for (const line of failure.logs) expect(line).not.toContain(CANARY)
      }
      // The upstream did receive the key: the scrubbing is not vacuous.
      expect(server.requests[0]!.headers.authorization).toBe(`Bearer ${CANARY}`)
    }))
})
