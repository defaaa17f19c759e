/**
 * What the client gets is the upstream's own JSON text for every chunk and answer no policy
 * changed (`WireText`), and a fresh encoding for every one a policy did change. The upstream here
 * is the adapters' scripted wire upstream, writing JSON with spaces and `\u` escapes, which
 * `JSON.stringify` never produces, so the two can be told apart on the wire.
 */
import { ConfigLoader, GatewayBuilder } from "@breakwater/gateway"
import { HttpHost } from "@breakwater/host-http"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Upstream from "../../packages/provider-openai/test/support/upstream.js"

/** A chunk's JSON as an upstream might write it: spaced, with an escaped "é". */
const chunkText = (id: string, delta: string, finish: string | null = null) =>
  `{"id": "${id}", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [{"index": 0, "delta": ${delta}, "finish_reason": ${
    finish === null ? "null" : `"${finish}"`
  }}]}`

const completionText =
  `{"id": "cmpl-1", "object": "chat.completion", "created": 1, "model": "m", "choices": [{"index": 0, "message": {"role": "assistant", "content": "caf\\u00e9"}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}`

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

describe("the upstream's own text goes out for what no policy changed", () => {
  it.scopedLive("a non-streaming answer is the upstream's body, byte for byte", () =>
    Effect.gen(function*() {
      const upstream = yield* Upstream.start("/v1", (res) => {
        res.writeHead(200, { "content-type": "application/json" }).end(completionText)
      })
      const { url } = yield* gatewayFor(upstream.baseUrl)
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
      // The second content chunk's JSON is split over two data lines (legal SSE).
      const split = chunkText("c1", `{"content": " au lait"}`).replace(`"choices": `, `"choices":\ndata: `)
      const upstream = yield* Upstream.start(
        "/v1",
        Upstream.sse([`data: ${role}\n\ndata: ${text}\n\ndata: ${split}\n\ndata: ${finish}\n\ndata: ${usage}\n\ndata: [DONE]\n\n`])
      )
      const { url } = yield* gatewayFor(upstream.baseUrl)
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
      const upstream = yield* Upstream.start(
        "/v1",
        // Cut mid-answer: the socket goes away after one content chunk.
        Upstream.sse([`data: ${role}\n\ndata: ${first}\n\n`], "cut"),
        Upstream.sse([
          `data: ${chunkText("c2", `{"role": "assistant", "content": ""}`)}\n\ndata: ${chunkText("c2", `{"content": " world"}`)}\n\n` +
          `data: ${chunkText("c2", `{}`, "stop")}\n\ndata: [DONE]\n\n`
        ])
      )
      const { url } = yield* gatewayFor(upstream.baseUrl)
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
