/**
 * What the client gets is the upstream's own JSON text for every chunk and answer no policy
 * changed (`WireText`), and a fresh encoding for every one a policy did change. The upstream here
 * is a plain `node:http` server that writes JSON with spaces and `\u` escapes, which
 * `JSON.stringify` never produces, so the two can be told apart on the wire.
 */
import { ConfigLoader, GatewayBuilder } from "@breakwater/gateway"
import { HttpHost } from "@breakwater/host-http"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"

/** A chunk's JSON as an upstream might write it: spaced, with an escaped "é". */
const chunkText = (id: string, delta: string, finish: string | null = null) =>
  `{"id": "${id}", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [{"index": 0, "delta": ${delta}, "finish_reason": ${
    finish === null ? "null" : `"${finish}"`
  }}]}`

const completionText =
  `{"id": "cmpl-1", "object": "chat.completion", "created": 1, "model": "m", "choices": [{"index": 0, "message": {"role": "assistant", "content": "caf\\u00e9"}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}`

type Handler = (body: Record<string, unknown>, res: ServerResponse, call: number) => void

/** A raw upstream answering `POST /v1/chat/completions` with `handler` (call counts from 1). */
const rawUpstream = (handler: Handler) =>
  Effect.acquireRelease(
    Effect.async<{ url: string; close: () => Promise<void> }>((resume) => {
      let calls = 0
      const server = createServer((req: IncomingMessage, res: ServerResponse) => {
        let body = ""
        req.setEncoding("utf8")
        req.on("data", (text: string) => (body += text))
        req.on("end", () => handler(JSON.parse(body), res, ++calls))
      })
      server.listen(0, "127.0.0.1", () =>
        resume(Effect.succeed({
          url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
          close: () =>
            new Promise<void>((done) => {
              server.closeAllConnections()
              server.close(() => done())
            })
        })))
    }),
    (upstream) => Effect.promise(() => upstream.close())
  )

const gatewayFor = (upstreamUrl: string) =>
  Effect.gen(function*() {
    const config = {
      upstreams: { raw: { provider: "openai", baseUrl: upstreamUrl, models: ["m"] } },
      routes: { m: { upstreams: ["raw"] } },
      defaults: { retry: { baseDelay: "1 millis", maxDelay: "5 millis" } }
    }
    const gateway = yield* GatewayBuilder.make(yield* ConfigLoader.fromObject(config, {}))
    return yield* HttpHost.serve(gateway, { log: () => {} })
  })

const chat = (url: string, stream: boolean) =>
  Effect.promise(async () => {
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }], stream })
    })
    return { status: res.status, body: await res.text() }
  })

/** The `data:` lines of an SSE body, in order. */
const dataLines = (body: string) => body.split("\n").filter((line) => line.startsWith("data: ")).map((line) => line.slice(6))

const sse = (res: ServerResponse) => res.writeHead(200, { "content-type": "text/event-stream" })

describe("the upstream's own text goes out for what no policy changed", () => {
  it.scopedLive("a non-streaming answer is the upstream's body, byte for byte", () =>
    Effect.gen(function*() {
      const upstream = yield* rawUpstream((_body, res) => {
        res.writeHead(200, { "content-type": "application/json" }).end(completionText)
      })
      const { url } = yield* gatewayFor(upstream.url)
      const answer = yield* chat(url, false)
      expect(answer.status).toBe(200)
      expect(answer.body).toBe(completionText)
    }))

  it.scopedLive("an undisturbed stream's chunks are the upstream's frames; one split over two data lines is encoded again", () =>
    Effect.gen(function*() {
      const role = chunkText("c1", `{"role": "assistant", "content": ""}`)
      const text = chunkText("c1", `{"content": "caf\\u00e9"}`)
      const finish = chunkText("c1", `{}`, "stop")
      const usage = `{"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}`
      const upstream = yield* rawUpstream((_body, res) => {
        sse(res)
        // The second content chunk's JSON is split over two data lines (legal SSE).
        const split = chunkText("c1", `{"content": " au lait"}`).replace(`"choices": `, `"choices":\ndata: `)
        res.end(`data: ${role}\n\ndata: ${text}\n\ndata: ${split}\n\ndata: ${finish}\n\ndata: ${usage}\n\ndata: [DONE]\n\n`)
      })
      const { url } = yield* gatewayFor(upstream.url)
      const answer = yield* chat(url, true)
      expect(answer.status).toBe(200)
      const lines = dataLines(answer.body)
      expect(lines).toHaveLength(5)
      expect(lines[0]).toBe(role)
      expect(lines[1]).toBe(text)
      // Split over two lines, it could not go out as one data line: it was encoded again.
      expect(lines[2]).toBe(JSON.stringify(JSON.parse(chunkText("c1", `{"content": " au lait"}`))))
      expect(lines[3]).toBe(finish)
      expect(lines[4]).toBe("[DONE]")
    }))

  it.scopedLive("a resumed stream: what stream-resume re-addressed is encoded again, with the first attempt's id", () =>
    Effect.gen(function*() {
      const role = chunkText("c1", `{"role": "assistant", "content": ""}`)
      const first = chunkText("c1", `{"content": "Hello"}`)
      const upstream = yield* rawUpstream((_body, res, call) => {
        sse(res)
        if (call === 1) {
          // Cut mid-answer: the socket goes away after one content chunk.
          res.write(`data: ${role}\n\ndata: ${first}\n\n`, () => res.destroy())
          return
        }
        res.end(
          `data: ${chunkText("c2", `{"role": "assistant", "content": ""}`)}\n\ndata: ${chunkText("c2", `{"content": " world"}`)}\n\n` +
            `data: ${chunkText("c2", `{}`, "stop")}\n\ndata: [DONE]\n\n`
        )
      })
      const { url } = yield* gatewayFor(upstream.url)
      const answer = yield* chat(url, true)
      expect(answer.status).toBe(200)
      const lines = dataLines(answer.body)
      expect(lines[0]).toBe(role)
      expect(lines[1]).toBe(first)
      const rest = lines.slice(2, -1)
      expect(rest.length).toBeGreaterThan(0)
      for (const line of rest) {
        // Re-addressed to the stream's first id, and so encoded by the gateway, not passed on.
        expect(JSON.parse(line).id).toBe("c1")
        expect(line).toBe(JSON.stringify(JSON.parse(line)))
      }
      const content = lines.slice(0, -1).map((line) => JSON.parse(line).choices[0]?.delta?.content ?? "").join("")
      expect(content).toBe("Hello world")
      expect(lines[lines.length - 1]).toBe("[DONE]")
    }))
})
