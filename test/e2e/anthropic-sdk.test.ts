/**
 * The gateway end to end with the official `@anthropic-ai/sdk`: real HTTP, `POST /v1/messages`
 * served by an OpenAI upstream (through the canonical model) or an Anthropic one, Anthropic's
 * auth headers and error shape.
 */
import Anthropic from "@anthropic-ai/sdk"
import { MockUpstream } from "@breakwater/testing"
import { createServer, type IncomingHttpHeaders, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { CANARY, GATEWAY_KEY, startGateway, type TestGateway } from "./support/gateway.js"

const { Fault } = MockUpstream

let gw: TestGateway
let client: Anthropic
/** An Anthropic upstream's `count_tokens`: what it was sent, and its answer. */
let counter: Server
const counted: Array<{ readonly path: string; readonly headers: IncomingHttpHeaders; readonly body: Record<string, unknown> }> = []

beforeAll(async () => {
  counter = createServer((req, res) => {
    let body = ""
    req.on("data", (part: Buffer) => (body += part.toString("utf8")))
    req.on("end", () => {
      counted.push({ path: req.url ?? "", headers: req.headers, body: JSON.parse(body) })
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ input_tokens: 42 }))
    })
  })
  await new Promise<void>((resolve) => counter.listen(0, "127.0.0.1", resolve))
  const counterUrl = `http://127.0.0.1:${(counter.address() as AddressInfo).port}`
  gw = await startGateway({
    config: (primary, secondary) => ({
      auth: { keys: [{ name: "tests", key: GATEWAY_KEY }] },
      upstreams: {
        primary: { provider: "openai", baseUrl: primary, apiKey: "${CANARY_KEY}", models: ["chat"] },
        secondary: { provider: "anthropic", baseUrl: secondary, apiKey: "${CANARY_KEY}", models: { claude: "claude-mock" } },
        counting: { provider: "anthropic", baseUrl: counterUrl, apiKey: "${CANARY_KEY}", models: { counted: "claude-upstream-name" } }
      },
      routes: { chat: { upstreams: ["primary"] }, claude: { upstreams: ["secondary"] }, counted: { upstreams: ["counting", "primary"] } },
      defaults: {
        retry: { baseDelay: "1 millis", maxDelay: "5 millis", maxRetryAfter: "2 seconds" },
        timeouts: { firstToken: "2 seconds", idle: "500 millis" },
        breaker: { minimumCalls: 50 }
      }
    })
  })
  client = new Anthropic({ baseURL: gw.url, apiKey: GATEWAY_KEY, maxRetries: 0 })
})
afterAll(async () => {
  await gw?.close()
  await new Promise((resolve) => counter?.close(resolve))
})
beforeEach(() => {
  gw.primary.reset()
  gw.secondary.reset()
})

const ask = (content: string, model = "chat") => ({ model, max_tokens: 256, messages: [{ role: "user" as const, content }] })
const textOf = (message: Anthropic.Message) => message.content.map((block) => (block.type === "text" ? block.text : "")).join("")
const tools: Array<Anthropic.Tool> = [{ name: "lookup", description: "looks up", input_schema: { type: "object", properties: {} } }]

describe.each([
  { upstream: "an OpenAI upstream", model: "chat", mock: () => gw.primary },
  { upstream: "an Anthropic upstream", model: "claude", mock: () => gw.secondary }
])("the Anthropic SDK through /v1/messages, served by $upstream", ({ mock, model }) => {
  it("messages.create answers the upstream's text as a message object", async () => {
    const { data, response } = await client.messages.create(ask("hello there", model)).withResponse()
    expect(data.type).toBe("message")
    expect(data.id).toMatch(/^msg_/)
    expect(data.role).toBe("assistant")
    expect(textOf(data)).toBe(mock().textFor(ask("hello there")))
    expect(data.stop_reason).toBe("end_turn")
    expect(data.usage.output_tokens).toBeGreaterThan(0)
    expect(response.headers.get("x-request-id")).toBeTruthy()
  })

  it("messages.stream streams the text; finalMessage() is one well-formed message", async () => {
    const stream = client.messages.stream(ask("stream please", model))
    let streamed = ""
    stream.on("text", (delta) => (streamed += delta))
    const final = await stream.finalMessage()
    const expected = mock().textFor(ask("stream please"))
    expect(streamed).toBe(expected)
    expect(textOf(final)).toBe(expected)
    expect(final.id).toMatch(/^msg_/)
    expect(final.stop_reason).toBe("end_turn")
    expect(final.usage.output_tokens).toBeGreaterThan(0)
  })

  it("a stream cut upstream and resumed is one message with one msg_ id, the same when replayed from the journal", async () => {
    mock().script({ fault: Fault.Cut({ afterChunks: 4 }) })
    const live = await fetch(`${gw.url}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": GATEWAY_KEY, "anthropic-version": "2023-06-01" },
      body: JSON.stringify({ ...ask("cut and resumed", model), stream: true })
    })
    const text = await live.text()
    const startsOf = (sse: string) => [...sse.matchAll(/^event: message_start\ndata: (.*)$/gm)].map((m) => JSON.parse(m[1]!).message.id as string)
    const ids = startsOf(text)
    expect(ids).toHaveLength(1)
    expect(ids[0]).toMatch(/^msg_/)
    expect(mock().requests.length).toBe(2)
    const replayed = await fetch(`${gw.url}/v1/streams/${live.headers.get("x-breakwater-stream-id")}`, { headers: { "x-api-key": GATEWAY_KEY, authorization: `Bearer ${GATEWAY_KEY}` } })
    expect(startsOf(await replayed.text())).toEqual(ids)
  })

  it("a resumed stream's replay is byte for byte what the client got live, the seam comment included", async () => {
    mock().script({ fault: Fault.Cut({ afterChunks: 4 }) })
    const post = (headers: Record<string, string> = {}) =>
      fetch(`${gw.url}/v1/messages`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-api-key": GATEWAY_KEY, "anthropic-version": "2023-06-01", ...headers },
        body: JSON.stringify({ ...ask("resumed, then replayed", model), stream: true })
      })
    const live = await post()
    const text = await live.text()
    expect(mock().requests.length).toBe(2)
    expect(text).toContain(": breakwater resumed the upstream stream here\n\n")
    const streamId = live.headers.get("x-breakwater-stream-id")!
    const replayed = await fetch(`${gw.url}/v1/streams/${streamId}`, { headers: { authorization: `Bearer ${GATEWAY_KEY}` } })
    expect(await replayed.text()).toBe(text)
    // From an event before the seam, by the same POST: the live text after that event, exactly.
    const second = /^id: (.*:2)$/m.exec(text)![1]!
    const rest = await post({ "last-event-id": second })
    const afterSecond = text.slice(text.indexOf("\n\n", text.indexOf(`id: ${second}\n`)) + 2)
    expect(await rest.text()).toBe(text.slice(0, text.indexOf("\n\n") + 2) + afterSecond)
  })

  it("streams a tool call as one tool_use block with its whole input", async () => {
    mock().script({ toolCall: true })
    const final = await client.messages.stream({ ...ask("call a tool", model), tools }).finalMessage()
    const uses = final.content.filter((block) => block.type === "tool_use")
    expect(uses.length).toBe(1)
    expect(uses[0]!.name.length).toBeGreaterThan(0)
    expect(typeof uses[0]!.input).toBe("object")
    expect(final.stop_reason).toBe("tool_use")
  })

  it("answers a tool call without streaming as a tool_use block", async () => {
    mock().script({ toolCall: true })
    const message = await client.messages.create({ ...ask("call a tool", model), tools })
    expect(message.content.some((block) => block.type === "tool_use")).toBe(true)
    expect(message.stop_reason).toBe("tool_use")
  })
})

describe("Anthropic clients' auth and errors", () => {
  it("takes the key as Authorization: Bearer too (ANTHROPIC_AUTH_TOKEN), and anthropic-beta is ignored", async () => {
    const bearer = new Anthropic({ baseURL: gw.url, apiKey: null, authToken: GATEWAY_KEY, maxRetries: 0, defaultHeaders: { "anthropic-beta": "some-beta-2099-01-01" } })
    const message = await bearer.messages.create(ask("bearer"))
    expect(textOf(message)).toBe(gw.primary.textFor(ask("bearer")))
  })

  it("a wrong x-api-key is the SDK's AuthenticationError, in Anthropic's error shape", async () => {
    const wrong = new Anthropic({ baseURL: gw.url, apiKey: "not-the-key", maxRetries: 0 })
    const error = await wrong.messages.create(ask("who am i")).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(Anthropic.AuthenticationError)
    const e = error as InstanceType<typeof Anthropic.AuthenticationError>
    expect(e.status).toBe(401)
    expect((e.error as { type: string; error: { type: string } }).type).toBe("error")
    expect((e.error as { error: { type: string } }).error.type).toBe("authentication_error")
    expect(gw.primary.requests.length).toBe(0)
  })

  it("a body that is not a Messages request is the SDK's BadRequestError", async () => {
    const error = await client.messages.create({ model: "chat", messages: [] } as never).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(Anthropic.BadRequestError)
    expect(((error as InstanceType<typeof Anthropic.APIError>).error as { error: { type: string } }).error.type).toBe("invalid_request_error")
  })

  it("an unknown model is the SDK's NotFoundError", async () => {
    const error = await client.messages.create(ask("x", "no-such-model")).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(Anthropic.NotFoundError)
  })

  it("an upstream that keeps failing is a 5xx the SDK is told not to retry (x-should-retry: false)", async () => {
    gw.primary.script(...Array.from({ length: 10 }, () => ({ fault: Fault.Status({ status: 500 }) })))
    const raw = await fetch(`${gw.url}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": GATEWAY_KEY, "anthropic-version": "2023-06-01" },
      body: JSON.stringify(ask("failing"))
    })
    expect(raw.status).toBeGreaterThanOrEqual(500)
    expect(raw.headers.get("x-should-retry")).toBe("false")
    const body = await raw.json() as { type: string; error: { type: string; message: string } }
    expect(body.type).toBe("error")
    expect(body.error.type).toMatch(/api_error|overloaded_error/)
  })

  it("a stream that fails after it started ends with an Anthropic error event", async () => {
    gw.primary.script(...Array.from({ length: 10 }, () => ({ fault: Fault.ErrorEvent({ afterChunks: 3 }) })))
    const stream = client.messages.stream(ask("breaks mid-answer"))
    const error = await stream.finalMessage().catch((e: unknown) => e)
    expect(error).toBeInstanceOf(Anthropic.APIError)
  })
})

describe("POST /v1/messages/count_tokens", () => {
  it("is proxied to the Anthropic upstream that starts the route, with its key and its model name", async () => {
    const answer = await client.messages.countTokens({ model: "counted", messages: [{ role: "user", content: "count me" }] })
    expect(answer.input_tokens).toBe(42)
    const sent = counted.at(-1)!
    expect(sent.path).toBe("/v1/messages/count_tokens")
    expect(sent.body).toEqual({ model: "claude-upstream-name", messages: [{ role: "user", content: "count me" }] })
    expect(sent.headers["x-api-key"]).toBe(CANARY)
    expect(sent.headers["anthropic-version"]).toBeTruthy()
    // Its log line says where it went, as a chat call's does.
    const line = gw.logs.map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l["msg"] === "request" && l["path"] === "/v1/messages/count_tokens" && l["status"] === 200).at(-1)
    expect(line).toMatchObject({ upstream: "counting", upstream_model: "claude-upstream-name", attempts: 1 })
  })

  it("is a 400 in Anthropic's shape when the route does not start with an Anthropic upstream", async () => {
    const before = counted.length
    const error = await client.messages.countTokens({ model: "chat", messages: [{ role: "user", content: "count me" }] }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(Anthropic.BadRequestError)
    const body = (error as InstanceType<typeof Anthropic.APIError>).error as { type: string; error: { type: string; message: string } }
    expect(body.type).toBe("error")
    expect(body.error.type).toBe("invalid_request_error")
    expect(body.error.message).toMatch(/count_tokens needs an Anthropic upstream/)
    expect(counted.length).toBe(before)
  })

  it("refuses a wrong key and an unknown model in Anthropic's shape", async () => {
    const wrong = new Anthropic({ baseURL: gw.url, apiKey: "not-the-key", maxRetries: 0 })
    expect(await wrong.messages.countTokens({ model: "counted", messages: [{ role: "user", content: "x" }] }).catch((e: unknown) => e))
      .toBeInstanceOf(Anthropic.AuthenticationError)
    expect(await client.messages.countTokens({ model: "nope", messages: [{ role: "user", content: "x" }] }).catch((e: unknown) => e))
      .toBeInstanceOf(Anthropic.NotFoundError)
  })
})
