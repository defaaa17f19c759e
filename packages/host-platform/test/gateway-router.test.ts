/**
 * The gateway's router mounted in an `@effect/platform-node` server beside a user's own route,
 * over the mock upstream, driven by the official `openai` client.
 */
import { ConfigLoader, GatewayBuilder } from "@breakwater/gateway"
import { GatewayRouter } from "@breakwater/host-platform"
import { MockUpstream } from "@breakwater/testing"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { createServer } from "node:http"
import OpenAI from "openai"

const KEY = "sk-platform-test"
const ADMIN = "sk-platform-admin-key"

/** A user's app: their own route, and the gateway's beside it, on a Node server on a free port. */
const serve = Effect.gen(function*() {
  const mock = yield* MockUpstream.scoped()
  const config = yield* ConfigLoader.fromObject({
    upstreams: { primary: { provider: "openai", baseUrl: mock.url, apiKey: "upstream-key", models: ["gpt-4o-mini"] } },
    routes: { "gpt-4o-mini": { upstreams: ["primary"] } },
    auth: { keys: [{ name: "tests", key: KEY }], adminKey: ADMIN }
  }, {})
  const gateway = yield* GatewayBuilder.make(config)
  const lines: Array<Record<string, unknown>> = []
  const gatewayRoutes = yield* GatewayRouter.make(gateway, { log: (line) => lines.push(line) })
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

const ask = (content: string) => ({ model: "gpt-4o-mini", messages: [{ role: "user" as const, content }] })

const streamText = (client: OpenAI, content: string) =>
  Effect.promise(async () => {
    const stream = await client.chat.completions.create({ ...ask(content), stream: true })
    let text = ""
    let finish: string | null | undefined
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? ""
      finish = chunk.choices[0]?.finish_reason ?? finish
    }
    return { text, finish }
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
  it.scoped("a client that leaves mid-stream stops the upstream call", () =>
    Effect.gen(function*() {
      const { client, mock } = yield* serve
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
})
