/**
 * The server: the `node:http` server around the request handler (`routes.ts`), its limits, the
 * answer to malformed requests that never reach the handler, listening, and closing.
 */
import { type Gateway, RequestPipeline, StatusBoard, StreamReconnect } from "@breakwater/gateway"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import type { Options, RunningServer } from "../HttpHost.js"
import type { Host } from "./host.js"
import * as Lifecycle from "./lifecycle.js"
import { handler } from "./routes.js"
import * as StatusPage from "./statusPage.js"

/** Answers a request whose header block is malformed, oversized or too slow (the handler never sees it). */
const onClientError = (error: NodeJS.ErrnoException, socket: import("node:stream").Duplex): void => {
  if (!socket.writable) return void socket.destroy()
  const status = error.code === "HPE_HEADER_OVERFLOW" ? 431 : error.code === "ERR_HTTP_REQUEST_TIMEOUT" ? 408 : 400
  const payload = JSON.stringify({ error: { message: status === 431 ? "request headers too large" : status === 408 ? "request timed out" : "malformed HTTP request", type: "invalid_request_error", code: null } })
  socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(payload)}\r\nconnection: close\r\n\r\n${payload}`)
}

export const start = (gateway: Gateway.Gateway, options: Options = {}): Promise<RunningServer> => {
  const settings = gateway.server
  const pipeline = RequestPipeline.make(gateway, { log: options.log, logLevel: options.logLevel })
  const h: Host = {
    gateway,
    settings,
    pipeline,
    runtime: pipeline.host.runtime,
    journal: StreamReconnect.journalOf(gateway, options.journal),
    retryMs: options.reconnectRetryMs ?? StreamReconnect.defaultRetryMs,
    listenHost: options.host ?? settings.host,
    lifecycle: Lifecycle.make(),
    status: options.statusPage === false ? undefined : StatusPage.make(StatusBoard.make(options.statusPage === true ? {} : options.statusPage))
  }

  const server = http.createServer({
    maxHeaderSize: settings.maxHeaderBytes,
    requestTimeout: settings.requestTimeoutMs,
    headersTimeout: Math.min(settings.requestTimeoutMs, 10_000),
    // Node enforces both timeouts from a periodic sweep, every 30 s by default: a slow-loris
    // client then held its socket ~30 s whatever the limit. Sweep at a fraction of the limit.
    connectionsCheckingInterval: Math.max(100, Math.min(1_000, Math.floor(settings.requestTimeoutMs / 4))),
    keepAliveTimeout: 5_000
  }, handler(h))
  server.on("clientError", onClientError)

  // The spans of the last requests go out before the process exits (the gateway's scope, which
  // shuts the tracer down, may never close: `closeOnSignals` exits).
  const flushTraces = (): Promise<void> => gateway.telemetry === undefined ? Promise.resolve() : gateway.telemetry.flush().catch(() => undefined)
  const host = gateway.keys.length === 0 ? "127.0.0.1" : h.listenHost
  const port = options.port ?? settings.port
  return new Promise<RunningServer>((resolve, reject) => {
    server.once("error", reject)
    // Node's default accept backlog (511) overflows when a burst of clients connects at once
    // (a load balancer's reconnect storm): connections beyond it were reset. The kernel caps
    // this at net.core.somaxconn.
    server.listen({ port, host, backlog: Math.max(511, settings.maxConcurrentRequests) }, () => {
      server.off("error", reject)
      const address = server.address() as AddressInfo
      const url = `http://${address.family === "IPv6" ? `[${address.address}]` : address.address}:${address.port}`
      if (gateway.keys.length === 0 && h.listenHost !== "127.0.0.1") {
        pipeline.host.log("warning", { msg: "no gateway API keys are configured: listening on loopback only (127.0.0.1)" })
      }
      let closed: Promise<void> | undefined
      const close = (graceMs = settings.shutdownGraceMs): Promise<void> =>
        closed ??= Lifecycle.shutdown(h.lifecycle, server, h.runtime, graceMs).then(flushTraces)
      resolve({ url, host: address.address, port: address.port, server, close })
    })
  })
}
