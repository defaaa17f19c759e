/**
 * Two gateway instances (GatewayBuilder + HttpHost, one process) sharing a real redis-server:
 * a breaker tripped through A makes B fail fast; a stream started on A, dropped by its client,
 * resumes from B with exactly the missing events; killing Redis leaves both serving on local
 * state, and restarting it restores sharing.
 */
import { ConfigLoader, type Gateway, GatewayBuilder } from "@breakwater/gateway"
import { HttpHost } from "@breakwater/host-http"
import { MockUpstream } from "@breakwater/testing"
import { Effect, Exit, Scope } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { hasRedis, RedisServer, waitUntil } from "../../packages/store-redis/test/redisServer.js"

const { Fault } = MockUpstream

interface Instance {
  readonly url: string
  readonly gateway: Gateway.Gateway
}

let redis: RedisServer
let mock: MockUpstream.MockUpstream
let scope: Scope.CloseableScope
let a: Instance
let b: Instance

const start = async (): Promise<Instance> => {
  const config = await Effect.runPromise(ConfigLoader.fromObject({
    upstreams: {
      up: { provider: "openai", baseUrl: mock.url, models: ["chat"], breaker: { minimumCalls: 3, openDuration: "3 seconds" } },
      // The same mock under another name: its own breaker, untouched by the first test's trip.
      steady: { provider: "openai", baseUrl: mock.url, models: ["other"] }
    },
    routes: { chat: { upstreams: ["up"], retry: { enabled: false } }, other: { upstreams: ["steady"] } },
    redis: { url: redis.url, prefix: "e2e:", commandTimeout: 200 }
  }, {}))
  const gateway = await Effect.runPromise(Scope.extend(GatewayBuilder.make(config), scope))
  const running = await Effect.runPromise(Scope.extend(HttpHost.serve(gateway, { port: 0, logLevel: "none" }), scope))
  return { url: running.url, gateway }
}

beforeAll(async () => {
  if (!hasRedis) return
  redis = await RedisServer.start()
  mock = await MockUpstream.start({ words: 30 })
  scope = Effect.runSync(Scope.make())
  a = await start()
  b = await start()
})
afterAll(async () => {
  if (!hasRedis) return
  await Effect.runPromise(Scope.close(scope, Exit.void))
  await mock.stop()
  await redis.kill()
})

const post = (instance: Instance, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${instance.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) })

/** SSE events as (id, data) pairs. */
const events = (text: string) =>
  text.split("\n\n").filter((e) => e.includes("data: ")).map((e) => ({
    id: /^id: (.*)$/m.exec(e)?.[1],
    data: e.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n")
  }))

/** The raw text of each SSE event (the blocks with an id; keep-alive comments and the retry hint have none). */
const rawEvents = (text: string) => text.split("\n\n").filter((block) => /^id: /m.test(block))

const contentOf = (list: ReadonlyArray<{ readonly data: string }>) =>
  list.filter((e) => e.data !== "[DONE]").map((e) => (JSON.parse(e.data) as { choices?: Array<{ delta?: { content?: string } }> }).choices?.[0]?.delta?.content ?? "").join("")

describe.skipIf(!hasRedis)("two gateway instances sharing Redis", () => {
  it("a breaker tripped through A makes B fail fast, without calling the upstream", async () => {
    mock.reset()
    mock.setDefault({ fault: Fault.Status({ status: 503 }) })
    for (let i = 0; i < 3; i++) expect((await post(a, { model: "chat", messages: [{ role: "user", content: `a${i}` }] })).status).toBe(503)
    expect(mock.requests).toHaveLength(3)
    const refused = await post(b, { model: "chat", messages: [{ role: "user", content: "b" }] })
    expect(refused.status).toBe(503)
    expect(((await refused.json()) as { error: { type: string } }).error.type).toBe("circuit_open")
    expect(mock.requests).toHaveLength(3)
    expect((await Effect.runPromise(b.gateway.health)).upstreams[0]?.circuit).toBe("open")
    mock.setDefault({})
  })

  it("a stream started on A and dropped by its client resumes from B with exactly the missing events", async () => {
    mock.reset()
    mock.setDefault({ chunkDelayMs: 15 })
    const body = { model: "other", messages: [{ role: "user", content: "tell me everything" }], stream: true }
    // An undisturbed reader's view of the same answer, for comparison.
    const expected = mock.textFor(body)
    const controller = new AbortController()
    const first = await post(a, body, { "idempotency-key": "e2e-resume-1" })
    expect(first.status).toBe(200)
    const streamId = first.headers.get("x-breakwater-stream-id")!
    expect(streamId).toBeTruthy()
    // A second reader on A follows the whole stream from its start: the bytes A serves.
    const follower = fetch(`${a.url}/v1/streams/${streamId}`).then((r) => r.text())
    // Read a few events from A, then drop the connection.
    const reader = first.body!.getReader()
    let received = ""
    while (events(received).filter((e) => e.data !== "[DONE]" && contentOf([e]).length > 0).length < 5) {
      const { value, done } = await reader.read()
      if (done) throw new Error(`the stream from A ended early: ${received}`)
      received += new TextDecoder().decode(value)
    }
    const complete = received.slice(0, received.lastIndexOf("\n\n") + 2)
    const seen = events(complete)
    const lastId = seen.at(-1)!.id!
    controller.abort()
    await reader.cancel()
    // Reconnect to B with Last-Event-ID: the rest of the stream, nothing twice, nothing missing.
    const resumed = await fetch(`${b.url}/v1/streams/${streamId}`, { headers: { "last-event-id": lastId } })
    expect(resumed.status).toBe(200)
    const restText = await resumed.text()
    const rest = events(restText)
    // Byte for byte: each event B replays (its id line, data and any comment travelling with it)
    // is exactly the event A served to the reader that followed the stream from its start, and
    // the events the dropped client got from A are that reader's first ones.
    const whole = rawEvents(await follower)
    const seenRaw = rawEvents(complete)
    expect(seenRaw.length).toBeGreaterThanOrEqual(5)
    expect(seenRaw).toEqual(whole.slice(0, seenRaw.length))
    expect(rawEvents(restText)).toEqual(whole.slice(seenRaw.length))
    expect(rest.at(-1)?.data).toBe("[DONE]")
    expect(contentOf(seen) + contentOf(rest)).toBe(expected)
    const ids = [...seen, ...rest].map((e) => Number(e.id!.split(":").at(-1)))
    expect(ids).toEqual(ids.map((_, i) => ids[0]! + i))
    mock.setDefault({})
  })

  it("with Redis killed both instances keep serving on local state and say so; restarted, sharing resumes", async () => {
    mock.reset()
    // Ready to begin with (an earlier test's trip has run its course: open for 3 s, then half-open).
    const ready = async (instance: Instance) => (await fetch(`${instance.url}/readyz`)).status === 200
    await waitUntil(async () => (await ready(a)) && (await ready(b)), 10_000, "both instances ready before the outage")
    // /readyz on both instances, polled from before the kill until Redis is back: Redis down is a
    // degraded detail, never a readiness failure by itself.
    type Readiness = { status: number; ready: boolean; shared?: string | undefined }
    const polls: Array<Readiness> = []
    let polling = true
    const poller = (async () => {
      while (polling) {
        for (const instance of [a, b]) {
          const res = await fetch(`${instance.url}/readyz`)
          const body = await res.json() as { ready: boolean; sharedState?: { status: string } }
          polls.push({ status: res.status, ready: body.ready, shared: body.sharedState?.status })
        }
      }
    })()
    await redis.kill()
    for (const instance of [a, b]) {
      const res = await post(instance, { model: "other", messages: [{ role: "user", content: "while redis is down" }] })
      expect(res.status).toBe(200)
    }
    await waitUntil(async () => (await Effect.runPromise(a.gateway.health)).sharedState?.status === "down", 5_000, "A reports Redis down")
    await waitUntil(() => polls.filter((p) => p.shared === "down").length >= 4, 5_000, "readiness polled while Redis is down")
    polling = false
    await poller
    expect(polls.filter((p) => p.status !== 200 || !p.ready)).toEqual([])
    await redis.start()
    await waitUntil(async () => (await Effect.runPromise(a.gateway.health)).sharedState?.status === "up" && (await Effect.runPromise(b.gateway.health)).sharedState?.status === "up", 10_000, "both see Redis again")
    expect((await post(b, { model: "other", messages: [{ role: "user", content: "after" }] })).status).toBe(200)
  })
})
