/**
 * The gateway's router mounted in an `@effect/platform-node` server beside a user's own route,
 * over the mock upstream, driven by the official `openai` client.
 */
import type { RequestObserver } from "@breakwater/core"
import { ConfigLoader, GatewayBuilder, Tracing } from "@breakwater/gateway"
import { GatewayRouter } from "@breakwater/host-platform"
import { MockUpstream } from "@breakwater/testing"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import Anthropic from "@anthropic-ai/sdk"
import OpenAI from "openai"

const KEY = "sk-platform-test"
const ADMIN = "sk-platform-admin-key"

/**
 * A user's app: their own route, and the gateway's beside it, on a Node server on a free port.
 * `more` adds upstreams and routes to the gateway's.
 */
const serveWith = (
  options: GatewayRouter.ReconnectOptions,
  tracer?: Tracing.Tracer,
  more: { readonly upstreams?: Record<string, unknown>; readonly routes?: Record<string, unknown> } = {}
) => Effect.gen(function*() {
  const mock = yield* MockUpstream.scoped()
  const config = yield* ConfigLoader.fromObject({
    upstreams: { primary: { provider: "openai", baseUrl: mock.url, apiKey: "upstream-key", models: ["gpt-4o-mini"] }, ...more.upstreams },
    routes: { "gpt-4o-mini": { upstreams: ["primary"] }, ...more.routes },
    auth: { keys: [{ name: "tests", key: KEY }], adminKey: ADMIN }
  }, {})
  const gateway = yield* GatewayBuilder.make(config, tracer === undefined ? {} : { telemetry: Tracing.given(tracer) })
  const lines: Array<Record<string, unknown>> = []
  const gatewayRoutes = yield* GatewayRouter.make(gateway, { log: (line) => lines.push(line), ...options })
  const app = HttpRouter.empty.pipe(
    HttpRouter.get("/hello", HttpServerResponse.text("hello from the app")),
    HttpRouter.concat(gatewayRoutes)
  )
  const server = yield* Layer.build(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" }))
  yield* HttpServer.serveEffect(app).pipe(Effect.provide(server))
  const address = Context.get(server, HttpServer.HttpServer).address as HttpServer.TcpAddress
  const url = `http://127.0.0.1:${address.port}`
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: KEY, maxRetries: 0 })
  return { mock, url, client, lines }
})
const serve = serveWith({})

const ask = (content: string) => ({ model: "gpt-4o-mini", messages: [{ role: "user" as const, content }] })

/** Streams an answer with the openai client: its text, finish reason and stream id. */
const streamText = (client: OpenAI, content: string, headers: Record<string, string> = {}) =>
  Effect.promise(async () => {
    const { data, response } = await client.chat.completions.create({ ...ask(content), stream: true }, { headers }).withResponse()
    let text = ""
    let finish: string | null | undefined
    for await (const chunk of data) {
      text += chunk.choices[0]?.delta.content ?? ""
      finish = chunk.choices[0]?.finish_reason ?? finish
    }
    return { text, finish, streamId: response.headers.get("x-breakwater-stream-id") }
  })

describe("GatewayRouter in a NodeHttpServer", () => {
  it.scoped("answers a completion, and the user's own route still answers", () =>
    Effect.gen(function*() {
      const { client, lines, mock, url } = yield* serve
      const { data, response } = yield* Effect.promise(() => client.chat.completions.create(ask("hello there")).withResponse())
      expect(data.choices[0]?.message.content).toBe(mock.textFor(ask("hello there")))
      expect(response.headers.get("x-breakwater-upstream")).toBe("primary")
      expect(response.headers.get("x-request-id")).toBeTruthy()
      const own = yield* Effect.promise(() => fetch(`${url}/hello`).then((r) => r.text()))
      expect(own).toBe("hello from the app")
      expect(lines.filter((l) => l["msg"] === "request")).toContainEqual(expect.objectContaining({ path: "/v1/chat/completions", status: 200, upstream: "primary" }))
    }))

  it.scoped("streams a completion", () =>
    Effect.gen(function*() {
      const { client, mock } = yield* serve
      const { finish, text } = yield* streamText(client, "stream please")
      expect(text).toBe(mock.textFor(ask("stream please")))
      expect(finish).toBe("stop")
    }))

  it.scoped("a stream cut mid-answer upstream reaches the client whole", () =>
    Effect.gen(function*() {
      const { client, mock } = yield* serve
      mock.script({ fault: MockUpstream.Fault.Cut({ afterChunks: 5 }) })
      const { finish, text } = yield* streamText(client, "resume after a cut")
      expect(text).toBe(mock.textFor(ask("resume after a cut")))
      expect(finish).toBe("stop")
      expect(mock.requests).toHaveLength(2)
    }))

  it.scoped("a wrong key is the SDK's AuthenticationError, before any upstream call", () =>
    Effect.gen(function*() {
      const { mock, url } = yield* serve
      const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "sk-wrong", maxRetries: 0 })
      const error = yield* Effect.promise(() => client.chat.completions.create(ask("let me in")).then(() => undefined, (e: unknown) => e))
      expect(error).toBeInstanceOf(OpenAI.AuthenticationError)
      expect((error as InstanceType<typeof OpenAI.AuthenticationError>).status).toBe(401)
      expect(mock.requests).toHaveLength(0)
    }))

  it.scoped("lists the models, and answers health and metrics", () =>
    Effect.gen(function*() {
      const { client, url } = yield* serve
      const models = yield* Effect.promise(() => client.models.list())
      expect(models.data.map((m) => m.id)).toContain("gpt-4o-mini")
      const health = yield* Effect.promise(() => fetch(`${url}/healthz`).then((r) => r.json()))
      expect(health).toEqual({ status: "ok" })
      const refused = yield* Effect.promise(() => fetch(`${url}/metrics`))
      expect(refused.status).toBe(401)
      const metrics = yield* Effect.promise(() => fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } }).then((r) => r.text()))
      expect(metrics).toMatch(/^# TYPE /m)
      const ready = yield* Effect.promise(() => fetch(`${url}/readyz`))
      expect(ready.status).toBe(200)
    }))
  it.scoped("without a journal, a client that leaves mid-stream stops the upstream call", () =>
    Effect.gen(function*() {
      const { client, mock } = yield* serveWith({ journal: false })
      mock.script({ words: 400, chunkDelayMs: 10 })
      const clientAborted = yield* Effect.promise(async () => {
        const stream = await client.chat.completions.create({ ...ask("a long answer"), stream: true })
        let chunks = 0
        for await (const _ of stream) {
          if (++chunks === 3) break // leaving the loop aborts the request
        }
        return mock.requests[0]!.closed
      })
      expect(clientAborted).toBe(true)
    }))

  it.scoped("a client that drops its connection reconnects with Last-Event-ID and gets the rest of the answer from the journal", () =>
    Effect.gen(function*() {
      const { client, mock } = yield* serve
      // The upstream is also cut mid-answer: the gateway continues it (stream-resume) while the
      // client is away, and the journal holds the one stitched stream.
      mock.script({ chunkDelayMs: 5, fault: MockUpstream.Fault.Cut({ afterChunks: 12 }) })
      const { before, streamId } = yield* Effect.promise(async () => {
        const { data, response } = await client.chat.completions.create({ ...ask("tell me about the tides"), stream: true }).withResponse()
        let before = ""
        let received = 0
        for await (const chunk of data) {
          before += chunk.choices[0]?.delta.content ?? ""
          if (++received === 5) break // leaving the loop drops the connection
        }
        return { before, streamId: response.headers.get("x-breakwater-stream-id")! }
      })
      expect(streamId).toMatch(/^bws_/)
      // Each event the client received is one chunk: the fifth carries the id `<streamId>:5`.
      const rest = yield* streamText(client, "tell me about the tides", { "Last-Event-ID": `${streamId}:5` })
      expect(before + rest.text).toBe(mock.textFor(ask("tell me about the tides")))
      expect(rest.finish).toBe("stop")
      // The first call and its continuation: the reconnect started no generation of its own.
      expect(mock.requests).toHaveLength(2)
    }))

  it.scoped("a POST repeated with its Idempotency-Key is answered from the journal, and the streams API answers", () =>
    Effect.gen(function*() {
      const { client, mock, url } = yield* serve
      const first = yield* streamText(client, "once only", { "Idempotency-Key": "order-42" })
      const again = yield* streamText(client, "once only", { "Idempotency-Key": "order-42" })
      expect(again.text).toBe(first.text)
      expect(first.text).toBe(mock.textFor(ask("once only")))
      expect(mock.requests).toHaveLength(1)
      const replayed = yield* Effect.promise(() =>
        fetch(`${url}/v1/streams/${first.streamId}`, { headers: { authorization: `Bearer ${KEY}` } }).then(async (r) => ({ status: r.status, text: await r.text() }))
      )
      expect(replayed.status).toBe(200)
      expect(replayed.text).toMatch(new RegExp(`^id: ${first.streamId}:1$`, "m"))
      const refused = yield* Effect.promise(() => fetch(`${url}/v1/streams/${first.streamId}`).then((r) => r.status))
      expect(refused).toBe(401)
      const cancelled = yield* Effect.promise(() =>
        fetch(`${url}/v1/streams/${first.streamId}`, { method: "DELETE", headers: { authorization: `Bearer ${KEY}` } }).then((r) => r.status)
      )
      expect(cancelled).toBe(204) // as on the lean host: the owner may cancel, even a finished stream
    }))
})

describe("GatewayRouter, traced", () => {
  /** A tracer that records what the host tells it, and sends a trace header upstream per attempt. */
  const recorder = () => {
    const spans: Array<{ requestId: string; operation?: string | undefined; traceparent: unknown; events: Array<RequestObserver.PolicyEvent>; ended: Array<unknown> }> = []
    const tracer: Tracing.Tracer = {
      request: (info) => {
        const span = {
          requestId: info.requestId,
          ...(info.operation === undefined ? {} : { operation: info.operation }),
          traceparent: info.headers?.["traceparent"],
          events: [] as Array<RequestObserver.PolicyEvent>,
          ended: [] as Array<unknown>
        }
        spans.push(span)
        return {
          attempt: () => ({ headers: { traceparent: `from-${info.requestId}` }, chunks: () => {}, end: () => {} }),
          event: (e) => span.events.push(e),
          end: (error) => span.ended.push(error)
        }
      },
      flush: () => Promise.resolve(),
      shutdown: () => Promise.resolve()
    }
    return { tracer, spans }
  }

  it.scoped("a span per chat request: the caller's traceparent in, the attempt's out, ended once with the answer; a replay reported, by the same POST or the streams API", () =>
    Effect.gen(function*() {
      const { spans, tracer } = recorder()
      const { client, mock, url } = yield* serveWith({}, tracer)
      const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
      yield* Effect.promise(() => client.chat.completions.create(ask("traced"), { headers: { traceparent, "x-request-id": "platform-1" } }))
      expect(spans).toEqual([{ requestId: "platform-1", traceparent, events: [], ended: [undefined] }])
      expect(mock.requests[0]!.headers["traceparent"]).toBe("from-platform-1")

      const { streamId } = yield* streamText(client, "traced stream", { "x-request-id": "platform-2" })
      expect(spans[1]).toMatchObject({ requestId: "platform-2", ended: [undefined] })
      // A reconnect by the same POST: its span says what was replayed.
      yield* streamText(client, "traced stream", { "x-request-id": "platform-3", "last-event-id": `${streamId}:2` })
      expect(spans[2]!.events).toEqual([expect.objectContaining({ _tag: "JournalReplay", lastEventId: `${streamId}:2` })])
      expect((spans[2]!.events[0] as { events: number }).events).toBeGreaterThan(0)
      expect(spans[2]!.ended).toEqual([undefined])
      // A reconnect by the streams API: a span of its own, the replay an event on it.
      const replayed = yield* Effect.promise(() =>
        fetch(`${url}/v1/streams/${streamId}`, { headers: { authorization: `Bearer ${KEY}`, "x-request-id": "platform-4", "last-event-id": `${streamId}:2` } })
          .then((r) => r.text())
      )
      expect(replayed).toMatch(new RegExp(`^id: ${streamId}:3$`, "m"))
      expect(spans[3]).toMatchObject({ requestId: "platform-4", operation: Tracing.streamReplay, ended: [undefined] })
      expect(spans[3]!.events).toEqual([expect.objectContaining({ _tag: "JournalReplay", lastEventId: `${streamId}:2` })])
      expect(spans).toHaveLength(4)
    }))
})

describe("GatewayRouter: POST /v1/messages (Anthropic's Messages API)", () => {
  const question = { model: "gpt-4o-mini", max_tokens: 256, messages: [{ role: "user" as const, content: "hello from claude's sdk" }] }

  it.scoped("answers the Anthropic SDK, buffered and streamed (cut mid-answer upstream, whole at the client), with x-api-key", () =>
    Effect.gen(function*() {
      const { mock, url } = yield* serve
      const anthropic = new Anthropic({ baseURL: url, apiKey: KEY, maxRetries: 0 })
      const expected = mock.textFor({ messages: [{ role: "user", content: question.messages[0].content }] })
      const message = yield* Effect.promise(() => anthropic.messages.create(question))
      expect(message.type).toBe("message")
      expect(message.content[0]?.type === "text" ? message.content[0].text : undefined).toBe(expected)
      mock.script({ fault: MockUpstream.Fault.Cut({ afterChunks: 5 }) })
      const streamed = yield* Effect.promise(() => anthropic.messages.stream(question).finalMessage())
      expect(streamed.content[0]?.type === "text" ? streamed.content[0].text : undefined).toBe(expected)
      expect(streamed.stop_reason).toBe("end_turn")
    }))

  it.scoped("counts tokens for the Anthropic SDK (messages.countTokens) through the Anthropic upstream that starts the route", () =>
    Effect.gen(function*() {
      // An Anthropic upstream's count_tokens: what it was sent, and its answer.
      const counted: Array<{ readonly path: string; readonly apiKey: unknown; readonly body: unknown }> = []
      const counter = createServer((req, res) => {
        let body = ""
        req.on("data", (part: Buffer) => (body += part.toString("utf8")))
        req.on("end", () => {
          counted.push({ path: req.url ?? "", apiKey: req.headers["x-api-key"], body: JSON.parse(body) })
          res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ input_tokens: 42 }))
        })
      })
      yield* Effect.acquireRelease(
        Effect.promise(() => new Promise<void>((resolve) => counter.listen(0, "127.0.0.1", resolve))),
        () => Effect.promise(() => new Promise((resolve) => counter.close(resolve)))
      )
      const counterUrl = `http://127.0.0.1:${(counter.address() as AddressInfo).port}`
      const { lines, mock, url } = yield* serveWith({}, undefined, {
        upstreams: { counting: { provider: "anthropic", baseUrl: counterUrl, apiKey: "counting-key", models: { counted: "claude-upstream-name" } } },
        routes: { counted: { upstreams: ["counting", "primary"] } }
      })
      const anthropic = new Anthropic({ baseURL: url, apiKey: KEY, maxRetries: 0 })
      const messages = [{ role: "user" as const, content: "count me" }]
      const answer = yield* Effect.promise(() => anthropic.messages.countTokens({ model: "counted", messages }))
      expect(answer.input_tokens).toBe(42)
      expect(counted).toEqual([{ path: "/v1/messages/count_tokens", apiKey: "counting-key", body: { model: "claude-upstream-name", messages } }])
      expect(lines).toContainEqual(expect.objectContaining({ msg: "request", path: "/v1/messages/count_tokens", status: 200 }))
      // A route that does not start with an Anthropic upstream, a wrong key: refused in Anthropic's shape.
      const unsupported = yield* Effect.promise(() => anthropic.messages.countTokens({ model: "gpt-4o-mini", messages }).catch((e: unknown) => e))
      expect(unsupported).toBeInstanceOf(Anthropic.BadRequestError)
      expect((unsupported as InstanceType<typeof Anthropic.APIError>).error).toMatchObject({
        type: "error",
        error: { type: "invalid_request_error", message: expect.stringMatching(/count_tokens needs an Anthropic upstream/) }
      })
      const wrong = new Anthropic({ baseURL: url, apiKey: "sk-wrong", maxRetries: 0 })
      expect(yield* Effect.promise(() => wrong.messages.countTokens({ model: "counted", messages }).catch((e: unknown) => e)))
        .toBeInstanceOf(Anthropic.AuthenticationError)
      expect(counted).toHaveLength(1)
      expect(mock.requests).toHaveLength(0)
    }))

  it.scoped("refuses a wrong key as the SDK's AuthenticationError, in Anthropic's shape", () =>
    Effect.gen(function*() {
      const { mock, url } = yield* serve
      const anthropic = new Anthropic({ baseURL: url, apiKey: "sk-wrong", maxRetries: 0 })
      const error = yield* Effect.promise(() => anthropic.messages.create(question).then(() => undefined, (e: unknown) => e))
      expect(error).toBeInstanceOf(Anthropic.AuthenticationError)
      expect((error as InstanceType<typeof Anthropic.AuthenticationError>).error).toMatchObject({ type: "error", error: { type: "authentication_error" } })
      expect(mock.requests).toHaveLength(0)
    }))
})
