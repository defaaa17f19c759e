import { type ChatCompletion, type LanguageModel, RequestContext } from "@breakwater/core"
import { OpenAiProvider } from "@breakwater/provider-openai"
import { describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import { inspect } from "node:util"
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

const everything = (exit: Exit.Exit<unknown, unknown>) =>
  Exit.isFailure(exit) ? `${Cause.pretty(exit.cause)}\n${inspect(Cause.squash(exit.cause), { depth: 8, showHidden: true })}` : "success"

describe("the provider key never leaves the socket", () => {
  it.scopedLive("no error, cause or log line of any error class contains the key", () =>
    Effect.gen(function*() {
      const logs: Array<string> = []
      const logger = Logger.make(({ message, annotations, cause }) => {
        logs.push(inspect({ message, annotations: [...annotations], cause: Cause.pretty(cause) }, { depth: 8 }))
      })
      const server = yield* Upstream.start("/v1", Upstream.dynamic((r) => behaviors[(r.body.messages[0].content as string).length - 1]!))
      const model = yield* OpenAiProvider.make({ baseUrl: server.baseUrl, apiKey: Redacted.make(CANARY), headersTimeout: 100 })
      const closed = yield* Effect.scoped(Upstream.start("/v1", Upstream.silent))
      const refused = yield* OpenAiProvider.make({ baseUrl: closed.baseUrl, apiKey: Redacted.make(CANARY) })
      const silent = yield* Upstream.start("/v1", Upstream.silent)
      const slow = yield* OpenAiProvider.make({ baseUrl: silent.baseUrl, apiKey: Redacted.make(CANARY), headersTimeout: 100 })

      const calls = (m: LanguageModel.Service, r: ChatCompletion.ChatRequest) => [m.generate(r), Stream.runDrain(m.stream(r))]
      const tags = new Set<string>()
      const reasons = new Set<string>()
      const run = (effect: Effect.Effect<unknown, { _tag: string }>) =>
        Effect.gen(function*() {
          const exit = yield* Effect.exit(effect.pipe(
            Effect.tapError((e) => Effect.logError("upstream call failed", e)),
            Effect.annotateLogs("request_id", "req-1"),
            Effect.provideService(RequestContext.RequestContext, RequestContext.make()),
            Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
            Logger.withMinimumLogLevel(LogLevel.All)
          ))
          expect(Exit.isFailure(exit)).toBe(true)
          const error = Cause.squash((exit as Exit.Failure<unknown, { _tag: string }>).cause) as { _tag: string; reason?: string }
          tags.add(error._tag)
          if (error.reason !== undefined) reasons.add(error.reason)
          const text = everything(exit)
          expect(text).not.toContain(CANARY)
          expect(text.length).toBeGreaterThan(0)
        })
      for (let i = 1; i <= behaviors.length; i++) {
        const r: ChatCompletion.ChatRequest = { ...request, messages: [{ role: "user", content: "x".repeat(i) }] }
        for (const call of calls(model, r)) yield* run(call)
      }
      for (const call of [...calls(refused, request), ...calls(slow, request)]) yield* run(call)

      expect([...tags].sort()).toEqual([
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
      expect([...reasons].sort()).toEqual(["error-event", "malformed", "no-terminator", "reset"])
      expect(logs.length).toBeGreaterThan(20)
      for (const line of logs) expect(line).not.toContain(CANARY)
      // The upstream did receive the key: the scrubbing is not vacuous.
      expect(server.requests[0]!.headers.authorization).toBe(`Bearer ${CANARY}`)
    }))
})
