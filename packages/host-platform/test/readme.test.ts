/**
 * The README's example, with the config from an object pointing at the mock upstream and the
 * server on a free port: the user's route and the gateway's answer side by side.
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
