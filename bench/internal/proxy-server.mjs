/**
 * What the bench's own servers under test share (the bare proxy and the floor gateway): their
 * command line, the upstream pool, header forwarding and the listen/stop lifecycle, so the two
 * differ only in what they do with a request and its response.
 */
import { createServer } from "node:http"
import { parseArgs } from "node:util"
import { Pool } from "undici"

/** `--upstream <url> [--port 0] [--connections 8192]` */
export const proxyArgs = () => {
  const { values } = parseArgs({
    options: {
      upstream: { type: "string" },
      port: { type: "string", default: "0" },
      connections: { type: "string", default: "8192" }
    }
  })
  if (values.upstream === undefined) throw new Error("--upstream <url> is required")
  return { upstream: values.upstream, port: Number(values.port), connections: Number(values.connections) }
}

/** A keep-alive pool to the upstream, with the same sizes and timeouts for every bench server. */
export const upstreamPool = ({ upstream, connections }) =>
  new Pool(upstream, {
    connections,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    headersTimeout: 60_000,
    bodyTimeout: 60_000
  })

// Hop-by-hop headers (RFC 9110 §7.6.1) plus the ones the transport recomputes.
const hop = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "host", "content-length"])

/** The end-to-end headers of a request or response. */
export const forward = (headers) => {
  const out = {}
  for (const key in headers) if (!hop.has(key)) out[key] = headers[key]
  return out
}

/** A 502 for an upstream failure before the response started; a cut connection after. */
export const failUpstream = (res, error) => {
  if (!res.headersSent) {
    res.writeHead(502, { "content-type": "application/json" })
    res.end(JSON.stringify({ error: { message: `upstream: ${error.message}`, type: "bad_gateway" } }))
  } else {
    res.destroy()
  }
}

/**
 * Serves `handle(req, res, body)` (the request body read whole) on 127.0.0.1 and prints
 * `<name> listening on <url>`; SIGTERM/SIGINT close the server and the pool.
 */
export const serve = ({ name, port, pool, handle }) => {
  const server = createServer({ noDelay: true }, (req, res) => {
    const chunks = []
    req.on("data", (c) => chunks.push(c))
    req.on("end", () => handle(req, res, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)))
  })
  server.keepAliveTimeout = 60_000
  server.headersTimeout = 65_000
  server.maxRequestsPerSocket = 0
  server.listen(port, "127.0.0.1", () => {
    process.stdout.write(`${name} listening on http://127.0.0.1:${server.address().port}\n`)
  })
  const stop = () => {
    server.closeAllConnections()
    server.close()
    pool.destroy().finally(() => process.exit(0))
  }
  process.once("SIGTERM", stop)
  process.once("SIGINT", stop)
  return server
}
