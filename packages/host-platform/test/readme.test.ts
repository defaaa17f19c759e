/**
 * The README's examples: the router beside the app's own route (the config from an object
 * pointing at the mock upstream, the server on a free port), and a client that reconnects with
 * `Last-Event-ID` after its connection was cut mid-answer.
 */
import { ConfigLoader, GatewayBuilder } from "@breakwater/gateway"
import { GatewayRouter } from "@breakwater/host-platform"
import { MockUpstream } from "@breakwater/testing"
import { HttpMiddleware, HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Logger } from "effect"
import { createServer } from "node:http"
import OpenAI from "openai"
import { cuttingAfter } from "../../host-http/test/support/reconnect.js"

it.scoped("README: the gateway's router beside the app's own route", () =>
  Effect.gen(function*() {
    const mock = yield* MockUpstream.scoped()
    mock.script({ fault: MockUpstream.Fault.Status({ status: 503 }) })
    const config = ConfigLoader.fromObject({
      upstreams: { openai: { provider: "openai", baseUrl: mock.url, apiKey: "test", models: ["gpt-4o-mini"] } },
      routes: { "gpt-4o-mini": { upstreams: ["openai"], retry: { baseDelay: "1 millis", maxDelay: "1 millis" } } }
    }, {})

    // --- the README's example (the config from an object, a free port, quiet logs) ---
    const App = Layer.unwrapScoped(Effect.gen(function*() {
      const gateway = yield* GatewayBuilder.make(yield* config)
      const breakwater = yield* GatewayRouter.make(gateway, { log: () => {} })
      const router = HttpRouter.empty.pipe(
        HttpRouter.get("/hello", HttpServerResponse.text("hello from my app")), // your own routes
        HttpRouter.concat(breakwater)
      )
      return HttpServer.serve(router, HttpMiddleware.logger)
    }))
    const server = yield* Layer.build(Layer.provideMerge(App, NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })))
    // --- end of the example ---

    const { port } = Context.get(server, HttpServer.HttpServer).address as HttpServer.TcpAddress
    const url = `http://127.0.0.1:${port}`
    const request = { model: "gpt-4o-mini", messages: [{ role: "user" as const, content: "Hello" }] }
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "unused", maxRetries: 0 })
    const reply = yield* Effect.promise(() => client.chat.completions.create(request))
    expect(reply.choices[0]?.message.content).toBe(mock.textFor(request))
    expect(mock.requests).toHaveLength(2) // the 503 was retried inside the gateway
    const own = yield* Effect.promise(() => fetch(`${url}/hello`).then((r) => r.text()))
    expect(own).toBe("hello from my app")
  }).pipe(Effect.provide(Logger.remove(Logger.defaultLogger))))

it.scoped("README: a client whose connection drops reconnects with Last-Event-ID and reads the whole answer", () =>
  Effect.gen(function*() {
    const mock = yield* MockUpstream.scoped({ chunkDelayMs: 2 })
    const config = yield* ConfigLoader.fromObject({
      upstreams: { openai: { provider: "openai", baseUrl: mock.url, apiKey: "test", models: ["gpt-4o-mini"] } },
      routes: { "gpt-4o-mini": { upstreams: ["openai"] } }
    }, {})
    const gateway = yield* GatewayBuilder.make(config)
    const router = yield* GatewayRouter.make(gateway, { log: () => {} })
    const server = yield* Layer.build(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" }))
    yield* HttpServer.serveEffect(router).pipe(Effect.provide(server))
    const { port } = Context.get(server, HttpServer.HttpServer).address as HttpServer.TcpAddress
    const cut = cuttingAfter(1_500)
    const fetchCut = cut.fetch

    const { seen, text } = yield* Effect.promise(async () => {
      // --- the README's example (the client on this server, its first connection cut) ---
      const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: "unused", fetch: fetchCut, maxRetries: 0 })
      const request = { model: "gpt-4o-mini", messages: [{ role: "user" as const, content: "Tell me about the tides" }], stream: true as const }

      // Each chunk the SDK yields is one event: after n chunks, the last event id is `<streamId>:<n>`.
      const { data, response } = await client.chat.completions.create(request).withResponse()
      const streamId = response.headers.get("x-breakwater-stream-id")
      let text = ""
      let seen = 0
      try {
        for await (const chunk of data) {
          text += chunk.choices[0]?.delta.content ?? ""
          seen++
        }
      } catch {
        // The connection dropped: the same request again, for the events after the last one received.
        const rest = await client.chat.completions.create(request, { headers: { "Last-Event-ID": `${streamId}:${seen}` } })
        for await (const chunk of rest) text += chunk.choices[0]?.delta.content ?? ""
      }
      // --- end of the example ---
      return { seen, text }
    })
    expect(cut.calls()).toBe(2) // cut mid-answer, then one reconnect
    expect(seen).toBeGreaterThan(0)
    expect(text).toBe(mock.textFor({ messages: [{ role: "user", content: "Tell me about the tides" }] }))
    expect(mock.requests).toHaveLength(1) // the reconnect was answered from the journal
  }).pipe(Effect.provide(Logger.remove(Logger.defaultLogger))))
