/**
 * Issue #17, finding 2, end to end: a client that stops reading a big stream must hold the
 * upstream back through the whole gateway (host, policies, adapter, transport), not make the
 * gateway buffer the answer. Observed at the upstream: how many bytes its socket accepted, and
 * whether it could finish writing. Nothing sleeps: the wait is counted in event-loop turns.
 */
import { HttpHost } from "@breakwater/host-http"
import { Flood } from "@breakwater/testing"
import { Effect, Exit, Scope } from "effect"
import { createServer, request as httpRequest, type IncomingMessage, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { gatewayOver } from "../e2e/support/gateway.js"

const TOTAL = 96 * 1024 * 1024
// The latest upstream response's progress (each request gets its own: an earlier one may go on).
let progress = { written: 0, blocked: false, finished: false, closed: 0 }
let requests = 0
const frame = Buffer.from(
  `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", created: 1, model: "m", choices: [{ index: 0, delta: { content: "x".repeat(16_000) }, finish_reason: null }] })}\n\n`
)
let upstream: Server
let scope: Scope.CloseableScope
let url = ""

beforeAll(async () => {
  upstream = createServer((req, res) => {
    req.resume()
    const mine = { written: 0, blocked: false, finished: false, closed: 0 }
    progress = mine
    res.on("close", () => mine.closed++)
    req.on("end", () => {
      requests++
      res.writeHead(200, { "content-type": "text/event-stream" })
      Flood.write(res, frame, TOTAL, mine, "data: [DONE]\n\n")
    })
  })
  await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve))
  const port = (upstream.address() as AddressInfo).port
  scope = Effect.runSync(Scope.make())
  const gateway = await gatewayOver(`http://127.0.0.1:${port}`, scope)
  url = (await Effect.runPromise(Scope.extend(HttpHost.serve(gateway, { port: 0, logLevel: "none" }), scope))).url
})
afterAll(async () => {
  await Effect.runPromise(Scope.close(scope, Exit.void))
  upstream.closeAllConnections()
  await new Promise<void>((resolve) => upstream.close(() => resolve()))
})

/** Turns of the event loop until `done`, or until nothing has moved for 300 turns in a row. */
const settle = async (done: () => boolean) => {
  let still = 0
  let last = -1
  for (let turns = 0; !done() && still < 300 && turns < 1_000_000; turns++) {
    await new Promise((resolve) => setImmediate(resolve))
    still = progress.blocked && progress.written === last ? still + 1 : 0
    last = progress.written
  }
}

const startStream = () =>
  new Promise<IncomingMessage>((resolve, reject) => {
    const req = httpRequest(`${url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" } }, resolve)
    req.on("error", reject)
    req.end(JSON.stringify({ model: "chat", stream: true, messages: [{ role: "user", content: "a long answer, please" }] }))
  })

describe("a slow reader through the gateway", () => {
  it("a client that stops reading a 96 MiB stream leaves the upstream blocked, far from writing it all", async () => {
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = httpRequest(`${url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" } }, resolve)
      req.on("error", reject)
      req.end(JSON.stringify({ model: "chat", stream: true, messages: [{ role: "user", content: "a long answer, please" }] }))
    })
    expect(response.statusCode).toBe(200)
    // Read the first bytes, then stop reading for good.
    await new Promise((resolve) => response.once("data", resolve))
    response.pause()
    let still = 0
    let last = -1
    for (let turns = 0; !progress.finished && still < 300 && turns < 1_000_000; turns++) {
      await new Promise((resolve) => setImmediate(resolve))
      still = progress.blocked && progress.written === last ? still + 1 : 0
      last = progress.written
    }
    expect(requests).toBe(1)
    expect(progress.finished).toBe(false)
    expect(progress.blocked).toBe(true)
    // Socket buffers on both hops and one body buffer, not the answer.
    expect(progress.written).toBeLessThan(24 * 1024 * 1024)
    response.destroy()
  })

  it("a client that leaves while the upstream is held back does not leave its detached generation stuck behind a drain that never comes", async () => {
    const response = await startStream()
    expect(response.statusCode).toBe(200)
    await new Promise((resolve) => response.once("data", resolve))
    response.pause()
    await settle(() => progress.finished)
    expect(progress.blocked).toBe(true)
    const heldAt = progress.written
    // The client goes away. The journaled generation is detached, not stopped: it must go on
    // (into the journal, until the journal lets it go), so the upstream is read again.
    response.destroy()
    await settle(() => progress.finished || progress.closed > 0)
    expect(progress.finished || progress.closed > 0).toBe(true)
    expect(progress.written).toBeGreaterThan(heldAt)
  })
})
