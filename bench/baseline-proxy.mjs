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
import { failUpstream, forward, proxyArgs, serve, upstreamPool } from "./internal/proxy-server.mjs"
import "./internal/orphan-guard.mjs"

const args = proxyArgs()
const pool = upstreamPool(args)

serve({
  name: "baseline",
  port: args.port,
  pool,
  handle: (req, res, body) => {
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
        if (error !== null && error !== undefined) failUpstream(res, error)
      }
    )
  }
})
