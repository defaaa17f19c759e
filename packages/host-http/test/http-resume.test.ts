import type { ChatCompletion, LanguageModel } from "@breakwater/core"
import type { Gateway } from "@breakwater/gateway"
import { HttpHost } from "@breakwater/host-http"
import { ResumeClient, StreamJournal } from "@breakwater/stream-resume"
import { FakeLanguageModel } from "@breakwater/testing"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Redacted, Stream } from "effect"
import * as Host from "./support/host.js"
import { chat, contentOf, cuttingAfter, dataOf, eventsOf, idOf, post, readThenDrop, textOf } from "./support/reconnect.js"

// A detached generation goes on for 5 s unless a test says otherwise.
const gatewayOf = (model: LanguageModel.Service, over: Partial<Gateway.Gateway> = {}, server: Partial<Gateway.ServerSettings> = {}): Gateway.Gateway =>
  Host.gatewayOf(model, { models: ["gpt-test"], ...over }, { detachGraceMs: 5_000, ...server })

const servers = Host.closedAfterEach()

const serve = async (gateway: Gateway.Gateway, options: HttpHost.Options = {}) => {
  const journal = options.journal || Effect.runSync(StreamJournal.makeMemory())
  const running = await HttpHost.start(gateway, { log: () => {}, ...options, journal })
  servers.push(running)
  return { ...running, journal }
}

/** A fake whose stream reports when its work ends (finishes or is interrupted). */
const observed = (steps: ReadonlyArray<FakeLanguageModel.Step>) => {
  const fake = FakeLanguageModel.make(steps)
  const ended: Array<number> = []
  let onEnd: () => void = () => {}
  const endedOnce = new Promise<void>((resolve) => {
    onEnd = resolve
  })
  const model: LanguageModel.Service = {
    generate: fake.model.generate,
    stream: (r, o) =>
      Stream.ensuring(fake.model.stream(r, o), Effect.sync(() => {
        ended.push(performance.now())
        onEnd()
      }))
  }
  return { fake, model, ended, endedOnce }
}

const until = async (condition: () => boolean | Promise<boolean>, timeoutMs = 5_000) => {
  const start = performance.now()
  while (!(await condition())) {
    if (performance.now() - start > timeoutMs) throw new Error("condition not met in time")
    await new Promise((r) => setTimeout(r, 5))
  }
}

describe("HttpHost client resume", () => {
  it("numbers every event <streamId>:<seq>, starts with a retry hint, and names the stream in a header", async () => {
    const fake = FakeLanguageModel.make([{ text: textOf(8) }])
    const { url } = await serve(gatewayOf(fake.model), { reconnectRetryMs: 1500 })
    const res = await post(url)
    const streamId = res.headers.get("x-breakwater-stream-id")!
    expect(streamId).toMatch(/^bws_[0-9a-f]{32}$/)
    const text = await res.text()
    expect(text.startsWith("retry: 1500\n\n")).toBe(true)
    const events = eventsOf(text)
    expect(events.map(idOf)).toEqual(events.map((_, i) => `${streamId}:${i + 1}`))
    expect(dataOf(events.at(-1)!)).toBe("[DONE]")
    // Every data line is inside an event with an id: comments carry none.
    expect(text.split("\n").filter((l) => l.startsWith("data: ")).length).toBe(events.length)
    expect(contentOf(events)).toBe(textOf(8))
  })

  it("a client that drops and reconnects with Last-Event-ID gets exactly the missing events, byte for byte, then the live rest", async () => {
    const fake = FakeLanguageModel.make([{ text: textOf(40), chunkDelay: "5 millis" }])
    const { url } = await serve(gatewayOf(fake.model))
    const controller = new AbortController()
    const first = await post(url, {}, controller.signal)
    const streamId = first.headers.get("x-breakwater-stream-id")!
    // The undisturbed run: a reader of the same stream from its first event.
    const undisturbed = fetch(`${url}/v1/streams/${streamId}`).then((r) => r.text())
    const before = eventsOf(await readThenDrop(first, controller, 5))
    const lastId = idOf(before.at(-1)!)
    const again = await fetch(`${url}/v1/streams/${streamId}`, { headers: { "last-event-id": lastId } })
    expect(again.status).toBe(200)
    const rest = await again.text()
    expect(rest.startsWith("retry: ")).toBe(true)
    const all = eventsOf(await undisturbed)
    const seq = Number(lastId.split(":").at(-1))
    expect(eventsOf(rest).join("")).toBe(all.slice(seq).join(""))
    expect(before.join("") + eventsOf(rest).join("")).toBe(all.join(""))
    expect(dataOf(all.at(-1)!)).toBe("[DONE]")
    expect(contentOf(all)).toBe(textOf(40))
    expect(fake.calls).toHaveLength(1)
  })

  it("a stream whose events arrive in one large read is replayed byte for byte (its journal keeps the bytes the client got)", async () => {
    const fake = FakeLanguageModel.make([{ text: "unused" }])
    // Every chunk in one batch, as from one socket read of a fast upstream.
    const words = textOf(600).split(/(?= )/)
    const chunk = (delta: ChatCompletion.ChatCompletionChunk["choices"][number]["delta"], finish: string | null = null): ChatCompletion.ChatCompletionChunk => ({
      id: "c1",
      object: "chat.completion.chunk" as const,
      created: 1,
      model: "gpt-test",
      choices: [{ index: 0, delta, finish_reason: finish }]
    })
    const model: LanguageModel.Service = {
      generate: fake.model.generate,
      stream: () =>
        Stream.fromIterable([chunk({ role: "assistant", content: "" }), ...[...words, " é ☃ 😀"].map((w) => chunk({ content: w })), chunk({}, "stop")])
    }
    const { journal, url } = await serve(gatewayOf(model))
    const res = await post(url)
    const streamId = res.headers.get("x-breakwater-stream-id")!
    const got = await res.text()
    const events = eventsOf(got)
    expect(contentOf(events)).toBe(textOf(600) + " é ☃ 😀")
    // The whole stream, replayed from the journal, then from the middle.
    const all = await fetch(`${url}/v1/streams/${streamId}`).then((r) => r.text())
    expect(eventsOf(all)).toEqual(events)
    const middle = idOf(events[Math.floor(events.length / 2)]!)
    const rest = await fetch(`${url}/v1/streams/${streamId}`, { headers: { "last-event-id": middle } }).then((r) => r.text())
    expect(eventsOf(rest)).toEqual(events.slice(Math.floor(events.length / 2) + 1))
    // What the journal holds, event by event, is what the client got.
    const read = await Effect.runPromise(journal.read(streamId, 0, events.length + 1))
    expect(read.events.map((e) => e.frame).join("")).toBe(got.slice(got.indexOf("id: ")))
  })

  it("answers a finished and fully read stream with 204, an expired one with 410 (never 204), and an unknown one with 404", async () => {
    const fake = FakeLanguageModel.make([{ words: 4 }])
    const { journal, url } = await serve(gatewayOf(fake.model))
    const res = await post(url)
    const streamId = res.headers.get("x-breakwater-stream-id")!
    const events = eventsOf(await res.text())
    const last = idOf(events.at(-1)!)
    expect((await fetch(`${url}/v1/streams/${streamId}`, { headers: { "last-event-id": last } })).status).toBe(204)
    // From an earlier id, a finished stream replays its rest and ends.
    const rest = await fetch(`${url}/v1/streams/${streamId}`, { headers: { "last-event-id": idOf(events[1]!) } })
    expect(eventsOf(await rest.text()).join("")).toBe(events.slice(2).join(""))
    Effect.runSync(journal.remove(streamId))
    const expired = await fetch(`${url}/v1/streams/${streamId}`, { headers: { "last-event-id": idOf(events[0]!) } })
    expect(expired.status).toBe(410)
    expect((await expired.json() as { error: { code: string } }).error.code).toBe("stream_expired")
    const unknown = await fetch(`${url}/v1/streams/bws_unknown`, { headers: { "last-event-id": "bws_unknown:3" } })
    expect(unknown.status).toBe(404)
    expect((await unknown.json() as { error: { code: string } }).error.code).toBe("stream_not_found")
    // A Last-Event-ID of another stream is a client error.
    expect((await fetch(`${url}/v1/streams/${streamId}`, { headers: { "last-event-id": "other:1" } })).status).toBe(400)
  })

  it("replays the same POST with its Idempotency-Key (from the start, or after Last-Event-ID) without a second generation", async () => {
    const fake = FakeLanguageModel.make([{ words: 10 }])
    const { url } = await serve(gatewayOf(fake.model))
    const res = await post(url, { "idempotency-key": "req-1" })
    const text = await res.text()
    const events = eventsOf(text)
    const again = await post(url, { "idempotency-key": "req-1" })
    expect(again.headers.get("x-breakwater-stream-id")).toBe(res.headers.get("x-breakwater-stream-id"))
    expect(eventsOf(await again.text()).join("")).toBe(events.join(""))
    const rest = await post(url, { "idempotency-key": "req-1", "last-event-id": idOf(events[3]!) })
    expect(eventsOf(await rest.text()).join("")).toBe(events.slice(4).join(""))
    const done = await post(url, { "idempotency-key": "req-1", "last-event-id": idOf(events.at(-1)!) })
    expect(done.status).toBe(204)
    expect(fake.calls).toHaveLength(1)
    // Another key is another request.
    expect((await post(url, { "idempotency-key": "req-2" })).headers.get("x-breakwater-stream-id")).not.toBe(res.headers.get("x-breakwater-stream-id"))
    expect(fake.calls).toHaveLength(2)
  })

  it("keeps one tenant out of another's streams (reconnect, idempotent replay, cancel)", async () => {
    const fake = FakeLanguageModel.make()
    const keys = [{ name: "team-a", key: Redacted.make("gw-a") }, { name: "team-b", key: Redacted.make("gw-b") }]
    const { url } = await serve(gatewayOf(fake.model, { keys }))
    const a = { authorization: "Bearer gw-a" }
    const b = { authorization: "Bearer gw-b" }
    const res = await post(url, { ...a, "idempotency-key": "shared" })
    const streamId = res.headers.get("x-breakwater-stream-id")!
    const first = idOf(eventsOf(await res.text())[0]!)
    expect((await fetch(`${url}/v1/streams/${streamId}`, { headers: { "last-event-id": first } })).status).toBe(401)
    expect((await fetch(`${url}/v1/streams/${streamId}`, { headers: { ...b, "last-event-id": first } })).status).toBe(404)
    expect((await post(url, { ...b, "last-event-id": first })).status).toBe(404)
    expect((await fetch(`${url}/v1/streams/${streamId}`, { method: "DELETE", headers: b })).status).toBe(404)
    // The same Idempotency-Key under another key is that tenant's own, new stream.
    const other = await post(url, { ...b, "idempotency-key": "shared" })
    expect(other.headers.get("x-breakwater-stream-id")).not.toBe(streamId)
    await other.text()
    expect(fake.calls).toHaveLength(2)
    expect((await fetch(`${url}/v1/streams/${streamId}`, { headers: { ...a, "last-event-id": first } })).status).toBe(200)
  })

  it("keeps generating after the client leaves and cancels the upstream work after the detach grace, not before", async () => {
    const { fake, model, ended, endedOnce } = observed([{ stallAfterChunks: 3 }])
    const graceMs = 300
    const { journal, url } = await serve(gatewayOf(model, {}, { detachGraceMs: graceMs }))
    const controller = new AbortController()
    const res = await post(url, {}, controller.signal)
    const streamId = res.headers.get("x-breakwater-stream-id")!
    await readThenDrop(res, controller, 2)
    const leftAt = performance.now()
    await new Promise((r) => setTimeout(r, graceMs / 3))
    expect(ended).toHaveLength(0)
    await endedOnce
    expect(ended[0]! - leftAt).toBeGreaterThanOrEqual(graceMs - 20)
    expect(fake.calls).toHaveLength(1)
    // A reader that comes back later gets a well-formed end: the cancellation as an error event.
    await until(() => Effect.runSync(journal.read(streamId, 0)).finished)
    const tail = eventsOf(Effect.runSync(journal.read(streamId, 0)).events.map((e) => e.frame).join(""))
    expect(JSON.parse(dataOf(tail.at(-1)!)).error.code).toBe("stream_cancelled")
  })

  it("does not cut a detached generation while a reconnected reader follows it", async () => {
    const { fake, model, ended, endedOnce } = observed([{ text: textOf(30), firstChunkDelay: "10 millis", chunkDelay: "40 millis" }])
    const graceMs = 150
    const { url } = await serve(gatewayOf(model, {}, { detachGraceMs: graceMs }))
    const controller = new AbortController()
    const res = await post(url, {}, controller.signal)
    const streamId = res.headers.get("x-breakwater-stream-id")!
    const before = eventsOf(await readThenDrop(res, controller, 2))
    const rest = await (await fetch(`${url}/v1/streams/${streamId}`, { headers: { "last-event-id": idOf(before.at(-1)!) } })).text()
    await endedOnce
    expect(ended).toHaveLength(1)
    const all = [...before, ...eventsOf(rest)]
    expect(dataOf(all.at(-1)!)).toBe("[DONE]")
    expect(contentOf(all)).toBe(textOf(30))
    expect(fake.calls).toHaveLength(1)
  })

  it("stops at once when the client leaves and journaling is off", async () => {
    const { model, ended, endedOnce } = observed([{ stallAfterChunks: 2 }])
    const running = await HttpHost.start(gatewayOf(model, {}, { detachGraceMs: 60_000 }), { log: () => {}, journal: false })
    servers.push(running)
    const controller = new AbortController()
    const res = await post(running.url, {}, controller.signal)
    expect(res.headers.get("x-breakwater-stream-id")).toBeNull()
    const text = await readThenDrop(res, controller, 0).catch(() => "")
    expect(text).not.toMatch(/^id: /m)
    await endedOnce
    expect(ended).toHaveLength(1)
    expect((await fetch(`${running.url}/v1/streams/x`)).status).toBe(404)
  })

  it("DELETE /v1/streams/{id} stops the generation at once; the client gets a well-formed end", async () => {
    const { model, endedOnce } = observed([{ stallAfterChunks: 2 }])
    const { url } = await serve(gatewayOf(model))
    const res = await post(url)
    const streamId = res.headers.get("x-breakwater-stream-id")!
    const body = res.text()
    const cancel = await fetch(`${url}/v1/streams/${streamId}`, { method: "DELETE" })
    expect(cancel.status).toBe(204)
    await endedOnce
    const events = eventsOf(await body)
    const last = events.at(-1)!
    expect(idOf(last)).toBe(`${streamId}:${events.length}`)
    expect(JSON.parse(dataOf(last)).error.code).toBe("stream_cancelled")
    expect(events.map(dataOf)).not.toContain("[DONE]")
    expect((await fetch(`${url}/v1/streams/${streamId}`, { headers: { "last-event-id": idOf(last) } })).status).toBe(204)
    expect((await fetch(`${url}/v1/streams/nope`, { method: "DELETE" })).status).toBe(404)
  })

  it("ResumeClient through a mid-stream drop yields the full text exactly once", async () => {
    const fake = FakeLanguageModel.make([{ text: textOf(40), chunkDelay: "3 millis" }])
    const { url } = await serve(gatewayOf(fake.model), { reconnectRetryMs: 20 })
    // The first response is cut after a few hundred bytes, as a network error would.
    const cut = cuttingAfter(600)
    const cutting = cut.fetch
    const reconnects: Array<ResumeClient.ReconnectInfo> = []
    let text = ""
    for await (const chunk of ResumeClient.stream({ url: `${url}/v1/chat/completions`, body: chat, fetch: cutting, initialDelayMs: 10, onReconnect: (i) => reconnects.push(i) })) {
      text += chunk.choices[0]?.delta.content ?? ""
    }
    expect(text).toBe(textOf(40))
    expect(reconnects).toHaveLength(1)
    expect(reconnects[0]!.lastEventId).toMatch(/^bws_[0-9a-f]{32}:\d+$/)
    expect(cut.calls()).toBe(2)
    expect(fake.calls).toHaveLength(1)
  })
})
