/**
 * Client reconnects answer alike on both hosts: one session of reconnects, replays, refusals and
 * cancels runs against the lean `node:http` host and against the router mounted in an
 * `@effect/platform-node` server; each run checks what the client gets, and the two transcripts
 * of answers must be the same.
 */
import type { LanguageModel } from "@breakwater/core"
import type { Gateway } from "@breakwater/gateway"
import { HttpHost } from "@breakwater/host-http"
import { GatewayRouter } from "@breakwater/host-platform"
import { StreamJournal } from "@breakwater/stream-resume"
import { FakeLanguageModel } from "@breakwater/testing"
import * as HttpServer from "@effect/platform/HttpServer"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { afterEach, describe, expect, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Redacted, Scope, Stream } from "effect"
import { createServer } from "node:http"
import * as Host from "../../host-http/test/support/host.js"
import { contentOf, dataOf, eventsOf, idOf, post, readThenDrop, textOf } from "../../host-http/test/support/reconnect.js"

interface Served {
  readonly url: string
  readonly journal: StreamJournal.StreamJournal
}
type Options = { readonly journal?: false; readonly reconnectRetryMs?: number }

const closers: Array<() => Promise<void>> = []
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()))
})

const lean = async (gateway: Gateway.Gateway, options: Options): Promise<Served> => {
  const journal = Effect.runSync(StreamJournal.makeMemory())
  const running = await HttpHost.start(gateway, { log: () => {}, ...options, journal: options.journal ?? journal })
  closers.push(() => running.close(100))
  return { url: running.url, journal }
}

const platform = async (gateway: Gateway.Gateway, options: Options): Promise<Served> => {
  const journal = Effect.runSync(StreamJournal.makeMemory())
  const scope = Effect.runSync(Scope.make())
  closers.push(() => Effect.runPromise(Scope.close(scope, Exit.void)))
  const url = await Effect.runPromise(Effect.gen(function*() {
    const router = yield* GatewayRouter.make(gateway, { log: () => {}, ...options, journal: options.journal ?? journal })
    const server = yield* Layer.build(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" }))
    yield* HttpServer.serveEffect(router).pipe(Effect.provide(server))
    const address = Context.get(server, HttpServer.HttpServer).address as HttpServer.TcpAddress
    return `http://127.0.0.1:${address.port}`
  }).pipe(Scope.extend(scope)))
  return { url, journal }
}

const gatewayOf = (model: LanguageModel.Service, over: Partial<Gateway.Gateway>, server: Partial<Gateway.ServerSettings>) =>
  Host.gatewayOf(model, { models: ["gpt-test"], ...over }, server)

const codeOf = async (res: Response) => ((await res.json()) as { error: { code: string } }).error.code

/** A fake whose streams report when their work ends (finishes or is interrupted). */
const observed = (steps: ReadonlyArray<FakeLanguageModel.Step>) => {
  const fake = FakeLanguageModel.make(steps)
  const waiting: Array<() => void> = []
  const model: LanguageModel.Service = {
    generate: fake.model.generate,
    stream: (r, o) => Stream.ensuring(fake.model.stream(r, o), Effect.sync(() => waiting.shift()?.()))
  }
  /** Resolves when the next stream to end has ended. */
  const nextEnd = () => new Promise<void>((resolve) => waiting.push(resolve))
  return { fake, model, nextEnd }
}

const a = { authorization: "Bearer gw-a" }
const b = { authorization: "Bearer gw-b" }
const keys = [{ name: "team-a", key: Redacted.make("gw-a") }, { name: "team-b", key: Redacted.make("gw-b") }]

/** Runs the session on one host; the transcript of its answers, stream ids named by their order. */
const session = async (serve: (gateway: Gateway.Gateway, options: Options) => Promise<Served>) => {
  const { fake, model, nextEnd } = observed([
    { words: 10 },
    { text: textOf(30), chunkDelay: "5 millis" },
    { stallAfterChunks: 2 },
    { stallAfterChunks: 3 }
  ])
  const { journal, url } = await serve(gatewayOf(model, { keys }, { detachGraceMs: 100 }), { reconnectRetryMs: 1500 })
  const transcript: Array<string> = []
  const ids = new Map<string, string>()
  const say = (line: string) => transcript.push(line.replace(/bws_[0-9a-f]{32}/g, (id) => ids.get(id) ?? ids.set(id, `S${ids.size + 1}`).get(id)!))
  const answer = async (label: string, res: Response) =>
    say(`${label}: ${res.status} ${res.status >= 400 ? await codeOf(res) : res.headers.get("x-breakwater-stream-id")}`)
  const streams = (id: string, headers: Record<string, string> = {}, method = "GET") => fetch(`${url}/v1/streams/${id}`, { method, headers })

  // A stream with an Idempotency-Key: numbered events, replayed whole or after an id, never generated twice.
  const first = await post(url, { ...a, "idempotency-key": "order-1" })
  const s1 = first.headers.get("x-breakwater-stream-id")!
  expect(s1).toMatch(/^bws_[0-9a-f]{32}$/)
  const text = await first.text()
  expect(text.startsWith("retry: 1500\n\n")).toBe(true)
  const events = eventsOf(text)
  expect(events.map(idOf)).toEqual(events.map((_, i) => `${s1}:${i + 1}`))
  expect(dataOf(events.at(-1)!)).toBe("[DONE]")
  say(`stream: ${s1} ${events.length} events`)
  const again = await post(url, { ...a, "idempotency-key": "order-1" })
  expect(eventsOf(await again.text()).join("")).toBe(events.join(""))
  const after3 = await post(url, { ...a, "idempotency-key": "order-1", "last-event-id": idOf(events[2]!) })
  expect(eventsOf(await after3.text()).join("")).toBe(events.slice(3).join(""))
  const byGet = await streams(s1, { ...a, "last-event-id": idOf(events[5]!) })
  expect(eventsOf(await byGet.text()).join("")).toBe(events.slice(6).join(""))
  expect(fake.calls).toHaveLength(1)
  await answer("fully read", await streams(s1, { ...a, "last-event-id": idOf(events.at(-1)!) }))
  await answer("no key", await streams(s1, { "last-event-id": idOf(events[0]!) }))
  await answer("another tenant", await streams(s1, { ...b, "last-event-id": idOf(events[0]!) }))
  await answer("another tenant's POST", await post(url, { ...b, "last-event-id": idOf(events[0]!) }))
  await answer("another tenant's cancel", await streams(s1, b, "DELETE"))
  await answer("another stream's id", await streams(s1, { ...a, "last-event-id": "other:1" }))
  await answer("not an event id", await post(url, { ...a, "last-event-id": "not-an-id" }))
  await answer("not a stream id", await streams("a%2Fb", a))
  await answer("unknown", await streams("bws_unknown", { ...a, "last-event-id": "bws_unknown:3" }))
  Effect.runSync(journal.remove(s1))
  await answer("expired", await streams(s1, { ...a, "last-event-id": idOf(events[0]!) }))

  // A client drops mid-stream: the generation goes on, and a reconnect gets the rest, byte for byte.
  const controller = new AbortController()
  const live = await post(url, a, controller.signal)
  const s2 = live.headers.get("x-breakwater-stream-id")!
  const undisturbed = streams(s2, a).then((r) => r.text())
  const before = eventsOf(await readThenDrop(live, controller, 5))
  const rest = await streams(s2, { ...a, "last-event-id": idOf(before.at(-1)!) })
  const restText = await rest.text()
  expect(restText.startsWith("retry: 1500\n\n")).toBe(true)
  const all = eventsOf(await undisturbed)
  expect(before.join("") + eventsOf(restText).join("")).toBe(all.join(""))
  expect(contentOf(all)).toBe(textOf(30))
  say(`reconnected: ${rest.status} ${before.length}+${eventsOf(restText).length} of ${all.length} events`)

  // A cancel stops a generation at once; its client gets a well-formed end.
  const ended = nextEnd()
  const cancelledStream = await post(url, a)
  const s3 = cancelledStream.headers.get("x-breakwater-stream-id")!
  const cancelledText = cancelledStream.text()
  await answer("cancel", await streams(s3, a, "DELETE"))
  await ended
  const cut = eventsOf(await cancelledText)
  expect(idOf(cut.at(-1)!)).toBe(`${s3}:${cut.length}`)
  say(`cancelled: ${JSON.parse(dataOf(cut.at(-1)!)).error.code}`)
  await answer("cancelled, fully read", await streams(s3, { ...a, "last-event-id": idOf(cut.at(-1)!) }))

  // A client that leaves and never comes back: the generation is cut after the detach grace.
  const cutLater = nextEnd()
  const leaving = new AbortController()
  const left = await post(url, a, leaving.signal)
  const s4 = left.headers.get("x-breakwater-stream-id")!
  await readThenDrop(left, leaving, 2)
  await cutLater
  const tail = eventsOf(await (await streams(s4, a)).text())
  say(`detached, then cut: ${JSON.parse(dataOf(tail.at(-1)!)).error.code}`)
  expect(fake.calls).toHaveLength(4)
  return transcript
}

describe("client reconnects", () => {
  it("answer on host-platform as on host-http", async () => {
    const onLean = await session(lean)
    const onPlatform = await session(platform)
    expect(onPlatform).toEqual(onLean)
    expect(onLean).toContain("fully read: 204 S1")
    expect(onLean).toContain("expired: 410 stream_expired")
  })

  it("a replay of a Messages stream that the journal cuts ends with Anthropic's error event, on both hosts", async () => {
    for (const serve of [lean, platform]) {
      const fake = FakeLanguageModel.make([{ stallAfterChunks: 3 }])
      const { journal, url } = await serve(gatewayOf(fake.model, {}, { detachGraceMs: 5_000 }), {})
      const controller = new AbortController()
      const live = await fetch(`${url}/v1/messages`, {
        method: "POST",
        headers: { "content-type": "application/json", "anthropic-version": "2023-06-01" },
        body: JSON.stringify({ model: "gpt-test", max_tokens: 64, stream: true, messages: [{ role: "user", content: "tides" }] }),
        signal: controller.signal
      })
      const streamId = live.headers.get("x-breakwater-stream-id")!
      expect(streamId).toMatch(/^bws_msg_[0-9a-f]{32}$/)
      await readThenDrop(live, controller, 2)
      // A reader by the streams API (which does not say the API), then the stream is evicted under it.
      const reader = await fetch(`${url}/v1/streams/${streamId}`)
      expect(reader.status).toBe(200)
      const body = reader.body!.getReader()
      const decoder = new TextDecoder()
      let text = ""
      while (eventsOf(text).length < 2) text += decoder.decode((await body.read()).value, { stream: true })
      Effect.runSync(journal.remove(streamId))
      for (let r = await body.read(); !r.done; r = await body.read()) text += decoder.decode(r.value, { stream: true })
      const frames = text.split(/(?<=\n\n)/)
      expect(frames.filter((f) => /^event: message_start$/m.test(f))).toHaveLength(1)
      const last = frames.at(-1)!
      expect(last).toMatch(/^event: error$/m)
      expect(JSON.parse(dataOf(last))).toMatchObject({ type: "error", error: { type: "invalid_request_error", message: "the stream expired while being read" } })
    }
  })

  it("without a journal, a stream has no ids and the streams API knows none", async () => {
    for (const serve of [lean, platform]) {
      const fake = FakeLanguageModel.make()
      const { url } = await serve(gatewayOf(fake.model, {}, {}), { journal: false })
      const res = await post(url)
      expect(res.headers.get("x-breakwater-stream-id")).toBeNull()
      expect(await res.text()).not.toMatch(/^id: /m)
      expect((await fetch(`${url}/v1/streams/x`)).status).toBe(404)
    }
  })
})
