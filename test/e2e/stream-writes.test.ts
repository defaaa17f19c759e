/**
 * Issue #19, "writes coalesced", end to end: a stream whose upstream answer arrived in one read
 * (a fast upstream: every event, `[DONE]` and the response's end in one write) leaves the
 * gateway in one write to the client socket: the headers, the events and the stream's end. The
 * gateway's end frame is written when the call's fiber exits, a few microtasks after the read;
 * a second system write per stream cost ~6% of a back-to-back stream's CPU (BENCHMARKS.md).
 * Counted at the gateway's accepted sockets (`_write` and `_writev`: one system write each).
 */
import { HttpHost } from "@breakwater/host-http"
import { Effect, Exit, Scope } from "effect"
import { createServer, type Server } from "node:http"
import type { AddressInfo, Socket } from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { gatewayOver } from "./support/gateway.js"

const words = Array.from({ length: 40 }, (_, i) => ` word${i}`)
const event = (delta: Record<string, unknown>, finish: string | null = null) =>
  `data: ${JSON.stringify({ id: "chatcmpl-1", object: "chat.completion.chunk", created: 1, model: "m", choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`
const burst = [event({ role: "assistant", content: "" }), ...words.map((w) => event({ content: w })), event({}, "stop"), "data: [DONE]\n\n"].join("")

let upstream: Server
let scope: Scope.CloseableScope
const urls: Record<string, string> = {}
// The system writes of each socket the gateways accepted, by gateway.
const writes: Record<string, Array<number>> = {}

const counting = (name: string) => (socket: Socket & { _write: Function; _writev: Function }) => {
  const list = writes[name] ??= []
  const at = list.push(0) - 1
  const write = socket._write
  const writev = socket._writev
  socket._write = function(this: Socket, ...args: Array<unknown>) {
    list[at]!++
    return write.apply(this, args)
  }
  socket._writev = function(this: Socket, ...args: Array<unknown>) {
    list[at]!++
    return writev.apply(this, args)
  }
}

beforeAll(async () => {
  upstream = createServer((req, res) => {
    req.resume()
    req.on("end", () => {
      res.writeHead(200, { "content-type": "text/event-stream" })
      res.end(burst)
    })
  })
  await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve))
  const port = (upstream.address() as AddressInfo).port
  scope = Effect.runSync(Scope.make())
  const gateway = await gatewayOver(`http://127.0.0.1:${port}`, scope)
  for (const [name, journal] of [["journaled", undefined], ["unjournaled", false]] as const) {
    const running = await Effect.runPromise(Scope.extend(HttpHost.serve(gateway, { port: 0, logLevel: "none", journal }), scope))
    running.server.on("connection", counting(name))
    urls[name] = running.url
  }
})
afterAll(async () => {
  await Effect.runPromise(Scope.close(scope, Exit.void))
  upstream.closeAllConnections()
  await new Promise<void>((resolve) => upstream.close(() => resolve()))
})

describe("a stream that arrived in one read", () => {
  it.each(["journaled", "unjournaled"])("leaves a %s gateway in one write: headers, events and the end", async (name) => {
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${urls[name]}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "chat", stream: true, messages: [{ role: "user", content: "hi" }] })
      })
      const data = (await res.text()).split("\n").filter((l) => l.startsWith("data: "))
      expect(res.status).toBe(200)
      expect(data.at(-1)).toBe("data: [DONE]")
      expect(data.map((d) => d === "data: [DONE]" ? "" : JSON.parse(d.slice(6)).choices[0]?.delta?.content ?? "").join("")).toBe(words.join(""))
      expect(res.headers.has("x-breakwater-stream-id")).toBe(name === "journaled")
    }
    // However many connections the client used: one system write per response.
    expect(writes[name]!.reduce((a, b) => a + b, 0)).toBe(5)
  })
})
