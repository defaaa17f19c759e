#!/usr/bin/env node
/**
 * An OTLP/HTTP receiver that accepts every export and keeps nothing: where a bench gateway with
 * tracing on (`node bench/run.mjs --telemetry`) sends its spans, so the figures include building,
 * batching and exporting them. Prints `otlp sink listening on <url>` and, on exit, how many
 * exports and bytes it received.
 */
import http from "node:http"
import "./orphan-guard.mjs"

let exports = 0
let bytes = 0
const server = http.createServer((req, res) => {
  req.on("data", (chunk) => {
    bytes += chunk.length
  })
  req.on("end", () => {
    exports++
    res.writeHead(200, { "content-type": "application/json" })
    res.end("{}")
  })
})
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`otlp sink listening on http://127.0.0.1:${server.address().port}\n`)
})
process.on("SIGTERM", () => {
  process.stdout.write(`otlp sink received ${exports} exports, ${bytes} bytes\n`)
  process.exit(0)
})
