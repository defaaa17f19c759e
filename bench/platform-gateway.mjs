#!/usr/bin/env node
/**
 * The gateway served by `@breakwater/host-platform` (`GatewayRouter` in an `@effect/platform-node`
 * `NodeHttpServer`) instead of the lean `node:http` host, from the same config file: what
 * `BENCH_GATEWAY_HOST=platform node bench/run.mjs ...` runs as its `gateway` target, so the
 * platform host's cost reads next to the lean host's (issue #23; informational, no target).
 *
 *   node bench/platform-gateway.mjs <config.json>
 *
 * Prints `listening on <url>`.
 */
import { ConfigLoader, GatewayBuilder } from "@breakwater/gateway"
import { GatewayRouter } from "@breakwater/host-platform"
import { HttpServer } from "@effect/platform"
import { NodeFileSystem, NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { createServer } from "node:http"

const file = process.argv[2]
if (file === undefined) throw new Error("usage: platform-gateway.mjs <config.json>")

const App = Layer.unwrapScoped(Effect.gen(function*() {
  const gateway = yield* GatewayBuilder.make(yield* ConfigLoader.fromFile(file))
  return HttpServer.serve(yield* GatewayRouter.make(gateway, { logLevel: "warning" }))
}))
const Announce = Layer.effectDiscard(
  HttpServer.addressWith((address) => Effect.sync(() => process.stdout.write(`listening on http://127.0.0.1:${address.port}\n`)))
)
const Server = Layer.merge(NodeHttpServer.layer(createServer, { host: "127.0.0.1", port: 0 }), NodeFileSystem.layer)
NodeRuntime.runMain(Layer.launch(Layer.provide(Layer.merge(App, Announce), Server)))
