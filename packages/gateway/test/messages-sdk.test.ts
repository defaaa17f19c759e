/**
 * The official Anthropic SDK against `MessagesApi`'s output: a tiny `node:http` server decodes
 * the Messages body, runs a real adapter over the mock upstream (OpenAI or Anthropic wire) and
 * writes the encoder's events or the message object, so the SDK parses exactly what a host will
 * write.
 */
import Anthropic from "@anthropic-ai/sdk"
import { LanguageModel, type ModelError, RequestContext } from "@breakwater/core"
import { AnthropicProvider } from "@breakwater/provider-anthropic"
import { OpenAiProvider } from "@breakwater/provider-openai"
import { StreamResume } from "@breakwater/stream-resume"
import { MockUpstream } from "@breakwater/testing"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { ClientApi, MessagesApi } from "../src/index.js"

const apiErrorOf = (cause: Cause.Cause<ModelError.ModelError>): ClientApi.ApiError => {
  const failure = Cause.failureOption(cause)
  return Option.isSome(failure) ? ClientApi.fromModelError(failure.value, undefined, []) : ClientApi.apiError({ status: 500, message: "internal gateway error", type: "server_error", code: null })
}

/** Serves `POST /v1/messages` with `model`, as a host will (minus auth, limits and the commit gate). */
const serve = (model: LanguageModel.Service): Promise<{ server: Server; origin: string }> => {
  const run = LanguageModel.runOf(model)
  const provide = <A, E>(effect: Effect.Effect<A, E, RequestContext.RequestContext>) =>
    Effect.provideService(effect, RequestContext.RequestContext, RequestContext.make())
  const server = createServer((req, res) => {
    let body = ""
    req.setEncoding("utf8")
    req.on("data", (text: string) => (body += text))
    req.on("end", async () => {
      const answerError = (error: ClientApi.ApiError) => {
        const { body, status } = MessagesApi.fromApiError(error, "req_test")
        res.writeHead(status, ClientApi.errorHeaders(error, "req_test")).end(JSON.stringify(body))
      }
      const parsed = MessagesApi.parseRequest(body)
      if (Either.isLeft(parsed)) return answerError(ClientApi.badRequest(parsed.left.message))
      const request = parsed.right
      if (request.stream !== true) {
        const exit = await Effect.runPromiseExit(provide(model.generate(request)))
        if (Exit.isFailure(exit)) return answerError(apiErrorOf(exit.cause))
        return res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(MessagesApi.encodeMessage(exit.value)))
      }
      const encoder = MessagesApi.makeStreamEncoder({ model: request.model })
      res.writeHead(200, { "content-type": "text/event-stream" })
      const sink: LanguageModel.ChunkSink = {
        start: () => {},
        push: (chunks) => {
          const text = encoder.onChunks(chunks)
          return text === "" || res.write(text)
        }
      }
      const exit = await Effect.runPromiseExit(provide(run(request, undefined, sink)))
      res.end(Exit.isSuccess(exit) ? encoder.end() : encoder.fail(apiErrorOf(exit.cause)))
    })
  })
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({ server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })))
}

let mock: MockUpstream.MockUpstream
let scope: Scope.CloseableScope
const servers: Array<Server> = []
const clients = new Map<string, Anthropic>()

const clientFor = async (name: string, make: () => Effect.Effect<LanguageModel.Service, never, Scope.Scope>): Promise<Anthropic> => {
  const model = await Effect.runPromise(Scope.extend(make(), scope))
  const { origin, server } = await serve(model)
  servers.push(server)
  const client = new Anthropic({ baseURL: origin, apiKey: "test", maxRetries: 0 })
  clients.set(name, client)
  return client
}

beforeAll(async () => {
  mock = await MockUpstream.start()
  scope = await Effect.runPromise(Scope.make())
  await clientFor("openai", () => OpenAiProvider.make({ baseUrl: mock.url }))
  await clientFor("anthropic", () => AnthropicProvider.make({ baseUrl: mock.origin }))
  await clientFor("resumed", () => Effect.flatMap(OpenAiProvider.make({ baseUrl: mock.url }), (m) => StreamResume.withPolicy(m)))
})

afterAll(async () => {
  for (const server of servers) await new Promise((resolve) => server.close(resolve))
  await Effect.runPromise(Scope.close(scope, Exit.void))
  await mock.stop()
})

const ask = (content: string) => ({ model: "claude-sonnet-4-5", max_tokens: 256, messages: [{ role: "user" as const, content }] })
const expected = (content: string) => mock.textFor({ messages: [{ role: "user", content }] })
const textOf = (message: Anthropic.Message) => message.content.map((b) => (b.type === "text" ? b.text : "")).join("")

for (const upstream of ["openai", "anthropic"] as const) {
  describe(`the Anthropic SDK over MessagesApi, ${upstream} upstream`, () => {
    it("messages.create: one message object", async () => {
      mock.reset()
      const message = await clients.get(upstream)!.messages.create(ask("What is a breakwater?"))
      expect(message.type).toBe("message")
      expect(textOf(message)).toBe(expected("What is a breakwater?"))
      expect(message.stop_reason).toBe("end_turn")
      expect(message.usage.output_tokens).toBeGreaterThan(0)
    })

    it("messages.stream + finalMessage: the same text, usage, end_turn; pings are ignored", async () => {
      mock.reset()
      mock.script({ pingEveryMs: 1, chunkDelayMs: 2 })
      const stream = clients.get(upstream)!.messages.stream(ask("Tell me about tides"))
      const kinds: Array<string> = []
      stream.on("streamEvent", (event) => kinds.push(event.type))
      const message = await stream.finalMessage()
      expect(textOf(message)).toBe(expected("Tell me about tides"))
      expect(message.stop_reason).toBe("end_turn")
      expect(message.usage.output_tokens).toBeGreaterThan(0)
      expect(message.usage.input_tokens).toBeGreaterThan(0)
      expect(kinds[0]).toBe("message_start")
      expect(kinds.filter((k) => k === "message_stop")).toHaveLength(1)
    })

    it("tool use, streamed and not: a tool_use block with the parsed input, stop_reason tool_use", async () => {
      mock.reset()
      mock.script({ toolCall: true }, { toolCall: true })
      const request = { ...ask("Forecast for Brest?"), tools: [{ name: "get_forecast", input_schema: { type: "object" as const, properties: {} } }] }
      const streamed = await clients.get(upstream)!.messages.stream(request).finalMessage()
      const created = await clients.get(upstream)!.messages.create(request)
      const tools = [streamed, created].map((message) => {
        expect(message.stop_reason).toBe("tool_use")
        const tool = message.content.find((b) => b.type === "tool_use") as Anthropic.ToolUseBlock
        expect(tool.name).toBe("get_forecast")
        expect(tool.id.length).toBeGreaterThan(0)
        expect(Object.keys(tool.input as object).length).toBeGreaterThan(0)
        return tool.input
      })
      // The streamed input was put together from input_json_delta fragments; the same answer whole.
      expect(tools[0]).toEqual(tools[1])
    })

    it("an upstream error reaches the SDK as its typed error", async () => {
      mock.reset()
      mock.script({ fault: MockUpstream.Fault.Status({ status: 429 }) }, { fault: MockUpstream.Fault.Status({ status: 529 }) })
      const limited = await clients.get(upstream)!.messages.create(ask("x")).catch((e: unknown) => e)
      expect(limited).toBeInstanceOf(Anthropic.RateLimitError)
      expect((limited as InstanceType<typeof Anthropic.APIError>).error).toMatchObject({ type: "error", error: { type: "rate_limit_error" } })
      const overloaded = await clients.get(upstream)!.messages.create(ask("x")).catch((e: unknown) => e)
      expect(overloaded).toBeInstanceOf(Anthropic.InternalServerError)
      expect((overloaded as InstanceType<typeof Anthropic.APIError>).error).toMatchObject({ error: { type: "overloaded_error" } })
    })
  })
}

describe("the Anthropic SDK over MessagesApi, edge cases", () => {
  it("a bad body is the SDK's BadRequestError with the problem named", async () => {
    const error = await clients.get("openai")!.messages.create({ ...ask("x"), max_tokens: 0 }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(Anthropic.BadRequestError)
    expect((error as InstanceType<typeof Anthropic.APIError>).message).toMatch(/max_tokens must be a positive integer/)
  })

  it("a stream cut mid-answer and stitched by stream-resume is one message with the whole text", async () => {
    mock.reset()
    mock.script({ fault: MockUpstream.Fault.Cut({ afterChunks: 6 }) })
    const stream = clients.get("resumed")!.messages.stream(ask("Describe a harbour wall"))
    const kinds: Array<string> = []
    stream.on("streamEvent", (event) => kinds.push(event.type))
    const message = await stream.finalMessage()
    expect(mock.requests).toHaveLength(2)
    expect(textOf(message)).toBe(expected("Describe a harbour wall"))
    expect(message.content).toHaveLength(1)
    expect(kinds.filter((k) => k === "message_start")).toHaveLength(1)
    expect(kinds.filter((k) => k === "message_stop")).toHaveLength(1)
  })

  it("a stream that fails after it started ends with an error event the SDK throws", async () => {
    mock.reset()
    mock.script({ fault: MockUpstream.Fault.Cut({ afterChunks: 3 }) })
    const error = await clients.get("openai")!.messages.stream(ask("Cut me")).finalMessage().catch((e: unknown) => e)
    expect(error).toBeInstanceOf(Anthropic.APIError)
    // A ConnectionFailed (the cut) is a 502: Anthropic's api_error.
    expect((error as InstanceType<typeof Anthropic.APIError>).error).toEqual({ type: "error", error: { type: "api_error", message: "other side closed" } })
  })
})
