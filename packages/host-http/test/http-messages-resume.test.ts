/**
 * Last-Event-ID reconnect on a Messages stream (`POST /v1/messages`): every Anthropic event
 * carries an id, the journal keeps the client-facing events, and a reconnect (the same POST with
 * `Last-Event-ID`, or `GET /v1/streams/{id}`) gets exactly the missing events, byte for byte.
 */
import type { Gateway } from "@breakwater/gateway"
import { HttpHost } from "@breakwater/host-http"
import { StreamJournal } from "@breakwater/stream-resume"
import { FakeLanguageModel } from "@breakwater/testing"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Host from "./support/host.js"
import { eventsOf, idOf, readThenDrop, textOf } from "./support/reconnect.js"

const servers = Host.closedAfterEach()

const serve = async (gateway: Gateway.Gateway) => {
  const running = await HttpHost.start(gateway, { log: () => {}, journal: Effect.runSync(StreamJournal.makeMemory()) })
  servers.push(running)
  return running
}

const question = { model: "gpt-test", max_tokens: 256, stream: true, messages: [{ role: "user", content: "tell me about tides" }] }
const postMessages = (url: string, headers: Record<string, string> = {}, signal?: AbortSignal) =>
  fetch(`${url}/v1/messages`, {
    method: "POST",
    headers: { "content-type": "application/json", "anthropic-version": "2023-06-01", ...headers },
    body: JSON.stringify(question),
    ...(signal ? { signal } : {})
  })

const typeOf = (frame: string) => /^event: (.*)$/m.exec(frame)![1]!
const textOfEvents = (frames: ReadonlyArray<string>) =>
  frames.filter((f) => typeOf(f) === "content_block_delta").map((f) => JSON.parse(/^data: (.*)$/m.exec(f)![1]!).delta.text ?? "").join("")

describe("HttpHost: reconnecting a Messages stream", () => {
  it("takes an Idempotency-Key as the key of a Messages request: the same key sent to chat before is another request", async () => {
    const fake = FakeLanguageModel.make([{ text: textOf(4) }, { text: textOf(5) }, { text: textOf(6) }])
    const { url } = await serve(Host.gatewayOf(fake.model, { models: ["gpt-test"] }, { detachGraceMs: 5_000 }))
    const chat = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "idempotency-key": "same-key" },
      body: JSON.stringify({ model: "gpt-test", stream: true, messages: [{ role: "user", content: "hi" }] })
    })
    const chatId = chat.headers.get("x-breakwater-stream-id")!
    expect(chatId).toMatch(/^bws_[0-9a-f]{32}$/)
    await chat.text()
    const messages = await postMessages(url, { "idempotency-key": "same-key" })
    expect(messages.status).toBe(200)
    const messagesId = messages.headers.get("x-breakwater-stream-id")!
    expect(messagesId).toMatch(/^bws_msg_[0-9a-f]{32}$/)
    const events = eventsOf(await messages.text())
    expect(typeOf(events[0]!)).toBe("message_start")
    expect(textOfEvents(events)).toBe(textOf(5))
    expect(fake.calls).toHaveLength(2)
    // And the key still names the Messages request: sent again there, the same stream is replayed.
    const again = await postMessages(url, { "idempotency-key": "same-key" })
    expect(again.headers.get("x-breakwater-stream-id")).toBe(messagesId)
    expect(eventsOf(await again.text())).toEqual(events)
    expect(fake.calls).toHaveLength(2)
  })

  it("numbers every Anthropic event <streamId>:<seq>, the end events included", async () => {
    const fake = FakeLanguageModel.make([{ text: textOf(6) }])
    const { url } = await serve(Host.gatewayOf(fake.model, { models: ["gpt-test"] }, { detachGraceMs: 5_000 }))
    const res = await postMessages(url)
    const streamId = res.headers.get("x-breakwater-stream-id")!
    expect(streamId).toMatch(/^bws_/)
    const text = await res.text()
    const events = eventsOf(text)
    expect(events.map(idOf)).toEqual(events.map((_, i) => `${streamId}:${i + 1}`))
    expect(typeOf(events[0]!)).toBe("message_start")
    expect(events.slice(-2).map(typeOf)).toEqual(["message_delta", "message_stop"])
    // Every event has an id: none is outside the numbering.
    expect(text.split("\n").filter((l) => l.startsWith("event: ")).length).toBe(events.length)
    expect(textOfEvents(events)).toBe(textOf(6))
  })

  it("a client that drops and reconnects by the same POST with Last-Event-ID gets exactly the missing events, then the end", async () => {
    const fake = FakeLanguageModel.make([{ text: textOf(40), chunkDelay: "5 millis" }])
    const { url } = await serve(Host.gatewayOf(fake.model, { models: ["gpt-test"] }, { detachGraceMs: 5_000 }))
    const controller = new AbortController()
    const first = await postMessages(url, {}, controller.signal)
    const streamId = first.headers.get("x-breakwater-stream-id")!
    const undisturbed = fetch(`${url}/v1/streams/${streamId}`).then((r) => r.text())
    const before = eventsOf(await readThenDrop(first, controller, 6))
    const lastId = idOf(before.at(-1)!)
    const again = await postMessages(url, { "last-event-id": lastId })
    expect(again.status).toBe(200)
    const rest = eventsOf(await again.text())
    const all = eventsOf(await undisturbed)
    expect(before.join("") + rest.join("")).toBe(all.join(""))
    expect(all.filter((f) => typeOf(f) === "message_start")).toHaveLength(1)
    expect(typeOf(all.at(-1)!)).toBe("message_stop")
    expect(textOfEvents(all)).toBe(textOf(40))
    expect(fake.calls).toHaveLength(1)
    // Read to its end: nothing more to send.
    expect((await postMessages(url, { "last-event-id": idOf(all.at(-1)!) })).status).toBe(204)
  })
})
