import { ResumeClient } from "@breakwater/stream-resume"
import { describe, expect, it } from "@effect/vitest"
import { SseParser } from "../src/internal/clientSse.js"

const chunk = (content: string) => JSON.stringify({ id: "c", object: "chat.completion.chunk", created: 1, model: "m", choices: [{ index: 0, delta: { content }, finish_reason: null }] })

/** A fake fetch answering each call with the next scripted body (or throwing it). */
const scripted = (bodies: ReadonlyArray<string | Error | Response>) => {
  const requests: Array<Record<string, string>> = []
  const fetch = (async (_url: string, init: RequestInit) => {
    requests.push(init.headers as Record<string, string>)
    const next = bodies[requests.length - 1]!
    if (next instanceof Error) throw next
    if (next instanceof Response) return next
    return new Response(next, { status: 200, headers: { "content-type": "text/event-stream" } })
  }) as typeof globalThis.fetch
  return { fetch, requests }
}

const collect = async (options: ResumeClient.Options) => {
  let text = ""
  for await (const c of ResumeClient.stream(options)) text += c.choices[0]?.delta.content ?? ""
  return text
}

const opts = { url: "http://gw/v1/chat/completions", body: { model: "m", messages: [] }, initialDelayMs: 1 }

describe("SseParser", () => {
  it("parses LF, CRLF and CR line ends across arbitrary splits; comments ignored; ids persist; an incomplete event is not dispatched", () => {
    const text = ": hi\r\nretry: 50\r\nid: s:1\r\ndata: a\r\ndata: b\r\n\r\ndata: c\n\nid: s:2\rdata: d\r\rdata: tail"
    for (let cut = 0; cut <= text.length; cut++) {
      const p = new SseParser()
      const events = [...p.push(text.slice(0, cut)), ...p.push(text.slice(cut))]
      expect(events).toEqual([{ id: "s:1", data: "a\nb" }, { id: "s:1", data: "c" }, { id: "s:2", data: "d" }])
      expect(p.retryMs).toBe(50)
    }
  })
})

describe("ResumeClient", () => {
  it("reconnects after a stream that ends without its terminal event, with Last-Event-ID and the same Idempotency-Key", async () => {
    const { fetch, requests } = scripted([
      `id: s:1\ndata: ${chunk("Hel")}\n\nid: s:2\ndata: ${chunk("lo")}\n\nid: s:3\ndata: ${chunk(" wor")}`,
      `retry: 1\n\nid: s:3\ndata: ${chunk(" world")}\n\nid: s:4\ndata: [DONE]\n\n`
    ])
    expect(await collect({ ...opts, fetch })).toBe("Hello world")
    expect(requests).toHaveLength(2)
    expect(requests[0]!["last-event-id"]).toBeUndefined()
    expect(requests[1]!["last-event-id"]).toBe("s:2")
    expect(requests[1]!["idempotency-key"]).toBe(requests[0]!["idempotency-key"])
  })

  it("reconnects after network errors with backoff, and gives up after maxAttempts fruitless connections", async () => {
    const delays: Array<number> = []
    const { fetch, requests } = scripted([new TypeError("reset"), new TypeError("reset"), `id: s:1\ndata: ${chunk("ok")}\n\ndata: [DONE]\n\n`])
    expect(await collect({ ...opts, fetch, onReconnect: (i) => delays.push(i.delayMs) })).toBe("ok")
    expect(requests).toHaveLength(3)
    expect(delays).toEqual([1, 2])
    const failing = scripted([new TypeError("a"), new TypeError("b"), new TypeError("c")])
    await expect(collect({ ...opts, fetch: failing.fetch, maxAttempts: 3 })).rejects.toMatchObject({ name: "ResumeError", status: undefined })
    expect(failing.requests).toHaveLength(3)
  })

  it("does not reconnect after the gateway's error event, a 4xx, a 204, or events without ids", async () => {
    const errorEvent = scripted([`id: s:1\ndata: ${chunk("x")}\n\nid: s:2\ndata: {"error":{"message":"upstream gave up","type":"server_error","code":null}}\n\n`])
    await expect(collect({ ...opts, fetch: errorEvent.fetch })).rejects.toMatchObject({ status: 200, message: "upstream gave up" })
    expect(errorEvent.requests).toHaveLength(1)
    const notFound = scripted([new Response(JSON.stringify({ error: { message: "no such stream" } }), { status: 404 })])
    await expect(collect({ ...opts, fetch: notFound.fetch })).rejects.toMatchObject({ status: 404, message: "no such stream" })
    const expired = scripted([`id: s:1\ndata: ${chunk("x")}\n\n`, new Response(null, { status: 204 })])
    await expect(collect({ ...opts, fetch: expired.fetch })).rejects.toMatchObject({ status: 204 })
    const anonymous = scripted([`data: ${chunk("x")}\n\n`])
    await expect(collect({ ...opts, fetch: anonymous.fetch })).rejects.toThrow(/does not support resuming/)
    expect(anonymous.requests).toHaveLength(1)
  })

  it("retries a 503 from the gateway", async () => {
    const { fetch, requests } = scripted([new Response("{}", { status: 503 }), `id: s:1\ndata: ${chunk("ok")}\n\nid: s:2\ndata: [DONE]\n\n`])
    expect(await collect({ ...opts, fetch })).toBe("ok")
    expect(requests).toHaveLength(2)
  })
})
