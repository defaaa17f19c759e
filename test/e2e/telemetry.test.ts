/**
 * Traces through the real stack (issue #22): config → GatewayBuilder (with a tracer over an
 * in-memory exporter) → HttpHost over loopback → the adapters → MockUpstream. What the host
 * exported is read from the exporter, what reached the upstream from the mock's request log.
 */
import { ConfigLoader, GatewayBuilder, Tracing } from "@breakwater/gateway"
import { HttpHost } from "@breakwater/host-http"
import { Telemetry, type TelemetryOptions } from "@breakwater/telemetry"
import { MockUpstream } from "@breakwater/testing"
import { describe, expect, it } from "@effect/vitest"
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Effect } from "effect"

const { Fault, ContinuationFault } = MockUpstream
const CANARY = "canary-b41d7e09-never-in-a-span"

/** Two mock upstreams, a traced gateway over them served over loopback, and its exported spans. */
const setup = (telemetry: TelemetryOptions.TelemetryOptionsInput = { enabled: true }, wrap: (t: Tracing.Tracer) => Tracing.Tracer = (t) => t) =>
  Effect.gen(function*() {
    const primary = yield* MockUpstream.scoped()
    const secondary = yield* MockUpstream.scoped()
    const exporter = new InMemorySpanExporter()
    const config = yield* ConfigLoader.fromObject({
      upstreams: {
        primary: { provider: "openai", baseUrl: primary.url, models: ["chat"] },
        fragile: {
          provider: "openai",
          baseUrl: primary.url,
          models: ["chat"],
          breaker: { window: { kind: "count", size: 2 }, minimumCalls: 1, failureRateThreshold: 50, openDuration: "30 seconds" }
        },
        secondary: { provider: "openai", baseUrl: secondary.url, models: ["chat"] }
      },
      routes: {
        chat: { upstreams: ["primary", "secondary"], retry: { baseDelay: "1 millis", jitter: "none" } },
        solo: { upstreams: [{ upstream: "primary", model: "chat" }] },
        fragile: { upstreams: [{ upstream: "fragile", model: "chat" }], retry: { enabled: false } }
      }
    }, {})
    const tracer = Telemetry.make(telemetry, { spanProcessors: [new SimpleSpanProcessor(exporter)], upstreams: config.upstreams, env: {} })
    const gateway = yield* GatewayBuilder.make(config, { telemetry: Tracing.given(wrap(tracer)) })
    const running = yield* HttpHost.serve(gateway, { port: 0, log: () => {} })
    return { primary, secondary, url: running.url, running, spans: () => exporter.getFinishedSpans() }
  })

const chat = (url: string, body: Record<string, unknown>, headers: Record<string, string> = {}) =>
  Effect.promise(async () => {
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(body)
    })
    return { status: res.status, headers: res.headers, body: await res.text() }
  })

const ask = (model: string, content = "Hello", stream = false) => ({ model, messages: [{ role: "user", content }], stream })

/** The SERVER span of a request, by the request id the client sent. */
const requestSpan = (spans: ReadonlyArray<ReadableSpan>, requestId: string) => {
  const found = spans.find((s) => s.attributes["breakwater.request_id"] === requestId)
  expect(found, `a span for ${requestId}`).toBeDefined()
  return found!
}
const attemptsOf = (spans: ReadonlyArray<ReadableSpan>, parent: ReadableSpan) =>
  spans.filter((s) => s.parentSpanContext?.spanId === parent.spanContext().spanId)
const eventsNamed = (span: ReadableSpan, name: string) => span.events.filter((e) => e.name === name)
const id = (requestId: string) => ({ "x-request-id": requestId })

/** Resolves once `done` holds (checked each turn of the event loop), for what ends after a response closes. */
const until = (done: () => boolean): Promise<void> =>
  new Promise((resolve) => {
    const check = () => (done() ? resolve() : setImmediate(check))
    check()
  })

describe("traces through the HTTP host", () => {
  it.live("a retried request: two attempt spans under the request span, the retry with its reason and wait", () =>
    Effect.gen(function*() {
      const { primary, url, spans } = yield* setup()
      primary.script({ fault: Fault.Status({ status: 503 }) })
      const res = yield* chat(url, ask("chat"), id("retried-1"))
      expect(res.status).toBe(200)

      const root = requestSpan(spans(), "retried-1")
      expect(root.attributes).toMatchObject({ "gen_ai.operation.name": "chat", "gen_ai.request.model": "chat", "breakwater.attempts": 2, "breakwater.retries": 1 })
      expect(root.attributes["error.type"]).toBeUndefined()
      expect(eventsNamed(root, "breakwater.retry").map((e) => e.attributes)).toEqual([
        { "breakwater.attempt": 1, "error.type": "UpstreamUnavailable", "breakwater.retry.wait_ms": 1 }
      ])
      const attempts = attemptsOf(spans(), root)
      expect(attempts.map((s) => [s.attributes["breakwater.upstream"], s.attributes["breakwater.attempt"], s.attributes["error.type"]])).toEqual([
        ["primary", 1, "UpstreamUnavailable"],
        ["primary", 2, undefined]
      ])
      expect(attempts[1]!.attributes["gen_ai.response.id"]).toBe((JSON.parse(res.body) as { id: string }).id)
    }).pipe(Effect.scoped))

  it.live("a fallback: the decision with its target as an event", () =>
    Effect.gen(function*() {
      const { primary, secondary, url, spans } = yield* setup()
      primary.script({ fault: Fault.Status({ status: 401 }) })
      expect((yield* chat(url, ask("chat"), id("fallback-1"))).status).toBe(200)

      const root = requestSpan(spans(), "fallback-1")
      expect(eventsNamed(root, "breakwater.fallback").map((e) => e.attributes)).toEqual([
        { "breakwater.fallback.from": "primary@chat", "breakwater.fallback.to": "secondary@chat", "error.type": "UpstreamAuth" }
      ])
      expect(attemptsOf(spans(), root).map((s) => s.attributes["breakwater.upstream"])).toEqual(["primary", "secondary"])
      expect(secondary.requests).toHaveLength(1)
    }).pipe(Effect.scoped))

  it.live("a breaker rejection: the open circuit as an event, the client's error on the request span", () =>
    Effect.gen(function*() {
      const { primary, url, spans } = yield* setup()
      primary.setDefault({ fault: Fault.Status({ status: 503 }) })
      expect((yield* chat(url, ask("fragile"), id("breaker-1"))).status).toBe(503)
      const opened = requestSpan(spans(), "breaker-1")
      expect(eventsNamed(opened, "breakwater.circuit_breaker.transition").map((e) => e.attributes?.["breakwater.circuit_breaker.to"])).toEqual(["open"])

      const refused = yield* chat(url, ask("fragile"), id("breaker-2"))
      expect(refused.status).toBe(503)
      const root = requestSpan(spans(), "breaker-2")
      expect(eventsNamed(root, "breakwater.router.skipped").map((e) => e.attributes)).toEqual([{ "breakwater.router.target": "fragile@chat" }])
      expect(attemptsOf(spans(), root)).toEqual([])
      expect(root.attributes["http.response.status_code"]).toBe(503)
      expect(root.attributes["error.type"]).toBe((JSON.parse(refused.body) as { error: { code: string } }).error.code)
      expect(primary.requests).toHaveLength(1)
    }).pipe(Effect.scoped))

  it.live("a resumed stream: the resume with its seam and splice as an event, the request span ended when the stream is", () =>
    Effect.gen(function*() {
      const { primary, url, spans } = yield* setup()
      primary.script({ fault: Fault.Cut({ afterChunks: 7 }) }, { continuation: ContinuationFault.Overlap({ chars: 13 }) })
      const res = yield* chat(url, ask("solo", "Hello", true), id("resumed-1"))
      expect(res.status).toBe(200)
      expect(res.body).toContain("data: [DONE]")

      const root = requestSpan(spans(), "resumed-1")
      const [resumed] = eventsNamed(root, "breakwater.resume")
      expect(resumed?.attributes).toMatchObject({ "breakwater.resume.outcome": "resumed", "breakwater.resume.seam": 1 })
      expect(resumed?.attributes?.["breakwater.resume.seam_kind"]).toBeTypeOf("string")
      expect(resumed?.attributes?.["breakwater.resume.overlap_trimmed_chars"]).toBeGreaterThan(0)
      expect(root.attributes["breakwater.stream"]).toBe(true)
      expect(attemptsOf(spans(), root).map((s) => s.attributes["error.type"])).toEqual(["StreamInterrupted", undefined])
    }).pipe(Effect.scoped))

  it.live("a Last-Event-ID reconnect: the journal replay as an event on the reconnect's span", () =>
    Effect.gen(function*() {
      const { url, spans } = yield* setup()
      const first = yield* chat(url, ask("chat", "Hello", true), id("journaled-1"))
      const ids = first.body.split("\n").filter((l) => l.startsWith("id: ")).map((l) => l.slice(4))
      expect(ids.length).toBeGreaterThan(4)
      const again = yield* chat(url, ask("chat", "Hello", true), { ...id("replay-1"), "last-event-id": ids[2]! })
      expect(again.status).toBe(200)

      const root = requestSpan(spans(), "replay-1")
      expect(eventsNamed(root, "breakwater.journal.replay").map((e) => e.attributes)).toEqual([
        { "breakwater.journal.replayed_events": ids.length - 3, "breakwater.journal.last_event_id": ids[2] }
      ])
      // The reconnect ran no upstream call of its own.
      expect(attemptsOf(spans(), root)).toEqual([])
    }).pipe(Effect.scoped))

  it.live("a reconnect by GET /v1/streams/{id}: a span of its own named for the replay, the replay as an event on it", () =>
    Effect.gen(function*() {
      const { url, spans } = yield* setup()
      const first = yield* chat(url, ask("chat", "Hello", true), id("journaled-2"))
      const streamId = first.headers.get("x-breakwater-stream-id")!
      const ids = first.body.split("\n").filter((l) => l.startsWith("id: ")).map((l) => l.slice(4))
      expect(ids.length).toBeGreaterThan(4)
      const again = yield* Effect.promise(async () => {
        const res = await fetch(`${url}/v1/streams/${streamId}`, { headers: { ...id("replay-get-1"), "last-event-id": ids[2]! } })
        return { status: res.status, body: await res.text() }
      })
      expect(again.status).toBe(200)
      expect(again.body.split("\n").filter((l) => l.startsWith("id: ")).map((l) => l.slice(4))).toEqual(ids.slice(3))

      const root = requestSpan(spans(), "replay-get-1")
      expect(root.name).toBe(Tracing.streamReplay)
      expect(root.attributes["gen_ai.operation.name"]).toBe(Tracing.streamReplay)
      expect(eventsNamed(root, "breakwater.journal.replay").map((e) => e.attributes)).toEqual([
        { "breakwater.journal.replayed_events": ids.length - 3, "breakwater.journal.last_event_id": ids[2] }
      ])
      expect(attemptsOf(spans(), root)).toEqual([])
      // An unknown stream: the span ends with the client's error.
      const unknown = yield* Effect.promise(() => fetch(`${url}/v1/streams/bws_${"0".repeat(32)}`, { headers: id("replay-get-2") }).then((r) => r.status))
      expect(unknown).toBe(404)
      expect(requestSpan(spans(), "replay-get-2").attributes["http.response.status_code"]).toBe(404)
    }).pipe(Effect.scoped))

  it.live("an incoming traceparent: the request span continues the caller's trace, and the upstream gets the same trace", () =>
    Effect.gen(function*() {
      const { primary, url, spans } = yield* setup()
      const traceId = "4bf92f3577b34da6a3ce929d0e0e4736"
      const parentId = "00f067aa0ba902b7"
      expect((yield* chat(url, ask("chat"), { ...id("traced-1"), traceparent: `00-${traceId}-${parentId}-01` })).status).toBe(200)

      const root = requestSpan(spans(), "traced-1")
      expect(root.spanContext().traceId).toBe(traceId)
      expect(root.parentSpanContext?.spanId).toBe(parentId)
      const [attempt] = attemptsOf(spans(), root)
      expect(primary.requests[0]!.headers["traceparent"]).toBe(`00-${traceId}-${attempt!.spanContext().spanId}-01`)
    }).pipe(Effect.scoped))

  it.live("a client that leaves: the request span ends with client_closed, the cancelled attempt under it", () =>
    Effect.gen(function*() {
      const { primary, url, spans } = yield* setup()
      primary.script({ fault: Fault.StallBeforeHeaders() })
      const controller = new AbortController()
      const sent = fetch(`${url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", ...id("gone-1") },
        body: JSON.stringify(ask("chat")),
        signal: controller.signal
      }).catch(() => undefined)
      yield* Effect.promise(() => primary.waitFor(1))
      controller.abort()
      yield* Effect.promise(() => sent)
      yield* Effect.promise(() => until(() => spans().some((s) => s.attributes["breakwater.request_id"] === "gone-1")))
      const root = requestSpan(spans(), "gone-1")
      expect(root.attributes["error.type"]).toBe("client_closed")
      expect(attemptsOf(spans(), root).map((s) => s.attributes["breakwater.outcome"])).toEqual(["cancelled"])
    }).pipe(Effect.scoped))

  it.live("closing the host flushes the spans still buffered", () =>
    Effect.gen(function*() {
      let flushes = 0
      const { running, url } = yield* setup({ enabled: true }, (t) => ({
        ...t,
        flush: () => {
          flushes++
          return t.flush()
        }
      }))
      expect((yield* chat(url, ask("chat"))).status).toBe(200)
      expect(flushes).toBe(0)
      yield* Effect.promise(() => running.close())
      expect(flushes).toBe(1)
    }).pipe(Effect.scoped))

  for (const captureContent of [false, true]) {
    it.live(`a canary prompt ${captureContent ? "is recorded with captureContent" : "is in no span by default"}`, () =>
      Effect.gen(function*() {
        const { primary, url, spans } = yield* setup({ enabled: true, captureContent })
        primary.script({ fault: Fault.Status({ status: 503 }) })
        expect((yield* chat(url, ask("chat", `Tell me about ${CANARY}`), id("canary-1"))).status).toBe(200)
        expect((yield* chat(url, ask("chat", `Tell me about ${CANARY}`, true), id("canary-2"))).status).toBe(200)
        requestSpan(spans(), "canary-1")
        requestSpan(spans(), "canary-2")
        const exported = JSON.stringify(spans().map((s) => ({ name: s.name, attributes: s.attributes, events: s.events, status: s.status })))
        expect(exported.includes(CANARY)).toBe(captureContent)
      }).pipe(Effect.scoped))
  }
})
