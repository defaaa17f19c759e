#!/usr/bin/env node
/**
 * The baseline: a bare `node:http` pass-through proxy over a keep-alive `undici` Pool. No
 * parsing, no policies, streaming pass-through — the floor any Node gateway can reach, and the
 * yardstick every Breakwater figure is divided by.
 *
 *   node bench/baseline-proxy.mjs --upstream http://127.0.0.1:PORT [--port 0] [--connections 8192]
 *
 * Prints `baseline listening on <url>`.
 */
import { createServer } from "node:http"
import { parseArgs } from "node:util"
import { Pool } from "undici"
import "./internal/orphan-guard.mjs"

const { values } = parseArgs({
  options: {
    upstream: { type: "string" },
    port: { type: "string", default: "0" },
    connections: { type: "string", default: "8192" }
  }
})
if (values.upstream === undefined) throw new Error("--upstream <url> is required")

const pool = new Pool(values.upstream, {
  connections: Number(values.connections),
  pipelining: 1,
  keepAliveTimeout: 60_000,
  headersTimeout: 60_000,
  bodyTimeout: 60_000
})

// Hop-by-hop headers (RFC 9110 §7.6.1) plus the ones the transport recomputes.
const hop = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "host", "content-length"])

const forward = (headers) => {
  const out = {}
  for (const key in headers) if (!hop.has(key)) out[key] = headers[key]
  return out
}

const server = createServer({ noDelay: true }, (req, res) => {
  const chunks = []
  req.on("data", (c) => chunks.push(c))
  req.on("end", () => {
    const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)
    const headers = forward(req.headers)
    headers["content-length"] = String(body.length)
    const abort = new AbortController()
    // A client that goes away cancels the upstream call, as any gateway must.
    res.on("close", () => { if (!res.writableFinished) abort.abort() })
    pool.stream(
      { path: req.url, method: req.method, headers, body, signal: abort.signal },
      ({ statusCode, headers: upstreamHeaders }) => {
        res.writeHead(statusCode, forward(upstreamHeaders))
        return res
      },
      (error) => {
        if (error === null || error === undefined) return
        if (!res.headersSent) {
          res.writeHead(502, { "content-type": "application/json" })
          res.end(JSON.stringify({ error: { message: `upstream: ${error.message}`, type: "bad_gateway" } }))
        } else {
          res.destroy()
        }
      }
    )
  })
})
server.keepAliveTimeout = 60_000
server.headersTimeout = 65_000
server.maxRequestsPerSocket = 0

server.listen(Number(values.port), "127.0.0.1", () => {
  process.stdout.write(`baseline listening on http://127.0.0.1:${server.address().port}\n`)
})
const stop = () => {
  server.closeAllConnections()
  server.close()
  pool.destroy().finally(() => process.exit(0))
}
process.once("SIGTERM", stop)
process.once("SIGINT", stop)
