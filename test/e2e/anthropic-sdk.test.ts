/**
 * The gateway end to end with the official `@anthropic-ai/sdk`: real HTTP, `POST /v1/messages`
 * served by an OpenAI upstream (through the canonical model) or an Anthropic one, Anthropic's
 * auth headers and error shape.
 */
import Anthropic from "@anthropic-ai/sdk"
import { MockUpstream } from "@breakwater/testing"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { GATEWAY_KEY, startGateway, type TestGateway } from "./support/gateway.js"

const { Fault } = MockUpstream

let gw: TestGateway
let client: Anthropic

beforeAll(async () => {
  gw = await startGateway({
    config: (primary, secondary) => ({
      auth: { keys: [{ name: "tests", key: GATEWAY_KEY }] },
      upstreams: {
        primary: { provider: "openai", baseUrl: primary, apiKey: "${CANARY_KEY}", models: ["chat"] },
        secondary: { provider: "anthropic", baseUrl: secondary, apiKey: "${CANARY_KEY}", models: { claude: "claude-mock" } }
      },
      routes: { chat: { upstreams: ["primary"] }, claude: { upstreams: ["secondary"] } },
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
    expect(final.stop_reason).toBe("end_turn")
    expect(final.usage.output_tokens).toBeGreaterThan(0)
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
    expect(((error as Anthropic.APIError).error as { error: { type: string } }).error.type).toBe("invalid_request_error")
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
