/**
 * `POST /v1/messages` on the Lambda host: the same pipeline as chat completions, Anthropic's
 * shapes on the way out (buffered and with response streaming).
 */
import { type LambdaEvent, LambdaHandler, ResponseStream } from "@breakwater/host-lambda"
import { FakeLanguageModel } from "@breakwater/testing"
import type { Gateway } from "@breakwater/gateway"
import { afterEach, describe, expect, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"

const context = (): LambdaEvent.Context => ({ getRemainingTimeInMillis: () => 30_000, awsRequestId: "aws-req-messages" })
const settings: Gateway.ServerSettings = {
  host: "127.0.0.1", port: 0, maxBodyBytes: 16 * 1024, maxHeaderBytes: 8192, maxConcurrentRequests: 10,
  requestTimeoutMs: 1000, shutdownGraceMs: 1000, streamCommitTimeoutMs: 1000, detachGraceMs: 0
}
const KEY = "gw-key-lambda-messages"
const counted: Array<Readonly<Record<string, unknown>>> = []
const handlers = () => {
  const fake = FakeLanguageModel.make()
  const gateway: Gateway.Gateway = {
    model: fake.model,
    models: ["claude-test", "gpt-test"],
    keys: [{ name: "lambda", key: Redacted.make(KEY) }],
    server: settings,
    health: Effect.succeed({ ready: true, upstreams: [], routes: [] }),
    secrets: [],
    // claude-test's route starts with an Anthropic upstream; gpt-test's does not.
    tokenCounters: new Map([["claude-test", (body) => Effect.sync(() => (counted.push(body), { input_tokens: 11 }))]])
  }
  return { fake, h: LambdaHandler.make({ gateway: Effect.succeed(gateway), log: () => {} }) }
}
const messagesEvent = (body: unknown, headers: Record<string, string> = { "x-api-key": KEY }, rawPath = "/v1/messages"): LambdaEvent.Event => ({
  version: "2.0",
  rawPath,
  headers: { "content-type": "application/json", "anthropic-version": "2023-06-01", ...headers },
  requestContext: { http: { method: "POST" } },
  body: JSON.stringify(body),
  isBase64Encoded: false
})
const ask = { model: "claude-test", max_tokens: 64, messages: [{ role: "user", content: "hello lambda" }] }

/** The Messages events of an SSE body, in order. */
const eventsOf = (body: string) =>
  body.split("\n\n").filter((f) => f.includes("event: ")).map((f) => {
    const type = /^event: (.*)$/m.exec(f)![1]!
    return { type, data: JSON.parse(/^data: (.*)$/m.exec(f)![1]!) as Record<string, any> }
  })
const textOfEvents = (events: ReturnType<typeof eventsOf>) =>
  events.filter((e) => e.type === "content_block_delta").map((e) => e.data["delta"].text ?? "").join("")

afterEach(() => {
  delete (globalThis as { awslambda?: unknown }).awslambda
})

describe("LambdaHandler: POST /v1/messages", () => {
  it("answers a Messages request with a message object (x-api-key)", async () => {
    const { fake, h } = handlers()
    const result = await h.buffered(messagesEvent(ask), context())
    expect(result.statusCode).toBe(200)
    const message = JSON.parse(result.body)
    expect(message).toMatchObject({ type: "message", role: "assistant", stop_reason: "end_turn" })
    expect(message.content[0].text).toBe(fake.textFor(fake.calls[0]!.request))
  })

  it("refuses a wrong key and a bad body in Anthropic's error shape", async () => {
    const { fake, h } = handlers()
    const denied = await h.buffered(messagesEvent(ask, { "x-api-key": "wrong" }), context())
    expect(denied.statusCode).toBe(401)
    expect(denied.headers["x-should-retry"]).toBe("false")
    expect(JSON.parse(denied.body)).toMatchObject({ type: "error", error: { type: "authentication_error" } })
    const bad = await h.buffered(messagesEvent({ model: "claude-test", messages: "hi" }), context())
    expect(bad.statusCode).toBe(400)
    expect(JSON.parse(bad.body)).toMatchObject({ type: "error", error: { type: "invalid_request_error" } })
    expect(fake.calls).toHaveLength(0)
  })

  it("answers a streamed Messages request buffered: one message_start, the text, message_delta, message_stop", async () => {
    const { fake, h } = handlers()
    const result = await h.buffered(messagesEvent({ ...ask, stream: true }, { authorization: `Bearer ${KEY}` }), context())
    expect(result.statusCode).toBe(200)
    expect(result.headers["x-breakwater-streaming"]).toBe("buffered")
    const events = eventsOf(result.body)
    expect(events[0]!.type).toBe("message_start")
    expect(events.slice(-2).map((e) => e.type)).toEqual(["message_delta", "message_stop"])
    expect(events.filter((e) => e.type === "message_start")).toHaveLength(1)
    expect(textOfEvents(events)).toBe(fake.textFor(fake.calls[0]!.request))
    expect(result.body).not.toContain("[DONE]")
  })

  it("streams a Messages request with response streaming", async () => {
    const local = ResponseStream.makeLocal()
    ;(globalThis as { awslambda?: unknown }).awslambda = local.awslambda
    const { fake, h } = handlers()
    const { captured, writable } = local.stream()
    await h.streaming(messagesEvent({ ...ask, stream: true }), writable, context())
    await captured.ended
    expect(captured.metadata()).toMatchObject({ statusCode: 200, headers: { "content-type": "text/event-stream; charset=utf-8" } })
    const events = eventsOf(captured.body())
    expect(events[0]!.type).toBe("message_start")
    expect(events.at(-1)!.type).toBe("message_stop")
    expect(textOfEvents(events)).toBe(fake.textFor(fake.calls[0]!.request))
  })
})

describe("LambdaHandler: POST /v1/messages/count_tokens", () => {
  const countEvent = (body: unknown, headers: Record<string, string> = { "x-api-key": KEY }) =>
    messagesEvent(body, headers, "/v1/messages/count_tokens")
  const question = { model: "claude-test", messages: [{ role: "user", content: "count me" }] }

  it("is answered by the Anthropic upstream that starts the model's route", async () => {
    const { h } = handlers()
    const before = counted.length
    const result = await h.buffered(countEvent(question), context())
    expect(result.statusCode).toBe(200)
    expect(JSON.parse(result.body)).toEqual({ input_tokens: 11 })
    expect(counted.slice(before)).toEqual([question])
  })

  it("is a 400 in Anthropic's shape when the route does not start with an Anthropic upstream, and a 401 without the key", async () => {
    const { h } = handlers()
    const before = counted.length
    const unsupported = await h.buffered(countEvent({ ...question, model: "gpt-test" }), context())
    expect(unsupported.statusCode).toBe(400)
    expect(JSON.parse(unsupported.body)).toMatchObject({ type: "error", error: { type: "invalid_request_error" } })
    expect(JSON.parse(unsupported.body).error.message).toMatch(/count_tokens needs an Anthropic upstream/)
    const refused = await h.buffered(countEvent(question, { "x-api-key": "wrong" }), context())
    expect(refused.statusCode).toBe(401)
    expect(JSON.parse(refused.body)).toMatchObject({ type: "error", error: { type: "authentication_error" } })
    expect(counted.length).toBe(before)
  })
})
