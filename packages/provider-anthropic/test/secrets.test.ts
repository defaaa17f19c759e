import type { ChatCompletion, LanguageModel } from "@breakwater/core"
import { AnthropicProvider } from "@breakwater/provider-anthropic"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import { probe } from "../../provider-openai/test/support/probe.js"
import * as Upstream from "../../provider-openai/test/support/upstream.js"

// The worst case: an upstream that echoes the key it received in every error it sends.
const CANARY = "sk-ant-canary-2b9e71d04c3f"
const request: ChatCompletion.ChatRequest = { model: "claude-sonnet-4-20250514", messages: [{ role: "user", content: "hi" }] }
const echo = (status: number, type: string, message = `invalid x-api-key ${CANARY}`) =>
  Upstream.json(status, { type: "error", error: { type, message } })
const frames = Upstream.anthropicFrames("a b")

const behaviors: ReadonlyArray<Upstream.Behavior> = [
  echo(400, "invalid_request_error"),
  echo(400, "invalid_request_error", `prompt is too long (key ${CANARY})`),
  echo(401, "authentication_error"),
  echo(403, "permission_error"),
  echo(404, "not_found_error"),
  echo(429, "rate_limit_error"),
  echo(500, "api_error"),
  echo(529, "overloaded_error"),
  Upstream.sse([...frames.slice(0, 4), `event: error\ndata: ${JSON.stringify({ type: "error", error: { type: "overloaded_error", message: `Overloaded ${CANARY}` } })}\n\n`]),
  Upstream.sse([frames[0]!, `event: content_block_delta\ndata: {"oops ${CANARY}\n\n`]),
  Upstream.sse(frames.slice(0, 4), "cut"),
  Upstream.sse(Upstream.anthropicFrames("a b", { stop: false }))
]

describe("the provider key never leaves the socket", () => {
  it.scopedLive("no error, cause or log line of any error class contains the key", () =>
    Effect.gen(function*() {
      const server = yield* Upstream.start("", Upstream.dynamic((r) => behaviors[(r.body.messages[0].content[0].text as string).length - 1]!))
      const model = yield* AnthropicProvider.make({ baseUrl: server.baseUrl, apiKey: Redacted.make(CANARY) })
      const closed = yield* Effect.scoped(Upstream.start("", Upstream.silent))
      const refused = yield* AnthropicProvider.make({ baseUrl: closed.baseUrl, apiKey: Redacted.make(CANARY) })
      const silent = yield* Upstream.start("", Upstream.silent)
      const slow = yield* AnthropicProvider.make({ baseUrl: silent.baseUrl, apiKey: Redacted.make(CANARY), headersTimeout: 100 })

      const calls = (m: LanguageModel.Service, r: ChatCompletion.ChatRequest) => [m.generate(r), Stream.runDrain(m.stream(r))]
      const all = []
      for (let i = 1; i <= behaviors.length; i++) all.push(...calls(model, { ...request, messages: [{ role: "user", content: "x".repeat(i) }] }))
      all.push(...calls(refused, request), ...calls(slow, request))
      const failures = yield* Effect.forEach(all, probe)

      expect([...new Set(failures.map((f) => (f.reason === undefined ? f.tag : `${f.tag}:${f.reason}`)))].sort()).toEqual([
        "BadRequest",
        "ConnectionFailed",
        "ContextTooLong",
        "ModelNotFound",
        "Overloaded",
        "RateLimited",
        "StreamInterrupted:error-event",
        "StreamInterrupted:malformed",
        "StreamInterrupted:no-terminator",
        "StreamInterrupted:reset",
        "Timeout",
        "UpstreamAuth",
        "UpstreamUnavailable"
      ])
      for (const failure of failures) {
        expect(failure.text).not.toContain(CANARY)
        for (const line of failure.logs) expect(line).not.toContain(CANARY)
      }
      expect(server.requests[0]!.headers["x-api-key"]).toBe(CANARY)
    }))
})
