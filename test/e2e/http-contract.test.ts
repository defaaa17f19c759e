/**
 * Promises of the HTTP host that only show over a real socket, through GatewayBuilder + HttpHost
 * in front of a MockUpstream: where it listens when no client keys are configured, the 410 for
 * a reconnect whose events a journal bound dropped, and that a stream with no Idempotency-Key
 * whose client leaves before anything was sent stops its upstream request at once.
 */
import { ConfigLoader, GatewayBuilder } from "@breakwater/gateway"
import { HttpHost } from "@breakwater/host-http"
import { StreamJournal } from "@breakwater/stream-resume"
import { MockUpstream } from "@breakwater/testing"
import { Effect, Exit, Scope } from "effect"
import { connect } from "node:net"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"

const { Fault } = MockUpstream

const KEY = "gw-contract-key-0001"
let mock: MockUpstream.MockUpstream
const scopes: Array<Scope.CloseableScope> = []

beforeAll(async () => {
  mock = await MockUpstream.start({ words: 30 })
})
afterEach(async () => {
  mock.reset()
  for (const scope of scopes.splice(0)) await Effect.runPromise(Scope.close(scope, Exit.void))
})
afterAll(async () => {
  await mock.stop()
})

/** A gateway over the mock, served on `host`; `keys` false: no client keys at all. */
const serve = async (options: {
  readonly keys?: boolean
  readonly host?: string
  readonly journal?: StreamJournal.StreamJournal
  readonly server?: Record<string, unknown>
  readonly log?: (line: unknown) => void
} = {}) => {
  const scope = Effect.runSync(Scope.make())
  scopes.push(scope)
  const config = await Effect.runPromise(ConfigLoader.fromObject({
    ...(options.keys === false ? {} : { auth: { keys: [{ name: "tests", key: KEY }] } }),
    ...(options.server === undefined ? {} : { server: options.server }),
    upstreams: { up: { provider: "openai", baseUrl: mock.url, models: ["chat"] } },
    routes: { chat: { upstreams: ["up"] } }
  }, {}))
  const gateway = await Effect.runPromise(Scope.extend(GatewayBuilder.make(config), scope))
  return Effect.runPromise(Scope.extend(
    HttpHost.serve(gateway, {
      port: 0,
      logLevel: "warning",
      log: options.log ?? (() => {}),
      ...(options.host === undefined ? {} : { host: options.host }),
      ...(options.journal === undefined ? {} : { journal: options.journal })
    }),
    scope
  ))
}

const auth = { "content-type": "application/json", authorization: `Bearer ${KEY}` }
const ask = (content: string, stream = true) => JSON.stringify({ model: "chat", messages: [{ role: "user", content }], stream })

/** Whether a TCP connection to host:port is accepted (loopback addresses only). */
const accepts = (host: string, port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect({ host, port })
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => resolve(false))
  })

describe("where the host listens", () => {
  // 127.0.0.2 is loopback too (Linux routes 127/8 to lo), but a socket bound to 127.0.0.1 does
  // not accept on it: a probe that tells "loopback only" from "every interface" without leaving
  // the machine.
  it("with client keys, the configured host (every interface) is used: the probe sees the wide bind", async () => {
    const running = await serve({ host: "0.0.0.0" })
    const port = Number(new URL(running.url).port)
    expect(await accepts("127.0.0.1", port)).toBe(true)
    expect(await accepts("127.0.0.2", port)).toBe(true)
  })

  it("with no client keys, it listens on 127.0.0.1 only whatever host is asked for, says so, and serves there", async () => {
    const lines: Array<string> = []
    const running = await serve({ keys: false, host: "0.0.0.0", log: (line) => lines.push(JSON.stringify(line)) })
    const { hostname, port } = new URL(running.url)
    expect(hostname).toBe("127.0.0.1")
    expect(await accepts("127.0.0.2", Number(port))).toBe(false)
    expect(lines.some((l) => l.includes("loopback only"))).toBe(true)
    const res = await fetch(`${running.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: ask("keyless", false) })
    expect(res.status).toBe(200)
  })
})

describe("reconnecting to a stream whose events a journal bound dropped", () => {
  it("answers 410 with a clear error for a Last-Event-ID before the kept events, and replays those still kept", async () => {
    const journal = await Effect.runPromise(StreamJournal.makeMemory({ maxEventsPerStream: 5 }))
    const running = await serve({ journal })
    const res = await fetch(`${running.url}/v1/chat/completions`, { method: "POST", headers: auth, body: ask("a long answer") })
    const streamId = res.headers.get("x-breakwater-stream-id")!
    const ids = (await res.text()).split("\n").filter((l) => l.startsWith("id: ")).map((l) => l.slice(4))
    expect(ids.length).toBeGreaterThan(10)
    const reconnect = (lastEventId: string) =>
      fetch(`${running.url}/v1/streams/${streamId}`, { headers: { authorization: `Bearer ${KEY}`, "last-event-id": lastEventId } })

    const gone = await reconnect(ids[0]!)
    expect(gone.status).toBe(410)
    expect(gone.headers.get("content-type")).toMatch(/application\/json/)
    const body = await gone.json() as { error: { message: string; code: string } }
    expect(body.error.code).toBe("stream_events_expired")
    expect(body.error.message).toMatch(/no longer kept/)
    // The newest five are kept: after the sixth from last, exactly them.
    const kept = await reconnect(ids.at(-6)!)
    expect(kept.status).toBe(200)
    expect((await kept.text()).split("\n").filter((l) => l.startsWith("id: ")).map((l) => l.slice(4))).toEqual(ids.slice(-5))
    // One before them is the first dropped gap: 410 again.
    expect((await reconnect(ids.at(-7)!)).status).toBe(410)
  })
})

describe("a client that leaves a stream before anything was sent", () => {
  /** POSTs a stream whose upstream never answers, and drops the client once the mock has the request. */
  const dropWhileWaiting = async (url: string, headers: Record<string, string>, content: string) => {
    const controller = new AbortController()
    const before = mock.requests.length
    const pending = fetch(`${url}/v1/chat/completions`, { method: "POST", headers, body: ask(content), signal: controller.signal }).catch(() => undefined)
    await mock.waitFor(before + 1)
    controller.abort()
    await pending
    return mock.requests[before]!
  }

  it("without an Idempotency-Key, the upstream request is cancelled at once (long detach grace or not); with one, it is kept for a reconnect", async () => {
    const running = await serve({ server: { detachGrace: "60 seconds", shutdownGrace: "100 millis" } })
    mock.setDefault({ fault: Fault.StallBeforeHeaders() })
    // With a key: the client may come back, so the generation waits for it (the grace is a minute).
    const kept = await dropWhileWaiting(running.url, { ...auth, "idempotency-key": "contract-1" }, "kept")
    let keptClosed = false
    void kept.closed.then(() => (keptClosed = true))
    // Without: nobody can come back for it, so the upstream request ends as soon as its client is gone.
    const dropped = await dropWhileWaiting(running.url, auth, "dropped")
    expect(await dropped.closed).toBe(true)
    // In that order: the later-dropped request without a key ended while the earlier one with a key is still open.
    expect(keptClosed).toBe(false)
    expect(mock.openResponses).toBe(1)
  })
})
